"""The native CSV path (issue #14): data rows of a CSV export as Arrow tables, converted in
native code (pyarrow), for the importer to COPY without touching each line in Python.

`open_csv` reads the header in Python as always; then, when the profile needs no irregular
fields and the rest of the file passes a byte scan (`scan_data`), `ParsedStatement.batches`
offers the data rows as tables of `COLUMNS`, with the same values, line numbers, dedupe keys and
parse errors as `dedupe_keys(within_limits(parsed.lines))`.

Refuse rather than guess. The byte scan, made before anything is read or stored, sends the whole
file to the Python path when Arrow and Python's `csv` module could tokenise it differently: a
quote other than around a whole field without quotes, commas or line breaks (`"abc"`, `="abc"`),
a CR not followed by LF, a NUL or \\x01 byte, a line longer than `Limits.cell_chars` bytes (so
no cell can pass the cell limit), bytes that do not decode strictly, a byte-order mark where the
data begin. What is left is one record per physical line whose cells are the line, without its
quotes, split at commas: Arrow reads each line whole (one column, \\x01 as the delimiter, which
the scan excluded) and splits it itself. A row is converted natively only when it is *plain*
(`NativeRows.convert`): every check of `RowConverter._convert_text`, `is_total_row`,
`check_line` and `dedupe_key` that the row could fail is made in Arrow compute, and a row that
fails any (or might) goes through the Python path (`DataRows`, `convert_text`, `check_line`,
`DedupeKeys`) with its original text and its line number, in order.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, BinaryIO, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .dedupe import MAX_KEY, DedupeKeys
from .limits import Limits, check_line, too_many_rows
from .models import LINE_COLUMNS, StatementLine, StatementParseError, line_record
from .tabular import TOTAL_PREFIXES, DataRows, RowConverter
from .values import CHANNELS

COLUMNS = LINE_COLUMNS

AMOUNT = pa.decimal128(16, 2)
SCHEMA = pa.schema(
    [
        ("line_no", pa.int32()),
        ("dedupe_key", pa.string()),
        ("bank_ref", pa.string()),
        ("account_no", pa.string()),
        ("direction", pa.string()),
        ("amount", AMOUNT),
        ("currency", pa.string()),
        ("booked_at", pa.timestamp("us", tz="UTC")),
        ("value_date", pa.date32()),
        ("payer_name", pa.string()),
        ("payer_account", pa.string()),
        ("payer_bank", pa.string()),
        ("remark", pa.string()),
        ("channel", pa.string()),
    ]
)

Batches = Callable[[int], Iterator[tuple[pa.Table, StatementParseError | None]]]
"""`batches(size)`: tables of at most `size` rows, the last one with the parse error (if any)
that ends the file; the rows before the error are in the tables."""

_DELIMITER = "\x01"
_SCAN_CHUNK = 1 << 20
_BLOCK_SIZE = 1 << 20
_WS = " \t\r\n"
_PLAIN_AMOUNT = r"^(0|[1-9][0-9]{0,13})(\.[0-9]{1,2})?$"  # fits NUMERIC(16,2), no leading zero
_ZERO_AMOUNT = r"^0(\.0{1,2})?$"
# an ISO timestamp in the years China has kept UTC+8 all year (since 1992), up to 2999
_TIMESTAMP = r"^(199[2-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}$"
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
_SHANGHAI_OFFSET = pa.scalar(timedelta(hours=8), pa.duration("s"))
# no Unicode whitespace at either end (the dedupe key strips it: str.strip())
_UNPADDED = r"^[!-~\p{Han}](.*[!-~\p{Han}])?$"
_CURRENCY = r"^([A-Za-z]*|\p{Han}+)$"  # str.upper() is ascii_upper on these
# a field `"…"` or `="…"` (no quote, comma or line break inside), from a field start to a field end
_QUOTED_FIELD = re.compile(rb'(?:^|(?<=,))=?"[^",\r\n]*"(?=,|\r?$)', re.MULTILINE)
_CHANNEL_KEYS = pa.array(list(CHANNELS))
_CHANNEL_VALUES = pa.array(list(CHANNELS.values()))


def data_offset(head: bytes, lines: int) -> int | None:
    """Byte offset in `head` after `lines` physical lines, split as `TextIOWrapper.readline`
    splits them (newline=""): at LF, CRLF or a lone CR (bytes that never occur inside a UTF-8 or
    GB18030 character). None when `head` does not hold them all."""
    pos = 0
    for _ in range(lines):
        cr = head.find(b"\r", pos)
        lf = head.find(b"\n", pos)
        if lf >= 0 and (cr < 0 or lf < cr):
            pos = lf + 1
        elif cr >= 0:
            if cr + 1 >= len(head):
                return None  # a CR at the end of the head: CRLF or not is unknown
            pos = cr + 2 if head[cr + 1] == 0x0A else cr + 1
        else:
            return None
    return pos


def _codec(encoding: str) -> str:
    # the data start mid-file: a BOM there would be a character (Python keeps it), never skipped
    return "utf-8" if encoding.startswith("utf-8") else encoding


def scan_data(stream: BinaryIO, start: int, encoding: str, limits: Limits) -> Scanned | None:
    """The byte scan of the data rows from `start` (see the module): None unless the native
    path reads them exactly as Python's csv module would."""
    stream.seek(start)
    decoder = codecs.getincrementaldecoder(_codec(encoding))("strict")
    carry = b""
    size = 0
    first = True
    quoted = False
    try:
        while chunk := stream.read(_SCAN_CHUNK):
            size += len(chunk)
            if b"\x00" in chunk or b"\x01" in chunk:
                return None
            text = decoder.decode(chunk)
            if first and text:
                if text[0] == "\ufeff":
                    return None
                first = False
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            body, carry = data[:cut], data[cut:]
            if b"\r" in body and body.count(b"\r") != body.count(b"\r\n"):
                return None
            if b'"' in body:
                quoted = True
                if not _simply_quoted(body):
                    return None
            if has_long_line(body, limits.cell_chars):
                return None
            if len(carry) > limits.cell_chars:
                return None
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    if b"\r" in carry:
        return None
    if b'"' in carry:
        quoted = True
        if not _simply_quoted(carry):
            return None
    return Scanned(size, quoted)


def has_long_line(lines: bytes, limit: int) -> bool:
    """Whether one of these whole lines (each ending with LF) is longer than `limit` bytes, LF
    excluded. From each line start, the last LF within the next `limit` + 1 bytes ends a line
    and every line before it; none there means a longer line. One `rfind` per ~`limit` bytes:
    splitting the chunk into a million lines to measure them cost a quarter of a second per
    1,000,000-line file, while nothing is stored yet."""
    pos, end = 0, len(lines)
    while end - pos > limit:
        newline = lines.rfind(b"\n", pos, pos + limit + 1)
        if newline < 0:
            return True
        pos = newline + 1
    return False


def _simply_quoted(lines: bytes) -> bool:
    """Every quote of these whole lines encloses a whole field without quotes, commas or line
    breaks (`"abc"`, or `="abc"`, the Excel text guard, which csv reads literally): then each
    physical line is one record, and its cells are the line without quotes split at commas."""
    return b'"' not in _QUOTED_FIELD.sub(b"", lines)


class Scanned(NamedTuple):
    size: int
    """Bytes of the data rows."""
    quoted: bool
    """Some fields are quoted (`_simply_quoted`)."""


def _empty_table() -> pa.Table:
    return SCHEMA.empty_table()


def records_table(records: list[tuple[Any, ...]]) -> pa.Table:
    if not records:
        return _empty_table()
    columns = list(zip(*records, strict=True))
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


class NativeRows:
    """Arrow batches of whole lines → tables of `SCHEMA`, by the rules of `DataRows`."""

    def __init__(self, converter: RowConverter, limits: Limits, quoted: bool = False) -> None:
        self.converter = converter
        self.quoted = quoted
        self.limits = limits
        self.state = DataRows(limits)
        self.keys = DedupeKeys()
        (
            self._account,
            self._bank_ref,
            self._credit,
            self._debit,
            self._currency,
            self._booked,
            self._payer_name,
            self._payer_account,
            self._payer_bank,
            self._remark,
            self._extra,
            self._channel,
        ) = converter._fast_index
        self._width = max(*converter._fast_index, 3) + 1  # the fields and the first four cells
        self._pad = "," * self._width
        self.default_account = converter.default_account

    # ------------------------------------------------------------------ native conversion
    def _cells(self, lines: pa.Array) -> list[pa.Array]:
        """Cells 0 … width-1 of each line, blanks trimmed; "" past the end of a short row."""
        if self.quoted:  # only whole fields are quoted (`_simply_quoted`): the quotes go
            lines = pc.replace_substring(lines, '"', "")
        padded = pc.binary_join_element_wise(lines, self._pad, "")
        parts = pc.split_pattern(padded, ",", max_splits=self._width)
        return [pc.utf8_trim(pc.list_element(parts, i), _WS) for i in range(self._width)]

    def convert(self, lines: pa.Array) -> tuple[pa.Array, pa.Table]:
        """(plain mask, the plain rows' columns except line_no; other rows hold junk)."""
        n = len(lines)
        cells = self._cells(lines)
        blank = pa.scalar("")

        def cell(index: int) -> pa.Array | pa.Scalar:
            return cells[index] if index >= 0 else blank

        def present(value: pa.Array | pa.Scalar) -> pa.Array:
            return pc.not_equal(value, blank) if isinstance(value, pa.Array) else _const(n, False)

        def text_or_null(value: pa.Array | pa.Scalar) -> pa.Array:
            if not isinstance(value, pa.Array):
                return pa.nulls(n, pa.string())
            return pc.if_else(pc.equal(value, blank), pa.scalar(None, pa.string()), value)

        # maybe an Excel text guard (`="0123"`, `'0123`) anywhere: the Python path decides
        guarded = pc.or_(pc.match_substring(lines, "="), pc.match_substring(lines, "'"))
        checks: list[pa.Array] = [pc.invert(guarded)]
        for first_cells in cells[:4]:  # a totals row (合计 …) by any of its first four cells
            for prefix in TOTAL_PREFIXES:
                checks.append(pc.invert(pc.starts_with(first_cells, prefix)))

        account = cell(self._account)
        if self.default_account:
            account = pc.if_else(present(account), account, pa.scalar(self.default_account))
        checks.append(_matches(account, _UNPADDED, n))

        bank_ref = cell(self._bank_ref)
        checks.append(_matches(bank_ref, _UNPADDED, n))

        credit, debit = cell(self._credit), cell(self._debit)
        credit_ok = pc.and_(_nonzero_amount(credit, n), pc.invert(present(debit)))
        debit_ok = pc.and_(_nonzero_amount(debit, n), pc.invert(present(credit)))
        checks.append(pc.or_(credit_ok, debit_ok))
        amount_text = pc.if_else(credit_ok, _as_array(credit, n), _as_array(debit, n))
        amount = pc.cast(pc.if_else(pc.or_(credit_ok, debit_ok), amount_text, "1"), AMOUNT)
        direction = pc.if_else(credit_ok, "credit", "debit")

        booked = cell(self._booked)
        if isinstance(booked, pa.Array):
            iso = pc.match_substring_regex(booked, _TIMESTAMP)
            spaced = pc.replace_substring(pc.if_else(iso, booked, "2000-01-01 00:00:00"), "T", " ")
            moment, valid = _timestamps(spaced)
            checks.append(pc.or_(pc.invert(present(booked)), pc.and_(iso, valid)))
            booked_at = pc.cast(
                pc.subtract(moment, _SHANGHAI_OFFSET), SCHEMA.field("booked_at").type
            )
            booked_at = pc.if_else(present(booked), booked_at, pa.scalar(None, booked_at.type))
            day = pc.utf8_slice_codeunits(booked, 0, 10)
        else:
            booked_at = pa.nulls(n, SCHEMA.field("booked_at").type)
            day = _as_array(blank, n)

        currency = cell(self._currency)
        if isinstance(currency, pa.Array):
            checks.append(pc.match_substring_regex(currency, _CURRENCY))
            currency = pc.if_else(
                present(currency), pc.ascii_upper(currency), self.converter._default_currency
            )
        else:
            currency = _as_array(pa.scalar(self.converter._default_currency), n)

        remark, extra = cell(self._remark), cell(self._extra)
        if isinstance(extra, pa.Array):
            joined = pc.binary_join_element_wise(_as_array(remark, n), extra, " ")
            remark = pc.if_else(
                present(extra), pc.if_else(present(remark), joined, extra), _as_array(remark, n)
            )

        channel = cell(self._channel)
        if isinstance(channel, pa.Array):
            index = pc.index_in(pc.ascii_lower(channel), value_set=_CHANNEL_KEYS)
            channel = pc.coalesce(pc.take(_CHANNEL_VALUES, index), channel)

        key = pc.binary_join_element_wise(
            "ref",
            _as_array(account, n),
            _as_array(bank_ref, n),
            pc.if_else(credit_ok, "C", "D"),
            pc.cast(amount, pa.string()),
            day,
            ":",
        )
        checks.append(pc.less_equal(pc.utf8_length(key), MAX_KEY))

        plain = checks[0]
        for check in checks[1:]:
            plain = pc.and_(plain, check)
        plain = pc.fill_null(plain, False)
        columns = {
            "dedupe_key": key,
            "bank_ref": _as_array(bank_ref, n),
            "account_no": _as_array(account, n),
            "direction": direction,
            "amount": amount,
            "currency": currency,
            "booked_at": booked_at,
            "value_date": pa.nulls(n, pa.date32()),
            "payer_name": text_or_null(cell(self._payer_name)),
            "payer_account": text_or_null(cell(self._payer_account)),
            "payer_bank": text_or_null(cell(self._payer_bank)),
            "remark": text_or_null(remark),
            "channel": text_or_null(channel),
        }
        fields = [f for f in SCHEMA if f.name != "line_no"]
        table = pa.Table.from_arrays(
            [pc.cast(columns[f.name], f.type) for f in fields], schema=pa.schema(fields)
        )
        return plain, table

    # ------------------------------------------------------------------ one Arrow batch
    def rows(self, lines: pa.Array) -> tuple[list[pa.Table], StatementParseError | None]:
        """Tables for the lines of one batch, in order; the error that stops the file, if any
        (the tables then hold the rows before it)."""
        plain, table = self.convert(lines)
        others = pc.indices_nonzero(pc.invert(plain)).to_pylist()
        out: list[pa.Table] = []
        records: list[tuple[Any, ...]] = []  # rows of the Python path not yet in `out`
        state = self.state
        position = 0
        error: StatementParseError | None = None
        try:
            for index in [*others, len(lines)]:
                if index > position:  # plain rows position … index-1: one line each
                    if records:
                        out.append(records_table(records))
                        records = []
                    count = index - position
                    allowed = self.limits.rows - state.line_no
                    state.blanks = 0
                    if count > allowed:
                        if allowed > 0:
                            out.append(self._numbered(table.slice(position, allowed)))
                        raise too_many_rows(self.limits)
                    out.append(self._numbered(table.slice(position, count)))
                if index == len(lines):
                    break
                line = self._python_row(lines[index].as_py())
                if line is not None:
                    records.append(line_record(line, self.keys(line)))
                position = index + 1
        except StatementParseError as exc:
            error = exc
        if records:
            out.append(records_table(records))
        return out, error

    def _numbered(self, table: pa.Table) -> pa.Table:
        first = self.state.line_no + 1
        self.state.line_no += len(table)
        numbers = pa.array(range(first, first + len(table)), pa.int32())
        return table.add_column(0, SCHEMA.field("line_no"), numbers)

    def _python_row(self, text: str) -> StatementLine | None:
        """One row by today's Python path (`_data_lines`, `convert_text`, `check_line`)."""
        row = next(csv.reader([text]), [])
        line_no = self.state.number(self.converter, row)
        if not line_no:
            return None
        line = self.converter.convert_text(row, line_no)
        check_line(line)
        return line


def _timestamps(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """`YYYY-MM-DD HH:MM:SS` texts as naive timestamps, and whether each is a real moment (no
    30 February, no second 60: the ones `datetime.fromisoformat` refuses)."""
    try:  # Arrow's ISO-8601 cast is strict, and fast; it fails the whole array
        return pc.cast(texts, pa.timestamp("s")), _const(len(texts), True)
    except pa.ArrowInvalid:
        pass
    # strptime normalises 30 February to 1 March and second 60 to the next minute: round trip
    moment = pc.strptime(texts, _TIMESTAMP_FORMAT, "s", error_is_null=True)
    valid = pc.fill_null(pc.equal(pc.strftime(moment, _TIMESTAMP_FORMAT), texts), False)
    return moment, valid


def _const(n: int, value: bool) -> pa.Array:
    return pa.repeat(pa.scalar(value), n)


def _as_array(value: pa.Array | pa.Scalar, n: int) -> pa.Array:
    if isinstance(value, pa.Array):
        return value
    return pa.repeat(value, n)


def _matches(value: pa.Array | pa.Scalar, pattern: str, n: int) -> pa.Array:
    return pc.match_substring_regex(_as_array(value, n), pattern)


def _nonzero_amount(value: pa.Array | pa.Scalar, n: int) -> pa.Array:
    if not isinstance(value, pa.Array):
        return _const(n, False)
    return pc.and_(
        pc.match_substring_regex(value, _PLAIN_AMOUNT),
        pc.invert(pc.match_substring_regex(value, _ZERO_AMOUNT)),
    )


def native_batches(
    stream: BinaryIO,
    start: int,
    encoding: str,
    converter: RowConverter,
    limits: Limits,
    quoted: bool = False,
    size: int | None = None,
) -> Batches:
    """`batches(size)` over the data rows at byte `start` of `stream` (already scanned; `size`:
    their bytes, when known)."""
    data_size = size

    def batches(size: int) -> Iterator[tuple[pa.Table, StatementParseError | None]]:
        if data_size == 0:  # the header was the last line (Arrow refuses an empty file)
            return
        stream.seek(start)
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=["line"],
                # a line must fit in a block: up to cell_chars bytes, 1.5 times that as UTF-8
                block_size=max(_BLOCK_SIZE, 2 * limits.cell_chars + 1024),
                encoding="utf8" if _codec(encoding) == "utf-8" else encoding,
                use_threads=False,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=_DELIMITER,
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={"line": pa.string()},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
                check_utf8=True,
            ),
        )
        rows = NativeRows(converter, limits, quoted)
        pending: list[pa.Table] = []
        count = 0
        for batch in reader:
            tables, error = rows.rows(batch.column(0))
            for table in tables:
                if len(table):
                    pending.append(table)
                    count += len(table)
            while count >= size:
                whole = pa.concat_tables(pending).combine_chunks()
                yield whole.slice(0, size), None
                rest = whole.slice(size)
                pending, count = ([rest] if len(rest) else []), len(rest)
            if error is not None:
                yield _concat(pending), error
                return
        if count:
            yield _concat(pending), None

    return batches


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return _empty_table()
    return pa.concat_tables(tables).combine_chunks()
