"""Matching bank credits to orders by payment code (识别码自动匹配), set-based, batch by batch.

One batch = one transaction:

1. claim up to `match_batch_size` pending lines off the work list `match_work` (one item per
   imported batch, naming its pending lines by id range; items locked `SKIP LOCKED`, in id
   order), so several workers take disjoint batches and a line is processed exactly once
   (backed by the unique `payment_allocations.bank_transaction_id` and
   `review_cases.bank_transaction_id`); the claim sorts out the *bare* lines: a transfer from a
   plain account number whose remark is just six letters or digits (most lines);
2. normalise the other lines' remarks and extract code candidates (Python);
3. one statement locks every open order the batch names (`FOR NO KEY UPDATE`, in id order: no
   deadlock between workers) and decides, in SQL alone, each bare line whose code no other line
   of the batch names and that the rules below would allocate (open order, settlement account,
   amount within the outstanding amount) — the same result as the Python rules, without reading
   the line into Python (`repository.decide_bare_lines`);
4. the remaining lines (the other lines and the bare lines not decided in 3): one query reads
   their orders (already locked), one the paid/cancelled orders named by the rest, one looks up
   one-character suggestions for lines without a known code; every line is decided in booking
   order (`booked_at`, id) with a running balance per order;
5. all the batch's decisions (3 and 4, gathered in one temporary table) are written with one
   statement each: allocations, orders, timeline events, review cases, line outcomes.

The running balance is kept in the batch loop rather than a SQL window sum because the
overpayment rule is sequential: a line above the outstanding amount goes to review *without*
consuming it, so a later line of the same batch that fits is still allocated — and the outcome
of a line never depends on where batch boundaries fall.

Review precedence (first rule that applies wins; the samples depend on this order):

1. cash deposit (channel `cash`, or 现金 in the remark/payer name without a payer account);
2. payer account with letters or symbols;
3. no code candidate at all → unmatched (kept for the buyer's self-service confirmation);
4. two different known codes → `multiple_codes`;
5. code of a cancelled order → `order_cancelled`;
6. code of a paid order, including one paid by an earlier line of the batch →
   `order_already_paid`;
7. receiving account is not the order's settlement account → `payee_not_settlement_account`;
8. amount above the outstanding amount (after earlier lines) → `overpayment`;
9. otherwise allocate: `matched` when the order is now paid, else `partial`.

When no candidate is a known code but one is a single substitution or adjacent swap away from the
code of exactly one open order whose settlement account is the receiving account and whose
outstanding amount equals the line's amount, the line goes to review `code_suggestion` with that
order suggested (never applied); otherwise it is unmatched.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository
from services.payments.repository import Allocation, NewReviewCase, OrderState
from shared.db import unit_of_work
from shared.models.payments import (
    AllocationSource,
    OrderStatus,
    ReviewReason,
    TxOutcome,
)
from shared.settings import get_settings

MATCHER_ACTOR = "system:matcher"
CODE_LENGTH = 6
SEPARATORS = frozenset(" -_./·，,")
_TOKEN_RE = re.compile(r"[a-z0-9]+|[^a-z0-9]+")
_ASCII_ALNUM_RE = re.compile(r"[a-z0-9]+")
_DIGITS_RE = re.compile(r"[0-9]+")
_CASH_WORD = "现金"

# plain strings (hashing a StrEnum member is slow in a loop over a batch)
_MATCHED = TxOutcome.MATCHED.value
_PARTIAL = TxOutcome.PARTIAL.value
_REVIEW = TxOutcome.REVIEW.value
_UNMATCHED = TxOutcome.UNMATCHED.value
_PAID = OrderStatus.PAID.value
_PARTIALLY_PAID = OrderStatus.PARTIALLY_PAID.value

REASON_NO_CODE = "no_code"
REASON_UNKNOWN_CODE = "no_known_code"


def normalise_remark(remark: str | None) -> str:
    """NFKC (full-width → half-width: `ＦＡ４ＸＹ２` → `FA4XY2`), then case-fold."""
    if not remark:
        return ""
    if remark.isascii():
        return remark.lower()
    return unicodedata.normalize("NFKC", remark).casefold()


def code_candidates(remark: str | None) -> list[str]:
    """Six-character code candidates of a remark, in order of appearance, without repeats.

    A candidate is a maximal run of `[a-z0-9]` of length 6 (`付款k7m2qp谢谢` → `k7m2qp`), or
    adjacent shorter runs separated by single separator characters whose lengths add up to 6
    (`fa4 xy2`, `f-5-4-y-x-n`). Runs longer than 6 (account numbers, dates) are no candidates.
    """
    text = normalise_remark(remark)
    if not text:
        return []
    runs = _ASCII_ALNUM_RE.findall(text)
    if not runs:
        return []
    if len(runs) == 1:
        # one run (the code alone, or inside Chinese text): it is a candidate if it is 6 long
        return runs if len(runs[0]) == CODE_LENGTH else []
    tokens = _TOKEN_RE.findall(text)
    out: list[str] = []
    for g in _split_groups(tokens):
        for start in range(len(g)):
            total = 0
            for end in range(start, len(g)):
                total += len(g[end])
                if total > CODE_LENGTH:
                    break
                if total == CODE_LENGTH:
                    candidate = "".join(g[start : end + 1])
                    if candidate not in out:
                        out.append(candidate)
                    break
    return out


def _split_groups(tokens: Sequence[str]) -> list[list[str]]:
    """Runs chained by single separator characters; anything else breaks the chain."""
    groups: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if token[0].isascii() and token[0].isalnum():
            current.append(token)
        elif len(token) == 1 and token in SEPARATORS and current:
            continue
        else:
            if current:
                groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def one_character_away(a: str, b: str) -> bool:
    """Whether `a` becomes `b` by one substitution or one swap of adjacent characters."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) == 1:
        return True
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and a[diff[0]] == b[diff[1]]
        and a[diff[1]] == b[diff[0]]
    )


def is_cash_deposit(
    channel: str | None, remark: str | None, payer_name: str | None, payer_account: str | None
) -> bool:
    if channel == "cash":
        return True
    if payer_account and payer_account.strip():
        return False
    return _CASH_WORD in (remark or "") or _CASH_WORD in (payer_name or "")


def payer_account_invalid(payer_account: str | None) -> bool:
    """A payer account with letters or symbols (spaces are formatting and allowed)."""
    if not payer_account:
        return False
    compact = "".join(payer_account.split())
    if not compact:
        return False
    return _DIGITS_RE.fullmatch(unicodedata.normalize("NFKC", compact)) is None


@dataclass(slots=True)
class Line:
    id: int
    account_no: str
    amount: Decimal
    booked_at: datetime | None
    remark: str | None
    payer_name: str | None
    payer_account: str | None
    channel: str | None
    pre_reason: ReviewReason | None = None
    candidates: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, other: BatchResult) -> None:
        self.claimed += other.claimed
        for k, v in other.outcomes.items():
            self.outcomes[k] = self.outcomes.get(k, 0) + v


def _prepare(row: Sequence[Any]) -> Line:
    tx_id, account_no, amount, booked_at, remark, payer_name, payer_account, channel = row
    pre_reason: ReviewReason | None = None
    if channel != "cash" and payer_account and payer_account.isascii() and payer_account.isdigit():
        # the common case: a transfer from a plain account number (neither cash nor odd account)
        if remark and len(remark) == CODE_LENGTH and remark.isascii() and remark.isalnum():
            candidates = [remark.lower()]  # the remark is just the code
        else:
            candidates = code_candidates(remark)
    else:
        if is_cash_deposit(channel, remark, payer_name, payer_account):
            pre_reason = ReviewReason.CASH_DEPOSIT
        elif payer_account_invalid(payer_account):
            pre_reason = ReviewReason.PAYER_ACCOUNT_INVALID
        candidates = code_candidates(remark)
    return Line(
        tx_id,
        account_no,
        amount,
        booked_at,
        remark,
        payer_name,
        payer_account,
        channel,
        pre_reason,
        candidates,
    )


_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class _Decisions:
    def __init__(self) -> None:
        self.outcomes: list[tuple[int, str, str | None]] = []
        self.allocations: list[Allocation] = []
        self.cases: list[NewReviewCase] = []

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(outcome for _, outcome, _ in self.outcomes))

    def review(
        self,
        line: Line,
        reason: ReviewReason,
        *,
        order: OrderState | None = None,
        suggested: int | None = None,
        codes: Iterable[str] = (),
    ) -> None:
        self.outcomes.append((line.id, _REVIEW, reason.value))
        details = {"codes": sorted(codes), "candidates": line.candidates}
        self.cases.append(
            NewReviewCase(
                bank_transaction_id=line.id,
                reason=reason,
                order_id=order.id if order else None,
                suggested_order_id=suggested,
                details=json.dumps(details, ensure_ascii=False),
            )
        )

    def unmatched(self, line: Line, reason: str) -> None:
        self.outcomes.append((line.id, _UNMATCHED, reason))

    def allocate(self, line: Line, order: OrderState) -> None:
        before = order.status
        order.paid_amount += line.amount
        paid = order.paid_amount == order.amount
        order.status = _PAID if paid else _PARTIALLY_PAID
        self.allocations.append(
            Allocation(
                line.id,
                order.id,
                line.amount,
                before,
                order.status,
                (line.booked_at or datetime.now(UTC)) if paid else None,
            )
        )
        outcome = _MATCHED if paid else _PARTIAL
        self.outcomes.append((line.id, outcome, None))


def decide(
    lines: Sequence[Line],
    orders: dict[str, OrderState],
    suggestions: dict[int, set[int]],
) -> _Decisions:
    """Apply the precedence of the module docstring to a batch, in booking order."""
    out = _Decisions()
    ordered = sorted(lines, key=lambda ln: (ln.booked_at or _FAR_FUTURE, ln.id))
    for line in ordered:
        known = [c for c in line.candidates if c in orders]
        single = orders[known[0]] if len(known) == 1 else None
        if line.pre_reason is not None:
            out.review(line, line.pre_reason, order=single, codes=known)
        elif not line.candidates:
            out.unmatched(line, REASON_NO_CODE)
        elif len(known) > 1:
            out.review(line, ReviewReason.MULTIPLE_CODES, codes=known)
        elif single is None:
            suggested = suggestions.get(line.id, set())
            if len(suggested) == 1:
                out.review(line, ReviewReason.CODE_SUGGESTION, suggested=next(iter(suggested)))
            else:
                out.unmatched(line, REASON_UNKNOWN_CODE)
        elif single.status == OrderStatus.CANCELLED:
            out.review(line, ReviewReason.ORDER_CANCELLED, order=single, codes=known)
        elif single.status == OrderStatus.PAID:
            out.review(line, ReviewReason.ORDER_ALREADY_PAID, order=single, codes=known)
        elif line.account_no != single.settlement_account_no:
            out.review(line, ReviewReason.PAYEE_NOT_SETTLEMENT, order=single, codes=known)
        elif line.amount > single.amount - single.paid_amount:
            out.review(line, ReviewReason.OVERPAYMENT, order=single, codes=known)
        else:
            out.allocate(line, single)
    return out


async def match_batch(session: AsyncSession, limit: int) -> BatchResult:
    """Claim and settle one batch of pending lines in the caller's transaction."""
    bare_ids, other_ids = await repository.claim_pending(session, limit)
    claimed = len(bare_ids) + len(other_ids)
    if not claimed:
        return BatchResult()
    lines = [_prepare(r) for r in await repository.lines_by_ids(session, other_ids)]
    counts: Counter[str] = Counter()
    await repository.start_decisions(session)
    if bare_ids:
        other_codes = sorted({c for ln in lines for c in ln.candidates})
        matched, partial, rest = await repository.decide_bare_lines(session, bare_ids, other_codes)
        counts[_MATCHED] += matched
        counts[_PARTIAL] += partial
        lines += [_prepare(r) for r in await repository.lines_by_ids(session, rest)]
    decisions = await _decide_lines(session, lines) if lines else _Decisions()
    counts.update(decisions.counts)
    await repository.apply_match_decisions(
        session,
        decisions.outcomes,
        decisions.allocations,
        decisions.cases,
        first_seq=counts[_MATCHED] + counts[_PARTIAL],
        source=AllocationSource.AUTO,
        actor_sub=MATCHER_ACTOR,
    )
    return BatchResult(claimed=claimed, outcomes={k: v for k, v in counts.items() if v})


async def _decide_lines(session: AsyncSession, lines: list[Line]) -> _Decisions:
    """The general path: every rule of the module docstring, decided in Python."""
    all_codes = sorted({c for ln in lines for c in ln.candidates})
    orders = await repository.orders_by_codes(session, all_codes)
    # one-character suggestions: only for lines whose candidates name no order; the open orders
    # payable to the same account with exactly that outstanding amount are few
    unknown = [
        ln
        for ln in lines
        if ln.pre_reason is None and ln.candidates and not any(c in orders for c in ln.candidates)
    ]
    payable = await repository.payable_orders(
        session, sorted({(ln.account_no, ln.amount) for ln in unknown})
    )
    suggestions: dict[int, set[int]] = {}
    for ln in unknown:
        for order_id, code in payable.get((ln.account_no, ln.amount), []):
            if any(one_character_away(c, code) for c in ln.candidates):
                suggestions.setdefault(ln.id, set()).add(order_id)
    return decide(lines, orders, suggestions)


async def match_pending(
    *, max_batches: int | None = None, batch_size: int | None = None
) -> BatchResult:
    """Process batches, each in its own transaction, until no pending line is left to claim
    (work locked by another worker is theirs) or `max_batches` is reached."""
    size = batch_size or get_settings().match_batch_size
    total = BatchResult()
    done = 0
    while max_batches is None or done < max_batches:
        async with unit_of_work() as session:
            result = await match_batch(session, size)
        total.add(result)
        done += 1
        if not result.claimed:
            break
    return total


async def match_claimed_lines(session: AsyncSession, ids: Sequence[int]) -> BatchResult:
    """Decide lines the caller took off the work list itself (a buyer's payment confirmation
    settling the pending lines it is about to look at), by the rules of a batch: the buyer's
    confirmation never takes a line the matcher would have given to another order."""
    lines = [_prepare(r) for r in await repository.lines_by_ids(session, ids)]
    if not lines:
        return BatchResult()
    await repository.start_decisions(session)
    decisions = await _decide_lines(session, lines)
    await repository.apply_match_decisions(
        session,
        decisions.outcomes,
        decisions.allocations,
        decisions.cases,
        first_seq=0,
        source=AllocationSource.AUTO,
        actor_sub=MATCHER_ACTOR,
    )
    return BatchResult(claimed=len(lines), outcomes=decisions.counts)
