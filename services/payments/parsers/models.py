"""The parsers' output: one normalised bank statement line (银行流水) per transaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One booked transaction of a bank statement, as the bank gave it.

    `payer_*` fields hold the counterparty (对方): the payer for credits, the payee for debits.
    """

    line_no: int
    """1-based record number: data row for CSV/XLSX (header and empty rows not counted),
    produced line for MT940/CAMT (unique within the file)."""
    account_no: str
    bank_ref: str | None
    direction: str
    amount: Decimal
    currency: str
    booked_at: datetime | None
    value_date: date | None
    payer_name: str | None
    payer_account: str | None
    payer_bank: str | None
    remark: str | None
    channel: str | None


class StatementParseError(Exception):
    """A statement file that cannot be read (文件无法解析); `message` is Chinese, for the clerk."""

    def __init__(
        self, message: str, *, line_no: int | None = None, code: str = "statement_unreadable"
    ) -> None:
        self.message = message
        self.line_no = line_no
        self.code = code
        super().__init__(f"第 {line_no} 条记录：{message}" if line_no is not None else message)


@dataclass
class ParsedStatement:
    format: str
    profile: str | None
    lines: Iterator[StatementLine]
    batches: Any = None
    """CSV only, when asked for (`open_statement(native=True)`) and possible: the data rows as
    Arrow tables (`native.Batches`: `batches(size)` yields `(table, error)`), the same records
    and errors as `dedupe_keys(within_limits(lines))`. Consume `lines` or `batches`, not both."""


LINE_COLUMNS = (
    "line_no",
    "dedupe_key",
    "bank_ref",
    "account_no",
    "direction",
    "amount",
    "currency",
    "booked_at",
    "value_date",
    "payer_name",
    "payer_account",
    "payer_bank",
    "remark",
    "channel",
)
"""A stored line's columns as the importer COPYs them (`repository.IMPORT_COLUMNS`), in order."""


def line_record(line: StatementLine, key: str) -> tuple[Any, ...]:
    """One line with its dedupe key as a row of `LINE_COLUMNS`."""
    return (
        line.line_no,
        key,
        line.bank_ref,
        line.account_no,
        line.direction,
        line.amount,
        line.currency,
        line.booked_at,
        line.value_date,
        line.payer_name,
        line.payer_account,
        line.payer_bank,
        line.remark,
        line.channel,
    )
