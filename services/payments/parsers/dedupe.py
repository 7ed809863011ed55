"""Duplicate detection keys (去重键) for statement lines.

The same transaction reaches us more than once: a file imported twice, or the same transfer in
the CSV export and in the CAMT/MT940 file of the same account. A line with the bank's own
reference is keyed by (account, reference) whatever the format. A line without one is keyed by a
hash of its content plus its occurrence number within the file, so two identical reference-less
lines in one file stay two transactions, while re-importing the file yields the same keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC

from .models import StatementLine

_SEP = "\x1f"


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


def dedupe_key(line: StatementLine, occurrence: int) -> str:
    account = line.account_no.strip()
    if line.bank_ref:
        return f"ref:{account}:{line.bank_ref.strip()}"
    return f"h:{account}:{content_hash(line)}:{occurrence}"


def dedupe_keys(lines: Iterable[StatementLine]) -> Iterator[tuple[StatementLine, str]]:
    """Each line with its key; occurrences count identical reference-less lines of one file."""
    seen: dict[str, int] = {}
    for line in lines:
        if line.bank_ref:
            yield line, dedupe_key(line, 1)
            continue
        digest = content_hash(line)
        occurrence = seen.get(digest, 0) + 1
        seen[digest] = occurrence
        yield line, f"h:{line.account_no.strip()}:{digest}:{occurrence}"
