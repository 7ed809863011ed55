"""Every query of the self-service payment confirmation (货款确认). Functions flush; never commit.

Lock order, the same as the review path's (`service.resolve_review_case`: case → line → order):
a confirmation, then the open review cases of the bank lines it looks at, then those lines, then
the order. The matcher locks only orders and its own pending lines, which a confirmation never
locks (it claims pending lines off the matcher's queue in a transaction of its own first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import (
    BankTransaction,
    Filing,
    Order,
    OrderStatus,
    OrgUnit,
    PayeeSmsRequest,
    PaymentConfirmation,
    PaymentConfirmationEntry,
    PaymentConfirmationRound,
    PaymentVoucher,
    ReviewCase,
    ReviewReason,
    ReviewStatus,
    SupplierAccount,
    TxOutcome,
)

# Lines a buyer may claim: received credits no order holds yet, left for self-service by the
# matcher (`unmatched`: no code, or no known code) or in review for a reason the buyer resolves
# (`code_suggestion`), plus `pending` ones (the caller settles those by the matcher's rules first).
BUYER_RESOLVABLE_UNMATCHED = ("no_code", "no_known_code")
BUYER_RESOLVABLE_REVIEW = (ReviewReason.CODE_SUGGESTION.value,)

_CANDIDATES = text(
    """
    SELECT t.id
      FROM bank_transactions t
     WHERE t.account_no = :account_no AND t.amount = :amount AND t.direction = 'credit'
       AND coalesce(CAST(t.booked_at AT TIME ZONE :tz AS date), t.value_date)
           BETWEEN :day_from AND :day_to
       AND (t.outcome = 'pending'
            OR (t.outcome = 'unmatched' AND t.reason = ANY(CAST(:unmatched AS varchar[])))
            OR (t.outcome = 'review' AND t.reason = ANY(CAST(:review AS varchar[]))
                AND EXISTS (SELECT FROM review_cases c
                             WHERE c.bank_transaction_id = t.id AND c.status = 'open')))
       AND NOT EXISTS (SELECT FROM payment_allocations a WHERE a.bank_transaction_id = t.id)
     ORDER BY t.id
     LIMIT 50
    """
)


async def candidate_line_ids(
    session: AsyncSession,
    *,
    account_no: str,
    amount: object,
    day_from: date,
    day_to: date,
    tz: str,
) -> list[int]:
    """Credits to `account_no` of exactly `amount`, booked (business day) in the window, that
    no order holds yet (not locked: see `lock_lines`)."""
    rows = await session.execute(
        _CANDIDATES,
        {
            "account_no": account_no,
            "amount": amount,
            "day_from": day_from,
            "day_to": day_to,
            "tz": tz,
            "unmatched": list(BUYER_RESOLVABLE_UNMATCHED),
            "review": list(BUYER_RESOLVABLE_REVIEW),
        },
    )
    return [int(r.id) for r in rows]


async def lines_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[BankTransaction]:
    if not ids:
        return []
    stmt = select(BankTransaction).where(BankTransaction.id.in_(ids)).order_by(BankTransaction.id)
    return list((await session.execute(stmt)).scalars())


# The work items naming these pending lines, locked in id order (two buyers never deadlock; a
# matcher skips locked items, never waits for them). A matcher batch holding an item is waited
# for: once it commits, the lines it took are no longer pending, and an item it advanced or
# deleted is re-read (READ COMMITTED re-checks the range on the new version).
_LOCK_WORK_OF_LINES = text(
    """
    WITH mine AS MATERIALIZED (
        SELECT t.id, t.statement_id FROM bank_transactions t
         WHERE t.id = ANY(CAST(:ids AS bigint[])) AND t.outcome = 'pending'
    )
    SELECT w.id FROM match_work w
     WHERE EXISTS (SELECT FROM mine
                    WHERE mine.statement_id = w.statement_id
                      AND mine.id BETWEEN w.first_tx_id AND w.last_tx_id)
     ORDER BY w.id
       FOR UPDATE OF w
    """
)

# Then, under those locks: the lines still pending in the locked items' ranges are the caller's;
# each item's count goes down by the lines taken, and an item with no other pending line left
# is removed (checked on the lines themselves, never on the count).
_TAKE_LINES_OF_WORK = text(
    """
    WITH mine AS MATERIALIZED (
        SELECT t.id, w.id AS work_id
          FROM match_work w
          JOIN bank_transactions t
            ON t.statement_id = w.statement_id AND t.id BETWEEN w.first_tx_id AND w.last_tx_id
         WHERE w.id = ANY(CAST(:work_ids AS bigint[]))
           AND t.id = ANY(CAST(:ids AS bigint[])) AND t.outcome = 'pending'
    ), counted AS MATERIALIZED (
        SELECT c.work_id, c.n,
               NOT EXISTS (SELECT FROM bank_transactions t
                            WHERE t.id BETWEEN m.first_tx_id AND m.last_tx_id
                              AND t.statement_id = m.statement_id AND t.outcome = 'pending'
                              AND t.id NOT IN (SELECT id FROM mine)) AS empty
          FROM (SELECT work_id, count(*) AS n FROM mine GROUP BY work_id) c
          JOIN match_work m ON m.id = c.work_id
    ), gone AS (
        DELETE FROM match_work m USING counted c WHERE m.id = c.work_id AND c.empty
    ), fewer AS (
        UPDATE match_work m SET lines = greatest(m.lines - c.n, 1)
          FROM counted c
         WHERE m.id = c.work_id AND NOT c.empty
    )
    SELECT id FROM mine ORDER BY id
    """
)


async def claim_queued(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    """Take these lines off the matcher's work list (their work items locked in id order: two
    buyers never deadlock). A line a matcher batch holds is waited for: once that batch commits
    it is no longer pending."""
    if not ids:
        return []
    work = [int(r[0]) for r in await session.execute(_LOCK_WORK_OF_LINES, {"ids": list(ids)})]
    if not work:
        return []
    rows = await session.execute(_TAKE_LINES_OF_WORK, {"work_ids": work, "ids": list(ids)})
    return [int(r[0]) for r in rows]


async def lock_open_cases(session: AsyncSession, tx_ids: Sequence[int]) -> dict[int, ReviewCase]:
    """The open review cases of these lines, locked (id order), by line id."""
    if not tx_ids:
        return {}
    stmt = (
        select(ReviewCase)
        .where(ReviewCase.bank_transaction_id.in_(tx_ids), ReviewCase.status == ReviewStatus.OPEN)
        .order_by(ReviewCase.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    cases = (await session.execute(stmt)).scalars()
    return {c.bank_transaction_id: c for c in cases if c.bank_transaction_id is not None}


async def lock_lines(session: AsyncSession, ids: Sequence[int]) -> list[BankTransaction]:
    """The lines, locked `FOR UPDATE` in id order, re-read after any wait."""
    if not ids:
        return []
    stmt = (
        select(BankTransaction)
        .where(BankTransaction.id.in_(ids))
        .order_by(BankTransaction.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def allocated_line_ids(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    rows = await session.execute(
        text(
            "SELECT bank_transaction_id FROM payment_allocations "
            "WHERE bank_transaction_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": list(ids)},
    )
    return {int(r[0]) for r in rows}


def line_claimable(line: BankTransaction) -> bool:
    """Still free for a buyer (after the lock): unmatched or in a buyer-resolvable review."""
    if line.outcome == TxOutcome.UNMATCHED:
        return line.reason in BUYER_RESOLVABLE_UNMATCHED
    if line.outcome == TxOutcome.REVIEW:
        return line.reason in BUYER_RESOLVABLE_REVIEW
    return False


async def lock_order(session: AsyncSession, order_id: int) -> Order:
    stmt = (
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def get_order_by_no(session: AsyncSession, order_no: str) -> Order | None:
    return (
        await session.execute(select(Order).where(Order.order_no == order_no))
    ).scalar_one_or_none()


async def get_unit(session: AsyncSession, unit_id: int) -> OrgUnit | None:
    return await session.get(OrgUnit, unit_id)


async def supplier_accounts(session: AsyncSession, supplier_id: int) -> list[SupplierAccount]:
    stmt = (
        select(SupplierAccount)
        .where(SupplierAccount.supplier_id == supplier_id)
        .order_by(SupplierAccount.is_settlement.desc(), SupplierAccount.id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_account(session: AsyncSession, account_id: int) -> SupplierAccount | None:
    return await session.get(SupplierAccount, account_id)


# ----------------------------------------------------------------------------- confirmations


async def add(session: AsyncSession, *rows: object) -> None:
    session.add_all(rows)
    await session.flush()


async def get_confirmation(
    session: AsyncSession, confirmation_id: int, *, for_update: bool = False
) -> PaymentConfirmation | None:
    stmt = select(PaymentConfirmation).where(PaymentConfirmation.id == confirmation_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_confirmations(
    session: AsyncSession,
    *,
    buyer_unit_id: int | None,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> list[tuple[PaymentConfirmation, str]]:
    stmt = (
        select(PaymentConfirmation, Order.order_no)
        .join(Order, Order.id == PaymentConfirmation.order_id)
        .order_by(PaymentConfirmation.id)
        .limit(limit)
    )
    if buyer_unit_id is not None:
        stmt = stmt.where(PaymentConfirmation.buyer_unit_id == buyer_unit_id)
    if status is not None:
        stmt = stmt.where(PaymentConfirmation.status == status)
    if after_id is not None:
        stmt = stmt.where(PaymentConfirmation.id > after_id)
    return [(r[0], r[1]) for r in (await session.execute(stmt)).all()]


async def entries(session: AsyncSession, confirmation_id: int) -> list[PaymentConfirmationEntry]:
    stmt = (
        select(PaymentConfirmationEntry)
        .where(PaymentConfirmationEntry.confirmation_id == confirmation_id)
        .order_by(PaymentConfirmationEntry.round, PaymentConfirmationEntry.id)
    )
    return list((await session.execute(stmt)).scalars())


async def vouchers(session: AsyncSession, confirmation_id: int) -> list[PaymentVoucher]:
    stmt = (
        select(PaymentVoucher)
        .where(PaymentVoucher.confirmation_id == confirmation_id)
        .order_by(PaymentVoucher.id)
    )
    return list((await session.execute(stmt)).scalars())


async def voucher_count(session: AsyncSession, confirmation_id: int) -> int:
    stmt = select(func.count()).where(PaymentVoucher.confirmation_id == confirmation_id)
    return int((await session.execute(stmt)).scalar_one())


async def get_voucher(
    session: AsyncSession, confirmation_id: int, voucher_id: int
) -> PaymentVoucher | None:
    stmt = select(PaymentVoucher).where(
        PaymentVoucher.id == voucher_id, PaymentVoucher.confirmation_id == confirmation_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def rounds(session: AsyncSession, confirmation_id: int) -> list[PaymentConfirmationRound]:
    stmt = (
        select(PaymentConfirmationRound)
        .where(PaymentConfirmationRound.confirmation_id == confirmation_id)
        .order_by(PaymentConfirmationRound.round)
    )
    return list((await session.execute(stmt)).scalars())


async def current_round(
    session: AsyncSession, confirmation: PaymentConfirmation
) -> PaymentConfirmationRound:
    stmt = select(PaymentConfirmationRound).where(
        PaymentConfirmationRound.confirmation_id == confirmation.id,
        PaymentConfirmationRound.round == confirmation.round,
    )
    return (await session.execute(stmt)).scalar_one()


async def contact_mobile(session: AsyncSession, unit_id: int) -> str | None:
    """The unit's filing contact (latest filing that names one), else the unit's contact."""
    stmt = (
        select(Filing.contact_mobile)
        .where(Filing.unit_id == unit_id, Filing.contact_mobile.is_not(None))
        .order_by(Filing.year.desc())
        .limit(1)
    )
    mobile = (await session.execute(stmt)).scalar_one_or_none()
    if mobile:
        return str(mobile)
    unit = await session.get(OrgUnit, unit_id)
    return unit.contact_mobile if unit is not None else None


# ----------------------------------------------------------------------------- orders list


async def list_orders(
    session: AsyncSession,
    *,
    scope_unit_id: int | None,
    status: OrderStatus | None,
    after_id: int | None,
    limit: int,
) -> list[Order]:
    """Orders in id order; `scope_unit_id`: that unit's and its descendants' (budget tree)."""
    stmt = select(Order).order_by(Order.id).limit(limit)
    if scope_unit_id is not None:
        me = select(OrgUnit.path).where(OrgUnit.id == scope_unit_id).scalar_subquery()
        buyers = select(OrgUnit.id).where(OrgUnit.path.startswith(me, autoescape=False))
        stmt = stmt.where(Order.buyer_unit_id.in_(buyers))
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if after_id is not None:
        stmt = stmt.where(Order.id > after_id)
    return list((await session.execute(stmt)).scalars())


async def preload_accounts(session: AsyncSession, account_ids: Sequence[int]) -> None:
    """Load these accounts into the session (later `session.get` calls hit its identity map)."""
    if account_ids:
        stmt = select(SupplierAccount).where(SupplierAccount.id.in_(set(account_ids)))
        await session.execute(stmt)


# ----------------------------------------------------------------------------- payee SMS


async def lock_payee_sms(session: AsyncSession, order_id: int, mobile_hash: str) -> None:
    """Serialise payee-SMS requests of one order and of one mobile (always in this order)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"payee_sms:order:{order_id}"}
    )
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"payee_sms:mobile:{mobile_hash}"}
    )


async def payee_sms_counts(
    session: AsyncSession, order_id: int, mobile_hash: str, day: date
) -> tuple[int, int, int]:
    """(requests for the order today, for the mobile today, for the order and mobile ever)."""
    row = (
        await session.execute(
            text(
                """
                SELECT (SELECT count(*) FROM payee_sms_requests
                         WHERE order_id = :o AND business_day = :d) AS order_today,
                       (SELECT count(*) FROM payee_sms_requests
                         WHERE mobile_hash = :m AND business_day = :d) AS mobile_today,
                       (SELECT count(*) FROM payee_sms_requests
                         WHERE order_id = :o AND mobile_hash = :m) AS pair_ever
                """
            ),
            {"o": order_id, "m": mobile_hash, "d": day},
        )
    ).one()
    return int(row.order_today), int(row.mobile_today), int(row.pair_ever)


async def add_payee_sms_request(session: AsyncSession, request: PayeeSmsRequest) -> None:
    session.add(request)
    await session.flush()
