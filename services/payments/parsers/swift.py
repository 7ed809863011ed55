"""SWIFT MT940 customer statements, read tag by tag.

The file is split into statement blocks (`:20:` … `-`) as it is read, and each block is read on
its own: memory is bounded by one statement (one account, one day), not by the file.

The tags are read here rather than by the `mt-940` package: that library starts a new
transaction only when the previous `:61:` carries a transaction type code, cuts dot-decimal
amounts to whole units, glues a statement-level `:86:` onto the last transaction, and logs
transaction text. Every `:61:` gives exactly one line; the `:61:` tags of a block are counted
independently of the reader and the file is refused if the counts differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from .limits import Limits, too_many_rows
from .models import StatementLine, StatementParseError
from .streams import iter_text_lines, text_stream
from .values import SHANGHAI

# :86: structured subfields (/NAME/…/ACCT/…/REMI/…) → StatementLine field.
SUBFIELDS = {
    "NAME": "payer_name",
    "ORDP": "payer_name",
    "ACCT": "payer_account",
    "IBAN": "payer_account",
    "BANK": "payer_bank",
    "BNKN": "payer_bank",
    "REMI": "remark",
    "USTD": "remark",
}
_SUBFIELD_RE = re.compile(r"/({})/".format("|".join(SUBFIELDS)))
_NO_REF = {"", "NONREF", "NONE"}

# :61: debit/credit mark → direction. A reversal of credit (RC) takes money out again, so it is a
# debit for us; a reversal of debit (RD) brings money back in, a credit. EC/ED: expected (some
# banks' spelling of the same marks).
DIRECTIONS = {"C": "credit", "D": "debit", "RC": "debit", "RD": "credit", "EC": "credit"}
DIRECTIONS["ED"] = "debit"

_TAG_RE = re.compile(r"^:(\d\d[A-Z]?|NS):")  # NS: a bank's non-standard field (ignored)
# date YYMMDD, optional entry date MMDD, mark, optional funds code (third letter of the
# currency), amount with a decimal comma (or a dot), then the rest (type code, references)
_STATEMENT_LINE_RE = re.compile(
    r"^(?P<date>\d{6})(?P<entry>\d{4})?\s*(?P<mark>RC|RD|EC|ED|C|D)(?P<funds>[A-Z])?"
    r"(?P<amount>\d[\d.,]*)(?P<rest>.*)$",
    re.DOTALL,
)
_TYPE_CODE_RE = re.compile(r"^(?:[NF][A-Z0-9]{3}|S\d{3})")
_BALANCE_RE = re.compile(r"^[CD]\d{6}(?P<currency>[A-Z]{3})")
# German structured :86: (GVC, `166?00GUTSCHRIFT?20...`): a three-digit code then ?NN subfields
_GVC_RE = re.compile(r"^\d{3}\?")
_GVC_FIELD_RE = re.compile(r"\?(\d\d)")
_STATEMENT_END_TAGS = {"62F", "62M", "62", "64", "65"}
CURRENCIES = frozenset(
    (
        "CNY",
        "EUR",
        "USD",
        "HUF",
        "GBP",
        "CHF",
        "JPY",
        "HKD",
        "PLN",
        "CZK",
        "SEK",
        "NOK",
        "DKK",
        "RUB",
        "AUD",
        "CAD",
        "SGD",
        "RON",
        "BGN",
        "TRY",
        "NZD",
        "MOP",
        "TWD",
        "KRW",
        "THB",
        "MYR",
        "IDR",
        "INR",
        "ZAR",
        "HRK",
        "ISK",
        "ILS",
        "MXN",
        "BRL",
        "AED",
        "SAR",
    )
)
_CURRENCY_SUFFIX_RE = re.compile(r"(?:[/ ]|(?<=\d))(?P<ccy>[A-Z]{3})$")


def _join_wrapped(text: str) -> str:
    """Physical lines of a wrapped field, joined with one space (a line break separates words:
    `PAYMENT FOR ORDER` + `FA4XY2` must not become `ORDERFA4XY2`)."""
    parts = [part.strip() for part in text.replace("\r", "").split("\n")]
    return " ".join(part for part in parts if part)


def _parse_gvc(text: str) -> dict[str, str | None]:
    """German `:86:` GVC form: ?00 booking text, ?20–?29 and ?60–?63 purpose, ?30 bank code,
    ?31 account, ?32–?33 name. Line breaks inside are not significant (fields are `?NN`)."""
    joined = text.replace("\r", "").replace("\n", "")
    pieces = _GVC_FIELD_RE.split(joined)
    subfields: list[tuple[int, str]] = [
        (int(number), value) for number, value in zip(pieces[1::2], pieces[2::2], strict=True)
    ]
    purpose = [v.strip() for n, v in subfields if 20 <= n <= 29 or 60 <= n <= 63]
    names = "".join(v for n, v in subfields if n in (32, 33)).strip()  # ?33 continues ?32
    account = next((v.strip() for n, v in subfields if n == 31 and v.strip()), None)
    bank = next((v.strip() for n, v in subfields if n == 30 and v.strip()), None)
    booking_text = next((v.strip() for n, v in subfields if n == 0 and v.strip()), None)
    remark = " ".join(p for p in purpose if p) or booking_text
    return {
        "payer_name": names or None,
        "payer_account": account.replace(" ", "") if account else None,
        "payer_bank": bank,
        "remark": remark or None,
    }


def parse_details(text: str | None) -> dict[str, str | None]:
    """`/NAME/x/ACCT/y/REMI/z` or the German `166?00…?20…?32…` form → fields; unstructured text
    is all remark. Wrapped lines are joined with a space."""
    fields: dict[str, str | None] = dict.fromkeys(
        ("payer_name", "payer_account", "payer_bank", "remark")
    )
    if not text:
        return fields
    if _GVC_RE.match(text.lstrip()):
        return _parse_gvc(text.lstrip())
    joined = _join_wrapped(text)
    parts = _SUBFIELD_RE.split(joined)
    if len(parts) < 3 or parts[0].strip():
        fields["remark"] = joined or None
        return fields
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        target = SUBFIELDS[key]
        value = value.strip()
        if value and fields.get(target) is None:
            fields[target] = value
    return fields


def normalize_account(identification: str | None) -> str:
    """`:25:` → the account as the bank's CSV export spells it: a currency suffix (`/CNY`,
    ` EUR`, `123EUR`) and a bank-code/BIC prefix (`BANKCNBJ/`) removed, blanks inside (IBAN
    groups) dropped."""
    text = _join_wrapped(identification or "").strip().upper()
    match = _CURRENCY_SUFFIX_RE.search(text)
    if match and match.group("ccy") in CURRENCIES and match.start() > 0:
        text = text[: match.start()].rstrip("/ ")
    text = text.rsplit("/", 1)[-1]
    return re.sub(r"\s+", "", text)


def parse_mt940_amount(raw: str, line_no: int) -> Decimal:
    """`20000,00`, `5,5`, `100,` and the dot form `121189.65`; more than two decimals only when
    they are zeros (`8,850`)."""
    text = raw.strip()
    if text.count(",") + text.count(".") > 1:
        raise StatementParseError(f"MT940 金额“{text}”无效", line_no=line_no, code="bad_amount")
    text = text.replace(",", ".").rstrip(".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise StatementParseError(
            f"MT940 金额“{raw}”无效", line_no=line_no, code="bad_amount"
        ) from None
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise StatementParseError(
            f"MT940 金额“{raw}”超过两位小数", line_no=line_no, code="bad_amount"
        )
    return cents


@dataclass
class _Block:
    first_line: int
    lines: list[str] = field(default_factory=list)


def _blocks(head: bytes, stream: BinaryIO, encoding: str, limits: Limits) -> Iterator[_Block]:
    """Each statement block, with the file line number of its `:20:`."""
    block: _Block | None = None
    text = text_stream(head, stream, encoding)
    with text:
        lines = iter_text_lines(text, encoding, limits.cell_chars)
        for number, line in enumerate(lines, start=1):
            stripped = line.rstrip("\r\n")
            if stripped.startswith(":20:"):
                if block is not None and block.lines:
                    yield block
                block = _Block(number)
            if stripped.startswith("-") and (
                stripped.strip("-}") == "" or stripped.startswith("-}")  # `-}{5:{CHK:…}}`
            ):
                if block is not None and block.lines:
                    yield block
                block = None
                continue
            if block is not None:
                block.lines.append(stripped)
                if len(block.lines) > limits.rows:  # one statement block is held whole
                    raise too_many_rows(limits)
    if block is not None and block.lines:
        yield block


def _tags(block: _Block) -> Iterator[tuple[str, str, int]]:
    """(tag, value with its continuation lines, file line number) of each field of a block."""
    tag: str | None = None
    value: list[str] = []
    at = block.first_line
    for offset, line in enumerate(block.lines):
        match = _TAG_RE.match(line)
        if match:
            if tag is not None:
                yield tag, "\n".join(value), at
            tag = match.group(1)
            value = [line[match.end() :]]
            at = block.first_line + offset
        elif tag is not None:
            value.append(line)
    if tag is not None:
        yield tag, "\n".join(value), at


@dataclass
class _Pending:
    statement_line: str
    file_line: int
    details: str | None = None


def read_mt940(
    head: bytes, stream: BinaryIO, encoding: str, limits: Limits | None = None
) -> Iterator[StatementLine]:
    limits = limits or Limits()
    line_no = 0
    found = False
    for block in _blocks(head, stream, encoding, limits):
        found = True
        expected = sum(1 for line in block.lines if line.startswith(":61:"))
        produced = 0
        for line in _block_lines(block, line_no):
            produced += 1
            line_no = line.line_no
            if line_no > limits.rows:
                raise too_many_rows(limits)
            yield line
        if produced != expected:  # pragma: no cover - a reader bug: never import a wrong file
            raise StatementParseError(
                f"MT940 对账单（自文件第 {block.first_line} 行起）有 {expected} 个 :61: 交易，"
                f"只读出 {produced} 笔",
                code="bad_mt940",
            )
    if not found:
        raise StatementParseError("MT940 文件中没有 :20: 开头的对账单", code="bad_mt940")


def _block_lines(block: _Block, line_no: int) -> Iterator[StatementLine]:
    account = ""
    currency = "CNY"
    pending: list[_Pending] = []
    current: _Pending | None = None
    for tag, value, at in _tags(block):
        if tag == "25":
            account = normalize_account(value)
        elif tag in ("60F", "60M", "60"):
            match = _BALANCE_RE.match(value.strip())
            if match:
                currency = match.group("currency")
        elif tag == "61":
            current = _Pending(value, at)
            pending.append(current)
        elif tag == "86":
            if current is not None and current.details is None:
                current.details = value
            # else: statement-level information (after :62F:/:64:/:65:), no transaction's text
        elif tag in _STATEMENT_END_TAGS:
            current = None
    if not account:
        raise StatementParseError(
            f"MT940 对账单缺少 :25: 账号（自文件第 {block.first_line} 行起）",
            code="missing_account",
        )
    for item in pending:
        line_no += 1
        yield _line(item, account, currency, line_no)


def _entry_date(value_date: date, entry: str | None) -> date:
    """The booking date MMDD, in the value date's year (or the adjacent one across New Year)."""
    if not entry:
        return value_date
    month, day = int(entry[:2]), int(entry[2:])
    year = value_date.year
    if month == 12 and value_date.month == 1:
        year -= 1
    elif month == 1 and value_date.month == 12:
        year += 1
    return date(year, month, day)


def _line(item: _Pending, account: str, currency: str, line_no: int) -> StatementLine:
    first, _, supplementary = item.statement_line.partition("\n")
    match = _STATEMENT_LINE_RE.match(first.strip())
    if match is None:
        raise StatementParseError(
            f"MT940 :61: 交易行格式错误（文件第 {item.file_line} 行）",
            line_no=line_no,
            code="bad_mt940",
        )
    try:
        value_date = datetime.strptime(match.group("date"), "%y%m%d").date()
        booked = _entry_date(value_date, match.group("entry"))
    except ValueError:
        raise StatementParseError(
            f"MT940 :61: 日期无效（文件第 {item.file_line} 行）", line_no=line_no, code="bad_date"
        ) from None
    amount = parse_mt940_amount(match.group("amount"), line_no)
    rest = match.group("rest")
    if not rest.upper().startswith("NONREF"):
        type_code = _TYPE_CODE_RE.match(rest)
        if type_code:
            rest = rest[type_code.end() :]
    _customer, _, bank_reference = rest.partition("//")
    reference = bank_reference.strip()
    details = parse_details(item.details)
    remark = details["remark"]
    if remark is None and supplementary.strip():
        remark = _join_wrapped(supplementary)
    return StatementLine(
        line_no=line_no,
        account_no=account,
        bank_ref=None if reference.upper() in _NO_REF else reference,
        direction=DIRECTIONS[match.group("mark")],
        amount=amount,
        currency=currency,
        booked_at=datetime.combine(booked, time(), SHANGHAI),
        value_date=value_date,
        payer_name=details["payer_name"],
        payer_account=details["payer_account"],
        payer_bank=details["payer_bank"],
        remark=remark,
        channel=None,
    )
