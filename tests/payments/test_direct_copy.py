"""The import's direct COPY (issue #14): a native batch whose lines are all new is COPYed straight
into `bank_transactions`, classified by Arrow. It must store exactly what the `INSERT ... ON
CONFLICT` path stores (values cut to the same widths, the same outcome, reason and processing
time, the same work item for the matcher), and give way to that path when a line is already
stored (then for the rest of the file) or a key repeats within the batch (that batch only)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository
from services.payments.importer import ImportResult, import_statement
from services.payments.parsers.native import SCHEMA
from tests.factories import make_supplier
from tests.payments.helpers import bank_csv, importing_statement

ACCOUNT = "35000188110599071"
OTHER = "62220000000071"  # the supplier's, but not its settlement account
AT = datetime(2024, 4, 1, 10, 0, tzinfo=UTC)


def _row(i: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "line_no": i + 2,
        "dedupe_key": f"ref:{i}",
        "bank_ref": f"R{i}",
        "account_no": ACCOUNT,
        "direction": "credit",
        "amount": Decimal("10.00"),
        "currency": "CNY",
        "booked_at": AT,
        "value_date": date(2024, 4, 1),
        "payer_name": "采购单位",
        "payer_account": "6222020200001234567",
        "payer_bank": "中国工商银行",
        "remark": "k7m2qp",
        "channel": "online",
    }
    row.update(values)
    return row


# every classification, null and over-long values (cut to the columns' widths)
CASES = [
    _row(0),
    _row(1, direction="debit"),
    _row(2, amount=Decimal("0.00")),
    _row(3, amount=Decimal("-5.00")),
    _row(4, currency="USD"),
    _row(5, currency=None),
    _row(6, currency="CNYX"),
    _row(7, account_no=OTHER),
    _row(8, account_no="99999999"),
    _row(9, account_no=ACCOUNT + "0" * 30),
    _row(10, payer_name="名" * 250, bank_ref="B" * 150, payer_account="6" * 70),
    _row(11, payer_bank="行" * 230, channel="渠" * 40, dedupe_key="k" * 230),
    _row(12, booked_at=None, value_date=None, remark=None, channel=None, payer_name=None),
    _row(13, direction="debit", amount=Decimal("0.00"), currency="USD", account_no="1"),
    _row(14, amount=Decimal("0.01"), remark="付货款 K7M2QP"),
]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


async def _lines(session: AsyncSession) -> list[tuple[Any, ...]]:
    rows = await session.execute(
        text(
            """
            SELECT dedupe_key, bank_ref, account_no, direction, amount, currency, booked_at,
                   value_date, payer_name, payer_account, payer_bank, remark, channel, outcome,
                   reason, processed_at IS NOT NULL, processed_at = created_at
              FROM bank_transactions ORDER BY id
            """
        )
    )
    return [tuple(r) for r in rows]


async def _work(session: AsyncSession) -> tuple[int, int, int]:
    """(items, lines they count, pending lines their ranges name)."""
    row = (
        await session.execute(
            text(
                """
                SELECT (SELECT count(*) FROM match_work),
                       (SELECT coalesce(sum(lines), 0) FROM match_work),
                       (SELECT count(*) FROM bank_transactions t
                         WHERE t.outcome = 'pending' AND EXISTS (
                               SELECT FROM match_work w
                                WHERE w.statement_id = t.statement_id
                                  AND t.id BETWEEN w.first_tx_id AND w.last_tx_id))
                """
            )
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def _forget(session: AsyncSession) -> None:
    await session.execute(
        text("TRUNCATE match_work, statement_duplicates, bank_transactions CASCADE")
    )
    await session.commit()


def _credits(prefix: str, n: int) -> list[dict[str, str]]:
    """`n` rows for `bank_csv`: credits to the settlement account, refs `{prefix}0`..."""
    return [
        {"ref": f"{prefix}{i}", "account": ACCOUNT, "amount": "10", "remark": "k7m2qp"}
        for i in range(n)
    ]


async def _import(rows: list[dict[str, str]]) -> ImportResult:
    """Import `rows` as a native CSV file, in batches of 5 lines."""
    return await import_statement(
        io.BytesIO(bank_csv(rows)), filename="lines.csv", actor_sub="importer:test", batch_size=5
    )


class Spy:
    """Counts the direct COPYs tried and the batches they stored."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tried = 0
        self.stored = 0
        real = repository._copy_direct

        async def spy(*args: Any) -> Any:
            self.tried += 1
            result = await real(*args)
            self.stored += result[0] is not None
            return result

        monkeypatch.setattr(repository, "_copy_direct", spy)


async def test_the_direct_copy_stores_what_the_insert_path_stores(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_supplier(session, settlement_account=ACCOUNT, other_accounts=(OTHER,))
    await session.commit()
    spy = Spy(monkeypatch)
    seen = {}
    for direct in (True, False):
        statement_id = await importing_statement(session)
        stored = await repository.store_statement_lines(
            session, statement_id, _table(CASES), direct=direct
        )
        await session.commit()
        seen[direct] = (stored.new, stored.ignored, await _lines(session), await _work(session))
        await session.commit()
        await _forget(session)
    assert (spy.tried, spy.stored) == (1, 1)
    assert seen[True] == seen[False]
    new, ignored, lines, work = seen[True]
    reasons = {line[1]: (line[13], line[14], line[15]) for line in lines}
    assert (new, ignored) == (15, 9)
    assert reasons["R0"] == ("pending", None, False)
    assert reasons["R1"] == ("ignored", "debit", True)
    assert reasons["R3"] == ("ignored", "zero_amount", True)
    assert reasons["R5"] == ("pending", None, False)
    assert reasons["R6"] == ("ignored", "not_cny", True)
    assert reasons["R7"] == ("ignored", "not_settlement_account", True)
    assert reasons["R13"] == ("ignored", "debit", True)
    assert len(lines[10][8]) == 200 and len(lines[10][1]) == 100 and len(lines[10][9]) == 60
    assert all(line[16] for line in lines if line[15])  # processed in the importing transaction
    assert work == (1, 6, 6)  # one item naming the six pending lines


async def test_a_line_already_stored_turns_the_rest_of_the_file_to_the_insert_path(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_supplier(session, settlement_account=ACCOUNT)
    await session.commit()
    rows = _credits("D", 15)
    spy = Spy(monkeypatch)
    first = await _import(rows[:10])
    assert (first.lines_new, spy.tried, spy.stored) == (10, 2, 2)
    # the bank's next file repeats five lines: the first batch meets them (rolled back to the
    # savepoint, stored by INSERT ... ON CONFLICT), the next batch is not tried directly
    second = await _import(rows[5:])
    assert (second.lines_new, second.lines_duplicate) == (5, 5)
    assert (spy.tried, spy.stored) == (3, 2)
    duplicates = (
        await session.execute(
            text("SELECT sum(lines) FROM statement_duplicates WHERE statement_id = :s"),
            {"s": second.statement_id},
        )
    ).scalar_one()
    count = (await session.execute(text("SELECT count(*) FROM bank_transactions"))).scalar_one()
    assert (duplicates, count) == (5, 15)
    assert await _work(session) == (3, 15, 15)


async def test_a_key_repeated_within_a_batch_sends_that_batch_only_to_the_insert_path(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_supplier(session, settlement_account=ACCOUNT)
    await session.commit()
    rows = _credits("E", 10)
    rows[3] = rows[1]  # the same line twice in the first batch
    spy = Spy(monkeypatch)
    result = await _import(rows)
    assert (result.lines_new, result.lines_duplicate) == (9, 1)
    assert (spy.tried, spy.stored) == (2, 1)
    assert await _work(session) == (2, 9, 9)
