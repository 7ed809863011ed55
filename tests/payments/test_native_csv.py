"""The native CSV path (parsers/native.py) against today's Python path: for the CSV fixtures, the
bank exports and generated hostile files, `ParsedStatement.batches` gives the same records (line
numbers, values, dedupe keys), the same batches and the same parse error (message, code, line
number) as `dedupe_keys(within_limits(parsed.lines))` taken by the importer; files it could read
differently are refused (no batches). And an import through the native path stores the same
lines as one through the Python path."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository
from services.payments.importer import _take, import_statement
from services.payments.parsers import (
    Limits,
    StatementParseError,
    dedupe_keys,
    open_statement,
    within_limits,
)
from services.payments.parsers.native import COLUMNS, SCHEMA, NativeRows, has_long_line
from shared.settings import get_settings
from tests.factories import make_supplier
from tests.payments.test_bank_exports import BANKS, as_csv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statements"
GENERIC_HEADER = [
    "交易流水号",
    "交易时间",
    "收款账号",
    "对方户名",
    "对方账号",
    "对方开户行",
    "贷方发生额",
    "摘要",
    "交易渠道",
]
CEB_PREAMBLE = [["账号：35000188110599999"], ["起止日期：20240501-20240531"]]
CEB_HEADER = [
    "交易时间",
    "借方发生额",
    "贷方发生额",
    "账户余额",
    "对方账号",
    "对方名称",
    "对方开户行",
    "摘要",
    "用途",
    "交易流水号",
]

Batch = tuple[list[tuple[Any, ...]], tuple[str, str, int | None] | None]


def _error(exc: StatementParseError | None) -> tuple[str, str, int | None] | None:
    return None if exc is None else (exc.message, exc.code, exc.line_no)


def python_batches(data: bytes, size: int, limits: Limits) -> list[Batch]:
    """What the importer takes from the Python path, batch by batch."""
    try:
        parsed = open_statement(io.BytesIO(data), limits=limits)
    except StatementParseError as exc:
        return [([], _error(exc))]
    lines = dedupe_keys(within_limits(parsed.lines))
    out: list[Batch] = []
    while True:
        records, error = _take(lines, size)
        if records or error is not None:
            out.append((records, _error(error)))
        if error is not None or not records:
            return out


def native_batches(data: bytes, size: int, limits: Limits) -> list[Batch] | None:
    """The native path's batches, as records; None when it refuses the file."""
    try:
        parsed = open_statement(io.BytesIO(data), limits=limits, native=True)
    except StatementParseError as exc:
        return [([], _error(exc))]
    if parsed.batches is None:
        return None
    out: list[Batch] = []
    for table, error in parsed.batches(size):
        assert table.schema == SCHEMA
        records = [tuple(row[c] for c in COLUMNS) for row in table.to_pylist()]
        out.append((records, _error(error)))
    return out


def assert_same(data: bytes, size: int = 5000, limits: Limits | None = None) -> bool:
    """The native path gives what the Python path gives; False when it refused the file."""
    limits = limits or Limits()
    native = native_batches(data, size, limits)
    if native is None:
        return False
    expected = python_batches(data, size, limits)
    assert native == expected
    for (got, _), (want, _) in zip(native, expected, strict=True):  # exactly, not just equal
        assert [(str(r[5]), r[7] and r[7].timestamp()) for r in got] == [
            (str(r[5]), r[7] and r[7].timestamp()) for r in want
        ]
    return True


def test_the_columns_are_the_importers() -> None:
    assert COLUMNS == repository.IMPORT_COLUMNS


def test_the_fixture_statement_goes_native_and_matches() -> None:
    for path in sorted(FIXTURES.glob("*.csv")):
        assert assert_same(path.read_bytes()), path.name


@pytest.mark.parametrize("encoding", ["gbk", "utf-8", "utf-8-sig"])
@pytest.mark.parametrize(
    ("profile", "rows"), [(b[0], b[1]) for b in BANKS], ids=[b[0] for b in BANKS]
)
def test_the_bank_exports_match_where_the_native_path_reads_them(
    profile: str, rows: list[list[str]], encoding: str
) -> None:
    data = as_csv(rows).decode("gbk").encode(encoding)
    for size in (1, 2, 5000):
        assert_same(data, size)


def test_plain_rows_never_touch_python(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = NativeRows._python_row

    def counting(self: NativeRows, line: str) -> Any:
        calls.append(line)
        return original(self, line)

    monkeypatch.setattr(NativeRows, "_python_row", counting)
    rows = [GENERIC_HEADER] + [
        [f"R{i}", "2024-04-01 10:00:00", "350001", "单位", "6222", "行", "12.5", "x", "网银"]
        for i in range(50)
    ]
    data = "\r\n".join(",".join(r) for r in rows).encode("gbk")
    assert assert_same(data, 7)
    quoted = "\n".join(",".join(f'"{c}"' for c in r) for r in rows).encode("utf-8")
    assert assert_same(quoted, 7)
    assert calls == []


@pytest.mark.parametrize(
    "body",
    [
        b'R1,2024-04-01 10:00:00,350001,"a,b",6222,x,1.00,r,online\n',  # comma inside quotes
        b'R1,2024-04-01 10:00:00,350001,"a\nb",6222,x,1.00,r,online\n',  # newline inside quotes
        b'R1,2024-04-01 10:00:00,350001,a"b,6222,x,1.00,r,online\n',  # quote mid-field
        b'R1,2024-04-01 10:00:00,350001,"a""b",6222,x,1.00,r,online\n',  # escaped quote
        b"R1,2024-04-01 10:00:00,350001,a\rb,6222,x,1.00,r,online\n",  # lone CR
        b"R0,,1,a,,,1.00,,\n" * 5000 + b"R1,,350001,a\x00b,,,1.00,,\n",  # NUL past the head
        b"R0,,1,a,,,1.00,,\n" * 5000 + b"R1,,350001,\xff\xfe,,,1.00,,\n",  # bad UTF-8 past the head
        b"\xef\xbb\xbfR1,2024-04-01 10:00:00,350001,a,6222,x,1.00,r,online\n",  # BOM at the data
    ],
)
def test_files_csv_could_read_otherwise_are_refused(body: bytes) -> None:
    data = ",".join(GENERIC_HEADER).encode() + b"\n" + body
    assert not assert_same(data)
    assert python_batches(data, 10, Limits())  # the Python path still reads (or fails) them


def test_a_line_past_the_cell_limit_is_refused() -> None:
    data = (",".join(GENERIC_HEADER) + "\nR1,,350001," + "x" * 100 + ",,,1.00,,\n").encode()
    assert not assert_same(data, limits=Limits(cell_chars=100))
    assert assert_same(data, limits=Limits(cell_chars=200))


@given(
    limit=st.integers(min_value=1, max_value=40),
    lengths=st.lists(st.integers(min_value=0, max_value=120), max_size=12),
)
def test_the_scan_finds_a_line_past_the_limit_wherever_it_is(
    limit: int, lengths: list[int]
) -> None:
    """The scan's hop from line start to the last LF in reach finds exactly the lines that
    splitting the chunk finds: at the limit, one past it, first, last, between short ones."""
    chunk = b"".join(b"x" * n + b"\n" for n in lengths)
    longest = max(map(len, chunk.split(b"\n"))) if chunk else 0
    assert has_long_line(chunk, limit) == (longest > limit)
    assert has_long_line(chunk, limit) == any(n > limit for n in lengths)


# ------------------------------------------------------------------ generated hostile files

_TOKENS = [
    "",
    " ",
    "\t",
    "=",
    "'",
    '"',
    ",",
    "\r",
    "\n",
    "A",
    "1",
    "0",
    "-",
    "+",
    ".",
    "，",
    "合计",
    "本页合计",
    "制表人：张三",
    "中文",
    "ＦＡ４",
    "\u3000",
    "12.50",
    "1,234.56",
    "100",
    "0.00",
    "007",
    "2024-04-01 08:00:00",
    "2024-02-30 10:00:00",
    "1988-06-01 12:00:00",
    "2024-04-01T08:00:00",
    "1969-12-31 23:00:00",
    "3000-01-01 00:00:00",
    "2024-04-01 23:59:60",
    "20240401",
    "2024/04/01",
    "online",
    "网银",
    "ONLINE",
    "Atm",
    "现金",
    "CNY",
    "usd",
    "人民币",
    "99999999999999.99",
    "100000000000000.00",
    "12.345",
    "-5",
    "—",
    "x" * 190,
]
_GOOD = {
    "交易流水号": st.sampled_from(["R1", "R2", "B000123", " R3 ", "R1\t", "'R4", "R,5", ""]),
    "交易时间": st.sampled_from(
        ["2024-04-01 08:00:00", "2024-04-01T09:30:00", "", "2024-04-01", "1995-07-01 00:00:01"]
    ),
    "收款账号": st.sampled_from(["35000188110599999", "350001", " 350001 ", "", "="]),
    "贷方发生额": st.sampled_from(["12.50", "100", "0.01", "1.5", "0", "", "1,200.00", "-3"]),
    "借方发生额": st.sampled_from(["", "", "", "5.00", "0.00"]),
    "交易渠道": st.sampled_from(["online", "网银", "柜台", "ONLINE", "", "其他"]),
}


def _cell(column: str) -> st.SearchStrategy[str]:
    hostile = st.lists(st.sampled_from(_TOKENS), max_size=3).map("".join)
    good = _GOOD.get(column, st.sampled_from(["采购单位", "中国工商银行", "f54yxn", "", "62220"]))
    return st.one_of(good, good, good, hostile)


@st.composite
def _row(draw: Any, header: list[str]) -> list[str]:
    kind = draw(st.sampled_from(["data"] * 6 + ["blank", "empty", "total", "footer", "short"]))
    if kind == "blank":
        return [""] * len(header)
    if kind == "empty":
        return []
    if kind == "total":
        return (
            [draw(st.sampled_from(["合计", " 本页合计", "小计：", "总计"]))] + [""] * 6 + ["9.00"]
        )
    if kind == "footer":
        return [draw(st.sampled_from(["制表人：张三", "打印日期：2024-05-01", "备注"]))]
    row = [draw(_cell(column)) for column in header]
    if kind == "short":
        row = row[: draw(st.integers(0, len(row)))]
    if draw(st.booleans()) and draw(st.booleans()):
        row.append(draw(_cell("extra")))
    return row


@st.composite
def _statement(draw: Any) -> bytes:
    layout = draw(st.sampled_from(["generic", "ceb"]))
    header = GENERIC_HEADER if layout == "generic" else CEB_HEADER
    rows = [draw(_row(header)) for _ in range(draw(st.integers(0, 25)))]
    quoting = draw(st.sampled_from(["none", "none", "all", "csv"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r\n", "\r"]))
    if quoting == "csv":  # csv.writer: quotes where needed (commas, quotes, line breaks)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=newline)
        writer.writerows([header, *rows])
        body = buffer.getvalue()
    else:
        quote = '"' if quoting == "all" else ""
        body = newline.join(",".join(f"{quote}{c}{quote}" for c in [*header]) for _ in [0])
        body += "".join(newline + ",".join(f"{quote}{c}{quote}" for c in row) for row in rows)
        if draw(st.booleans()):
            body += newline
    if layout == "ceb":
        body = "".join(",".join(r) + newline for r in CEB_PREAMBLE) + body
    encoding = draw(st.sampled_from(["gbk", "utf-8", "utf-8-sig", "gb18030"]))
    try:
        return body.encode(encoding)
    except UnicodeEncodeError:
        return body.encode("gb18030")


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=_statement(),
    size=st.sampled_from([1, 2, 3, 7, 5000]),
    rows=st.sampled_from([3, 8, 2_000_000]),
    blanks=st.sampled_from([1, 2, 10_000]),
)
def test_generated_statements_match(data: bytes, size: int, rows: int, blanks: int) -> None:
    assert_same(data, size, Limits(rows=rows, blank_rows=blanks, cell_chars=150))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["R1", "R2", "R3", ""]),
            st.sampled_from(["10", "10.00", "0.5", "20"]),
            st.sampled_from(["", "x", "合计"]),
        ),
        max_size=30,
    ),
    size=st.sampled_from([1, 4, 5000]),
)
def test_generated_plain_statements_go_native_and_match(
    rows: list[tuple[str, str, str]], size: int
) -> None:
    """Plain files (no hostile bytes) are never refused: the native path is exercised."""
    lines = [",".join(GENERIC_HEADER)] + [
        f"{ref},2024-04-01 10:00:00,350001,单位,6222,行,{amount},{remark},online"
        for ref, amount, remark in rows
    ]
    assert assert_same(("\n".join(lines) + "\n").encode("gbk"), size)


# ------------------------------------------------------------------ through PostgreSQL

ACCOUNT = "35000188110599001"


async def _stored(session: AsyncSession) -> list[tuple[Any, ...]]:
    rows = await session.execute(
        text(
            """
            SELECT dedupe_key, bank_ref, account_no, direction, amount, currency, booked_at,
                   value_date, payer_name, payer_account, payer_bank, remark, channel, outcome,
                   reason
              FROM bank_transactions ORDER BY id
            """
        )
    )
    out = [tuple(r) for r in rows]
    await session.commit()
    return out


async def _forget(session: AsyncSession) -> None:
    await session.execute(
        text(
            "TRUNCATE match_work, statement_duplicates, review_cases, payment_allocations, "
            "bank_transactions CASCADE"
        )
    )
    await session.commit()


def _statement_file() -> bytes:
    lines = [",".join(GENERIC_HEADER)]
    for i in range(40):
        account = ACCOUNT if i % 3 else "62220000000001"
        remark = ["f54yxn", "付货款 K7M2QP", "'guarded", "=x", "", "带，逗号"][i % 6]
        amount = ["110.00", "4800", "0.5", "1200.5", "007", "12.5"][i % 6]
        ref = f"R{i % 35}" if i % 7 else ""  # some repeated, some without a reference
        lines.append(
            f'"{ref}","2024-04-0{1 + i % 3} 1{i % 10}:00:00","{account}","单位{i % 4}",'
            f'"6222{i:04d}","工商银行","{amount}","{remark}","{["online", "网银", ""][i % 3]}"'
        )
    lines.append('"合计","","","","","","99.00","",""')
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


async def test_a_native_import_stores_what_the_python_path_stores(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_supplier(session, settlement_account=ACCOUNT, other_accounts=("62220000000001",))
    await session.commit()
    data = _statement_file()
    parsed = open_statement(io.BytesIO(data), native=True)
    assert parsed.batches is not None  # the file does go native

    results = {}
    stored = {}
    for native in (True, False):
        monkeypatch.setattr(get_settings(), "import_native", native)
        result = await import_statement(
            io.BytesIO(data), filename="n.csv", actor_sub="importer:test", batch_size=7
        )
        counts = (
            await session.execute(
                text(
                    "SELECT lines_total, lines_new, lines_duplicate, lines_ignored, credit_total "
                    "FROM statements WHERE id = :id"
                ),
                {"id": result.statement_id},
            )
        ).one()
        await session.commit()
        results[native] = (
            result.lines_total,
            result.lines_new,
            result.lines_duplicate,
            result.lines_ignored,
            tuple(counts),
        )
        stored[native] = await _stored(session)
        await _forget(session)
    assert results[True] == results[False]
    assert stored[True] == stored[False]
    assert len(stored[True]) > 20
    assert results[True][4][4] > Decimal(0)


async def test_a_native_import_fails_at_the_same_line_with_the_rows_before_it(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.payments.importer import StatementImportFailed

    await make_supplier(session, settlement_account=ACCOUNT, other_accounts=("62220000000001",))
    await session.commit()
    lines = [",".join(GENERIC_HEADER)] + [
        f"R{i},2024-04-01 10:00:00,{ACCOUNT},单位,6222,行,{'12.345' if i == 11 else '10'},x,online"
        for i in range(20)
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    outcomes = {}
    for native in (True, False):
        monkeypatch.setattr(get_settings(), "import_native", native)
        with pytest.raises(StatementImportFailed) as raised:
            await import_statement(
                io.BytesIO(data), filename="bad.csv", actor_sub="importer:test", batch_size=5
            )
        extra = dict(raised.value.extra)
        extra.pop("statement_id")
        outcomes[native] = (str(raised.value), raised.value.code, extra, await _stored(session))
        await _forget(session)
    assert outcomes[True] == outcomes[False]
    assert outcomes[True][2]["lines_total"] == 11


async def test_the_api_import_of_quoted_lines_goes_native(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """The tests' `bank_csv` quotes every field: such files take the native path."""
    from tests.payments.helpers import bank_csv, import_rows

    rows = [{"ref": f"R{i}", "account": ACCOUNT, "amount": "10", "remark": "x"} for i in range(5)]
    assert open_statement(io.BytesIO(bank_csv(rows)), native=True).batches is not None
    await make_supplier(session, settlement_account=ACCOUNT)
    await session.commit()
    first = await import_rows(payments_client, rows)
    second = await import_rows(payments_client, rows)
    assert (first["lines_new"], second["lines_duplicate"]) == (5, 5)


def _last_error_code(data: bytes, size: int, limits: Limits) -> str | None:
    batches = native_batches(data, size, limits)
    assert batches is not None
    error = batches[-1][1]
    return None if error is None else error[1]


@pytest.mark.parametrize("size", [1, 4, 5000])
def test_the_row_and_blank_row_limits_fail_at_the_same_row(size: int) -> None:
    plain = "R{},2024-04-01 10:00:00,350001,单位,6222,行,10,x,online"
    lines = [",".join(GENERIC_HEADER)] + [plain.format(i) for i in range(20)]
    data = ("\n".join(lines) + "\n").encode("gbk")
    assert assert_same(data, size, Limits(rows=10))
    assert _last_error_code(data, size, Limits(rows=10)) == "too_many_rows"
    blanks = [*lines[:6], ",,,", "", " , ", *lines[6:]]
    data = ("\n".join(blanks) + "\n").encode("gbk")
    assert assert_same(data, size, Limits(blank_rows=2))
    assert _last_error_code(data, size, Limits(blank_rows=2)) == "too_many_blank_rows"
    assert assert_same(data, size, Limits(blank_rows=3))


def test_a_line_longer_than_arrows_default_block_is_read() -> None:
    remark = "长" * 150_000  # 300,000 GBK bytes, 450,000 as UTF-8
    lines = [",".join(GENERIC_HEADER), f"R1,2024-04-01 10:00:00,350001,单位,6222,行,10,{remark},"]
    data = ("\n".join(lines) + "\n").encode("gbk")
    assert assert_same(data, 10, Limits(cell_chars=400_000))
