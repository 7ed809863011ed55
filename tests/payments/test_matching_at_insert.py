"""Bare lines written once (issue #14): the import settles a bare line (a transfer from a plain
account whose remark is just the code) in the statement that inserts it, with the matcher's
result, unless a line that came before it and is still undecided names the same order."""

from __future__ import annotations

import io

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import matching
from services.payments.importer import import_statement
from shared.models import Order, OrderStatus
from tests.payments.helpers import bank_csv, open_order, outcome_of, store_rows

ACCOUNT = "35000188110599001"


async def queued(session: AsyncSession) -> dict[str, list[str] | None]:
    rows = await session.execute(
        text(
            "SELECT t.bank_ref, q.codes FROM match_queue q "
            "JOIN bank_transactions t ON t.id = q.bank_transaction_id"
        )
    )
    await session.commit()
    return {r.bank_ref: r.codes for r in rows}


async def allocations(session: AsyncSession) -> list[tuple[str, str, str, str]]:
    rows = await session.execute(
        text(
            "SELECT t.bank_ref, a.amount::text, a.source, a.actor_sub FROM payment_allocations a "
            "JOIN bank_transactions t ON t.id = a.bank_transaction_id ORDER BY t.bank_ref"
        )
    )
    await session.commit()
    return [tuple(r) for r in rows]


async def order_state(session: AsyncSession, order: Order) -> tuple[str, str, str | None]:
    row = (
        await session.execute(
            text("SELECT status, paid_amount::text, paid_at FROM orders WHERE id = :id"),
            {"id": order.id},
        )
    ).one()
    await session.commit()
    return row.status, row.paid_amount, row.paid_at.isoformat() if row.paid_at else None


async def test_a_bare_line_is_stored_settled_with_its_allocation_and_never_queued(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    order = await open_order(session, account=ACCOUNT, code="fa4xy2", amount="1000.00")
    await session.commit()
    await store_rows([{"ref": "R1", "account": ACCOUNT, "amount": "300", "remark": "FA4XY2"}])
    assert await outcome_of(session, "R1") == ("partial", None)
    assert await queued(session) == {}
    assert await allocations(session) == [("R1", "300.00", "auto", "system:matcher")]
    assert await order_state(session, order) == ("partially_paid", "300.00", None)

    await store_rows(
        [
            {
                "ref": "R2",
                "account": ACCOUNT,
                "amount": "700",
                "remark": "fa4xy2",
                "at": "2024-04-02 09:30:00",
            }
        ]
    )
    assert await outcome_of(session, "R2") == ("matched", None)
    assert await order_state(session, order) == ("paid", "1000.00", "2024-04-02T01:30:00+00:00")
    # nothing is left for the matcher
    assert (await matching.match_pending()).claimed == 0
    processed = (
        await session.execute(
            text("SELECT count(*) FROM bank_transactions WHERE processed_at IS NULL")
        )
    ).scalar_one()
    await session.commit()
    assert processed == 0


async def test_lines_needing_the_rules_are_queued_with_their_code_candidates(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await open_order(session, account=ACCOUNT, code="fa4xy2", amount="1000.00")
    await session.commit()
    await store_rows(
        [
            {"ref": "MESSY", "account": ACCOUNT, "amount": "10", "remark": "付款 ＦＡ４ ＸＹ２"},
            {"ref": "UNKNOWN", "account": ACCOUNT, "amount": "10", "remark": "zz9zz9"},
            {
                "ref": "CASH",
                "account": ACCOUNT,
                "amount": "10",
                "remark": "AB12CD",
                "channel": "cash",
            },
            {"ref": "NOCODE", "account": ACCOUNT, "amount": "10", "remark": "货款"},
            {"ref": "TOO-MUCH", "account": ACCOUNT, "amount": "5000", "remark": "k7m2qp"},
        ]
    )
    assert await queued(session) == {
        "MESSY": ["fa4xy2"],
        "UNKNOWN": ["zz9zz9"],
        "CASH": ["ab12cd"],
        "NOCODE": [],
        "TOO-MUCH": ["k7m2qp"],
    }


async def test_a_bare_line_waits_for_an_earlier_queued_line_naming_the_same_order(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """The messy line of the first import is still undecided when the bare line of the second
    import arrives: the bare line is queued behind it, and booking order decides as ever."""
    order = await open_order(session, account=ACCOUNT, code="fa4xy2", amount="1000.00")
    await session.commit()
    await store_rows(
        [
            {
                "ref": "R1",
                "account": ACCOUNT,
                "amount": "600",
                "remark": "付款 FA4XY2",
                "at": "2024-04-01 10:00:00",
            }
        ]
    )
    await store_rows(
        [
            {
                "ref": "R2",
                "account": ACCOUNT,
                "amount": "600",
                "remark": "fa4xy2",
                "at": "2024-04-01 10:05:00",
            }
        ]
    )
    assert await outcome_of(session, "R2") == ("pending", None)
    assert set(await queued(session)) == {"R1", "R2"}
    await matching.match_pending()
    assert await outcome_of(session, "R1") == ("partial", None)
    assert await outcome_of(session, "R2") == ("review", "overpayment")
    assert await order_state(session, order) == ("partially_paid", "600.00", None)


async def test_a_queued_line_of_unknown_codes_stops_settling_at_insert(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """A line queued before the codes were recorded (NULL) might name any order: until the
    matcher has taken it, bare lines are queued too."""
    await open_order(session, account=ACCOUNT, code="fa4xy2", amount="1000.00")
    await session.commit()
    await store_rows([{"ref": "OLD", "account": ACCOUNT, "amount": "10", "remark": "付款 x"}])
    await session.execute(text("UPDATE match_queue SET codes = NULL"))
    await session.commit()
    await store_rows([{"ref": "R1", "account": ACCOUNT, "amount": "300", "remark": "fa4xy2"}])
    assert await outcome_of(session, "R1") == ("pending", None)
    await matching.match_pending()
    assert await outcome_of(session, "R1") == ("partial", None)
    await store_rows([{"ref": "R2", "account": ACCOUNT, "amount": "300", "remark": "fa4xy2"}])
    assert await outcome_of(session, "R2") == ("partial", None)  # settled at insert again


async def test_reimporting_a_settled_bare_line_changes_nothing(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    order = await open_order(session, account=ACCOUNT, code="fa4xy2", amount="1000.00")
    await session.commit()
    content = bank_csv([{"ref": "R1", "account": ACCOUNT, "amount": "400", "remark": "fa4xy2"}])
    first = await import_statement(io.BytesIO(content), filename="a.csv", actor_sub="test")
    assert (first.lines_new, first.lines_duplicate) == (1, 0)
    assert await outcome_of(session, "R1") == ("partial", None)
    again = await import_statement(io.BytesIO(content), filename="a.csv", actor_sub="test")
    assert (again.lines_new, again.lines_duplicate) == (0, 1)
    twice = bank_csv([{"ref": "R1", "account": ACCOUNT, "amount": "400", "remark": "fa4xy2"}] * 2)
    third = await import_statement(io.BytesIO(twice), filename="b.csv", actor_sub="test")
    assert (third.lines_new, third.lines_duplicate) == (0, 2)
    assert await queued(session) == {}
    assert await allocations(session) == [("R1", "400.00", "auto", "system:matcher")]
    assert await order_state(session, order) == ("partially_paid", "400.00", None)


async def test_bare_lines_the_rules_would_not_allocate_go_to_the_matcher(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await open_order(session, account=ACCOUNT, code="fa4xy2", amount="1000.00")
    paid = await open_order(session, account="35000188110599002", code="pd1pd1", amount="5.00")
    paid.status = OrderStatus.PAID
    await session.commit()
    other = "35000188110599002"
    for row in (
        {"ref": "WRONG-ACCOUNT", "account": other, "amount": "1", "remark": "FA4XY2"},
        {"ref": "OVER", "account": ACCOUNT, "amount": "1500", "remark": "fa4xy2"},
        {"ref": "PAID", "account": other, "amount": "5", "remark": "pd1pd1"},
        {"ref": "UNKNOWN", "account": ACCOUNT, "amount": "1", "remark": "x1y2z3"},
    ):
        await store_rows([row])  # one line per import: each alone in its batch
    assert set(await queued(session)) == {"OVER", "PAID", "WRONG-ACCOUNT", "UNKNOWN"}
    await matching.match_pending()
    assert await outcome_of(session, "OVER") == ("review", "overpayment")
    assert await outcome_of(session, "PAID") == ("review", "order_already_paid")
    assert await outcome_of(session, "WRONG-ACCOUNT") == ("review", "payee_not_settlement_account")
    assert await outcome_of(session, "UNKNOWN") == ("unmatched", "no_known_code")
