"""Suppliers and orders from the trading platform: masked accounts, generated or migrated payment
codes, idempotency on the order number, cancelling, and who may read an order."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import codes
from shared.auth import Role
from tests.conftest import auth
from tests.factories import make_unit

PLATFORM = auth(Role.PLATFORM)


async def new_supplier(client: httpx.AsyncClient, account_no: str = "10019988776657931") -> int:
    response = await client.post(
        "/api/v1/suppliers",
        json={
            "name": "行唐县李先森农产品店",
            "accounts": [
                {
                    "holder_name": "行唐县李先森农产品店",
                    "account_no": account_no,
                    "bank_name": "中国光大银行",
                    "is_settlement": True,
                },
                {
                    "holder_name": "李先森",
                    "account_no": "62220000000002",
                    "bank_name": "中国工商银行",
                    "is_settlement": False,
                },
            ],
        },
        headers=PLATFORM,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def buyer_and_supplier(session: AsyncSession, client: httpx.AsyncClient) -> tuple[int, int]:
    """A buyer unit (committed) and a supplier with a settlement account: (unit id, supplier id)."""
    unit = await make_unit(session)
    await session.commit()
    return unit.id, await new_supplier(client)


def order_body(unit_id: int, supplier_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "order_no": "XD240402101000000333",
        "buyer_unit_id": unit_id,
        "supplier_id": supplier_id,
        "amount": "36000",
        "placed_at": "2024-04-02T10:10:00+08:00",
        "region_code": None,
        "origin_county": "巴马瑶族自治县",
        **extra,
    }


async def test_supplier_accounts_are_shown_masked(payments_client: httpx.AsyncClient) -> None:
    supplier_id = await new_supplier(payments_client)
    response = await payments_client.get(f"/api/v1/suppliers/{supplier_id}", headers=PLATFORM)
    accounts = response.json()["accounts"]
    assert accounts[0]["account_no"] == "1001 **** * 7931"
    assert accounts[0]["is_settlement"] is True
    assert "李先森农产品店" not in accounts[0]["holder_name"]


async def test_a_supplier_has_at_most_one_settlement_account(
    payments_client: httpx.AsyncClient,
) -> None:
    account = {"holder_name": "甲", "bank_name": "乙", "is_settlement": True}
    response = await payments_client.post(
        "/api/v1/suppliers",
        json={
            "name": "甲",
            "accounts": [
                {**account, "account_no": "1111222233334444"},
                {**account, "account_no": "1111222233335555"},
            ],
        },
        headers=PLATFORM,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "several_settlement_accounts"


async def test_an_account_number_belongs_to_one_supplier(
    payments_client: httpx.AsyncClient,
) -> None:
    await new_supplier(payments_client)
    response = await payments_client.post(
        "/api/v1/suppliers",
        json={
            "name": "乙",
            "accounts": [
                {"holder_name": "乙", "bank_name": "乙", "account_no": "10019988776657931"}
            ],
        },
        headers=PLATFORM,
    )
    assert response.status_code == 409


async def test_a_new_order_gets_a_checked_payment_code_and_the_settlement_account(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)
    response = await payments_client.post(
        "/api/v1/orders", json=order_body(unit_id, supplier_id), headers=PLATFORM
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert codes.is_valid(order["payment_code"])
    assert (order["status"], order["amount"], order["paid_amount"]) == (
        "pending_payment",
        "36000.00",
        "0.00",
    )
    assert order["outstanding_amount"] == "36000.00"
    assert order["settlement_account"]["account_no"] == "1001 **** * 7931"


async def test_the_same_order_number_again_is_the_same_order_unless_it_differs(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)
    body = order_body(unit_id, supplier_id)
    first = await payments_client.post("/api/v1/orders", json=body, headers=PLATFORM)
    again = await payments_client.post("/api/v1/orders", json=body, headers=PLATFORM)
    assert again.status_code == 200
    assert again.json()["payment_code"] == first.json()["payment_code"]
    changed = await payments_client.post(
        "/api/v1/orders", json={**body, "amount": "36001"}, headers=PLATFORM
    )
    assert changed.status_code == 409
    assert changed.json()["code"] == "order_no_conflict"


async def test_migrated_orders_keep_their_code_which_must_be_free_among_open_orders(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)
    first = await payments_client.post(
        "/api/v1/orders",
        json=order_body(unit_id, supplier_id, payment_code="R8T3WD"),
        headers=PLATFORM,
    )
    assert first.json()["payment_code"] == "r8t3wd"
    clash = await payments_client.post(
        "/api/v1/orders",
        json=order_body(unit_id, supplier_id, order_no="XD2", payment_code="r8t3wd"),
        headers=PLATFORM,
    )
    assert clash.status_code == 409
    assert clash.json()["code"] == "payment_code_in_use"
    bad = await payments_client.post(
        "/api/v1/orders",
        json=order_body(unit_id, supplier_id, order_no="XD3", payment_code="r8t3"),
        headers=PLATFORM,
    )
    assert bad.status_code == 422
    # once the first order is cancelled, its code is free again
    await payments_client.post("/api/v1/orders/XD240402101000000333/cancel", headers=PLATFORM)
    reuse = await payments_client.post(
        "/api/v1/orders",
        json=order_body(unit_id, supplier_id, order_no="XD2", payment_code="r8t3wd"),
        headers=PLATFORM,
    )
    assert reuse.status_code == 201


async def test_a_supplier_without_settlement_account_cannot_take_orders(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit = await make_unit(session)
    await session.commit()
    response = await payments_client.post(
        "/api/v1/suppliers",
        json={
            "name": "丙",
            "accounts": [{"holder_name": "丙", "bank_name": "丙", "account_no": "62220000000009"}],
        },
        headers=PLATFORM,
    )
    order = await payments_client.post(
        "/api/v1/orders", json=order_body(unit.id, response.json()["id"]), headers=PLATFORM
    )
    assert order.status_code == 422
    assert order.json()["code"] == "no_settlement_account"


async def test_cancelling_is_allowed_while_nothing_is_paid(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)
    await payments_client.post(
        "/api/v1/orders", json=order_body(unit_id, supplier_id), headers=PLATFORM
    )
    response = await payments_client.post(
        "/api/v1/orders/XD240402101000000333/cancel",
        json={"reason": "买方取消"},
        headers=PLATFORM,
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    detail = await payments_client.get(
        "/api/v1/orders/XD240402101000000333", headers=auth(Role.OPS)
    )
    assert [e["to_status"] for e in detail.json()["timeline"]] == ["pending_payment", "cancelled"]


async def test_the_buyer_unit_reads_its_own_order_and_no_other_unit_does(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    buyer = await make_unit(session)
    stranger = await make_unit(session)
    await session.commit()
    supplier_id = await new_supplier(payments_client)
    await payments_client.post(
        "/api/v1/orders", json=order_body(buyer.id, supplier_id), headers=PLATFORM
    )
    own = await payments_client.get(
        "/api/v1/orders/XD240402101000000333", headers=auth(Role.UNIT, buyer.id)
    )
    other = await payments_client.get(
        "/api/v1/orders/XD240402101000000333", headers=auth(Role.UNIT, stranger.id)
    )
    assert own.status_code == 200
    assert other.status_code == 404


async def test_ids_beyond_the_database_range_are_a_422_not_a_500(
    payments_client: httpx.AsyncClient,
) -> None:
    too_big = 2**63
    order = await payments_client.post(
        "/api/v1/orders", json=order_body(too_big, too_big), headers=PLATFORM
    )
    supplier = await payments_client.get(f"/api/v1/suppliers/{too_big}", headers=PLATFORM)
    case = await payments_client.get(f"/api/v1/bank-transactions/{too_big}", headers=auth(Role.OPS))
    assert (order.status_code, supplier.status_code, case.status_code) == (422, 422, 422)


async def test_a_code_is_free_again_once_its_order_is_paid_or_cancelled(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    from tests.payments.helpers import settle, store_rows

    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)

    async def place(order_no: str, code: str) -> httpx.Response:
        return await payments_client.post(
            "/api/v1/orders",
            json=order_body(unit_id, supplier_id, order_no=order_no, payment_code=code),
            headers=PLATFORM,
        )

    assert (await place("XD1", "k7m2qp")).status_code == 201
    assert (await place("XD2", "k7m2qp")).json()["code"] == "payment_code_in_use"
    await payments_client.post("/api/v1/orders/XD1/cancel", json={}, headers=PLATFORM)
    assert (await place("XD2", "k7m2qp")).status_code == 201  # XD1 is cancelled

    lines = [
        {"ref": f"P{i}", "account": "10019988776657931", "amount": amount, "remark": "K7M2QP"}
        for i, amount in enumerate(("6000", "30000"))
    ]
    await store_rows(lines)
    await settle(session)
    assert (await place("XD3", "k7m2qp")).status_code == 201  # XD2 is paid

    detail = (await payments_client.get("/api/v1/orders/XD2", headers=auth(Role.OPS))).json()
    assert detail["status"] == "paid"
    assert [
        (e["action"], e["from_status"], e["to_status"], e["amount"], e["actor_sub"])
        for e in detail["timeline"]
    ] == [
        ("created", None, "pending_payment", "36000.00", "platform:dev"),
        ("payment_allocated", "pending_payment", "partially_paid", "6000.00", "system:matcher"),
        ("payment_allocated", "partially_paid", "paid", "30000.00", "system:matcher"),
    ]
    assert [e["bank_transaction_id"] for e in detail["timeline"][1:]] == [
        a["bank_transaction_id"] for a in detail["allocations"]
    ]


async def test_text_with_a_nul_character_is_a_422_not_a_500(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)
    response = await payments_client.post(
        "/api/v1/orders",
        json=order_body(unit_id, supplier_id, origin_county="巴马\x00县"),
        headers=PLATFORM,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "origin_county"]
    response = await payments_client.post(
        "/api/v1/suppliers",
        json={"name": "店\x00", "accounts": []},
        headers=PLATFORM,
    )
    assert response.status_code == 422, response.text


async def test_an_order_amount_must_be_above_zero(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)
    for amount in ("0", "0.00"):
        response = await payments_client.post(
            "/api/v1/orders", json=order_body(unit_id, supplier_id, amount=amount), headers=PLATFORM
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "amount"]
    largest = await payments_client.post(
        "/api/v1/orders",
        json=order_body(unit_id, supplier_id, amount="99999999999999.99"),
        headers=PLATFORM,
    )
    assert largest.status_code == 201, largest.text
    assert largest.json()["outstanding_amount"] == "99999999999999.99"


async def test_an_order_placed_at_outside_plausible_years_is_a_422_not_a_500(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    unit_id, supplier_id = await buyer_and_supplier(session, payments_client)
    for i, moment in enumerate(("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00")):
        body = order_body(unit_id, supplier_id, order_no=f"XD{i}", placed_at=moment)
        response = await payments_client.post("/api/v1/orders", json=body, headers=PLATFORM)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "placed_at"]


async def test_a_retried_supplier_registration_with_its_idempotency_key_gets_the_first_answer(
    payments_client: httpx.AsyncClient,
) -> None:
    body = {
        "name": "巴马县农产品店",
        "accounts": [
            {
                "holder_name": "巴马县农产品店",
                "account_no": "10019988770001",
                "bank_name": "中国光大银行",
                "is_settlement": True,
            }
        ],
    }
    headers = {**PLATFORM, "Idempotency-Key": "supplier-1"}
    first = await payments_client.post("/api/v1/suppliers", json=body, headers=headers)
    retry = await payments_client.post("/api/v1/suppliers", json=body, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    other = await payments_client.post("/api/v1/suppliers", json=body, headers=PLATFORM)
    assert other.status_code == 409 and other.json()["code"] == "account_no_taken"


async def test_an_order_number_in_the_path_with_odd_characters_is_a_422_not_a_500(
    payments_client: httpx.AsyncClient,
) -> None:
    read = await payments_client.get("/api/v1/orders/XD%00", headers=auth(Role.OPS))
    cancel = await payments_client.post("/api/v1/orders/XD%00/cancel", headers=PLATFORM)
    assert (read.status_code, cancel.status_code) == (422, 422)
