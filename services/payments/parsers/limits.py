"""Limits on what one statement file may cost (rows, cell length, XML elements, uncompressed
size, blank rows), enforced while the file is streamed: a hostile or broken file is refused as
soon as it passes one, never after it has been read whole."""

from __future__ import annotations

from dataclasses import dataclass

from .models import StatementParseError

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
