"""Every query of the payments service. Functions flush; they never commit.

Bulk work (statement import, matching) is set-based: one statement per batch, arrays passed with
`unnest`, never a query per line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.parsers.models import LINE_COLUMNS
from shared.models.orgs import OrgUnit
from shared.models.payments import (
    BankTransaction,
    Order,
    OrderEvent,
    PaymentAllocation,
    ReviewCase,
    ReviewReason,
    ReviewStatus,
    Statement,
    Supplier,
    SupplierAccount,
)

# ----------------------------------------------------------------------------- suppliers


async def add_supplier(
    session: AsyncSession, name: str, accounts: Sequence[dict[str, Any]]
) -> tuple[Supplier, list[SupplierAccount]]:
    supplier = Supplier(name=name)
    session.add(supplier)
    await session.flush()
    rows = [SupplierAccount(supplier_id=supplier.id, **a) for a in accounts]
    session.add_all(rows)
    await session.flush()
    return supplier, rows


async def get_supplier(session: AsyncSession, supplier_id: int) -> Supplier | None:
    return await session.get(Supplier, supplier_id)


async def supplier_accounts(session: AsyncSession, supplier_id: int) -> list[SupplierAccount]:
    stmt = (
        select(SupplierAccount)
        .where(SupplierAccount.supplier_id == supplier_id)
        .order_by(SupplierAccount.id)
    )
    return list((await session.execute(stmt)).scalars())


async def existing_account_nos(session: AsyncSession, account_nos: Sequence[str]) -> list[str]:
    stmt = select(SupplierAccount.account_no).where(SupplierAccount.account_no.in_(account_nos))
    return list((await session.execute(stmt)).scalars())


async def get_account(session: AsyncSession, account_id: int) -> SupplierAccount | None:
    return await session.get(SupplierAccount, account_id)


# ----------------------------------------------------------------------------- orders


async def get_order_by_no(
    session: AsyncSession, order_no: str, *, for_update: bool = False
) -> Order | None:
    stmt = select(Order).where(Order.order_no == order_no)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_order(session: AsyncSession, order_id: int) -> Order | None:
    return await session.get(Order, order_id)


async def add_order(session: AsyncSession, order: Order) -> None:
    """Insert inside a SAVEPOINT, so a unique violation (order number, open code) leaves the
    surrounding transaction usable; the caller catches `IntegrityError`."""
    async with session.begin_nested():
        session.add(order)
        await session.flush()


async def add_order_event(session: AsyncSession, event: OrderEvent) -> None:
    session.add(event)
    await session.flush()


async def order_allocations(session: AsyncSession, order_id: int) -> list[PaymentAllocation]:
    stmt = (
        select(PaymentAllocation)
        .where(PaymentAllocation.order_id == order_id)
        .order_by(PaymentAllocation.id)
    )
    return list((await session.execute(stmt)).scalars())


async def order_events(session: AsyncSession, order_id: int) -> list[OrderEvent]:
    stmt = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
    return list((await session.execute(stmt)).scalars())


async def order_nos(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, str]:
    if not order_ids:
        return {}
    stmt = select(Order.id, Order.order_no).where(Order.id.in_(order_ids))
    return {r.id: r.order_no for r in await session.execute(stmt)}


# ----------------------------------------------------------------------------- statements


async def add_statement(session: AsyncSession, statement: Statement) -> Statement:
    session.add(statement)
    await session.flush()
    return statement


async def get_statement(session: AsyncSession, statement_id: int) -> Statement | None:
    return await session.get(Statement, statement_id)


async def update_statement(session: AsyncSession, statement_id: int, **values: Any) -> None:
    await session.execute(update(Statement).where(Statement.id == statement_id).values(**values))


async def add_statement_counts(
    session: AsyncSession,
    statement_id: int,
    *,
    total: int,
    new: int,
    ignored: int,
    credit: Decimal = Decimal(0),
) -> None:
    await session.execute(
        update(Statement)
        .where(Statement.id == statement_id)
        .values(
            lines_total=Statement.lines_total + total,
            lines_new=Statement.lines_new + new,
            lines_duplicate=Statement.lines_duplicate + (total - new),
            lines_ignored=Statement.lines_ignored + ignored,
            credit_total=Statement.credit_total + credit,
            heartbeat_at=func.now(),
        )
    )


_CREDIT_AMOUNTS = text(
    """
    SELECT outcome, sum(amount) FROM (
        SELECT t.outcome, t.amount FROM bank_transactions t
         WHERE t.statement_id = :statement_id AND t.direction = 'credit'
        UNION ALL
        SELECT t.outcome, t.amount * d.lines FROM statement_duplicates d
          JOIN bank_transactions t ON t.id = d.bank_transaction_id
         WHERE d.statement_id = :statement_id AND t.direction = 'credit'
    ) lines GROUP BY outcome
    """
)


async def credit_amounts(session: AsyncSession, statement_id: int) -> dict[str, Decimal]:
    """The credit lines of a statement's file by their outcome today, amounts summed: its own
    lines, plus the lines it repeated (duplicates), at the outcome of the stored line."""
    rows = await session.execute(_CREDIT_AMOUNTS, {"statement_id": statement_id})
    return {str(outcome): Decimal(total) for outcome, total in rows}


_FAIL_STALE_IMPORTS = text(
    """
    UPDATE statements
       SET status = 'failed', finished_at = now(),
           error = '导入中断（超过租约时间未完成），请重新导入；已保存的流水不会重复'
     WHERE status = 'importing'
       AND coalesce(heartbeat_at, created_at) < now() - make_interval(secs => :lease)
    RETURNING id
    """
)


async def fail_stale_imports(session: AsyncSession, lease_seconds: float) -> list[int]:
    """Statements left `importing` (a crashed importer) whose last batch is older than the lease:
    marked failed; returns their ids."""
    rows = await session.execute(_FAIL_STALE_IMPORTS, {"lease": lease_seconds})
    return [int(r[0]) for r in rows]


async def outcome_counts(session: AsyncSession, statement_id: int) -> dict[str, int]:
    stmt = (
        select(BankTransaction.outcome, func.count())
        .where(BankTransaction.statement_id == statement_id)
        .group_by(BankTransaction.outcome)
    )
    return {str(outcome): int(n) for outcome, n in await session.execute(stmt)}


IMPORT_COLUMNS = LINE_COLUMNS

_CREATE_IMPORT_TABLE = """
CREATE TEMP TABLE import_lines (
    line_no integer, dedupe_key text, bank_ref text, account_no text, direction text,
    amount numeric(16,2), currency text, booked_at timestamptz, value_date date,
    payer_name text, payer_account text, payer_bank text, remark text, channel text
) ON COMMIT DROP
"""

# the widths a line's values are cut to, by both import paths (`left(x, n)` in `_INSERT_IMPORTED`,
# Arrow in `_direct_csv`): the ledger columns' own lengths
_WIDTHS = {
    column.name: column.type.length
    for column in BankTransaction.__table__.columns
    if column.name in LINE_COLUMNS and isinstance(column.type, String) and column.type.length
}

# Classification at insert: a debit, a zero amount, another currency, or a credit to an account
# that is no known settlement account is stored as `ignored` (never matched); else `pending`.
_INSERT_IMPORTED = text(
    f"""
    WITH ins AS (
        INSERT INTO bank_transactions (
            statement_id, dedupe_key, bank_ref, account_no, direction, amount, currency,
            booked_at, value_date, payer_name, payer_account, payer_bank, remark, channel,
            outcome, reason, processed_at)
        SELECT CAST(:statement_id AS bigint),
               left(l.dedupe_key, {_WIDTHS["dedupe_key"]}), left(l.bank_ref, {_WIDTHS["bank_ref"]}),
               left(l.account_no, {_WIDTHS["account_no"]}), l.direction, l.amount,
               left(coalesce(l.currency, 'CNY'), {_WIDTHS["currency"]}),
               l.booked_at, l.value_date, left(l.payer_name, {_WIDTHS["payer_name"]}),
               left(l.payer_account, {_WIDTHS["payer_account"]}),
               left(l.payer_bank, {_WIDTHS["payer_bank"]}), l.remark,
               left(l.channel, {_WIDTHS["channel"]}),
               c.outcome, c.reason, CASE WHEN c.outcome = 'ignored' THEN now() END
          FROM import_lines l
          LEFT JOIN supplier_accounts sa ON sa.account_no = l.account_no AND sa.is_settlement
          CROSS JOIN LATERAL (
              SELECT CASE WHEN l.direction <> 'credit' THEN 'debit'
                          WHEN l.amount <= 0 THEN 'zero_amount'
                          WHEN coalesce(l.currency, 'CNY') <> 'CNY' THEN 'not_cny'
                          WHEN sa.id IS NULL THEN 'not_settlement_account' END AS reason
          ) r
          CROSS JOIN LATERAL (
              SELECT CASE WHEN r.reason IS NULL THEN 'pending' ELSE 'ignored' END AS outcome,
                     r.reason
          ) c
         ORDER BY l.line_no
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id, outcome, dedupe_key
    ), queued AS (
        -- the batch's pending lines, for the matcher: one work item naming them by id range
        INSERT INTO match_work (statement_id, first_tx_id, last_tx_id, lines)
        SELECT CAST(:statement_id AS bigint), min(id), max(id), count(*)
          FROM ins WHERE outcome = 'pending'
        HAVING count(*) > 0
    ), dups AS (
        -- every line not inserted is a copy of a stored line: remember which (the statement's
        -- credits are then all accounted for); `b` is the snapshot before `ins`
        INSERT INTO statement_duplicates (statement_id, bank_transaction_id, lines)
        SELECT CAST(:statement_id AS bigint), coalesce(i.id, b.id),
               g.n - CASE WHEN i.id IS NULL THEN 0 ELSE 1 END
          FROM (SELECT dedupe_key, count(*) AS n FROM import_lines GROUP BY dedupe_key) g
          LEFT JOIN ins i ON i.dedupe_key = g.dedupe_key
          -- the stored line is looked up only for a key not inserted now (a one-time filter:
          -- no index probe for the new lines, nearly all of them)
          LEFT JOIN LATERAL (
              SELECT b.id FROM bank_transactions b
               WHERE i.id IS NULL AND b.dedupe_key = g.dedupe_key
          ) b ON true
         WHERE coalesce(i.id, b.id) IS NOT NULL
           AND g.n - CASE WHEN i.id IS NULL THEN 0 ELSE 1 END > 0
        ON CONFLICT (statement_id, bank_transaction_id)
        DO UPDATE SET lines = statement_duplicates.lines + EXCLUDED.lines
    )
    SELECT count(*) AS new, count(*) FILTER (WHERE outcome = 'ignored') AS ignored FROM ins
    """
)


@dataclass(slots=True)
class StoredBatch:
    """What one batch added: new lines, of which ignored; `conflict` when the direct COPY met a
    line already stored (the batch then went through the INSERT path, and so should the rest of
    the file)."""

    new: int
    ignored: int
    conflict: bool = False


async def store_statement_lines(
    session: AsyncSession,
    statement_id: int,
    records: Sequence[tuple[Any, ...]] | Any,
    *,
    direct: bool = False,
) -> StoredBatch:
    """Store one batch. `records` are tuples of `IMPORT_COLUMNS`, or an Arrow table of them (the
    native CSV path).

    With `direct` (an Arrow table only), the batch is COPYed straight into `bank_transactions`
    with its classification computed by Arrow (`_direct_csv`): each line is written once, with
    no temporary table and no `INSERT ... SELECT` (issue #14). That path only holds when every
    line is new: a batch repeating a dedupe key goes through the INSERT path, and so does one
    whose COPY meets a stored line (a unique violation: the COPY is rolled back to a savepoint,
    and `conflict` tells the importer to use the INSERT path from then on).

    Otherwise the batch is COPYed into a temporary table and inserted with one `INSERT ...
    SELECT ... ON CONFLICT (dedupe_key) DO NOTHING` (`_INSERT_IMPORTED`), which also records the
    duplicates. Both give the same rows, outcomes and work item (the differential tests)."""
    connection = await session.connection()
    driver = await _driver(session)
    conflict = False
    if direct and not isinstance(records, Sequence) and len(records):
        stored, conflict = await _copy_direct(driver, statement_id, records)
        if stored is not None:
            return stored
    await connection.exec_driver_sql(_CREATE_IMPORT_TABLE)
    if isinstance(records, Sequence):
        await driver.copy_records_to_table("import_lines", records=records, columns=IMPORT_COLUMNS)
    else:
        source = await asyncio.to_thread(_csv_bytes, records)  # native, off the event loop
        await driver.copy_to_table(
            "import_lines", source=source, columns=IMPORT_COLUMNS, format="csv"
        )
    row = (await session.execute(_INSERT_IMPORTED, {"statement_id": statement_id})).one()
    await connection.exec_driver_sql("DROP TABLE import_lines")
    return StoredBatch(int(row.new), int(row.ignored), conflict)


# the direct COPY's columns
_DIRECT_COLUMNS = ("statement_id", *LINE_COLUMNS[1:], "outcome", "reason", "processed_at")

# before the direct COPY: a sequence value below every id the COPY draws (the work item's range
# starts after it), the transaction's now() (`processed_at` of ignored lines, as in
# `_INSERT_IMPORTED`), and which of the batch's receiving accounts are settlement accounts
_BEFORE_DIRECT = """
    SELECT nextval(pg_get_serial_sequence('bank_transactions', 'id')) AS before,
           now()::text AS now,
           ARRAY(SELECT DISTINCT account_no FROM supplier_accounts
                  WHERE is_settlement AND account_no = ANY($1::text[])) AS settlement
"""

_DIRECT_WORK = """
    INSERT INTO match_work (statement_id, first_tx_id, last_tx_id, lines)
    VALUES ($1, $2, currval(pg_get_serial_sequence('bank_transactions', 'id')), $3)
"""


async def _copy_direct(
    driver: Any, statement_id: int, table: Any
) -> tuple[StoredBatch | None, bool]:
    """COPY an Arrow batch straight into `bank_transactions` (see `store_statement_lines`).
    Returns (what was stored, False), or (None, conflict) when the batch must go through the
    INSERT path (nothing written): a key repeated within the batch, or (conflict) a line already
    stored."""
    import asyncpg

    accounts = await asyncio.to_thread(_direct_accounts, table)
    if accounts is None:  # a dedupe key repeated within the batch
        return None, False
    before = await driver.fetchrow(_BEFORE_DIRECT, accounts)
    source, ignored = await asyncio.to_thread(
        _direct_csv, table, statement_id, before["settlement"], before["now"]
    )
    await driver.execute("SAVEPOINT import_direct")
    try:
        await driver.copy_to_table(
            "bank_transactions", source=source, columns=_DIRECT_COLUMNS, format="csv"
        )
    except asyncpg.UniqueViolationError:
        await driver.execute("ROLLBACK TO SAVEPOINT import_direct")
        return None, True
    await driver.execute("RELEASE SAVEPOINT import_direct")
    pending = len(table) - ignored
    if pending:
        await driver.execute(_DIRECT_WORK, statement_id, before["before"] + 1, pending)
    return StoredBatch(len(table), ignored), False


def _direct_accounts(table: Any) -> list[str] | None:
    """The batch's distinct receiving accounts, or None when a dedupe key repeats in it."""
    import pyarrow.compute as pc

    keys = pc.utf8_slice_codeunits(table["dedupe_key"], 0, _WIDTHS["dedupe_key"])
    if pc.count_distinct(keys, mode="all").as_py() != len(table):
        return None
    return [a for a in pc.unique(table["account_no"]).to_pylist() if a is not None]


def _direct_csv(table: Any, statement_id: int, settlement: Sequence[str], now: str) -> Any:
    """The batch as CSV rows of `_DIRECT_COLUMNS`, classified exactly as `_INSERT_IMPORTED`
    does; returns (CSV bytes, ignored lines)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(table)
    currency = pc.fill_null(table["currency"], "CNY")
    settled = pc.is_in(table["account_no"], value_set=pa.array(list(settlement), pa.string()))
    # the first reason that holds, in `_INSERT_IMPORTED`'s order (a null test holds for none)
    reason = pc.case_when(
        pc.make_struct(
            pc.not_equal(table["direction"], "credit"),
            pc.less_equal(table["amount"], 0),
            pc.not_equal(currency, "CNY"),
            pc.invert(settled),
        ),
        "debit",
        "zero_amount",
        "not_cny",
        "not_settlement_account",
    )
    pending = pc.is_null(reason)
    ignored = n - pc.sum(pending.cast(pa.int64())).as_py()
    null_text = pa.scalar(None, pa.string())
    columns: dict[str, Any] = {"statement_id": pa.repeat(pa.scalar(statement_id, pa.int64()), n)}
    for name in LINE_COLUMNS[1:]:  # the parsed values, as `_INSERT_IMPORTED` stores them
        column = currency if name == "currency" else table[name]
        if name in _WIDTHS:
            column = pc.utf8_slice_codeunits(column, 0, _WIDTHS[name])
        columns[name] = column
    columns["outcome"] = pc.if_else(pending, "pending", "ignored")
    columns["reason"] = reason
    columns["processed_at"] = pc.if_else(pending, null_text, now)
    batch = pa.table(columns)
    return _csv_bytes(batch, _DIRECT_COLUMNS), ignored


def _csv_bytes(table: Any, columns: Sequence[str] = IMPORT_COLUMNS) -> Any:
    """An Arrow table of `columns` as CSV for COPY: nulls unquoted and empty (NULL), strings
    quoted, timestamps in UTC (`+00`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    assert tuple(table.column_names) == tuple(columns)
    # Arrow formats a zoned timestamp 25x slower than a naive one: UTC written as naive + "+00"
    index = list(columns).index("booked_at")
    utc = pc.cast(pc.cast(table.column(index), pa.timestamp("us")), pa.string())
    table = table.set_column(index, "booked_at", pc.binary_join_element_wise(utc, "+00", ""))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    return memoryview(sink.getvalue())


# ----------------------------------------------------------------------------- matching

OPEN = "('pending_payment', 'partially_paid')"

# The matcher's work list (`match_work`) names the pending lines of each imported batch by id
# range. Claiming locks work items one at a time (`FOR UPDATE SKIP LOCKED`, in id order: other
# workers skip them) until they name the batch's size in lines, then one statement takes that
# many pending lines of their ranges in id order and deletes the items it exhausted or moves an
# item's first id past the lines it took; all of it commits with the outcomes (a failed batch
# rolls back and its work stays listed). An item is exhausted when fewer pending lines were
# found than asked for (none left) or its last line was taken: the count `lines` sizes batches
# and feeds the metric, it never decides that lines are left behind. The line itself is not
# locked: nothing else writes a pending line but a buyer's payment confirmation, which first
# locks the line's work item (`confirmations_repository.claim_queued`).
# The claim also sorts the batch: "bare" lines (a transfer from a plain account number whose
# remark is nothing but six letters or digits, the usual case) are decided by SQL alone
# (`decide_bare_lines`); the others are read into Python (`lines_by_ids`).
# asyncpg directly (positional records, no SQLAlchemy row objects): thousands of rows a batch
MAX_WORK_ITEMS_PER_BATCH = 256

_LOCK_NEXT_WORK = """
    SELECT id, lines FROM match_work WHERE id > $1 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
"""

_CLAIM_PENDING = """
    WITH work AS MATERIALIZED (
        SELECT m.id, m.statement_id, m.first_tx_id, m.last_tx_id, w.take
          FROM unnest($1::bigint[], $2::bigint[]) AS w(id, take)
          JOIN match_work m ON m.id = w.id
    ), lines AS MATERIALIZED (
        SELECT w.id AS work_id, t.id,
               coalesce(t.channel IS DISTINCT FROM 'cash'
                        AND t.payer_account ~ '^[0-9]+$'
                        AND t.remark ~ '^[A-Za-z0-9]{6}$', false) AS bare
          FROM work w
          CROSS JOIN LATERAL (
              SELECT t.id, t.channel, t.payer_account, t.remark
                FROM bank_transactions t
               WHERE t.id BETWEEN w.first_tx_id AND w.last_tx_id
                 AND t.statement_id = w.statement_id
                 AND t.outcome = 'pending'
               ORDER BY t.id
               LIMIT w.take
          ) t
    ), taken AS MATERIALIZED (
        SELECT w.id, w.take, w.last_tx_id, count(l.id) AS n, max(l.id) AS last
          FROM work w LEFT JOIN lines l ON l.work_id = w.id
         GROUP BY w.id, w.take, w.last_tx_id
    ), exhausted AS (
        DELETE FROM match_work m USING taken k
         WHERE m.id = k.id AND (k.n < k.take OR k.last >= k.last_tx_id)
    ), advanced AS (
        UPDATE match_work m SET first_tx_id = k.last + 1, lines = greatest(m.lines - k.n, 1)
          FROM taken k
         WHERE m.id = k.id AND k.n = k.take AND k.last < k.last_tx_id
    )
    SELECT ARRAY(SELECT id FROM lines WHERE bare ORDER BY id),
           ARRAY(SELECT id FROM lines WHERE NOT bare ORDER BY id)
"""

_LINES_BY_IDS = """
    SELECT t.id, t.account_no, t.amount, t.booked_at, t.remark, t.payer_name, t.payer_account,
           t.channel
      FROM bank_transactions t
     WHERE t.id = ANY($1::bigint[])
"""


async def _driver(session: AsyncSession) -> Any:
    """The session's asyncpg connection, inside the session's transaction: SQLAlchemy sends
    BEGIN lazily with its first statement, so one goes through SQLAlchemy first (without it
    a query sent to asyncpg directly would run, and release its locks, on its own)."""
    connection = await session.connection()
    await connection.exec_driver_sql("SELECT 1")
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


async def claim_pending(session: AsyncSession, limit: int) -> tuple[list[int], list[int]]:
    """Take a batch of up to `limit` pending lines off the matcher's work list; work another
    worker holds is skipped, not waited for. Returns (ids of bare lines, ids of the other
    lines)."""
    driver = await _driver(session)
    # the batch statements are prepared (asyncpg); from the sixth run PostgreSQL may switch to a
    # generic plan, blind to the arrays' sizes (seconds instead of milliseconds): plan each run
    await driver.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    # work items one at a time (usually one: an import batch is as big as a matcher batch), so
    # that no item is held without being worked on
    ids: list[int] = []
    takes: list[int] = []
    after, need = 0, limit
    while need > 0 and len(ids) < MAX_WORK_ITEMS_PER_BATCH:
        row = await driver.fetchrow(_LOCK_NEXT_WORK, after)
        if row is None:
            break
        after = row["id"]
        ids.append(after)
        takes.append(min(need, row["lines"]))
        need -= takes[-1]
    if not ids:
        return [], []
    bare, other = await driver.fetchrow(_CLAIM_PENDING, ids, takes)
    return list(bare), list(other)


async def lines_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Sequence[Any]]:
    """Rows (id, account_no, amount, booked_at, remark, payer_name, payer_account, channel)."""
    if not ids:
        return []
    driver = await _driver(session)
    rows: Sequence[Sequence[Any]] = await driver.fetch(_LINES_BY_IDS, list(ids))
    return rows


# The bare lines of a batch in one statement. It first locks every open order named by the batch
# (the bare lines' codes and the other lines' candidates) in id order, so workers never deadlock
# and the Python path that follows finds its orders locked already. A bare line is decided here
# when its code is named by no other line of the batch (so booking order within the batch cannot
# matter) and the matching rules would allocate it anyway: open order, receiving account = the
# order's settlement account, amount <= outstanding. Its decision goes into the batch's
# `match_decisions`, where the Python path adds the others' and one apply writes them all
# (`apply_match_decisions`). Every other bare line is returned for the Python rules
# (`matching.decide`), which give the same result for the lines decided here.
_DECIDE_BARE = f"""
    WITH f AS MATERIALIZED (
        SELECT t.id AS tx_id, lower(t.remark) AS code, t.account_no, t.amount, t.booked_at
          FROM bank_transactions t
         WHERE t.id = ANY($1::bigint[])
    ), named AS MATERIALIZED (
        SELECT code FROM f UNION SELECT unnest($2::varchar[])
    ), locked AS MATERIALIZED (
        SELECT o.id, o.payment_code, o.status, o.amount, o.paid_amount, o.settlement_account_id
          FROM orders o
         WHERE o.payment_code IN (SELECT code FROM named) AND o.status IN {OPEN}
         ORDER BY o.id
           FOR NO KEY UPDATE OF o
    ), solo AS (
        -- NOT IN a subquery, not `<> ALL(array)`: a hashed lookup, where the array was scanned
        -- for every bare line (bare lines x other lines' codes: seconds for a big batch)
        SELECT f.* FROM f
         WHERE f.code NOT IN (SELECT unnest($2::varchar[]))
           AND f.code IN (SELECT code FROM f GROUP BY code HAVING count(*) = 1)
    ), go AS MATERIALIZED (
        SELECT s.tx_id, l.id AS order_id, s.amount, s.booked_at, l.status AS from_status,
               l.paid_amount + s.amount = l.amount AS paid
          FROM solo s
          JOIN locked l ON l.payment_code = s.code
          JOIN supplier_accounts sa ON sa.id = l.settlement_account_id
         WHERE sa.account_no = s.account_no AND s.amount <= l.amount - l.paid_amount
    ), decided AS (
        INSERT INTO match_decisions (seq, tx_id, outcome, order_id, amount, from_status,
                                     to_status, paid_at)
        SELECT row_number() OVER (ORDER BY tx_id) - 1, tx_id,
               CASE WHEN paid THEN 'matched' ELSE 'partial' END, order_id, amount, from_status,
               CASE WHEN paid THEN 'paid' ELSE 'partially_paid' END,
               CASE WHEN paid THEN coalesce(booked_at, now()) END
          FROM go
    )
    SELECT (SELECT count(*) FROM locked) AS locked,
           (SELECT count(*) FILTER (WHERE paid) FROM go) AS matched,
           (SELECT count(*) FILTER (WHERE NOT paid) FROM go) AS partial,
           ARRAY(SELECT tx_id FROM f WHERE tx_id NOT IN (SELECT tx_id FROM go) ORDER BY tx_id)
               AS rest
"""


async def decide_bare_lines(
    session: AsyncSession, bare_ids: Sequence[int], other_codes: Sequence[str]
) -> tuple[int, int, list[int]]:
    """Lock the batch's orders and decide the bare lines that need no rule beyond the match
    (into the batch's decisions, see `start_decisions`). Returns (matched, partial, ids of the
    bare lines left to the Python rules)."""
    driver = await _driver(session)
    row = await driver.fetchrow(_DECIDE_BARE, list(bare_ids), list(other_codes))
    return int(row["matched"]), int(row["partial"]), list(row["rest"])


@dataclass(slots=True)
class OrderState:
    id: int
    order_no: str
    payment_code: str
    status: str
    amount: Decimal
    paid_amount: Decimal
    settlement_account_no: str


_LOCK_OPEN_BY_CODES = f"""
    SELECT o.id, o.order_no, o.payment_code, o.status, o.amount, o.paid_amount,
           sa.account_no AS settlement_account_no
      FROM orders o JOIN supplier_accounts sa ON sa.id = o.settlement_account_id
     WHERE o.payment_code = ANY($1::varchar[]) AND o.status IN {OPEN}
     ORDER BY o.id
       FOR NO KEY UPDATE OF o
"""

_CLOSED_BY_CODES = f"""
    SELECT DISTINCT ON (o.payment_code)
           o.id, o.order_no, o.payment_code, o.status, o.amount, o.paid_amount,
           sa.account_no AS settlement_account_no
      FROM orders o JOIN supplier_accounts sa ON sa.id = o.settlement_account_id
     WHERE o.payment_code = ANY($1::varchar[]) AND o.status NOT IN {OPEN}
     ORDER BY o.payment_code, o.id DESC
"""


def _state(row: Sequence[Any]) -> OrderState:
    return OrderState(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


async def orders_by_codes(session: AsyncSession, codes: Sequence[str]) -> dict[str, OrderState]:
    """The order each code names: the open order holding it (locked `FOR NO KEY UPDATE` in id
    order, so concurrent workers cannot deadlock), else the latest paid or cancelled order."""
    if not codes:
        return {}
    driver = await _driver(session)
    found = {r[2]: _state(r) for r in await driver.fetch(_LOCK_OPEN_BY_CODES, list(codes))}
    rest = [c for c in codes if c not in found]
    if rest:
        for r in await driver.fetch(_CLOSED_BY_CODES, rest):
            found[r[2]] = _state(r)
    return found


_PAYABLE_ORDERS = text(
    f"""
    SELECT DISTINCT p.account_no, p.amount, o.id, o.payment_code
      FROM unnest(CAST(:accounts AS varchar[]), CAST(:amounts AS numeric[]))
           AS p(account_no, amount)
      JOIN supplier_accounts sa ON sa.account_no = p.account_no AND sa.is_settlement
      JOIN orders o ON o.supplier_id = sa.supplier_id AND o.settlement_account_id = sa.id
     WHERE o.status IN {OPEN} AND o.amount - o.paid_amount = p.amount
    """
)


async def payable_orders(
    session: AsyncSession, keys: Sequence[tuple[str, Decimal]]
) -> dict[tuple[str, Decimal], list[tuple[int, str]]]:
    """For (receiving account, amount) pairs: the open orders payable to that settlement account
    whose outstanding amount is exactly that amount, as (order id, payment code)."""
    if not keys:
        return {}
    accounts, amounts = (list(col) for col in zip(*keys, strict=True))
    out: dict[tuple[str, Decimal], list[tuple[int, str]]] = {}
    params = {"accounts": accounts, "amounts": amounts}
    for r in await session.execute(_PAYABLE_ORDERS, params):
        out.setdefault((r.account_no, r.amount), []).append((r.id, r.payment_code))
    return out


@dataclass(slots=True)
class Allocation:
    """Money of one bank line applied to one order, with the order's status change. Without a
    bank line (None) only for an approved payment confirmation (the vouchers are the evidence)."""

    bank_transaction_id: int | None
    order_id: int
    amount: Decimal
    from_status: str
    to_status: str
    paid_at: datetime | None  # set when this allocation completes the order


@dataclass(slots=True)
class NewReviewCase:
    bank_transaction_id: int
    reason: ReviewReason
    order_id: int | None
    suggested_order_id: int | None
    details: str  # JSON text


# A batch's decisions are COPYed (binary) into this temporary table, then applied by a few
# set-based statements; much cheaper than binding thousands of array elements.
_DECISION_COLUMNS = (
    "seq",
    "tx_id",
    "outcome",
    "reason",
    "order_id",
    "suggested_order_id",
    "amount",
    "from_status",
    "to_status",
    "paid_at",
    "details",
)
# A batch's decisions: a temporary table made once per connection and emptied at each commit
# (ON COMMIT DELETE ROWS), never created and dropped per batch: that DDL wrote catalog rows and
# sent cache invalidations to every backend each time.
_CREATE_DECISIONS = """
CREATE TEMP TABLE IF NOT EXISTS match_decisions (
    seq integer, tx_id bigint, outcome text, reason text, order_id bigint,
    suggested_order_id bigint, amount numeric(16,2), from_status text, to_status text,
    paid_at timestamptz, details jsonb
) ON COMMIT DELETE ROWS
"""

# The one allocation path (matcher, review and payment confirmations): allocation rows (unique
# per bank line), the orders' paid amount / status / paid_at, and the timeline, in one statement.
_APPLY_ALLOCATIONS = text(
    """
    WITH a AS (
        SELECT * FROM match_decisions WHERE to_status IS NOT NULL
    ), alloc AS (
        INSERT INTO payment_allocations (bank_transaction_id, confirmation_id, order_id, amount,
                                         source, actor_sub)
        SELECT tx_id, CAST(:confirmation_id AS bigint), order_id, amount,
               CAST(:source AS varchar), CAST(:actor AS varchar)
          FROM a ORDER BY seq
    ), events AS (
        INSERT INTO order_events (order_id, action, from_status, to_status, amount,
                                  bank_transaction_id, actor_sub, reason)
        SELECT order_id, 'payment_allocated', from_status, to_status, amount, tx_id,
               CAST(:actor AS varchar), CAST(:reason AS text)
          FROM a WHERE CAST(:source AS varchar) <> 'auto' ORDER BY seq
    )
    UPDATE orders o
       SET paid_amount = o.paid_amount + s.delta,
           status = s.status,
           paid_at = coalesce(s.paid_at, o.paid_at),
           updated_at = now()
      FROM (SELECT order_id, sum(amount) AS delta,
                   -- allocations only raise the paid amount: paid once any of them paid it
                   CASE WHEN bool_or(to_status = 'paid') THEN 'paid'
                        ELSE 'partially_paid' END AS status,
                   max(paid_at) AS paid_at
              FROM a GROUP BY order_id) s
     WHERE o.id = s.order_id
    """
)

_APPLY_OUTCOMES = text(
    """
    WITH cases AS (
        INSERT INTO review_cases (bank_transaction_id, reason, status, order_id,
                                  suggested_order_id, details)
        SELECT tx_id, reason, 'open', order_id, suggested_order_id, details
          FROM match_decisions WHERE outcome = 'review' ORDER BY seq
    )
    UPDATE bank_transactions t
       SET outcome = d.outcome, reason = d.reason, processed_at = now()
      FROM match_decisions d
     WHERE t.id = d.tx_id
    """
)


async def start_decisions(session: AsyncSession) -> None:
    """The transaction's (empty) `match_decisions` table: a batch's decisions are gathered there,
    then written by one apply."""
    driver = await _driver(session)
    await driver.execute(_CREATE_DECISIONS)


async def _load_decisions(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if records:
        await driver.copy_records_to_table(
            "match_decisions", records=records, columns=_DECISION_COLUMNS
        )
    # A batch touches a few thousand rows of tables of millions by primary key: index nested
    # loops, never a scan of `orders` or `bank_transactions` per batch (the planner, seeing a
    # small table and correlated ids, would otherwise pick hash or merge joins).
    await connection.exec_driver_sql("SET LOCAL enable_hashjoin = off")
    await connection.exec_driver_sql("SET LOCAL enable_mergejoin = off")


async def _clear_decisions(session: AsyncSession) -> None:
    connection = await session.connection()
    # emptied for another apply in the same transaction (the commit empties it anyway)
    await connection.exec_driver_sql("DELETE FROM match_decisions")
    await connection.exec_driver_sql("RESET enable_hashjoin")
    await connection.exec_driver_sql("RESET enable_mergejoin")


def _allocation_record(seq: int, a: Allocation, outcome: str | None) -> tuple[Any, ...]:
    return (
        seq,
        a.bank_transaction_id,
        outcome,
        None,
        a.order_id,
        None,
        a.amount,
        a.from_status,
        a.to_status,
        a.paid_at,
        None,
    )


async def apply_allocations(
    session: AsyncSession,
    allocations: Sequence[Allocation],
    *,
    source: str,
    actor_sub: str,
    reason: str | None = None,
    confirmation_id: int | None = None,
) -> None:
    """Apply allocations (review and payment confirmations: the same SQL as the matcher's)."""
    if not allocations:
        return
    await start_decisions(session)
    await _load_decisions(
        session, [_allocation_record(i, a, None) for i, a in enumerate(allocations)]
    )
    params = {
        "source": source,
        "actor": actor_sub,
        "reason": reason,
        "confirmation_id": confirmation_id,
    }
    await session.execute(_APPLY_ALLOCATIONS, params)
    await _clear_decisions(session)


async def apply_match_decisions(
    session: AsyncSession,
    outcomes: Sequence[tuple[int, str, str | None]],
    allocations: Sequence[Allocation],
    cases: Sequence[NewReviewCase],
    *,
    first_seq: int,
    source: str,
    actor_sub: str,
) -> None:
    """Write a whole batch's outcome — the decisions already in `match_decisions` (the bare
    lines', `first_seq` of them) and these — allocations (with orders and timeline), review
    cases and every line's outcome, from one COPY and two statements."""
    by_tx_alloc = {a.bank_transaction_id: a for a in allocations}
    by_tx_case = {c.bank_transaction_id: c for c in cases}
    records: list[tuple[Any, ...]] = []
    for seq, (tx_id, outcome, reason) in enumerate(outcomes, start=first_seq):
        alloc = by_tx_alloc.get(tx_id)
        if alloc is not None:
            records.append(_allocation_record(seq, alloc, outcome))
            continue
        case = by_tx_case.get(tx_id)
        records.append(
            (
                seq,
                tx_id,
                outcome,
                reason,
                case.order_id if case else None,
                case.suggested_order_id if case else None,
                None,
                None,
                None,
                None,
                case.details if case else None,
            )
        )
    await _load_decisions(session, records)
    await session.execute(_APPLY_OUTCOMES)
    if allocations or first_seq:
        params = {"source": source, "actor": actor_sub, "reason": None, "confirmation_id": None}
        await session.execute(_APPLY_ALLOCATIONS, params)
    await _clear_decisions(session)


_SET_OUTCOMES = text(
    """
    UPDATE bank_transactions t
       SET outcome = d.outcome, reason = d.reason, processed_at = now()
      FROM unnest(CAST(:ids AS bigint[]), CAST(:outcomes AS varchar[]),
                  CAST(:reasons AS varchar[])) AS d(id, outcome, reason)
     WHERE t.id = d.id
    """
)


async def set_outcomes(
    session: AsyncSession, outcomes: Sequence[tuple[int, str, str | None]]
) -> None:
    if not outcomes:
        return
    ids, values, reasons = (list(col) for col in zip(*outcomes, strict=True))
    await session.execute(_SET_OUTCOMES, {"ids": ids, "outcomes": values, "reasons": reasons})


# ----------------------------------------------------------------------------- review


async def get_bank_transaction(
    session: AsyncSession, tx_id: int, *, for_update: bool = False
) -> BankTransaction | None:
    stmt = select(BankTransaction).where(BankTransaction.id == tx_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def transaction_allocations(session: AsyncSession, tx_id: int) -> list[PaymentAllocation]:
    stmt = select(PaymentAllocation).where(PaymentAllocation.bank_transaction_id == tx_id)
    return list((await session.execute(stmt)).scalars())


async def review_case_for_transaction(session: AsyncSession, tx_id: int) -> ReviewCase | None:
    stmt = select(ReviewCase).where(ReviewCase.bank_transaction_id == tx_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_review_case(
    session: AsyncSession, case_id: int, *, for_update: bool = False
) -> ReviewCase | None:
    stmt = select(ReviewCase).where(ReviewCase.id == case_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_review_cases(
    session: AsyncSession,
    *,
    reason: ReviewReason | None,
    status: ReviewStatus | None,
    after_id: int | None,
    limit: int,
) -> list[tuple[ReviewCase, BankTransaction | None]]:
    stmt = (
        select(ReviewCase, BankTransaction)
        .outerjoin(BankTransaction, BankTransaction.id == ReviewCase.bank_transaction_id)
        .order_by(ReviewCase.id)
        .limit(limit)
    )
    if reason is not None:
        stmt = stmt.where(ReviewCase.reason == reason)
    if status is not None:
        stmt = stmt.where(ReviewCase.status == status)
    if after_id is not None:
        stmt = stmt.where(ReviewCase.id > after_id)
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def unit_exists(session: AsyncSession, unit_id: int) -> bool:
    return await session.get(OrgUnit, unit_id) is not None
