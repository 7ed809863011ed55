"""Limits on what one statement file may cost (rows, cell length, XML elements, uncompressed
size, blank rows), enforced while the file is streamed: a hostile or broken file is refused as
soon as it passes one, never after it has been read whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from .models import StatementLine, StatementParseError

LIMIT_CODES = frozenset(
    {"too_many_rows", "cell_too_long", "too_many_elements", "uncompressed_too_large"}
)
"""Parse-error codes of a file too large for the limits (HTTP 413); other codes are 422."""


@dataclass(frozen=True)
class Limits:
    rows: int = 2_000_000
    """Data rows (CSV/XLSX), `:61:` lines (MT940), entries' lines (CAMT); XLSX shared strings."""
    cell_chars: int = 131_072
    """Characters of one cell (CSV/XLSX) or of one physical line (MT940)."""
    xml_elements: int = 5_000_000
    """XML elements of a CAMT file or of an XLSX part."""
    uncompressed_bytes: int = 200 * 1024 * 1024
    """Declared uncompressed size of all the parts of an XLSX file."""
    blank_rows: int = 10_000
    """Consecutive empty rows/lines (before the header or between rows)."""


def too_many_rows(limits: Limits) -> StatementParseError:
    return StatementParseError(
        f"文件记录数超过上限（{limits.rows} 条），请按日期拆分后分别导入", code="too_many_rows"
    )


def cell_too_long(limits: Limits, line_no: int | None = None) -> StatementParseError:
    return StatementParseError(
        f"单元格或行的长度超过上限（{limits.cell_chars} 个字符），不是正常的银行对账单",
        line_no=line_no,
        code="cell_too_long",
    )


def too_many_elements(limits: Limits) -> StatementParseError:
    return StatementParseError(
        f"XML 元素数量超过上限（{limits.xml_elements} 个），不是正常的对账单",
        code="too_many_elements",
    )


def uncompressed_too_large(limits: Limits) -> StatementParseError:
    return StatementParseError(
        f"XLSX 文件解压后超过上限（{limits.uncompressed_bytes} 字节），请按日期拆分后分别导入",
        code="uncompressed_too_large",
    )


def too_many_blank_rows(limits: Limits) -> StatementParseError:
    return StatementParseError(
        f"连续空行超过上限（{limits.blank_rows} 行），不是正常的银行对账单",
        code="too_many_blank_rows",
    )


MAX_AMOUNT = Decimal("99999999999999.99")  # NUMERIC(16,2)


def check_line(line: StatementLine) -> None:
    """A line's amount must fit NUMERIC(16,2) and its booking time lie in the years 1970–2999
    (a far-off time overflows once converted to UTC)."""
    if abs(line.amount) > MAX_AMOUNT:
        raise StatementParseError(
            f"金额“{line.amount}”超出系统允许的范围", line_no=line.line_no, code="bad_amount"
        )
    if line.booked_at is not None and not 1970 <= line.booked_at.year <= 2999:
        raise StatementParseError(
            f"交易时间“{line.booked_at:%Y-%m-%d %H:%M:%S}”超出允许范围（1970 年至 2999 年）",
            line_no=line.line_no,
            code="bad_datetime",
        )


def within_limits(lines: Iterable[StatementLine]) -> Iterator[StatementLine]:
    """Lines that pass `check_line`; another line fails the file."""
    for line in lines:
        check_line(line)
        yield line
