"""A bank line is allocated once, whoever asks first: the matcher's batch and buyers confirming at
the same moment (real concurrent transactions on PostgreSQL)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import matching
from shared.auth import Role
from tests.conftest import auth
from tests.factories import make_order, make_unit
from tests.payments.confirmation_helpers import (
    Scenario,
    assert_money_conserved,
    bank_lines,
    confirm,
    line,
    payment,
    scenario,
)
from tests.payments.helpers import store_rows

ORDERS = 8


async def race(client: httpx.AsyncClient, scenarios: list[Scenario]) -> list[httpx.Response]:
    """A matcher run (batches of 3) and every buyer's confirmation, all at once."""
    _, *answers = await asyncio.gather(
        matching.match_pending(batch_size=3),
        *(confirm(client, s, [payment("100.00")]) for s in scenarios),
    )
    return [a for a in answers if isinstance(a, httpx.Response)]


async def allocations_by_line(session: AsyncSession) -> dict[str, list[str]]:
    rows = (
        await session.execute(
            text(
                """
                SELECT t.bank_ref, a.source FROM bank_transactions t
                  LEFT JOIN payment_allocations a ON a.bank_transaction_id = t.id
                 ORDER BY t.bank_ref
                """
            )
        )
    ).all()
    await session.commit()
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r.bank_ref, [])
        if r.source is not None:
            out[r.bank_ref].append(r.source)
    return out


async def test_a_matcher_batch_and_buyers_racing_for_the_same_lines_give_one_allocation(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """Lines without a code, still pending: the buyer's request settles them by the matcher's
    rules first, or waits for the batch that holds them; either way each line is allocated once,
    to the buyer's order, and the buyer gets `matched`."""
    scenarios = [await scenario(session) for _ in range(ORDERS)]
    await store_rows(
        [line(s.settlement.account_no, "100.00", f"R{i}") for i, s in enumerate(scenarios)]
    )
    answers = await race(payments_client, scenarios)
    for answer in answers:
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "matched"
        assert answer.json()["order"]["status"] == "paid"
    assert await allocations_by_line(session) == {f"R{i}": ["self_service"] for i in range(ORDERS)}
    await assert_money_conserved(session)


async def test_a_line_the_matcher_allocates_by_code_is_never_claimed_by_the_buyer(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    scenarios = [await scenario(session) for _ in range(ORDERS)]
    await store_rows(
        [
            line(s.settlement.account_no, "100.00", f"C{i}", remark=s.order.payment_code)
            for i, s in enumerate(scenarios)
        ]
    )
    answers = await race(payments_client, scenarios)
    for answer in answers:  # paid by its code before the buyer's request could take the line
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "order_not_open"
    assert await allocations_by_line(session) == {f"C{i}": ["auto"] for i in range(ORDERS)}
    await assert_money_conserved(session)


async def test_two_buyers_claiming_one_line_one_gets_it(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """Two orders of one supplier, same amount, one line: matched once, the other not found."""
    s = await scenario(session)
    rival_buyer = await make_unit(session)
    rival = await make_order(
        session,
        buyer=rival_buyer,
        supplier=s.supplier,
        settlement=s.settlement,
        amount="100.00",
        payment_code="r1v4l0",
    )
    await session.commit()
    await bank_lines([line(s.settlement.account_no, "100.00", "ONE")], session)
    body = {"account_id": s.settlement.id, "payments": [payment("100.00")]}
    first, second = await asyncio.gather(
        confirm(payments_client, s, [payment("100.00")]),
        payments_client.post(
            f"/api/v1/orders/{rival.order_no}/payment-confirmations",
            json=body,
            headers=auth(Role.UNIT, rival_buyer.id),
        ),
    )
    assert first.status_code == second.status_code == 201
    assert sorted([first.json()["status"], second.json()["status"]]) == ["matched", "not_found"]
    assert await allocations_by_line(session) == {"ONE": ["self_service"]}
    await assert_money_conserved(session)
