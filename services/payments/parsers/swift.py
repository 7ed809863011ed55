"""SWIFT MT940 customer statements, parsed with the `mt-940` package.

The file is split into statement blocks (`:20:` … `-`) as it is read, and each block is parsed
on its own: memory is bounded by one statement (one account, one day), not by the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any, BinaryIO

import mt940

from shared.money import round_cents

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
# debit for us; a reversal of debit (RD) brings money back in, a credit.
DIRECTIONS = {"C": "credit", "D": "debit", "RC": "debit", "RD": "credit"}


def parse_details(text: str | None) -> dict[str, str | None]:
    """`/NAME/x/ACCT/y/REMI/z` → fields; unstructured text is all remark. Wrapped lines of the
    SWIFT 65-character format are joined without adding characters."""
    fields: dict[str, str | None] = dict.fromkeys(
        ("payer_name", "payer_account", "payer_bank", "remark")
    )
    if not text:
        return fields
    joined = text.replace("\r", "").replace("\n", "")
    parts = _SUBFIELD_RE.split(joined)
    if len(parts) < 3 or parts[0].strip():
        fields["remark"] = joined.strip() or None
        return fields
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        target = SUBFIELDS[key]
        value = value.strip()
        if value and fields.get(target) is None:
            fields[target] = value
    return fields


def _account(identification: str | None) -> str:
    """`:25:` may carry `BANKCODE/ACCOUNT`; the account is the part after the last slash."""
    text = (identification or "").strip()
    return text.rsplit("/", 1)[-1].strip()


def _day(value: Any) -> date | None:
    if value is None:
        return None
    return date(value.year, value.month, value.day)


def _blocks(head: bytes, stream: BinaryIO, encoding: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each statement block."""
    block: list[str] = []
    first = 0
    text = text_stream(head, stream, encoding)
    with text:
        for number, line in enumerate(iter_text_lines(text, encoding), start=1):
            stripped = line.rstrip("\r\n")
            if stripped.startswith(":20:") and block:
                yield first, "\n".join(block)
                block = []
            if stripped.startswith(":20:"):
                first = number
            if stripped.startswith("-") and stripped.strip("-}") == "":
                if block:
                    yield first, "\n".join(block)
                block = []
                continue
            if block or stripped.startswith(":20:"):
                block.append(stripped)
    if block:
        yield first, "\n".join(block)


def read_mt940(head: bytes, stream: BinaryIO, encoding: str) -> Iterator[StatementLine]:
    line_no = 0
    found = False
    for first_line, block in _blocks(head, stream, encoding):
        found = True
        statement = mt940.models.Transactions()
        try:
            statement.parse(block)
        except Exception as exc:  # the library raises assorted errors on malformed input
            raise StatementParseError(
                f"MT940 报文格式错误（自文件第 {first_line} 行起的对账单）：{exc}",
                code="bad_mt940",
            ) from exc
        account = _account(statement.data.get("account_identification"))
        if not account:
            raise StatementParseError(
                f"MT940 对账单缺少 :25: 账号（自文件第 {first_line} 行起）", code="missing_account"
            )
        for transaction in statement:
            line_no += 1
            yield _line(transaction.data, account, line_no)
    if not found:
        raise StatementParseError("MT940 文件中没有 :20: 开头的对账单", code="bad_mt940")


def _line(data: dict[str, Any], account: str, line_no: int) -> StatementLine:
    status = str(data.get("status") or "").upper()
    direction = DIRECTIONS.get(status)
    if direction is None:
        raise StatementParseError(
            f"MT940 :61: 借贷标记“{status}”无法识别", line_no=line_no, code="bad_direction"
        )
    amount_obj = data.get("amount")
    if amount_obj is None:
        raise StatementParseError("MT940 :61: 缺少金额", line_no=line_no, code="bad_amount")
    amount = abs(amount_obj.amount)
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -2 or amount == 0:
        raise StatementParseError(f"MT940 金额“{amount}”无效", line_no=line_no, code="bad_amount")
    reference = (data.get("bank_reference") or "").strip()
    details = parse_details(data.get("transaction_details"))
    booked = _day(data.get("entry_date")) or _day(data.get("date"))
    return StatementLine(
        line_no=line_no,
        account_no=account,
        bank_ref=None if reference.upper() in _NO_REF else reference,
        direction=direction,
        amount=round_cents(amount),
        currency=str(data.get("currency") or amount_obj.currency or "CNY").upper(),
        booked_at=None if booked is None else datetime.combine(booked, time(), SHANGHAI),
        value_date=_day(data.get("date")),
        payer_name=details["payer_name"],
        payer_account=details["payer_account"],
        payer_bank=details["payer_bank"],
        remark=details["remark"],
        channel=None,
    )
