"""Server-side CSV import (fast path): PostgreSQL reads and converts the rows, Python does not.

The Python path (`open_csv` → `RowConverter` → `dedupe_keys` → binary COPY) costs ~25-30 µs of
Python CPU per line. Here the upload is only decoded in Python (in 1 MiB blocks, strictly, with
the encoding the parser detects), re-encoded to UTF-8 and streamed with `COPY ... (FORMAT csv)`
into a staging table; each batch of `import_batch_size` rows is then converted by one
`INSERT ... SELECT` into the importer's `import_lines` and stored by the repository's
`_INSERT_IMPORTED`, in a transaction of its own, exactly as the Python path does.

The SQL converts only **plain** rows, the ones `RowConverter._convert_text` turns into a line
without help: ASCII amounts, ISO timestamps of a few shapes, a bank reference. Every other row of
the batch (Excel guards, thousands separators, rows without a bank reference, odd timestamps,
errors...) is fetched and converted by the Python converter itself, in file order, so results,
dedupe keys (occurrence counting of reference-less lines included) and error messages are the
Python path's. Currencies and channels go through the Python functions too: each batch's
distinct values are mapped in Python and joined in.

A file is taken only when PostgreSQL provably reads the same rows as Python's csv module
(`_Source`): no NUL, strict decoding succeeds, every CR comes before an LF, quotes only as whole
quoted fields without line breaks, no line longer than the csv field limit, a header on the first
line. Blank lines (rows `open_csv` skips) are dropped before the COPY. After it the staged row
count must equal the physical data lines (no `\\.` end-of-data marker, no quoted line break); rows
`open_csv` skips as empty (the exact `clean_text` rule, looked for only when some line starts
with a blank or guarded cell) are deleted and numbered around. Otherwise `import_csv` returns
`handled=False` before any line is stored, and the importer runs the Python path on the whole
file, which also reports the real error of a broken file (ragged rows, bad encoding...).

The work moves rather than vanishes: on the benchmark's rows the server spends ~20 µs a row
(staging COPY ~3.5, conversion ~15) where the Python path costs ~30 µs of Python and ~3 µs of
server (its binary COPY); the INSERT into `bank_transactions` is the same on both paths.

Staging: a TEMPORARY table on one connection held for the whole import (the batches run on that
connection too), so it survives the per-batch commits, is invisible to other sessions and goes
away with the session even if the `DROP` in `finally` never runs.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import logging
import re
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, BinaryIO

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.payments import repository
from services.payments.importer import MAX_AMOUNT, ImportResult, Record, _record, within_limits
from services.payments.parsers import StatementLine, StatementParseError, dedupe_keys
from services.payments.parsers.profiles import resolve_profile
from services.payments.parsers.streams import HEAD_SIZE, detect_encoding
from services.payments.parsers.tabular import _FIELDS, RowConverter, _is_empty
from services.payments.parsers.values import normalize_channel
from shared.db import get_engine

log = logging.getLogger(__name__)

CHUNK = 1 << 20
"""Bytes read (and decoded) at a time; also bounds the length of a line inside one block."""

# A CSV row as both readers see it alike: fields separated by commas, each either unquoted
# without quotes or line breaks, or entirely quoted (`""` for a quote) without line breaks.
_FIELD = r'(?:"[^"\r\n]*(?:""[^"\r\n]*)*"|[^,"\r\n]*)'
_ROW = rf"{_FIELD}(?:,{_FIELD})*"
_ROWS_RE = re.compile(rf"(?:{_ROW}\r?\n)*(?:{_ROW})?")
_BLANK_LINE_RE = re.compile(r"^\r?\n", re.MULTILINE)
_BLANK_STARTS = " \t,\"='\r"
_MAYBE_EMPTY_RE = re.compile(rf"\n[{_BLANK_STARTS}]")  # a literal first: searched fast
"""A line whose first cell may be blank or an Excel text guard: the file may have rows that
`open_csv` skips as empty (each of their cells is such), so PostgreSQL looks for them."""
MAX_SKIPPED = 10_000
"""Rows `open_csv` skips as empty (after the header) that the fast path numbers around."""

_TRIM = r"E' \t\r\n'"
"""`RowConverter`'s trimming (`str.strip(" \\t\\r\\n")`) as a `btrim` argument."""


class _NotEligible(Exception):
    """PostgreSQL might read the file differently from Python: the Python path imports it."""


@cache
def _python_whitespace() -> str:
    """Every character `str.strip()` removes (dedupe keys strip account and reference)."""
    return "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


@dataclass
class FastImport:
    handled: bool
    """False: nothing was stored, import the file with the Python path."""
    error: StatementParseError | None = None
    reason: str | None = None
    sql_rows: int = 0
    python_rows: int = 0


class _Source:
    """The upload decoded block by block (only whole lines), checked, counted, UTF-8 encoded."""

    def __init__(self, stream: BinaryIO, encoding: str, head: bytes) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._pending: bytes | None = head
        self._carry = ""
        self._eof = False
        self._limit = csv.field_size_limit()
        self._read_size = min(CHUNK, self._limit)
        self.rest = ""
        self.lines = 0
        """Physical data lines handed to COPY so far."""
        self.maybe_empty = False

    def _block(self) -> str | None:
        """The next whole lines (the last block may lack its final line break); None at the end.

        Lines after the first of a block lie inside one decoded read (at most `_read_size`
        characters, not more than the csv field limit); the first one and the carry-over are
        measured."""
        while not self._eof:
            raw = self._pending if self._pending is not None else self._stream.read(self._read_size)
            self._pending = None
            final = not raw
            if b"\x00" in raw:
                raise _NotEligible("NUL byte")
            try:
                text = self._carry + self._decoder.decode(raw, final)
            except UnicodeDecodeError:
                raise _NotEligible("not decodable") from None
            if final:
                self._eof = True
                self._carry = ""
                block = text
            else:
                cut = text.rfind("\n") + 1
                self._carry = text[cut:]
                if len(self._carry) > self._limit:
                    raise _NotEligible("line longer than the csv field limit")
                block = text[:cut]
            if not block:
                continue
            first = block.find("\n")
            if (first if first >= 0 else len(block)) > self._limit:
                raise _NotEligible("line longer than the csv field limit")
            if block.count("\r") != block.count("\r\n"):
                raise _NotEligible("carriage return not followed by a line feed")
            if '"' in block and _ROWS_RE.fullmatch(block) is None:
                raise _NotEligible("quotes that PostgreSQL and Python may read differently")
            return block
        return None

    def header(self) -> list[str]:
        block = self._block()
        if block is None:
            raise _NotEligible("no header line")
        end = block.find("\n") + 1 or len(block)
        self.rest = block[end:]
        return next(csv.reader([block[:end]]), [])

    def _encoded(self, block: str) -> bytes:
        """Blank lines removed (csv reads them as `[]`, a row `open_csv` skips without counting
        it; COPY would refuse them), counted, as UTF-8. A block starts at a line start."""
        if block.startswith(("\n", "\r\n")) or "\n\n" in block or "\n\r\n" in block:
            block = _BLANK_LINE_RE.sub("", block)
        if not self.maybe_empty and (
            (block and block[0] in _BLANK_STARTS) or _MAYBE_EMPTY_RE.search(block)
        ):
            self.maybe_empty = True
        self.lines += block.count("\n") + (bool(block) and not block.endswith("\n"))
        return block.encode("utf-8")

    def next_chunk(self) -> bytes | None:
        if self.rest:
            rest, self.rest = self.rest, ""
            return self._encoded(rest)
        block = self._block()
        return None if block is None else self._encoded(block)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await asyncio.to_thread(self.next_chunk)) is not None:
            yield chunk


class _Feed:
    """An iterator fed one line at a time, so `dedupe_keys(within_limits(...))` (whose state
    counts identical reference-less lines across the whole file) serves batch after batch."""

    def __init__(self) -> None:
        self._lines: deque[StatementLine] = deque()

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> StatementLine:
        return self._lines.popleft()

    def push(self, line: StatementLine) -> None:
        self._lines.append(line)


_AMOUNT_SHAPE = r"'^[0-9]+(\.[0-9]{1,2})?$'"


def _c(sql: str) -> str:
    return f'{sql} COLLATE "C"'


def _booked_at_sql(b: str) -> str:
    """`datetime.fromisoformat` of `YYYY-MM-DD`, `YYYY-MM-DD[ T]HH:MM:SS` (naive: Beijing time)
    and the same with `±HH:MM`, as timestamptz; NULL for any other text or a value out of range
    (once the shape is checked, the fields are digits: compared as text, byte-wise).

    Naive times only from 1992 on: Shanghai had summer time 1986-1991, and PostgreSQL and
    Python's zoneinfo resolve an ambiguous local time differently. Years as `within_limits`."""
    month, day = _c(f"substr({b}, 6, 2)"), _c(f"substr({b}, 9, 2)")
    year = f"CAST(left({b}, 4) AS integer)"
    last_day = (
        f"CASE {month} WHEN '02' THEN CASE WHEN ({year} % 4 = 0 AND {year} % 100 <> 0) "
        f"OR {year} % 400 = 0 THEN '29' ELSE '28' END "
        f"WHEN '04' THEN '30' WHEN '06' THEN '30' WHEN '09' THEN '30' WHEN '11' THEN '30' "
        f"ELSE '31' END"
    )
    date_ok = f"{month} BETWEEN '01' AND '12' AND {day} BETWEEN '01' AND {last_day}"
    clock_ok = (
        f"{_c(f'substr({b}, 12, 2)')} <= '23' AND {_c(f'substr({b}, 15, 2)')} <= '59' "
        f"AND {_c(f'substr({b}, 18, 2)')} <= '59'"
    )
    day_re = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    clock_re = "[ T][0-9]{2}:[0-9]{2}:[0-9]{2}"
    return (
        f"CASE WHEN {b} ~ '^{day_re}({clock_re})?$' THEN CASE WHEN {_c(f'left({b}, 4)')} "
        f"BETWEEN '1992' AND '2999' AND {date_ok} AND (length({b}) = 10 OR {clock_ok}) "
        f"THEN CAST({b} AS timestamp) AT TIME ZONE 'Asia/Shanghai' END "
        f"WHEN {b} ~ '^{day_re}{clock_re}[+-][0-9]{{2}}:[0-9]{{2}}$' THEN CASE WHEN "
        f"{_c(f'left({b}, 4)')} BETWEEN '1970' AND '2999' AND {date_ok} AND {clock_ok} "
        f"AND {_c(f'substr({b}, 21, 2)')} <= '14' AND {_c(f'substr({b}, 24, 2)')} <= '59' "
        f"THEN CAST({b} AS timestamptz) END END"
    )


def _batch_sql(table: str, width: int, columns: dict[str, int]) -> tuple[str, str]:
    """(distinct currencies and channels of a batch; the batch's conversion: plain rows into
    `import_lines`, the other rows' line numbers and cells, in file order). Parameters:
    $1 < seq <= $2, $3 Python's whitespace, $4/$5 currency map, $6/$7 channel map, $8 the line
    number before the batch's first row (rows skipped as empty have no line number).

    A row missing from the maps would not be inserted and so be returned for Python: the SQL
    never decides alone what a row it cannot convert becomes."""
    present = [f for f in _FIELDS if f in columns]
    t_cols = ", ".join(f"btrim(s.c{columns[f]}, {_TRIM}) AS {f}" for f in present)

    def col(field: str) -> str:
        return field if field in columns else "CAST('' AS text)"

    used = sorted({columns[f] for f in present})
    joined = f"concat({', '.join(f's.c{i}' for i in used)})"
    guard = f"strpos({joined}, '=') = 0 AND strpos({joined}, '''') = 0"
    batch = f"FROM {table} s WHERE s.seq > $1 AND s.seq <= $2"
    distinct = (
        f"SELECT array_agg(DISTINCT {col('currency')}), array_agg(DISTINCT {col('channel')}) "
        f"FROM (SELECT {t_cols} {batch}) t"
    )

    def amount(field: str) -> str:  # `_plain_amount`'s value; NULL: empty or not plain
        if field not in columns:
            return "CAST(NULL AS numeric)"
        return (
            f"CASE WHEN length({field}) <= 17 AND {field} ~ {_AMOUNT_SHAPE} "
            f"THEN CAST({field} AS numeric) END"
        )

    def amount_ok(field: str) -> str:  # `_plain_amount` accepts it (empty included)
        if field not in columns:
            return "true"
        return f"(d.{field} = '' OR d.{'cr' if field == 'credit' else 'db'} IS NOT NULL)"

    has_booked = "booked_at" in columns
    moment = _booked_at_sql("booked_at") if has_booked else "CAST(NULL AS timestamptz)"
    remark, extra = col("remark"), col("remark_extra")
    account, ref = col("account_no"), col("bank_ref")
    direction = (
        "CASE WHEN coalesce(u.cr, 0) > 0 AND coalesce(u.db, 0) = 0 THEN 'credit' "
        "WHEN coalesce(u.db, 0) > 0 AND coalesce(u.cr, 0) = 0 THEN 'debit' END"
    )
    numbered = f"SELECT s.*, $8 + row_number() OVER (ORDER BY s.seq) AS line_no {batch}"
    # nested subqueries behind `OFFSET 0` (not flattened into the outer query, which would repeat
    # a column's expression wherever the column is used): each value is computed once per row
    convert = f"""
WITH ins AS (
    INSERT INTO import_lines ({", ".join(repository.IMPORT_COLUMNS)})
    SELECT p.line_no, 'ref:' || {account} || ':' || {ref}, {ref}, {account}, p.direction,
           p.amount, cur.out, p.moment, CAST(NULL AS date), nullif({col("payer_name")}, ''),
           nullif({col("payer_account")}, ''), nullif({col("payer_bank")}, ''),
           nullif(CASE WHEN {extra} = '' THEN {remark} WHEN {remark} = '' THEN {extra}
                       ELSE {remark} || ' ' || {extra} END, ''),
           ch.out
      FROM (
        SELECT d.*, CASE d.direction WHEN 'credit' THEN d.cr ELSE d.db END AS amount
          FROM (
            SELECT u.*, {direction} AS direction
              FROM (
                SELECT t.*, {amount("credit")} AS cr, {amount("debit")} AS db,
                       {moment} AS moment
                  FROM (
                    SELECT s.line_no, ({guard}) AS unguarded, {t_cols}
                      FROM ({numbered}) s
                    OFFSET 0
                  ) t
                OFFSET 0
              ) u
            OFFSET 0
          ) d
         WHERE d.unguarded AND {account} <> '' AND btrim({account}, $3) = {account}
           AND {ref} <> '' AND btrim({ref}, $3) = {ref}
           AND {amount_ok("credit")} AND {amount_ok("debit")} AND d.direction IS NOT NULL
           AND CASE d.direction WHEN 'credit' THEN d.cr ELSE d.db END <= {MAX_AMOUNT}
           AND ({col("booked_at")} = '' OR d.moment IS NOT NULL)
        OFFSET 0
      ) p
      JOIN unnest(CAST($4 AS text[]), CAST($5 AS text[])) AS cur(raw, out)
        ON cur.raw = {col("currency")}
      JOIN unnest(CAST($6 AS text[]), CAST($7 AS text[])) AS ch(raw, out)
        ON ch.raw = {col("channel")}
    RETURNING line_no
)
SELECT n.line_no, ARRAY[{", ".join(f"n.c{i}" for i in range(width))}]
  FROM ({numbered}) n
 WHERE n.line_no NOT IN (SELECT line_no FROM ins)
 ORDER BY n.line_no
"""
    return distinct, convert


async def import_csv(
    stream: BinaryIO,
    *,
    start: int,
    profile_name: str | None,
    result: ImportResult,
    batch_size: int,
    on_batch_committed: Callable[[int], None] | None,
) -> FastImport:
    """Import a CSV statement server-side, adding to `result`'s counts. `handled=False` (the
    file is left to the Python path) before anything is stored; once lines are stored, a row
    the Python converter refuses ends the import with `error`, as in the Python path."""
    stream.seek(start)
    head = stream.read(HEAD_SIZE)
    source = _Source(stream, detect_encoding(head), head)
    try:
        header = source.header()
        if _is_empty(header):
            raise _NotEligible("header not on the first line")
        try:
            profile, columns = resolve_profile(header, profile_name)
        except StatementParseError:
            raise _NotEligible("header not on the first line") from None
        if profile.name != profile_name:
            raise _NotEligible("header not on the first line")
        converter = RowConverter(profile, columns)
        if converter._irregular_fields:
            raise _NotEligible(f"profile {profile.name} with amount/direction/time columns")
    except _NotEligible as exc:
        log.info("statement %s: CSV fast path not used: %s", result.statement_id, exc)
        return FastImport(handled=False, reason=str(exc))

    table = f"fastcsv_rows_{result.statement_id}"
    width = len(header)
    async with get_engine().connect() as conn:
        try:
            return await _run(
                conn, table, width, source, converter, result, batch_size, on_batch_committed
            )
        finally:
            try:
                await conn.rollback()
                await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
                await conn.commit()
            except Exception:  # a broken connection: closing it drops the table
                await conn.invalidate()


async def _driver(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


def _empty_cell_sql(cell: str) -> str:
    """`clean_text(cell) is None` for a str cell without line breaks: blank once trimmed, or an
    Excel text guard (`="..."`, then a leading `'`) around nothing but blanks."""
    t = f"btrim({cell}, {_TRIM})"
    unwrapped = (
        f"CASE WHEN length({t}) >= 3 AND left({t}, 2) = '=\"' AND right({t}, 1) = '\"' "
        f"THEN btrim(substr({t}, 3, length({t}) - 3), {_TRIM}) ELSE {t} END"
    )
    apostrophe = "''''"

    def blank(u: str) -> str:  # a leading `'` dropped, then nothing left
        return (
            f"(CASE WHEN left({u}, 1) = {apostrophe} THEN btrim(substr({u}, 2), {_TRIM}) "
            f"ELSE {u} END) = ''"
        )

    # the `=` and `'` branches are rare: their repeated expressions cost nothing in the usual case
    return (
        f"CASE left({t}, 1) WHEN '' THEN true WHEN '=' THEN {blank(unwrapped)} "
        f"WHEN {apostrophe} THEN {blank(t)} ELSE false END"
    )


async def _stage(conn: AsyncConnection, table: str, width: int, source: _Source) -> str | list[int]:
    """COPY the data rows into `table` and check them. Returns the reason when the file is not
    eligible (the staging table then does not exist), else the `seq` of the rows `open_csv`
    skips as empty, deleted from the table."""
    names = [f"c{i}" for i in range(width)]
    try:
        async with conn.begin():
            encoding = (await conn.exec_driver_sql("SHOW server_encoding")).scalar()
            if encoding != "UTF8":
                return f"server encoding {encoding}"
            # the COPY lasts as long as the upload is read: not a runaway statement
            await conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            await conn.exec_driver_sql(
                f"CREATE TEMP TABLE {table} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                + ", ".join(f"{n} text" for n in names)
                + ")"
            )
            driver = await _driver(conn)
            status = await driver.copy_to_table(
                table,
                source=source.chunks(),
                columns=names,
                format="csv",
                force_not_null=names,
                encoding="UTF8",
            )
            # one row per physical line: no line break inside a cell, no `\.` end marker
            # (the identity of a new table numbers the rows 1, 2, ... in file order)
            count = int(status.split()[-1])
            if count != source.lines:
                raise _NotEligible(f"{count} rows staged for {source.lines} data lines")
            skipped = None
            if source.maybe_empty:
                empty = " AND ".join(_empty_cell_sql(n) for n in names)
                skipped = await driver.fetchval(
                    f"SELECT array_agg(seq ORDER BY seq) FROM {table} WHERE {empty}"
                )
            skipped = list(skipped or ())
            if len(skipped) > MAX_SKIPPED:
                raise _NotEligible(f"{len(skipped)} empty rows")
            if skipped:
                await driver.execute(f"DELETE FROM {table} WHERE seq = ANY($1::bigint[])", skipped)
            await conn.exec_driver_sql(f"ANALYZE {table} (seq)")  # batches: index range scans
    except _NotEligible as exc:
        return str(exc)
    except asyncpg.PostgresError as exc:  # ragged rows, mixed line ends, a broken quote...
        return f"COPY refused the file: {exc}"
    return skipped


async def _run(
    conn: AsyncConnection,
    table: str,
    width: int,
    source: _Source,
    converter: RowConverter,
    result: ImportResult,
    batch_size: int,
    on_batch_committed: Callable[[int], None] | None,
) -> FastImport:
    staged = await _stage(conn, table, width, source)
    if isinstance(staged, str):
        log.info("statement %s: CSV fast path not used: %s", result.statement_id, staged)
        return FastImport(handled=False, reason=staged)
    total = source.lines - len(staged)

    def seq_of(line_no: int) -> int:
        """The staged row of data row `line_no` (rows skipped as empty have no line number)."""
        seq = line_no
        for gap in staged:
            if gap > seq:
                break
            seq += 1
        return seq

    distinct_sql, convert_sql = _batch_sql(table, width, converter.columns)
    whitespace = _python_whitespace()
    default_currency = converter.profile.default_currency.upper()
    feed = _Feed()
    keyed: Iterator[tuple[StatementLine, str]] = dedupe_keys(within_limits(feed))
    outcome = FastImport(handled=True)
    low = 0
    while low < total:
        high = min(low + batch_size, total)
        async with conn.begin():
            await conn.exec_driver_sql(repository._CREATE_IMPORT_TABLE)  # begins the transaction
            driver = await _driver(conn)
            # planned per batch: a generic plan would guess the row range and the maps' sizes
            await driver.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            first, last = seq_of(low + 1) - 1, seq_of(high)
            currencies, channels = await driver.fetchrow(distinct_sql, first, last)
            rows: Sequence[Any] = await driver.fetch(
                convert_sql,
                first,
                last,
                whitespace,
                currencies,
                [c.upper() if c else default_currency for c in currencies],
                channels,
                [normalize_channel(c) if c else None for c in channels],
                low,
            )
            records: list[Record] = []
            for line_no, cells in rows:
                try:
                    line = converter.convert_text(cells, line_no)
                    feed.push(line)
                    line, key = next(keyed)
                except StatementParseError as exc:
                    outcome.error = exc
                    break
                records.append(_record(line, key))
            if outcome.error is not None:
                high = int(outcome.error.line_no or low + 1) - 1
                await driver.execute("DELETE FROM import_lines WHERE line_no > $1", high)
            if records:
                await driver.copy_records_to_table(
                    "import_lines", records=records, columns=repository.IMPORT_COLUMNS
                )
            stored = await driver.fetchval("SELECT count(*) FROM import_lines")
            if stored != high - low:  # pragma: no cover - a bug in the conversion SQL
                raise RuntimeError(f"fast CSV import: {stored} lines for rows {low + 1}..{high}")
            new = ignored = 0
            outcome.python_rows += len(records)
            outcome.sql_rows += stored - len(records)
            if stored:
                session = AsyncSession(bind=conn)
                try:
                    row = (
                        await session.execute(
                            repository._INSERT_IMPORTED, {"statement_id": result.statement_id}
                        )
                    ).one()
                    new, ignored = int(row.new), int(row.ignored)
                    await repository.add_statement_counts(
                        session, result.statement_id, total=stored, new=new, ignored=ignored
                    )
                finally:
                    await session.close()
            await conn.exec_driver_sql("DROP TABLE import_lines")
        if stored:
            result.lines_total += stored
            result.lines_new += new
            result.lines_duplicate += stored - new
            result.lines_ignored += ignored
            if on_batch_committed is not None and new > ignored:
                on_batch_committed(result.statement_id)
        if outcome.error is not None:
            break
        low = high
    log.info(
        "statement %s: CSV imported server-side: %s rows converted in SQL, %s in Python",
        result.statement_id,
        outcome.sql_rows,
        outcome.python_rows,
    )
    return outcome
