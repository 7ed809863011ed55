"""Server-side CSV import (services.payments.fastcsv) against the Python path: the same files
imported both ways store the same bank lines (every column but ids and timestamps), give the same
counts, the same errors and the same batch notifications; files the fast path cannot prove
identical are declined before anything is stored and imported by the Python path."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import fastcsv
from services.payments.importer import StatementImportFailed, import_statement
from services.payments.parsers.values import CHANNELS
from shared.settings import get_settings
from tests.factories import make_supplier
from tests.payments.helpers import FIXTURES

MINE = "35000188110599001"
OTHER = "62220000000001"  # a supplier's account, not its settlement account
UNKNOWN = "99999999999"

HEADER = [
    "交易流水号",
    "交易时间",
    "收款账号",
    "对方户名",
    "对方账号",
    "对方开户行",
    "贷方发生额",
    "借方发生额",
    "币种",
    "摘要",
    "交易渠道",
    "余额",
]
"""generic_cn with a debit and a currency column, and a column no field uses."""

SPLIT_HEADER = [
    "本方账号",
    "交易日期",
    "借方发生额",
    "贷方发生额",
    "对方户名",
    "对方账号",
    "对方行名",
    "摘要",
    "用途",
    "流水号",
    "币种",
    "交易渠道",
]
"""cn_debit_credit without a time column: the remark and its extra (用途) are joined."""

SNAPSHOT = text(
    """
    SELECT s.seq, t.dedupe_key, t.bank_ref, t.account_no, t.direction, t.amount, t.currency,
           t.booked_at, t.value_date, t.payer_name, t.payer_account, t.payer_bank, t.remark,
           t.channel, t.outcome, t.reason, t.processed_at IS NULL AS unprocessed
      FROM bank_transactions t
      JOIN (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM statements) s
        ON s.id = t.statement_id
     ORDER BY t.id
    """
)
STATEMENTS = text(
    """
    SELECT format, profile, status, lines_total, lines_new, lines_duplicate, lines_ignored, error,
           finished_at IS NULL AS unfinished
      FROM statements ORDER BY id
    """
)
RESET = text("TRUNCATE bank_transactions, match_queue, statements RESTART IDENTITY CASCADE")


@pytest.fixture
async def accounts(session: AsyncSession) -> None:
    await make_supplier(session, settlement_account=MINE, other_accounts=(OTHER,))
    await session.commit()


class Outcomes:
    """What `fastcsv.import_csv` returned during a run (wrapped, not replaced)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[fastcsv.FastImport] = []
        original = fastcsv.import_csv

        async def recording(*args: Any, **kwargs: Any) -> fastcsv.FastImport:
            outcome = await original(*args, **kwargs)
            self.seen.append(outcome)
            return outcome

        monkeypatch.setattr(fastcsv, "import_csv", recording)


async def run_imports(
    files: Sequence[bytes], batch_size: int, profile: str | None
) -> list[tuple[Any, ...]]:
    """Import the files in order; per file what the caller sees (result or failure) and the
    statements notified after each committed batch."""
    seen: list[tuple[Any, ...]] = []
    for content in files:
        notified: list[int] = []
        try:
            result = await import_statement(
                io.BytesIO(content),
                filename="statement.csv",
                actor_sub="test",
                profile=profile,
                batch_size=batch_size,
                on_batch_committed=notified.append,
            )
        except StatementImportFailed as exc:
            extra = {k: v for k, v in (exc.extra or {}).items() if k != "statement_id"}
            seen.append(("failed", str(exc), exc.code, extra, len(notified)))
        else:
            seen.append(
                (
                    result.status,
                    result.format,
                    result.profile,
                    result.lines_total,
                    result.lines_new,
                    result.lines_duplicate,
                    result.lines_ignored,
                    len(notified),
                )
            )
    return seen


async def stored(session: AsyncSession) -> tuple[list[Any], list[Any]]:
    lines = [tuple(r) for r in await session.execute(SNAPSHOT)]
    statements = [tuple(r) for r in await session.execute(STATEMENTS)]
    await session.commit()
    return lines, statements


async def compare(
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    files: Sequence[bytes],
    *,
    batch_size: int = 7,
    profile: str | None = None,
) -> tuple[list[fastcsv.FastImport], list[Any]]:
    """Import `files` with the Python path, then again (on an emptied database) with the fast
    path; assert both give the same; return the fast path's outcomes and the stored lines."""
    settings = get_settings()
    outcomes = Outcomes(monkeypatch)
    monkeypatch.setattr(settings, "csv_server_side", False)
    python_seen = await run_imports(files, batch_size, profile)
    python_lines, python_statements = await stored(session)
    assert outcomes.seen == []
    await session.execute(RESET)
    await session.commit()
    monkeypatch.setattr(settings, "csv_server_side", True)
    fast_seen = await run_imports(files, batch_size, profile)
    fast_lines, fast_statements = await stored(session)
    assert fast_seen == python_seen
    assert fast_statements == python_statements
    assert len(fast_lines) == len(python_lines)
    for fast_line, python_line in zip(fast_lines, python_lines, strict=True):
        assert fast_line == python_line
    assert len(outcomes.seen) == len(files)
    return outcomes.seen, fast_lines


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]], encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def row(
    ref: str,
    at: str = "2024-04-01 10:00:00",
    account: str = MINE,
    credit: str = "10.00",
    debit: str = "",
    currency: str = "",
    remark: str = "货款",
    channel: str = "网银",
    payer_name: str = "采购单位",
    payer_account: str = "6222020200001234567",
    payer_bank: str = "中国工商银行",
    balance: str = "",
) -> list[str]:
    return [
        ref,
        at,
        account,
        payer_name,
        payer_account,
        payer_bank,
        credit,
        debit,
        currency,
        remark,
        channel,
        balance,
    ]


def irregular_rows(*, gbk: bool) -> list[list[str]]:
    """Rows the SQL must hand to Python (or convert exactly), none of them an error."""
    rows = [
        row("X01", credit="1,234.50"),  # thousands separator
        row("X02", account='="35000188110599001"'),  # Excel text guard
        row("X03", payer_account="'0123"),
        row("X04", remark="", payer_name="", payer_bank="", channel=""),  # blank cells
        row("", remark="无流水号"),  # missing references, counted by occurrence
        row("", remark="无流水号"),
        row("X05", credit="", debit="50.00"),  # debit
        row("X06", credit="0", debit="5"),
        row("X07", credit="5", debit="0.00"),
        row("X08", currency="usd"),  # another currency
        row("X09", currency="HKD", credit="0012.5"),
        row("X10", account=UNKNOWN),
        row("X11", account=OTHER),
        row("X12", at="2024/04/01 10:00:00"),  # odd timestamps
        row("X13", at="2024-04-01 10:00"),
        row("X14", at="20240401"),
        row("X15", at="2024-04-01T10:00:00Z"),
        row("X16", at="1988-07-01 00:30:00"),  # Shanghai summer time: left to Python
        row("X17", at="1970-01-01 07:59:59+00:00"),
        row("X18", at="2024-04-01T10:00:00+08:00"),  # offsets
        row("X19", at="2024-04-01 10:00:00-05:30"),
        row("X20", at="2024-04-01 10:00:00+14:00"),
        row("X21", at="2024-04-01 10:00:00+15:00"),
        row("X22", at="2024-02-29 23:59:59"),
        row("X23", at="2024-04-01"),
        row("X24", at=""),
        row("X25", at=" 2024-04-01 10:00:00\t"),
        row("X26", remark="货款ａｂｃ１２３", payer_name="全角　名称"),  # full-width text
        row("X27 ", remark=" 前后空格 "),
        row("\tX28", credit=" 10.5 "),
        row("X29", credit="+5"),
        row("X30", credit="99999999999999.99"),
        row("X31", credit="00000000000000010"),  # 17 characters: plain
        row("X31b", credit="000000000000000010"),  # 18: left to Python
        row("X32", channel="ONLINE"),
        row("X33", channel="Counter"),
        row("X34", channel="跨行转账"),
        row("X35", channel="手机银行"),
        row("X36", channel=" atm "),
        row("X37", balance="=SUM(A1)"),  # a guard in a column no field uses
        row("X38", remark='付款"A",谢谢'),  # quoted by the writer
        row("X39", account=MINE + "\u3000"),  # Python's str.strip() removes it in keys
        row("X01", remark="same reference again"),  # a duplicate within the file
        row("", remark="无流水号"),
        row("X41", credit="0.01"),
        row("X42", at="2999-12-31 23:59:59"),
        row("X43", at="1992-01-01 00:00:00"),
        row("X44", at="1991-12-31 23:59:59"),
        row("X45", at="2023-02-28 12:00:00"),
        row("X46", at="2000-02-29 12:00:00"),
    ]
    if not gbk:
        rows += [
            row("X47", currency="ß"),  # upper() → SS
            row("X48", channel="ＡＴＭ"),
            row("X49", remark="emoji 😀"),
            row("X50", channel="\u212a"),  # KELVIN SIGN: lower() is ASCII
        ]
    return rows


def mixed_rows(n: int, seed: int, *, gbk: bool) -> list[list[str]]:
    """Mostly plain rows with the irregular ones spread among them."""
    rng = random.Random(seed)
    irregular = irregular_rows(gbk=gbk)
    rows = []
    for i in range(n):
        if i % 3 == 1:
            rows.append(list(irregular[(i // 3) % len(irregular)]))
            rows[-1][0] = rows[-1][0] and f"{rows[-1][0]}-{i // 3 // len(irregular)}"
            continue
        rows.append(
            row(
                f"P{i:06d}",
                at=f"20{rng.randint(0, 30):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                + rng.choice([" ", "T"])
                + f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
                + rng.choice(["", "", "+08:00", "-03:00"]),
                account=rng.choice([MINE, MINE, OTHER, UNKNOWN]),
                credit=rng.choice(["", "0"]) if i % 17 == 0 else str(rng.randint(1, 99999)),
                debit=str(rng.randint(1, 500)) + ".5" if i % 17 == 0 else "",
                currency=rng.choice(["", "", "CNY", "cny", "usd"]),
                remark=rng.choice(["货款", "fa4xy2", "付农产品货款", ""]),
                channel=rng.choice([*CHANNELS, "", "其他"]),
                payer_name=rng.choice(["采购单位", "", "某某中学"]),
            )
        )
    return rows


def plain_seen(outcomes: Sequence[fastcsv.FastImport]) -> None:
    assert all(o.handled for o in outcomes), [o.reason for o in outcomes]


async def test_the_bank_sample_goes_through_sql_and_stores_what_python_stores(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, accounts: None
) -> None:
    sample = (FIXTURES / "statement_bank_export.csv").read_bytes()
    outcomes, lines = await compare(session, monkeypatch, [sample, sample], batch_size=3)
    plain_seen(outcomes)
    assert outcomes[0].sql_rows > 0 and outcomes[0].sql_rows + outcomes[0].python_rows == 11
    assert len(lines) == 10


@pytest.mark.parametrize("encoding", ["gbk", "utf-8", "utf-8-sig"])
async def test_mixed_plain_and_irregular_rows_store_the_same_lines(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, accounts: None, encoding: str
) -> None:
    rows = mixed_rows(400, seed=len(encoding), gbk=encoding == "gbk")
    content = csv_bytes(HEADER, rows, encoding)
    # the file twice, then an overlapping part of it: duplicates across statements
    outcomes, lines = await compare(
        session, monkeypatch, [content, content, csv_bytes(HEADER, rows[100:250], encoding)]
    )
    plain_seen(outcomes)
    assert outcomes[0].sql_rows > 300 and outcomes[0].python_rows > 30
    assert outcomes[1].sql_rows == outcomes[0].sql_rows
    assert len(lines) > 300


async def test_every_irregular_row_alone_in_its_batch(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, accounts: None
) -> None:
    content = csv_bytes(HEADER, irregular_rows(gbk=False), "utf-8")
    outcomes, _ = await compare(session, monkeypatch, [content], batch_size=1)
    plain_seen(outcomes)


async def test_a_remark_and_its_extra_are_joined_as_python_joins_them(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, accounts: None
) -> None:
    rows = [
        [
            MINE,
            "2024-04-01 10:00:00",
            "",
            "10.00",
            "单位",
            "6222",
            "工行",
            r,
            e,
            f"S{i}",
            "",
            "柜面",
        ]
        for i, (r, e) in enumerate(
            [
                ("货款", "fa4xy2"),
                ("", "fa4xy2"),
                ("货款", ""),
                ("", ""),
                (" a ", " b "),
                ("x", "'y"),
            ]
        )
    ]
    content = csv_bytes(SPLIT_HEADER, rows, "gbk")
    outcomes, lines = await compare(session, monkeypatch, [content], batch_size=4)
    plain_seen(outcomes)
    assert outcomes[0].sql_rows == 5
    assert [line[12] for line in lines] == ["货款 fa4xy2", "fa4xy2", "货款", None, "a b", "x y"]


@pytest.mark.parametrize(
    ("broken", "at"),
    [
        (row("BAD", credit="十元"), 10),  # midway in a batch, plain rows after it
        (row("BAD", credit="十元"), 14),  # the first row of a batch
        (row("BAD", credit="12.345"), 1),
        (row("BAD", credit="100000000000000"), 9),  # beyond NUMERIC(16,2): within_limits
        (row("BAD", at="3000-01-01 00:00:00"), 9),
        (row("BAD", at="2023-02-29 10:00:00"), 9),
        (row("BAD", account=""), 9),
        (row("BAD", credit="5", debit="5"), 20),  # the last row
    ],
)
async def test_a_broken_row_fails_with_the_same_error_and_the_same_stored_lines(
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    accounts: None,
    broken: list[str],
    at: int,
) -> None:
    rows = [row(f"R{i}") if i % 4 else row("", remark="同一笔") for i in range(1, 21)]
    rows[at - 1] = broken
    content = csv_bytes(HEADER, rows, "gbk")
    outcomes, lines = await compare(session, monkeypatch, [content], batch_size=13)
    plain_seen(outcomes)
    assert outcomes[0].error is not None and outcomes[0].error.line_no == at
    assert len(lines) == at - 1


def lines_of(header: Sequence[str], body: str, encoding: str = "gbk") -> bytes:
    return (",".join(header) + "\n" + body).encode(encoding)


PLAIN = ",".join(row("R1"))
PLAIN2 = ",".join(row("R2"))
QUOTE_INSIDE = PLAIN.replace("货款", '货"款')  # csv reads it literally, PostgreSQL as a quote
QUOTED = ",".join(f'"{c}"' for c in row("R2"))
EMPTY = "," * (len(HEADER) - 1)


def csv_line(cells: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


# cells `clean_text` reads as nothing (Excel text guards around blanks), as something
GUARDS = csv_line(['=""', "'", " '\t", '="\'"', '=" \' " ', *[" "] * (len(HEADER) - 5)])
NOT_EMPTY = csv_line(['="x"', "'", "=", '="', *[""] * (len(HEADER) - 4)])
LONG = ",".join(row("R3", remark="长" * (1024 * 1024 + 1)))
# past the head the parser reads at once (a NUL or bad byte there fails before any import)
MANY = "".join(",".join(row(f"M{i:05d}")) + "\n" for i in range(2000))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ragged row", lines_of(HEADER, f"{PLAIN}\n{PLAIN2},extra\n")),
        ("short row", lines_of(HEADER, f"{PLAIN}\nR3,2024-04-01 10:00:00,{MINE},x\n")),
        ("quoted newline", lines_of(HEADER, f'{PLAIN}\n{PLAIN2[:-1]}"a\nb"\n')),
        ("end-of-data marker", lines_of(HEADER, f"{PLAIN}\n\\.\n{PLAIN2}\n")),
        ("blank-looking line", lines_of(HEADER, f"{PLAIN}\n \n{PLAIN2}\n")),
        ("quote inside a field", lines_of(HEADER, f"{PLAIN2}\n{QUOTE_INSIDE}\n")),
        ("lone carriage return", lines_of(HEADER, f"{PLAIN}\r{PLAIN2}\n")),
        ("mixed line ends", lines_of(HEADER, f"{PLAIN}\r\n{PLAIN2}\n")),
        ("NUL byte", lines_of(HEADER, f"{MANY}{PLAIN}\n{PLAIN2}\x00\n")),
        ("undecodable", lines_of(HEADER, f"{MANY}{PLAIN}\n").replace(b"R1,", b"R\xff,")),
        ("header after a blank line", b"\n" + lines_of(HEADER, f"{PLAIN}\n")),
        (
            "header with a quoted line break",
            lines_of(['"交易\n流水号"', *HEADER[1:]], f"{PLAIN}\n"),
        ),
        ("line longer than the csv field limit", lines_of(HEADER, f"{PLAIN}\n{LONG}\n{PLAIN2}\n")),
        ("time column", lines_of([*SPLIT_HEADER, "交易时间"], f"{PLAIN}\n")),
    ],
)
async def test_files_the_fast_path_cannot_prove_go_to_python_unchanged(
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    accounts: None,
    name: str,
    content: bytes,
) -> None:
    batch_size = 2 if len(content) < 10_000 else 300
    outcomes, _ = await compare(session, monkeypatch, [content], batch_size=batch_size)
    assert not outcomes[0].handled, name
    assert outcomes[0].reason


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("CRLF line ends", f"{','.join(HEADER)}\r\n{PLAIN}\r\n{PLAIN2}\r\n".encode("gbk")),
        ("no final line break", lines_of(HEADER, f"{PLAIN}\n{PLAIN2}")),
        ("header only", lines_of(HEADER, "")),
        ("blank lines", lines_of(HEADER, f"\n{PLAIN}\n\n\n{PLAIN2}\n\n")),
        ("blank CRLF lines", f"{','.join(HEADER)}\r\n\r\n{PLAIN}\r\n\r\n{PLAIN2}\r\n".encode()),
        ("rows of empty cells", lines_of(HEADER, f"{EMPTY}\n{PLAIN}\n{EMPTY}\n{PLAIN2}\n{EMPTY}")),
        ("rows of guards around nothing", lines_of(HEADER, f"{PLAIN}\n{GUARDS}\n{PLAIN2}\n")),
        ("guards around something", lines_of(HEADER, f"{PLAIN}\n{NOT_EMPTY}\n{PLAIN2}\n")),
        ("quoted header and cells", lines_of([f'"{h}"' for h in HEADER], f"{PLAIN}\n{QUOTED}\n")),
    ],
)
async def test_other_line_shapes_go_through_sql(
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    accounts: None,
    name: str,
    content: bytes,
) -> None:
    outcomes, _ = await compare(session, monkeypatch, [content], batch_size=2)
    assert outcomes[0].handled, (name, outcomes[0].reason)


def test_the_python_whitespace_set_is_what_strip_removes() -> None:
    spaces = fastcsv._python_whitespace()
    assert " \t\r\n\u3000\x85\xa0" in spaces or set(" \t\r\n\u3000\x85\xa0") <= set(spaces)
    assert all((c + "x" + c).strip() == "x" for c in spaces)


AMOUNTS = ["10", "10.5", "10.50", "0010.5", " 7 ", "1,234.56", "+5", "0.01", "99999999999999.99"]
AMOUNTS += ["00000000000000010", "000000000000000010", "'20", '="30"', "5\t"]


def random_moment(rng: random.Random) -> str:
    year = rng.choice([1970, 1985, 1988, 1991, 1992, 2000, 2024, 2038, 2100, 2999])
    month, day = rng.randint(1, 12), rng.randint(1, 28 if rng.random() < 0.8 else 31)
    day = min(
        day,
        [
            31,
            29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][month - 1],
    )
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    offset = f"{rng.choice('+-')}{rng.randint(0, 14):02d}:{rng.choice([0, 30, 45]):02d}"
    return rng.choice(
        [
            f"{year:04d}-{month:02d}-{day:02d} {clock}",
            f"{year:04d}-{month:02d}-{day:02d}T{clock}",
            f"{year:04d}-{month:02d}-{day:02d} {clock}{offset}",
            f"{year:04d}-{month:02d}-{day:02d}T{clock}{offset}",
            f"{year:04d}-{month:02d}-{day:02d}",
            f"{year:04d}/{month:02d}/{day:02d} {clock}",
            f"{year:04d}{month:02d}{day:02d}",
            f" {year:04d}-{month:02d}-{day:02d} {clock} ",
            f"{year:04d}-{month:02d}-{day:02d} {clock[:5]}",
            f"{year:04d}-{month:02d}-{day:02d} {clock}.5",
            "",
        ]
    )


def random_rows(n: int, seed: int, *, gbk: bool) -> list[list[str]]:
    """Random mixtures of valid cells, plain or not (each cell mostly plain), none an error."""
    rng = random.Random(seed)
    odd = [] if gbk else ["ß", "ＡＴＭ", "\u212a", "😀", "\u2028"]

    def pick(usual: Sequence[str], unusual: Sequence[str]) -> str:
        return rng.choice(usual if rng.random() < 0.85 or not unusual else unusual)

    rows = []
    for i in range(n):
        amount = pick(AMOUNTS[:4], AMOUNTS[4:])
        credit, debit = rng.choice([(amount, ""), ("", amount), (amount, "0"), ("0.00", amount)])
        ref = pick([f"R{i}", f"R{i % 50}"], [f" R{i} ", "", f"'R{i}"])
        if not gbk and rng.random() < 0.03:
            ref += "\u3000"
        rows.append(
            row(
                ref,
                at=random_moment(rng),
                account=pick([MINE, OTHER, UNKNOWN], [f" {MINE} ", f"'{MINE}"]),
                credit=credit,
                debit=debit,
                currency=pick(["", "CNY", "cny", "usd"], [" hkd ", *odd[:1]]),
                remark=pick(["货款", "fa4xy2", ""], [" 付款 ", "=x", *odd]),
                channel=pick([*CHANNELS, ""], ["ONLINE", "Atm", "其他", *odd]),
                payer_name=pick(["采购单位", "", "某某中学"], ["'单位"]),
                payer_account=pick(["6222020200001234567", ""], ['="0123"']),
                balance=pick(["", "1.00"], ["=A1"]),
            )
        )
    return rows


@pytest.mark.parametrize(("encoding", "seed"), [("utf-8", 1), ("gbk", 2), ("utf-8", 3)])
async def test_random_mixtures_store_the_same_lines(
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    accounts: None,
    encoding: str,
    seed: int,
) -> None:
    rows = random_rows(600, seed, gbk=encoding == "gbk")
    content = csv_bytes(HEADER, rows, encoding)
    outcomes, lines = await compare(session, monkeypatch, [content, content], batch_size=50)
    plain_seen(outcomes)
    assert outcomes[0].error is None
    assert outcomes[0].sql_rows > 150 and outcomes[0].python_rows > 150
    assert len(lines) > 400


async def test_line_numbers_and_batches_skip_the_rows_python_skips(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, accounts: None
) -> None:
    """Empty rows anywhere (runs of them across batch boundaries), then a broken row: the same
    line number in the error, the same lines stored before it."""
    body = []
    for i in range(1, 41):
        body.append(",".join(row(f"R{i}") if i % 3 else row("", remark="同一笔")))
        if i % 7 == 0:
            body += [EMPTY, GUARDS, ""] if i % 2 else [EMPTY]
    body.insert(55, ",".join(row("BAD", credit="十元")))
    content = lines_of(HEADER, "\n".join(body) + "\n")
    outcomes, lines = await compare(session, monkeypatch, [content], batch_size=6)
    plain_seen(outcomes)
    assert outcomes[0].error is not None and outcomes[0].error.line_no is not None
    assert len(lines) == outcomes[0].error.line_no - 1 > 30


async def test_too_many_empty_rows_go_to_python(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, accounts: None
) -> None:
    monkeypatch.setattr(fastcsv, "MAX_SKIPPED", 1)
    content = lines_of(HEADER, f"{PLAIN}\n{EMPTY}\n{PLAIN2}\n{EMPTY}\n")
    outcomes, lines = await compare(session, monkeypatch, [content], batch_size=2)
    assert not outcomes[0].handled and outcomes[0].reason == "2 empty rows"
    assert len(lines) == 2
