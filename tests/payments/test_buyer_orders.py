"""The buyer finds its orders (`GET /api/v1/orders`) and sends itself the payee account by SMS
(发送账户信息短信, rate-limited)."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from shared.models import OrderStatus
from tests.conftest import auth
from tests.factories import make_order, make_supplier, make_unit


async def test_a_buyer_lists_its_own_orders_a_superior_its_descendants_operations_all(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    parent = await make_unit(session, "上级单位")
    child = await make_unit(session, "下级单位", parent=parent)
    stranger = await make_unit(session, "无关单位")
    supplier, settlement = await make_supplier(session)
    made = {}
    for i, (buyer, status) in enumerate(
        [
            (parent, OrderStatus.PENDING_PAYMENT),
            (child, OrderStatus.PENDING_PAYMENT),
            (child, OrderStatus.PAID),
            (stranger, OrderStatus.PENDING_PAYMENT),
        ]
    ):
        order = await make_order(
            session,
            buyer=buyer,
            supplier=supplier,
            settlement=settlement,
            amount="10.00",
            payment_code=f"list{i:02d}",
            status=status,
        )
        made[order.order_no] = buyer.id
    await session.commit()

    async def listed(headers: dict[str, str], query: str = "") -> list[int]:
        response = await payments_client.get(f"/api/v1/orders{query}", headers=headers)
        assert response.status_code == 200, response.text
        return sorted(o["buyer_unit_id"] for o in response.json()["items"])

    assert await listed(auth(Role.UNIT, child.id)) == [child.id, child.id]
    assert await listed(auth(Role.UNIT, parent.id)) == sorted([parent.id, child.id, child.id])
    assert await listed(auth(Role.UNIT, stranger.id)) == [stranger.id]
    assert len(await listed(auth(Role.OPS))) == 4
    assert len(await listed(auth(Role.PLATFORM))) == 4
    assert await listed(auth(Role.UNIT, child.id), "?status=pending_payment") == [child.id]
    # keyset pages
    first = await payments_client.get("/api/v1/orders?limit=3", headers=auth(Role.OPS))
    page = first.json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = await payments_client.get(
        f"/api/v1/orders?limit=3&cursor={page['next_cursor']}", headers=auth(Role.OPS)
    )
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    assert page["items"][0]["settlement_account"]["account_no"].count("*") == 5
    forbidden = await payments_client.get("/api/v1/orders", headers=auth(Role.IMPORTER))
    assert forbidden.status_code == 403


async def test_payee_sms_is_queued_and_rate_limited_per_order_and_per_mobile(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    buyer = await make_unit(session)
    supplier, settlement = await make_supplier(session, settlement_account="35000188110503337")
    orders = [
        await make_order(
            session,
            buyer=buyer,
            supplier=supplier,
            settlement=settlement,
            amount="88.50",
            payment_code=f"sms{i:03d}",
        )
        for i in range(5)
    ]
    await session.commit()
    headers = auth(Role.UNIT, buyer.id)

    async def send(order_no: str, mobile: str) -> httpx.Response:
        return await payments_client.post(
            f"/api/v1/orders/{order_no}/send-payee-sms", json={"mobile": mobile}, headers=headers
        )

    for n in range(3):
        sent = await send(orders[0].order_no, "13700000000")
        assert sent.status_code == 202, sent.text
        assert sent.json()["mobile"] == "137****0000"
        assert sent.json()["order_sends_left_today"] == 2 - n
    limited = await send(orders[0].order_no, "13700000001")
    assert limited.status_code == 429
    assert limited.json()["code"] == "payee_sms_order_limit"
    # 10 per mobile and day, whatever the order: 3 above, 7 more on other orders
    for order in orders[1:4]:
        for _ in range(3 if order is not orders[3] else 1):
            assert (await send(order.order_no, "13700000000")).status_code == 202
    over = await send(orders[4].order_no, "13700000000")
    assert over.status_code == 429
    assert over.json()["code"] == "payee_sms_mobile_limit"
    assert (await send(orders[4].order_no, "13700000002")).status_code == 202
    rows = (
        await session.execute(text("SELECT event_key, template, body FROM sms_outbox ORDER BY id"))
    ).all()
    await session.commit()
    assert len(rows) == 11
    assert {r.template for r in rows} == {"payee_account"}
    assert len({r.event_key for r in rows}) == 11
    assert rows[0].event_key.startswith(f"payee_account:{orders[0].order_no}:")
    assert "35000188110503337" in rows[0].body and "sms000" in rows[0].body
    assert "88.50" in rows[0].body
    bad = await send(orders[4].order_no, "12345")
    assert bad.status_code == 422
