"""The matcher's work list (`match_work`): one item per imported batch naming its pending lines by
id range; matcher batches of any size and buyers' payment confirmations take lines off it, and
no pending line is ever left without an item naming it."""

from __future__ import annotations

import io

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import confirmations_repository as crepo
from services.payments import matching
from services.payments.importer import import_statement
from tests.factories import make_order, make_supplier, make_unit
from tests.payments.helpers import bank_csv

ACCOUNT = "35000188110590001"
OTHER_ACCOUNT = "62220000000000009"  # no settlement account: stored as ignored


async def imported(session: AsyncSession, n: int, batch_size: int = 100) -> list[int]:
    """`n` open orders and a statement paying each (plus strangers), imported in batches of
    `batch_size`; returns the ids of the pending lines."""
    data = await orders_and_file(session, n)
    await import_statement(
        io.BytesIO(data), filename="w.csv", actor_sub="importer:test", batch_size=batch_size
    )
    return await pending_ids(session)


async def orders_and_file(session: AsyncSession, n: int) -> bytes:
    buyer = await make_unit(session)
    supplier, settlement = await make_supplier(session, settlement_account=ACCOUNT)
    rows = []
    for k in range(n):
        await make_order(
            session,
            buyer=buyer,
            supplier=supplier,
            settlement=settlement,
            amount="10.00",
            payment_code=f"wk{k:04d}",
        )
        rows.append({"ref": f"W{k}", "account": ACCOUNT, "amount": "10.00", "remark": f"WK{k:04d}"})
        if k % 4 == 0:  # to an account that is no settlement account: ignored, not listed
            rows.append({"ref": f"X{k}", "account": OTHER_ACCOUNT, "amount": "5.00"})
    await session.commit()
    return bank_csv(rows)


async def work_items(session: AsyncSession) -> list[tuple[int, int, int]]:
    rows = (
        await session.execute(
            text("SELECT first_tx_id, last_tx_id, lines FROM match_work ORDER BY id")
        )
    ).all()
    await session.commit()
    return [(r.first_tx_id, r.last_tx_id, r.lines) for r in rows]


async def pending_ids(session: AsyncSession) -> list[int]:
    rows = (
        await session.execute(
            text("SELECT id FROM bank_transactions WHERE outcome = 'pending' ORDER BY id")
        )
    ).all()
    await session.commit()
    return [r.id for r in rows]


async def assert_every_pending_line_is_listed(session: AsyncSession) -> None:
    rows = (
        await session.execute(
            text(
                """
                SELECT t.id FROM bank_transactions t
                 WHERE t.outcome = 'pending'
                   AND NOT EXISTS (SELECT FROM match_work w
                                    WHERE w.statement_id = t.statement_id
                                      AND t.id BETWEEN w.first_tx_id AND w.last_tx_id)
                """
            )
        )
    ).all()
    await session.commit()
    assert rows == []


async def test_each_imported_batch_lists_its_pending_lines_once(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    data = await orders_and_file(session, 20)
    result = await import_statement(
        io.BytesIO(data), filename="w.csv", actor_sub="importer:test", batch_size=8
    )
    assert result.lines_new == 25 and result.lines_ignored == 5
    items = await work_items(session)
    pending = await pending_ids(session)
    assert len(pending) == 20
    # 25 lines in batches of 8: four batches, each with pending lines, one item each
    assert len(items) == 4
    assert sum(lines for _, _, lines in items) == 20
    assert items[0][0] == pending[0] and items[-1][1] == pending[-1]
    await assert_every_pending_line_is_listed(session)

    # matcher batches smaller than an item: items advance, then go
    first = await matching.match_pending(max_batches=1, batch_size=3)
    assert first.claimed == 3
    after = await work_items(session)
    assert after[0][2] == items[0][2] - 3 and after[0][0] > pending[2]
    await assert_every_pending_line_is_listed(session)
    rest = await matching.match_pending(batch_size=3)
    assert rest.claimed == 17
    assert await work_items(session) == []
    assert await pending_ids(session) == []


async def test_a_buyer_taking_some_lines_leaves_the_rest_listed_and_all_of_them_removes_the_item(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    pending = await imported(session, 6)
    assert await work_items(session) == [(pending[0], pending[-1], 6)]

    taken = await crepo.claim_queued(session, [pending[1], pending[4]])
    await matching.match_claimed_lines(session, taken)
    await session.commit()
    assert taken == [pending[1], pending[4]]
    assert await work_items(session) == [(pending[0], pending[-1], 4)]
    await assert_every_pending_line_is_listed(session)

    # a line no longer pending is not taken twice
    assert await crepo.claim_queued(session, [pending[1]]) == []
    await session.commit()

    left = [i for i in pending if i not in taken]
    again = await crepo.claim_queued(session, left)
    await matching.match_claimed_lines(session, again)
    await session.commit()
    assert again == left
    assert await work_items(session) == []
    assert await pending_ids(session) == []
    outcomes = (
        await session.execute(text("SELECT outcome, count(*) FROM bank_transactions GROUP BY 1"))
    ).all()
    await session.commit()
    assert dict((r[0], r[1]) for r in outcomes) == {"matched": 6, "ignored": 2}


async def test_a_matcher_finds_nothing_left_of_an_item_a_buyer_emptied_ahead_of_its_count(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """The count only sizes batches: an item whose lines are gone is removed when found empty."""
    pending = await imported(session, 3)
    await session.execute(text("UPDATE match_work SET lines = 50"))  # a stale count
    await session.commit()
    result = await matching.match_pending(batch_size=2)
    assert result.claimed == 3
    assert await work_items(session) == []
    assert await pending_ids(session) == []
    assert len(pending) == 3
