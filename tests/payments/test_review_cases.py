"""Operations staff list review cases by reason and resolve them: allocate (same rules and
allocation path as the matcher) or reject; every resolution is audited, and only once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from tests.conftest import auth
from tests.payments.helpers import import_fixture, load_sample_orders, settle

OPS = auth(Role.OPS, sub="ops:wang")


async def sample_cases(session: AsyncSession, client: httpx.AsyncClient) -> dict[str, int]:
    await load_sample_orders(session, client)
    await import_fixture(client, "statement_bank_export.csv")
    await settle(session)
    rows = await session.execute(text("SELECT reason, id FROM review_cases"))
    await session.commit()
    return {r.reason: r.id for r in rows}


async def test_review_cases_are_listed_by_reason_with_masked_accounts(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await sample_cases(session, payments_client)
    everything = await payments_client.get("/api/v1/review-cases", headers=OPS)
    assert len(everything.json()["items"]) == 4
    response = await payments_client.get(
        "/api/v1/review-cases",
        params={"reason": "code_suggestion", "status": "open"},
        headers=OPS,
    )
    (case,) = response.json()["items"]
    assert case["suggested_order_no"] == "XD240420140000000555"
    assert case["account_no"] == "3500 **** * 5791"
    assert case["payer_account"] == "4406 **** * 4321"
    page = await payments_client.get("/api/v1/review-cases", params={"limit": 3}, headers=OPS)
    rest = await payments_client.get(
        "/api/v1/review-cases", params={"cursor": page.json()["next_cursor"]}, headers=OPS
    )
    assert len(page.json()["items"]) == 3 and len(rest.json()["items"]) == 1


async def test_allocating_a_suggestion_pays_the_order_and_is_audited(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    cases = await sample_cases(session, payments_client)
    response = await payments_client.post(
        f"/api/v1/review-cases/{cases['code_suggestion']}/resolve",
        json={
            "action": "allocate",
            "order_no": "XD240420140000000555",
            "note": "与买方核实：识别码末位误写",
        },
        headers=OPS,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "allocated"
    order = (await payments_client.get("/api/v1/orders/XD240420140000000555", headers=OPS)).json()
    assert (order["status"], order["paid_amount"]) == ("paid", "7500.00")
    assert order["paid_at"] == "2024-04-29T03:11:11Z"  # when the money arrived (11:11:11 +08:00)
    assert order["timeline"][-1]["actor_sub"] == "ops:wang"
    audit = (
        await session.execute(
            text("SELECT actor_sub, reason FROM audit_log WHERE action = 'review_case.allocate'")
        )
    ).one()
    await session.commit()
    assert audit.actor_sub == "ops:wang" and "末位" in audit.reason

    again = await payments_client.post(
        f"/api/v1/review-cases/{cases['code_suggestion']}/resolve",
        json={"action": "reject", "note": "重复操作"},
        headers=OPS,
    )
    assert again.status_code == 409


async def test_allocation_by_review_follows_the_matcher_rules(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    cases = await sample_cases(session, payments_client)
    paid = await payments_client.post(
        f"/api/v1/review-cases/{cases['order_already_paid']}/resolve",
        json={"action": "allocate", "order_no": "XD240305093000000102", "note": "补差"},
        headers=OPS,
    )
    assert paid.status_code == 409 and paid.json()["code"] == "order_not_open"
    too_much = await payments_client.post(
        f"/api/v1/review-cases/{cases['cash_deposit']}/resolve",
        json={"action": "allocate", "order_no": "XD240420140000000555", "note": "现金"},
        headers=OPS,
    )
    assert too_much.status_code == 200  # 6400.00 of 7500.00: partially paid
    overpay = await payments_client.post(
        f"/api/v1/review-cases/{cases['code_suggestion']}/resolve",
        json={"action": "allocate", "order_no": "XD240420140000000555", "note": "x"},
        headers=OPS,
    )
    assert overpay.status_code == 409 and overpay.json()["code"] == "overpayment"


async def test_rejecting_a_case_leaves_orders_untouched(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    cases = await sample_cases(session, payments_client)
    response = await payments_client.post(
        f"/api/v1/review-cases/{cases['payer_account_invalid']}/resolve",
        json={"action": "reject", "note": "退回付款人"},
        headers=OPS,
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    tx = await payments_client.get(
        f"/api/v1/bank-transactions/{response.json()['bank_transaction_id']}", headers=OPS
    )
    assert tx.json()["outcome"] == "review"
    assert tx.json()["review_case"]["status"] == "rejected"
    assert tx.json()["payer_account"] == "GZ-J **** * 001A"


async def test_review_is_for_operations_staff_only(payments_client: httpx.AsyncClient) -> None:
    response = await payments_client.get("/api/v1/review-cases", headers=auth(Role.PLATFORM))
    assert response.status_code == 403


async def test_payer_names_are_shown_masked_in_review_cases_and_bank_lines(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await sample_cases(session, payments_client)
    response = await payments_client.get(
        "/api/v1/review-cases", params={"reason": "code_suggestion"}, headers=OPS
    )
    (case,) = response.json()["items"]
    assert case["payer_name"] == "江门**医院"  # 江门市某医院
    tx = await payments_client.get(
        f"/api/v1/bank-transactions/{case['bank_transaction_id']}", headers=OPS
    )
    assert tx.json()["payer_name"] == "江门**医院"


async def test_a_retried_resolution_with_its_idempotency_key_gets_the_first_answer(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    cases = await sample_cases(session, payments_client)
    url = f"/api/v1/review-cases/{cases['payer_account_invalid']}/resolve"
    body = {"action": "reject", "note": "退回付款人"}
    headers = {**OPS, "Idempotency-Key": "resolve-1"}
    first = await payments_client.post(url, json=body, headers=headers)
    retry = await payments_client.post(url, json=body, headers=headers)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    audits = await session.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'review_case.reject'")
    )
    assert audits.scalar_one() == 1
    await session.commit()


async def test_two_resolutions_at_once_never_over_allocate_an_order(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    cases = await sample_cases(session, payments_client)
    order_no = "XD240420140000000555"  # 7500.00 outstanding: 6400.00 + 7500.00 do not both fit
    responses = await asyncio.gather(
        *(
            payments_client.post(
                f"/api/v1/review-cases/{cases[reason]}/resolve",
                json={"action": "allocate", "order_no": order_no, "note": "并发"},
                headers=OPS,
            )
            for reason in ("cash_deposit", "code_suggestion")
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    order = (await payments_client.get(f"/api/v1/orders/{order_no}", headers=OPS)).json()
    allocated = sum(Decimal(a["amount"]) for a in order["allocations"])
    assert allocated == Decimal(order["paid_amount"]) <= Decimal(order["amount"])
    assert len(order["allocations"]) == 1


async def test_a_cancellation_racing_a_review_allocation_never_leaves_a_cancelled_order_paid(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    cases = await sample_cases(session, payments_client)
    order_no = "XD240420140000000555"
    cancel, allocate = await asyncio.gather(
        payments_client.post(f"/api/v1/orders/{order_no}/cancel", headers=auth(Role.PLATFORM)),
        payments_client.post(
            f"/api/v1/review-cases/{cases['code_suggestion']}/resolve",
            json={"action": "allocate", "order_no": order_no, "note": "并发"},
            headers=OPS,
        ),
    )
    assert sorted((cancel.status_code, allocate.status_code)) == [200, 409]
    order = (await payments_client.get(f"/api/v1/orders/{order_no}", headers=OPS)).json()
    if order["status"] == "cancelled":
        assert order["paid_amount"] == "0.00" and order["allocations"] == []
    else:
        assert (order["status"], order["paid_amount"]) == ("paid", "7500.00")
