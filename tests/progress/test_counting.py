"""What counts toward progress: paid AND completed orders, per channel, in the month of the later
of the two moments; counters kept in the transaction of the change, equal to a recomputation."""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from tests.conftest import auth
from tests.progress.helpers import (
    complete,
    drift,
    make_province,
    pay,
    post_order,
    unit_view,
)


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def month(view: dict, m: int) -> str:
    return next(x["amount"] for x in view["monthly"] if x["month"] == m)


async def test_each_channel_is_counted_where_it_belongs_and_union_separately(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    p = await make_province(session)
    amounts = {"unit": "1000.00", "contractor": "2000.00", "personal": "300.50", "union": "4000.00"}
    for channel, amount in amounts.items():
        order = await post_order(payments_client, p, p.a1, amount, channel=channel)
        assert order["purchase_channel"] == channel
        await pay(order)
        assert (
            await complete(payments_client, order, "2024-05-02T09:00:00+08:00")
        ).status_code == 200
    view = await unit_view(confirmation_client, p.a1)
    assert view["by_channel"] == {
        "unit": "1000.00",
        "contractor": "2000.00",
        "personal": "300.50",
        "union": "4000.00",
    }
    assert view["canteen_purchased"] == "3300.50"  # unit + contractor + personal
    assert view["reserved_amount"] == "300000.00"
    assert view["canteen_completion_pct"] == "1.10"
    assert view["union_purchased"] == "4000.00"  # against the union expected amount only
    assert view["union_expected_amount"] == "40000.00"
    assert view["union_completion_pct"] == "10.00"
    assert view["priority_areas"]["total"] == "7300.50"
    assert month(view, 5) == "3300.50"
    # nothing leaks to the superior or another unit
    parent = await unit_view(confirmation_client, p.dept_a)
    assert parent["canteen_purchased"] == "0.00" and parent["union_purchased"] == "0.00"
    assert (await drift(session))["drift_rows"] == 0


async def test_default_channel_is_unit(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    p = await make_province(session)
    order = await post_order(payments_client, p, p.a1, "50.00", channel=None)
    assert order["purchase_channel"] == "unit"
    await pay(order)
    await complete(payments_client, order)
    assert (await unit_view(confirmation_client, p.a1))["by_channel"]["unit"] == "50.00"


async def test_unpaid_uncompleted_partially_paid_and_cancelled_orders_do_not_count(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    p = await make_province(session)
    paid_only = await post_order(payments_client, p, p.a1, "100.00")
    await pay(paid_only)
    completed_only = await post_order(payments_client, p, p.a1, "200.00")
    assert (await complete(payments_client, completed_only)).status_code == 200
    partial = await post_order(payments_client, p, p.a1, "300.00")
    await pay(partial, amount="100.00")
    await complete(payments_client, partial)
    cancelled = await post_order(payments_client, p, p.a1, "400.00")
    response = await payments_client.post(
        f"/api/v1/orders/{cancelled['order_no']}/cancel", headers=auth(Role.PLATFORM)
    )
    assert response.status_code == 200
    refused = await complete(payments_client, cancelled)
    assert refused.status_code == 409
    assert refused.json()["code"] == "order_cancelled"
    view = await unit_view(confirmation_client, p.a1)
    assert view["canteen_purchased"] == "0.00"
    assert view["priority_areas"]["total"] == "0.00"
    # the partial order counts once its last part is paid
    await pay(partial, amount="200.00")
    view = await unit_view(confirmation_client, p.a1)
    assert view["canteen_purchased"] == "300.00"
    assert (await drift(session))["drift_rows"] == 0


async def test_completion_before_or_after_payment_counts_in_the_month_of_the_later(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    p = await make_province(session)
    completed_first = await post_order(payments_client, p, p.a1, "100.00")
    done = await complete(payments_client, completed_first, "2024-03-20T12:00:00+08:00")
    assert done.status_code == 200
    assert moment(done.json()["completed_at"]) == moment("2024-03-20T04:00:00Z")
    assert (await unit_view(confirmation_client, p.a1))["canteen_purchased"] == "0.00"
    await pay(completed_first, at="2024-06-03 09:00:00")  # counts now, in June
    paid_first = await post_order(payments_client, p, p.a1, "40.00")
    await pay(paid_first, at="2024-04-01 09:00:00")
    assert (await unit_view(confirmation_client, p.a1))["canteen_purchased"] == "100.00"
    await complete(payments_client, paid_first, "2024-07-31T23:30:00+08:00")  # July in Beijing
    view = await unit_view(confirmation_client, p.a1)
    assert view["canteen_purchased"] == "140.00"
    assert month(view, 6) == "100.00"
    assert month(view, 7) == "40.00"
    assert month(view, 3) == "0.00" and month(view, 4) == "0.00"
    # completing again is a retry: nothing changes
    again = await complete(payments_client, paid_first, "2024-09-01T00:00:00+08:00")
    assert again.status_code == 200
    assert moment(again.json()["completed_at"]) == moment("2024-07-31T15:30:00Z")
    assert (await unit_view(confirmation_client, p.a1))["canteen_purchased"] == "140.00"
    assert (await drift(session))["drift_rows"] == 0


async def test_complete_endpoint_rules(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    p = await make_province(session, filings=False)
    order = await post_order(payments_client, p, p.a1, "10.00")
    url = f"/api/v1/orders/{order['order_no']}/complete"
    assert (await payments_client.post(url, headers=auth(Role.UNIT, p.a1.id))).status_code == 403
    assert (await payments_client.post(url)).status_code == 401
    missing = await payments_client.post(
        "/api/v1/orders/NOPE/complete", headers=auth(Role.PLATFORM)
    )
    assert missing.status_code == 404
    bad = await payments_client.post(
        url, json={"completed_at": "not a date"}, headers=auth(Role.PLATFORM)
    )
    assert bad.status_code == 422
    ok = await payments_client.post(url, headers=auth(Role.PLATFORM))  # no body: now
    assert ok.status_code == 200 and ok.json()["completed_at"] is not None
    detail = await payments_client.get(
        f"/api/v1/orders/{order['order_no']}", headers=auth(Role.OPS)
    )
    assert "completed" in [e["action"] for e in detail.json()["timeline"]]
    wrong_channel = await payments_client.post(
        "/api/v1/orders",
        json={
            "order_no": "XDbadchannel",
            "buyer_unit_id": p.a1.id,
            "supplier_id": p.supplier_id,
            "amount": "1.00",
            "placed_at": "2024-03-01T10:00:00+08:00",
            "purchase_channel": "canteen",
        },
        headers=auth(Role.PLATFORM),
    )
    assert wrong_channel.status_code == 422
    replay = {
        "order_no": order["order_no"],
        "buyer_unit_id": p.a1.id,
        "supplier_id": p.supplier_id,
        "amount": "10.00",
        "placed_at": "2024-03-01T10:00:00+08:00",
        "payment_code": order["payment_code"],
    }
    same = await payments_client.post("/api/v1/orders", json=replay, headers=auth(Role.PLATFORM))
    assert same.status_code == 200  # idempotent replay (channel defaults to unit)
    other = await payments_client.post(
        "/api/v1/orders",
        json={**replay, "purchase_channel": "union"},
        headers=auth(Role.PLATFORM),
    )
    assert other.status_code == 409 and other.json()["code"] == "order_no_conflict"


async def test_a_renamed_or_merged_unit_keeps_its_history(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
    filing_client: httpx.AsyncClient,
) -> None:
    p = await make_province(session)
    order = await post_order(payments_client, p, p.a1, "500.00")
    await pay(order)
    await complete(payments_client, order)
    renamed = await filing_client.patch(
        f"/api/v1/units/{p.a1.id}",
        json={"name": "省实验中学（更名）", "reason": "机构改革"},
        headers=auth(Role.OPS),
    )
    assert renamed.status_code == 200, renamed.text
    view = await unit_view(confirmation_client, p.a1)
    assert view["unit_name"] == "省实验中学（更名）"
    assert view["canteen_purchased"] == "500.00"
    merged = await filing_client.post(
        f"/api/v1/units/{p.a1.id}/merge",
        json={"into_unit_id": p.dept_a.id, "reason": "合并"},
        headers=auth(Role.OPS),
    )
    assert merged.status_code == 200, merged.text
    view = await unit_view(confirmation_client, p.a1)
    assert view["unit_status"] == "merged"
    assert view["canteen_purchased"] == "500.00"  # still its own
    survivor = await unit_view(confirmation_client, p.dept_a)
    assert survivor["canteen_purchased"] == "0.00"  # not counted twice
    assert survivor["merged_units"] == [
        {
            "unit_id": p.a1.id,
            "name": "省实验中学（更名）",
            "canteen_purchased": "500.00",
            "union_purchased": "0.00",
        }
    ]
    # the superior still sees the merged unit's history
    seen = await unit_view(confirmation_client, p.a1, role=Role.UNIT, as_unit=p.dept_a.id)
    assert seen["canteen_purchased"] == "500.00"


async def test_counters_change_in_the_transaction_of_the_change(session: AsyncSession) -> None:
    """A rolled-back payment leaves no counter; the set-based SQL path is counted too."""
    from tests.factories import make_order, make_supplier, make_unit

    unit = await make_unit(session)
    supplier, account = await make_supplier(session)
    order = await make_order(
        session,
        buyer=unit,
        supplier=supplier,
        settlement=account,
        amount="70.00",
        payment_code="zz0001",
    )
    await session.execute(
        text("UPDATE orders SET completed_at = '2024-02-01T00:00:00Z' WHERE id = :id"),
        {"id": order.id},
    )
    await session.commit()
    await session.execute(
        text(
            "UPDATE orders SET status = 'paid', paid_amount = amount, "
            "paid_at = '2024-02-02T00:00:00Z' WHERE id = :id"
        ),
        {"id": order.id},
    )
    inside = await session.scalar(text("SELECT sum(amount) FROM progress_counters"))
    assert inside == 70
    await session.rollback()
    assert await session.scalar(text("SELECT coalesce(sum(amount), 0) FROM progress_counters")) == 0
    await session.commit()
