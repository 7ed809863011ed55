"""Bank statement parsers (银行对账单解析): CSV/XLSX exports, MT940 and CAMT.053, streamed.

Pure library, no database: `open_statement` turns an uploaded file into lazily produced
`StatementLine`s; `dedupe_keys` gives each line its duplicate-detection key. The importer
(`services.payments.statements`) stores the lines and the matcher reconciles them.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from .dedupe import dedupe_key, dedupe_keys
from .limits import LIMIT_CODES, Limits, within_limits
from .models import ParsedStatement, StatementLine, StatementParseError
from .profiles import PROFILES, CsvProfile
from .streams import HEAD_SIZE, detect_encoding, detect_swift_encoding, seekable_copy

__all__ = [
    "FORMATS",
    "LIMIT_CODES",
    "PROFILES",
    "CsvProfile",
    "Limits",
    "ParsedStatement",
    "StatementLine",
    "StatementParseError",
    "dedupe_key",
    "dedupe_keys",
    "detect_format",
    "open_statement",
    "within_limits",
]

FORMATS = ("csv", "xlsx", "xls", "mt940", "camt053")


def detect_format(head: bytes, filename: str | None = None) -> str:
    """Content sniffing on the first bytes: XML → camt053, `:20:` → mt940, zip → xlsx, OLE2
    (old binary Excel) → xls, else csv."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"<"):
        if b"camt.053" in head:
            return "camt053"
        raise StatementParseError(
            "不支持的 XML 文件：只支持 CAMT.053 对账单（camt.053 命名空间）", code="unknown_format"
        )
    if text.startswith((b":20:", b"{1:")) or b"\n:20:" in head:
        return "mt940"
    return "csv"


def open_statement(
    stream: BinaryIO,
    *,
    format: str | None = None,
    profile: str | None = None,
    filename: str | None = None,
    limits: Limits | None = None,
    native: bool = False,
) -> ParsedStatement:
    """Open a statement for lazy reading.

    The format is sniffed from the content when `format` is None; for CSV/XLSX the bank
    profile is detected from the header row when `profile` is None (MT940 and CAMT.053 have
    no column profiles: `profile` is ignored for them). Header problems raise
    StatementParseError here; row problems raise it while iterating `lines`, with `line_no`.
    `filename` is only used in messages. `limits` (rows, cell length, XML elements, XLSX
    uncompressed size, blank rows) are enforced while streaming; a file past one is refused with
    one of `LIMIT_CODES` (blank rows: `too_many_blank_rows`). The stream must stay open while
    `lines` is consumed.
    When opening fails, a seekable stream is put back at its starting position.
    With `native`, a seekable CSV also offers its data rows as Arrow tables when the native path
    reads them exactly (`ParsedStatement.batches`, see `native.py`).
    """
    if format is not None and format not in FORMATS:
        raise StatementParseError(
            f"未知的文件格式“{format}”，支持：{'、'.join(FORMATS)}", code="unknown_format"
        )
    try:
        start: int | None = stream.tell() if stream.seekable() else None
    except (OSError, AttributeError):
        start = None
    head = stream.read(HEAD_SIZE)
    if not head:
        raise StatementParseError(
            f"文件{f'“{filename}”' if filename else ''}为空", code="empty_file"
        )
    try:
        kind = format or detect_format(head, filename)
        return _open(head, stream, start, kind, profile, limits or Limits(), native)
    except StatementParseError:
        if start is not None:  # leave a seekable upload where it was, e.g. for re-sniffing
            stream.seek(start)
        raise


def _open(
    head: bytes,
    stream: BinaryIO,
    start: int | None,
    kind: str,
    profile: str | None,
    limits: Limits,
    native: bool = False,
) -> ParsedStatement:
    if kind == "csv":
        from .tabular import open_csv

        csv_profile, lines, batches = open_csv(
            head,
            stream,
            detect_encoding(head),
            profile,
            limits,
            native_start=start if native else None,
        )
        return ParsedStatement(format="csv", profile=csv_profile.name, lines=lines, batches=batches)
    if kind == "xlsx":
        from .tabular import open_xlsx

        seekable = seekable_copy(head, stream, start)
        xlsx_profile, lines = open_xlsx(seekable, profile, owned=start is None, limits=limits)
        return ParsedStatement(format="xlsx", profile=xlsx_profile.name, lines=lines)
    if kind == "xls":
        from .tabular import open_xls

        seekable = seekable_copy(head, stream, start)
        xls_profile, lines = open_xls(seekable, profile, owned=start is None, limits=limits)
        return ParsedStatement(format="xls", profile=xls_profile.name, lines=lines)
    if kind == "mt940":
        from .swift import read_mt940

        return ParsedStatement(
            format="mt940",
            profile=None,
            lines=read_mt940(head, stream, detect_swift_encoding(head), limits),
        )
    from .camt import read_camt053

    return ParsedStatement(format="camt053", profile=None, lines=read_camt053(head, stream, limits))
