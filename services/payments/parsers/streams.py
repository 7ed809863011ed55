"""Byte-stream plumbing: peeking at the head of an upload, encoding detection, text decoding."""

from __future__ import annotations

import codecs
import io
import re
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from .models import StatementParseError

HEAD_SIZE = 64 * 1024
SPOOL_MAX = 8 * 1024 * 1024
"""Non-seekable XLSX uploads are spooled to disk past this size."""


class ChainedStream(io.RawIOBase):
    """`head` bytes already read, followed by the rest of `stream` (so nothing is read twice)."""

    def __init__(self, head: bytes, stream: BinaryIO, *, refuse_nul: bool = False) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._stream = stream
        self._refuse_nul = refuse_nul
        self._nul_in_head = refuse_nul and b"\x00" in head

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            if self._nul_in_head:
                raise nul_error()
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._stream.read(len(buffer))
        if not chunk:
            return 0
        if self._refuse_nul and b"\x00" in chunk:
            raise nul_error()
        n = len(chunk)
        buffer[:n] = chunk
        return n


def detect_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) when the head decodes strictly as UTF-8, else GB18030 (a
    superset of GBK, so GBK exports read correctly)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


_HIGH_RUN_RE = re.compile(rb"[\x80-\xff]+")


def detect_swift_encoding(head: bytes) -> str:
    """`detect_encoding`, except that a non-UTF-8 file whose high bytes mostly stand alone
    (`M\xfcller`: one byte per letter, as in the ISO-8859-1 files of European banks) is Latin-1;
    GBK/GB18030 text comes in pairs of high bytes."""
    encoding = detect_encoding(head)
    if encoding != "gb18030":
        return encoding
    runs = _HIGH_RUN_RE.findall(head)
    odd = sum(len(run) % 2 for run in runs)
    return "latin-1" if runs and odd * 2 > len(runs) else encoding


def text_stream(head: bytes, stream: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """Decode lazily (buffered, incremental): the file is never held whole in memory. A NUL
    byte (never part of a UTF-8 or GB18030 character; PostgreSQL text cannot hold it) fails the
    file as a parse error."""
    raw = io.BufferedReader(ChainedStream(head, stream, refuse_nul=True), buffer_size=HEAD_SIZE)
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def seekable_copy(head: bytes, stream: BinaryIO, start: int | None) -> BinaryIO:
    """A seekable stream positioned at the start of the file (openpyxl needs to seek)."""
    if start is not None:
        stream.seek(start)
        return stream
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)  # noqa: SIM115 - caller closes
    spool.write(head)
    while chunk := stream.read(1024 * 1024):
        spool.write(chunk)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def nul_error() -> StatementParseError:
    return StatementParseError(
        "文件含有空字符（NUL），不是银行导出的文本对账单，请重新导出", code="nul_character"
    )


def decode_error(encoding: str) -> StatementParseError:
    """Text is decoded in blocks, so the failing line is not known precisely: no line number."""
    name = "UTF-8" if encoding.startswith("utf-8") else "GBK/GB18030"
    return StatementParseError(
        f"文件编码无法识别：按 {name} 解码失败，请导出为 UTF-8 或 GBK 编码的文件",
        code="bad_encoding",
    )


def iter_text_lines(
    text: io.TextIOWrapper, encoding: str, max_chars: int | None = None
) -> Iterator[str]:
    """Lines of `text`; a decoding error becomes a StatementParseError. A line longer than
    `max_chars` (without its line break) is refused as soon as that many have been read."""
    limit = -1 if max_chars is None else max_chars + 2  # room for the line break
    while True:
        try:
            line = text.readline(limit)
        except UnicodeDecodeError as exc:
            raise decode_error(encoding) from exc
        if not line:
            return
        if max_chars is not None and len(line.rstrip("\r\n")) > max_chars:
            raise line_too_long(max_chars)
        yield line


def line_too_long(max_chars: int) -> StatementParseError:
    return StatementParseError(
        f"文件中一行的长度超过上限（{max_chars} 个字符），不是正常的银行对账单",
        code="cell_too_long",
    )
