"""Duplicate detection keys (去重键) for statement lines.

The same transaction reaches us more than once: a file imported twice, or the same transfer in
the CSV export and in the CAMT/MT940 file of the same account. A line with the bank's own
reference is keyed by (account, reference, direction, amount, booking day) whatever the format:
these are the same in the CSV, MT940 and CAMT versions of one transfer, while a debit and a
credit sharing a reference (an MT940 reversal) stay two transactions. A line without a reference
is keyed by a hash of its content plus its occurrence number within the file, so two identical
reference-less lines in one file stay two transactions, while re-importing the file yields the
same keys. A key never exceeds `MAX_KEY` characters (longer ones are hashed, never truncated).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC

from .models import StatementLine
from .values import SHANGHAI

_SEP = "\x1f"
MAX_KEY = 200
"""The width of `bank_transactions.dedupe_key`."""


def content_hash(line: StatementLine) -> str:
    """sha256 over the normalised content (not line_no): blanks trimmed, timestamps in UTC."""
    booked = "" if line.booked_at is None else line.booked_at.astimezone(UTC).isoformat()
    parts = (
        line.account_no.strip(),
        line.direction,
        f"{line.amount:.2f}",
        line.currency.upper(),
        booked,
        "" if line.value_date is None else line.value_date.isoformat(),
        *(
            (value or "").strip()
            for value in (line.payer_name, line.payer_account, line.payer_bank, line.remark)
        ),
    )
    return hashlib.sha256(_SEP.join(parts).encode("utf-8")).hexdigest()


def _booking_day(line: StatementLine) -> str:
    if line.booked_at is not None:
        return line.booked_at.astimezone(SHANGHAI).date().isoformat()
    return "" if line.value_date is None else line.value_date.isoformat()


def _bounded(key: str) -> str:
    if len(key) <= MAX_KEY:
        return key
    return "k:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def dedupe_key(line: StatementLine, occurrence: int) -> str:
    account = line.account_no.strip()
    if line.bank_ref:
        direction = "C" if line.direction == "credit" else "D"
        return _bounded(
            f"ref:{account}:{line.bank_ref.strip()}:{direction}:{line.amount:.2f}:"
            f"{_booking_day(line)}"
        )
    return _bounded(f"h:{account}:{content_hash(line)}:{occurrence}")


class DedupeKeys:
    """`dedupe_keys` one line at a time: counts the occurrences of identical reference-less
    lines of one file."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, line: StatementLine) -> str:
        if line.bank_ref:
            return dedupe_key(line, 1)
        digest = content_hash(line)
        occurrence = self.seen.get(digest, 0) + 1
        self.seen[digest] = occurrence
        return _bounded(f"h:{line.account_no.strip()}:{digest}:{occurrence}")


def dedupe_keys(lines: Iterable[StatementLine]) -> Iterator[tuple[StatementLine, str]]:
    """Each line with its key; occurrences count identical reference-less lines of one file."""
    key = DedupeKeys()
    for line in lines:
        yield line, key(line)
