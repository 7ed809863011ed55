"""Self-service payment confirmation (货款确认), the hand-off to customer service
(补填信息提交客服人工处理) and the review that settles it (货款确认成功 / 货款确认失败).
Domain rules; no SQL, no HTTP.

A buyer whose order is still 待支付 after paying declares its payments (添加支付信息). Each entry
is matched against received credits to the chosen account that no order holds yet — `unmatched`
lines (no code, no known code) and lines in review for a reason the buyer resolves
(`code_suggestion`) — with the same amount, the same payer account (digits only; spaces and
dashes ignored), the same payer name after normalisation (NFKC full-width → half-width, case,
spaces, 有限公司 / 有限责任公司 dropped) and booked from the day before `paid_on` to seven days
after (business days). Exactly one candidate: allocated at once through the allocation path of the
matcher and the review (`repository.apply_allocations`), in this request. Several: never guessed,
operations decide (`under_review`). None: `not_found` with the notice's advice. Cash, a payer
account with letters or symbols, or a payment to a non-settlement account (以上都不是): the entry
needs the hand-off with receipts.

Lines still `pending` (imported, not matched yet) are first settled by the matcher's own rules in
a transaction of their own (`matching.match_claimed_lines`): a buyer never takes a line the
matcher would have given to another order, and a line is allocated once whoever asks first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import confirmations_repository as crepo
from services.payments import matching, repository, service
from services.payments.confirmation_schemas import (
    STATUS_LABELS,
    ApproveIn,
    ConfirmationBrief,
    ConfirmationIn,
    ConfirmationOut,
    ConfirmationUpdateIn,
    EntryOut,
    NoneOfTheAbove,
    PayeeAccountsOut,
    PaymentIn,
    RejectIn,
    RoundOut,
    VoucherOut,
)
from services.payments.schemas import OrderOut
from services.payments.vouchers import MAX_FILES, StagedImage
from shared import audit
from shared.auth import Principal, Role
from shared.db import unit_of_work
from shared.errors import Conflict, DomainError, NotFound, ValidationFailed
from shared.masking import mask_account
from shared.models import (
    OPEN_ORDER_STATUSES,
    AllocationSource,
    ConfirmationStatus,
    Order,
    OrderStatus,
    PaymentConfirmation,
    PaymentConfirmationEntry,
    PaymentConfirmationRound,
    PaymentVoucher,
    ReviewStatus,
    SupplierAccount,
    TxOutcome,
)
from shared.policy import effective_policy
from shared.settings import get_settings
from shared.sms import queue_sms

MATCHED = "matched"
NOT_FOUND = "not_found"
HANDOFF_REQUIRED = "handoff_required"
AMBIGUOUS = "ambiguous"

ADVICE = {
    "no_matching_payment": (
        "暂未查到与所填信息一致的到账记录。请先确认已完成付款；银行到账和对账需要时间，"
        "建议付款后次日再进行货款确认。请核对收款账户、付款户名、付款账号、金额和付款日期。"
    ),
    "cash": "现金支付无法自动核对，请补填付款信息并上传付款凭证，提交客服人工处理。",
    "payer_account_invalid": (
        "付款账号含字母或特殊字符，无法自动核对，请补填付款信息并上传付款凭证，提交客服人工处理。"
    ),
    "non_settlement_account": (
        "付款至供应商非结算账户（以上都不是），请补填付款信息并上传付款凭证，提交客服人工处理。"
    ),
    "several_candidates": "找到多笔相同的到账记录，系统不会自行选择，已转客服人工审核。",
    "overpayment": "该笔到账金额超过订单未付金额，已转客服人工审核。",
    "handed_off": "已提交客服人工处理。",
}

_SEPARATORS = re.compile(r"[\s\-－—]+")
_COMPANY_SUFFIXES = ("有限责任公司", "有限公司")


# ----------------------------------------------------------------------------- rules


def normalise_payer_name(name: str | None) -> str:
    """NFKC (full-width → half-width), case-folded, without spaces; 有限公司 and 有限责任公司
    dropped."""
    text = unicodedata.normalize("NFKC", name or "").casefold()
    text = "".join(text.split())
    for suffix in _COMPANY_SUFFIXES:
        text = text.replace(suffix, "")
    return text


def payer_account_digits(account: str | None) -> str | None:
    """The digits of a payer account (spaces and dashes are formatting); None when it has
    letters or other symbols (such an entry goes to customer service)."""
    compact = _SEPARATORS.sub("", unicodedata.normalize("NFKC", account or ""))
    if compact and not compact.isascii():
        return None
    return compact if compact.isdigit() or compact == "" else None


def business_tz() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def business_day(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(business_tz()).date()


def require_open(order: Order) -> None:
    if order.status not in OPEN_ORDER_STATUSES:
        raise Conflict("订单已支付或已取消，无需货款确认", code="order_not_open")


# ----------------------------------------------------------------------------- access


def _is_buyer(principal: Principal, unit_id: int) -> bool:
    return principal.role == Role.UNIT and principal.unit_id == unit_id


async def buyer_order(session: AsyncSession, principal: Principal, order_no: str) -> Order:
    """The order, for its buyer unit only: anyone else gets the same 404 as for no order."""
    order = await crepo.get_order_by_no(session, order_no)
    if order is None or not _is_buyer(principal, order.buyer_unit_id):
        raise NotFound("订单不存在", code="order_not_found")
    return order


async def _readable_confirmation(
    session: AsyncSession, principal: Principal, confirmation_id: int, *, for_update: bool = False
) -> PaymentConfirmation:
    """Operations, or the buyer unit (404 for anyone else)."""
    confirmation = await crepo.get_confirmation(session, confirmation_id, for_update=for_update)
    if confirmation is None or not (
        principal.role == Role.OPS or _is_buyer(principal, confirmation.buyer_unit_id)
    ):
        raise NotFound("货款确认记录不存在", code="payment_confirmation_not_found")
    return confirmation


async def _buyer_confirmation(
    session: AsyncSession, principal: Principal, confirmation_id: int
) -> PaymentConfirmation:
    confirmation = await crepo.get_confirmation(session, confirmation_id, for_update=True)
    if confirmation is None or not _is_buyer(principal, confirmation.buyer_unit_id):
        raise NotFound("货款确认记录不存在", code="payment_confirmation_not_found")
    return confirmation


# ----------------------------------------------------------------------------- payee accounts


async def none_of_the_above(session: AsyncSession, order: Order) -> NoneOfTheAbove:
    """以上都不是 is allowed only for orders placed before the `non_settlement_cutoff` of the
    policy of the order's year and the buyer unit's region."""
    unit = await crepo.get_unit(session, order.buyer_unit_id)
    placed = business_day(order.placed_at)
    if unit is None:
        return NoneOfTheAbove(allowed=False, reason="policy_missing", cutoff=None)
    try:
        policy = await effective_policy(session, placed.year, unit.region_code)
    except DomainError:
        return NoneOfTheAbove(allowed=False, reason="policy_missing", cutoff=None)
    cutoff = policy.non_settlement_cutoff
    if cutoff is None:
        return NoneOfTheAbove(allowed=False, reason="policy_missing", cutoff=None)
    if placed < cutoff:
        return NoneOfTheAbove(allowed=True, reason=None, cutoff=cutoff)
    return NoneOfTheAbove(allowed=False, reason="placed_after_cutoff", cutoff=cutoff)


def _non_settlement_refused(order: Order, rule: NoneOfTheAbove) -> Conflict:
    when = f"{rule.cutoff:%Y年%m月%d日}前" if rule.cutoff else "政策规定日期前"
    return Conflict(
        f"付款至供应商非结算账户的货款确认仅适用于{when}下单的订单。请将本订单的付款识别码"
        f" {order.payment_code} 告知供应商，由供应商将该笔款项转入其平台专用货款结算账户"
        "（转账备注填写付款识别码）完成支付。",
        code="non_settlement_after_cutoff",
        extra={"payment_code": order.payment_code, "cutoff": str(rule.cutoff or "")},
    )


async def payee_accounts(
    session: AsyncSession, principal: Principal, order_no: str
) -> PayeeAccountsOut:
    order = await buyer_order(session, principal, order_no)
    accounts = await crepo.supplier_accounts(session, order.supplier_id)
    return PayeeAccountsOut(
        order_no=order.order_no,
        accounts=[service.account_out(a) for a in accounts],
        none_of_the_above=await none_of_the_above(session, order),
    )


# ----------------------------------------------------------------------------- matching entries


@dataclass
class _Plan:
    payment: PaymentIn
    result: str | None = None
    reason: str | None = None
    candidates: list[int] = field(default_factory=list)
    bank_transaction_id: int | None = None


async def _candidates(
    session: AsyncSession, account: SupplierAccount, payment: PaymentIn, digits: str
) -> tuple[list[int], list[int]]:
    """(ids of the lines matching the entry, ids of those still pending)."""
    ids = await crepo.candidate_line_ids(
        session,
        account_no=account.account_no,
        amount=payment.amount,
        day_from=payment.paid_on - timedelta(days=1),
        day_to=payment.paid_on + timedelta(days=7),
        tz=get_settings().timezone,
    )
    name = normalise_payer_name(payment.payer_name)
    found: list[int] = []
    pending: list[int] = []
    for line in await crepo.lines_by_ids(session, ids):
        if payer_account_digits(line.payer_account) != digits:
            continue
        if normalise_payer_name(line.payer_name) != name:
            continue
        found.append(line.id)
        if line.outcome == TxOutcome.PENDING:
            pending.append(line.id)
    return found, pending


async def _settle_pending(ids: list[int]) -> None:
    """The matcher's rules for pending lines, in a transaction of their own (committed before
    this request locks anything): a line a matcher batch holds is waited for."""
    async with unit_of_work() as session:
        claimed = await crepo.claim_queued(session, ids)
        if claimed:
            await matching.match_claimed_lines(session, claimed)


async def _plan_entries(
    session: AsyncSession, account: SupplierAccount | None, payments: list[PaymentIn]
) -> list[_Plan]:
    plans = [_Plan(p) for p in payments]
    digits_of: dict[int, str] = {}
    for i, plan in enumerate(plans):
        p = plan.payment
        if account is None:
            plan.result, plan.reason = HANDOFF_REQUIRED, "non_settlement_account"
        elif p.method == "cash":
            plan.result, plan.reason = HANDOFF_REQUIRED, "cash"
        else:
            digits = payer_account_digits(p.payer_account_no)
            if digits is None:
                plan.result, plan.reason = HANDOFF_REQUIRED, "payer_account_invalid"
            elif digits == "":
                raise ValidationFailed.at(
                    ["body", "payments", i, "payer_account_no"], "转账付款须填写付款账号"
                )
            else:
                digits_of[i] = digits
    if account is None or not digits_of:
        return plans
    pending: set[int] = set()
    for i, digits in digits_of.items():
        plans[i].candidates, waiting = await _candidates(session, account, plans[i].payment, digits)
        pending.update(waiting)
    if pending:
        await _settle_pending(sorted(pending))
        for i, digits in digits_of.items():
            found, waiting = await _candidates(session, account, plans[i].payment, digits)
            # a line imported since is the matcher's first (never lock a pending line)
            plans[i].candidates = [t for t in found if t not in waiting]
    return plans


async def _allocate_plans(
    session: AsyncSession,
    principal: Principal,
    confirmation: PaymentConfirmation,
    order: Order,
    plans: list[_Plan],
) -> Order:
    """Lock (cases → lines → order), then decide every entry still undecided and allocate the
    matched ones in one call of the common allocation path."""
    ids = sorted({i for plan in plans for i in plan.candidates})
    cases = await crepo.lock_open_cases(session, ids)
    lines = {line.id: line for line in await crepo.lock_lines(session, ids)}
    allocated = await crepo.allocated_line_ids(session, ids)
    order = await crepo.lock_order(session, order.id)
    require_open(order)
    now = datetime.now(UTC)
    paid = order.paid_amount
    status = str(order.status)
    taken: set[int] = set()
    allocations: list[repository.Allocation] = []
    for plan in plans:
        if plan.result is not None:
            continue
        free = [
            lines[i]
            for i in plan.candidates
            if i in lines
            and i not in taken
            and i not in allocated
            and crepo.line_claimable(lines[i])
            and (lines[i].outcome != TxOutcome.REVIEW or i in cases)
        ]
        if not free:
            plan.result, plan.reason = NOT_FOUND, "no_matching_payment"
        elif len(free) > 1:
            plan.result, plan.reason = AMBIGUOUS, "several_candidates"
        elif free[0].amount > order.amount - paid:
            plan.result, plan.reason = AMBIGUOUS, "overpayment"
            plan.bank_transaction_id = free[0].id
        else:
            line = free[0]
            taken.add(line.id)
            paid += line.amount
            to_status = OrderStatus.PAID if paid == order.amount else OrderStatus.PARTIALLY_PAID
            allocations.append(
                repository.Allocation(
                    bank_transaction_id=line.id,
                    order_id=order.id,
                    amount=line.amount,
                    from_status=status,
                    to_status=str(to_status),
                    paid_at=(line.booked_at or now) if to_status == OrderStatus.PAID else None,
                )
            )
            status = str(to_status)
            plan.result, plan.reason, plan.bank_transaction_id = MATCHED, None, line.id
    if not allocations:
        return order
    await repository.apply_allocations(
        session,
        allocations,
        source=AllocationSource.SELF_SERVICE,
        actor_sub=principal.sub,
        reason=f"货款确认 #{confirmation.id}",
        confirmation_id=confirmation.id,
    )
    await repository.set_outcomes(
        session,
        [
            (
                a.bank_transaction_id,
                TxOutcome.MATCHED if a.to_status == OrderStatus.PAID else TxOutcome.PARTIAL,
                lines[a.bank_transaction_id].reason,
            )
            for a in allocations
            if a.bank_transaction_id is not None
        ],
    )
    for a in allocations:
        case = cases.get(a.bank_transaction_id or 0)
        if case is not None:  # the line's review case closes with the buyer's confirmation
            case.status = ReviewStatus.ALLOCATED
            case.order_id = order.id
            case.resolved_by = principal.sub
            case.resolved_at = now
            case.resolution_note = f"采购单位货款确认 #{confirmation.id}"
    await session.flush()
    await session.refresh(order)
    return order


async def _chosen_account(
    session: AsyncSession, order: Order, account_id: int | None
) -> SupplierAccount | None:
    if account_id is None:
        rule = await none_of_the_above(session, order)
        if not rule.allowed:
            raise _non_settlement_refused(order, rule)
        return None
    account = await crepo.get_account(session, account_id)
    if account is None or account.supplier_id != order.supplier_id:
        raise ValidationFailed.at(
            ["body", "account_id"], "所选收款账户不是该订单供应商的账户", code="account_not_found"
        )
    return account


async def _submit_round(
    session: AsyncSession,
    principal: Principal,
    confirmation: PaymentConfirmation,
    order: Order,
    account: SupplierAccount | None,
    plans: list[_Plan],
    *,
    resubmission: bool,
) -> None:
    await _allocate_plans(session, principal, confirmation, order, plans)
    results = [p.result for p in plans]
    if AMBIGUOUS in results:
        status = ConfirmationStatus.UNDER_REVIEW
    elif all(r == MATCHED for r in results):
        status = ConfirmationStatus.MATCHED
    elif resubmission and await crepo.voucher_count(session, confirmation.id):
        status = ConfirmationStatus.UNDER_REVIEW  # back to customer service, receipts attached
    else:
        status = ConfirmationStatus.NOT_FOUND
    confirmation.status = status
    confirmation.updated_at = datetime.now(UTC)
    await crepo.add(
        session,
        *(
            PaymentConfirmationEntry(
                confirmation_id=confirmation.id,
                round=confirmation.round,
                kind="declared",
                payer_name=p.payment.payer_name,
                payer_account=p.payment.payer_account_no,
                amount=p.payment.amount,
                paid_on=p.payment.paid_on,
                is_cash=p.payment.method == "cash",
                bank_transaction_id=p.bank_transaction_id,
                result=p.result,
                reason=p.reason,
            )
            for p in plans
        ),
        PaymentConfirmationRound(
            confirmation_id=confirmation.id,
            round=confirmation.round,
            supplier_account_id=account.id if account else None,
            none_of_the_above=account is None,
            remark=confirmation.remark,
            status=str(status),
            submitted_by=principal.sub,
        ),
    )


async def create_confirmation(
    session: AsyncSession, principal: Principal, order_no: str, body: ConfirmationIn
) -> ConfirmationOut:
    order = await buyer_order(session, principal, order_no)
    require_open(order)
    account = await _chosen_account(session, order, body.account_id)
    plans = await _plan_entries(session, account, body.payments)
    confirmation = PaymentConfirmation(
        order_id=order.id,
        buyer_unit_id=order.buyer_unit_id,
        supplier_account_id=account.id if account else None,
        none_of_the_above=account is None,
        status=ConfirmationStatus.NOT_FOUND,
        submitted_by=principal.sub,
        round=1,
    )
    await crepo.add(session, confirmation)
    await _submit_round(session, principal, confirmation, order, account, plans, resubmission=False)
    await audit.record(
        session,
        principal,
        "payment_confirmation.submit",
        "payment_confirmation",
        confirmation.id,
        changes={"status": [None, str(confirmation.status)], "order_no": [None, order_no]},
    )
    return await confirmation_view(session, principal, confirmation.id)


async def resubmit(
    session: AsyncSession, principal: Principal, confirmation_id: int, body: ConfirmationUpdateIn
) -> ConfirmationOut:
    """Modify and resubmit a failed confirmation (货款确认失败): a new round; the earlier rounds,
    their entries, receipts and decisions stay in the history."""
    confirmation = await _buyer_confirmation(session, principal, confirmation_id)
    if confirmation.status != ConfirmationStatus.FAILED:
        raise Conflict("只有货款确认失败的记录可以修改后重新提交", code="confirmation_not_failed")
    order = await repository.get_order(session, confirmation.order_id)
    assert order is not None
    require_open(order)
    account = await _chosen_account(session, order, body.account_id)
    plans = await _plan_entries(session, account, body.payments)
    old = {"status": str(confirmation.status), "round": confirmation.round}
    confirmation.round += 1
    confirmation.supplier_account_id = account.id if account else None
    confirmation.none_of_the_above = account is None
    confirmation.remark = body.remark
    confirmation.failure_reason = None
    await session.flush()
    await _submit_round(session, principal, confirmation, order, account, plans, resubmission=True)
    await audit.record(
        session,
        principal,
        "payment_confirmation.resubmit",
        "payment_confirmation",
        confirmation.id,
        changes=audit.diff(old, {"status": str(confirmation.status), "round": confirmation.round}),
    )
    return await confirmation_view(session, principal, confirmation.id)


# ----------------------------------------------------------------------------- hand-off


@dataclass
class HandoffForm:
    payer_name: str
    payer_account_no: str
    amount: Decimal
    paid_on: date
    remark: str | None


async def handoff_target(
    session: AsyncSession, principal: Principal, confirmation_id: int
) -> PaymentConfirmation:
    """The confirmation the buyer hands off (locked), checked before any file is stored."""
    confirmation = await _buyer_confirmation(session, principal, confirmation_id)
    if confirmation.status not in (
        ConfirmationStatus.NOT_FOUND,
        ConfirmationStatus.UNDER_REVIEW,
    ):
        raise Conflict(
            "该货款确认已完成或已被退回；被退回的请先修改后重新提交",
            code="confirmation_not_open_for_handoff",
        )
    order = await repository.get_order(session, confirmation.order_id)
    assert order is not None
    account = (
        await crepo.get_account(session, confirmation.supplier_account_id)
        if confirmation.supplier_account_id is not None
        else None
    )
    if account is None or not account.is_settlement:
        # receipts for money paid to a non-settlement account (以上都不是, or one of the
        # supplier's other accounts): only for orders placed before the cut-off
        rule = await none_of_the_above(session, order)
        if not rule.allowed:
            raise _non_settlement_refused(order, rule)
    return confirmation


async def record_handoff(
    session: AsyncSession,
    principal: Principal,
    confirmation: PaymentConfirmation,
    form: HandoffForm,
    images: list[StagedImage],
) -> None:
    """The hand-off's entry (one per round, replaced by a later hand-off of the same round) and
    its receipts (stored files, already in place); the confirmation goes to 审核中."""
    existing = await crepo.vouchers(session, confirmation.id)
    known = {v.sha256 for v in existing}
    new = []
    for image in images:
        if image.sha256 not in known:
            known.add(image.sha256)
            new.append(image)
    if len(existing) + len(new) > MAX_FILES:
        raise ValidationFailed.at(
            ["body", "files"],
            f"每笔货款确认最多上传 {MAX_FILES} 张凭证（已有 {len(existing)} 张）",
            code="too_many_files",
        )
    entries = await crepo.entries(session, confirmation.id)
    entry = next(
        (e for e in entries if e.round == confirmation.round and e.kind == "handoff"), None
    )
    if entry is None:
        entry = PaymentConfirmationEntry(
            confirmation_id=confirmation.id, round=confirmation.round, kind="handoff"
        )
        session.add(entry)
    entry.payer_name = form.payer_name
    entry.payer_account = form.payer_account_no
    entry.amount = form.amount
    entry.paid_on = form.paid_on
    entry.is_cash = not form.payer_account_no or "现金" in form.payer_name
    entry.result = HANDOFF_REQUIRED
    entry.reason = "handed_off"
    session.add_all(
        PaymentVoucher(
            confirmation_id=confirmation.id,
            round=confirmation.round,
            filename=image.filename,
            content_type=image.content_type,
            size_bytes=image.size,
            sha256=image.sha256,
            storage_key=image.storage_key,
            uploaded_by=principal.sub,
        )
        for image in new
    )
    old = str(confirmation.status)
    confirmation.status = ConfirmationStatus.UNDER_REVIEW
    if form.remark is not None:
        confirmation.remark = form.remark
    confirmation.updated_at = datetime.now(UTC)
    current = await crepo.current_round(session, confirmation)
    current.status = str(ConfirmationStatus.UNDER_REVIEW)
    current.remark = confirmation.remark
    await session.flush()
    await audit.record(
        session,
        principal,
        "payment_confirmation.handoff",
        "payment_confirmation",
        confirmation.id,
        changes={
            "status": [old, str(confirmation.status)],
            "vouchers": [len(existing), len(known)],
        },
    )


# ----------------------------------------------------------------------------- review


def _approval_amount(
    confirmation: PaymentConfirmation, entries: list[PaymentConfirmationEntry]
) -> Decimal:
    """Without a named bank line: the hand-off's amount of the current round, else the sum of
    the round's entries that did not match a line."""
    current = [e for e in entries if e.round == confirmation.round]
    handoff = [e for e in current if e.kind == "handoff"]
    if handoff:
        return handoff[0].amount
    return sum((e.amount for e in current if e.result != MATCHED), Decimal("0.00"))


async def _notify_buyer(
    session: AsyncSession,
    confirmation: PaymentConfirmation,
    order: Order,
    *,
    confirmed: bool,
    reason: str | None,
) -> None:
    mobile = await crepo.contact_mobile(session, confirmation.buyer_unit_id)
    if not mobile:
        return
    outcome = "confirmed" if confirmed else "failed"
    await queue_sms(
        session,
        event_key=f"payment_confirmation:{confirmation.id}:{outcome}:r{confirmation.round}",
        template="payment_confirmed" if confirmed else "payment_failed",
        mobile=mobile,
        params={"order_no": order.order_no, "reason": reason or ""}
        if not confirmed
        else {"order_no": order.order_no},
        unit_id=confirmation.buyer_unit_id,
    )


async def _locked_review_target(
    session: AsyncSession, principal: Principal, confirmation_id: int
) -> PaymentConfirmation:
    confirmation = await _readable_confirmation(
        session, principal, confirmation_id, for_update=True
    )
    if confirmation.status != ConfirmationStatus.UNDER_REVIEW:
        raise Conflict("该货款确认不在审核中", code="confirmation_not_under_review")
    return confirmation


async def approve(
    session: AsyncSession, principal: Principal, confirmation_id: int, body: ApproveIn
) -> ConfirmationOut:
    """货款确认成功: the payment is allocated to the order through the common allocation path —
    from the named bank line, else from the confirmation itself (its receipts are the evidence,
    no bank line). Audited; SMS to the buyer's contact."""
    confirmation = await _locked_review_target(session, principal, confirmation_id)
    now = datetime.now(UTC)
    tx_id = body.bank_transaction_id
    case = None
    line = None
    if tx_id is not None:
        unlocked = await crepo.lines_by_ids(session, [tx_id])
        if unlocked and unlocked[0].outcome == TxOutcome.PENDING:
            # the matcher's line until decided: never lock it (the batch may hold its order)
            raise Conflict(
                "该银行流水尚未完成自动匹配，请稍后再试", code="bank_transaction_not_usable"
            )
        cases = await crepo.lock_open_cases(session, [tx_id])
        case = cases.get(tx_id)
        locked = await crepo.lock_lines(session, [tx_id])
        if not locked:
            raise NotFound("银行流水不存在", code="bank_transaction_not_found")
        line = locked[0]
        if line.direction != "credit" or line.outcome == TxOutcome.PENDING:
            raise Conflict("该银行流水不能用于货款确认", code="bank_transaction_not_usable")
        if await crepo.allocated_line_ids(session, [tx_id]):
            raise Conflict("该银行流水已分配到订单", code="already_allocated")
        amount = line.amount
    else:
        entries = await crepo.entries(session, confirmation.id)
        this_round = [e for e in entries if e.round == confirmation.round]
        if any(e.result == AMBIGUOUS for e in this_round) and not any(
            e.kind == "handoff" for e in this_round
        ):  # the money is on one of the candidate lines: never allocate it a second time
            raise Conflict(
                "该笔付款对应多笔银行流水，请指定其中一笔（bank_transaction_id）",
                code="bank_transaction_required",
            )
        amount = _approval_amount(confirmation, entries)
        if amount <= 0:
            raise Conflict("没有待确认的付款金额，请指定银行流水", code="nothing_to_allocate")
    order = await crepo.lock_order(session, confirmation.order_id)
    require_open(order)
    outstanding = order.amount - order.paid_amount
    if amount > outstanding:
        raise Conflict(f"付款金额 {amount} 超过订单未付金额 {outstanding}", code="overpayment")
    to_status = OrderStatus.PAID if amount == outstanding else OrderStatus.PARTIALLY_PAID
    paid_at = ((line.booked_at if line else None) or now) if to_status == OrderStatus.PAID else None
    await repository.apply_allocations(
        session,
        [
            repository.Allocation(
                bank_transaction_id=tx_id,
                order_id=order.id,
                amount=amount,
                from_status=str(order.status),
                to_status=str(to_status),
                paid_at=paid_at,
            )
        ],
        source=AllocationSource.REVIEW,
        actor_sub=principal.sub,
        reason=body.note or f"货款确认成功 #{confirmation.id}",
        confirmation_id=confirmation.id,
    )
    if line is not None:
        outcome = TxOutcome.MATCHED if to_status == OrderStatus.PAID else TxOutcome.PARTIAL
        await repository.set_outcomes(session, [(line.id, outcome, line.reason)])
    if case is not None:
        case.status = ReviewStatus.ALLOCATED
        case.order_id = order.id
        case.resolved_by = principal.sub
        case.resolved_at = now
        case.resolution_note = body.note or f"货款确认成功 #{confirmation.id}"
    confirmation.status = ConfirmationStatus.CONFIRMED
    confirmation.updated_at = now
    current = await crepo.current_round(session, confirmation)
    current.decision = str(ConfirmationStatus.CONFIRMED)
    current.decided_by = principal.sub
    current.decided_at = now
    current.decision_note = body.note
    current.bank_transaction_id = tx_id
    await session.flush()
    await session.refresh(order)
    await _notify_buyer(session, confirmation, order, confirmed=True, reason=None)
    await audit.record(
        session,
        principal,
        "payment_confirmation.approve",
        "payment_confirmation",
        confirmation.id,
        changes={
            "status": [str(ConfirmationStatus.UNDER_REVIEW), str(ConfirmationStatus.CONFIRMED)],
            "amount": [None, str(amount)],
            "bank_transaction_id": [None, tx_id],
        },
        reason=body.note,
    )
    return await confirmation_view(session, principal, confirmation.id)


async def reject(
    session: AsyncSession, principal: Principal, confirmation_id: int, body: RejectIn
) -> ConfirmationOut:
    """货款确认失败 with the reason; the buyer may modify and resubmit (PUT)."""
    confirmation = await _locked_review_target(session, principal, confirmation_id)
    now = datetime.now(UTC)
    confirmation.status = ConfirmationStatus.FAILED
    confirmation.failure_reason = body.reason
    confirmation.updated_at = now
    current = await crepo.current_round(session, confirmation)
    current.decision = str(ConfirmationStatus.FAILED)
    current.decided_by = principal.sub
    current.decided_at = now
    current.decision_note = body.reason
    await session.flush()
    order = await repository.get_order(session, confirmation.order_id)
    assert order is not None
    await _notify_buyer(session, confirmation, order, confirmed=False, reason=body.reason)
    await audit.record(
        session,
        principal,
        "payment_confirmation.reject",
        "payment_confirmation",
        confirmation.id,
        changes={"status": [str(ConfirmationStatus.UNDER_REVIEW), str(confirmation.status)]},
        reason=body.reason,
    )
    return await confirmation_view(session, principal, confirmation.id)


# ----------------------------------------------------------------------------- views


def _entry_out(e: PaymentConfirmationEntry) -> EntryOut:
    return EntryOut(
        id=e.id,
        round=e.round,
        kind=e.kind,
        payer_name=e.payer_name,
        payer_account_no=(
            mask_account(payer_account_digits(e.payer_account) or e.payer_account)
            if e.payer_account
            else None
        ),
        amount=e.amount,
        paid_on=e.paid_on,
        method="cash" if e.is_cash else "transfer",
        result=e.result,
        reason=e.reason,
        advice=ADVICE.get(e.reason or "") if e.result != MATCHED else None,
        bank_transaction_id=e.bank_transaction_id,
    )


def _voucher_out(v: PaymentVoucher) -> VoucherOut:
    return VoucherOut(
        id=v.id,
        round=v.round,
        filename=v.filename,
        content_type=v.content_type,
        size_bytes=v.size_bytes,
        sha256=v.sha256,
        url=f"/api/v1/payment-confirmations/{v.confirmation_id}/vouchers/{v.id}",
        created_at=v.created_at,
    )


def _brief(c: PaymentConfirmation, order_no: str) -> ConfirmationBrief:
    return ConfirmationBrief(
        id=c.id,
        order_no=order_no,
        buyer_unit_id=c.buyer_unit_id,
        status=str(c.status),
        status_label=STATUS_LABELS[str(c.status)],
        round=c.round,
        account_id=c.supplier_account_id,
        none_of_the_above=c.none_of_the_above,
        failure_reason=c.failure_reason,
        remark=c.remark,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


async def confirmation_view(
    session: AsyncSession, principal: Principal, confirmation_id: int
) -> ConfirmationOut:
    confirmation = await _readable_confirmation(session, principal, confirmation_id)
    await session.refresh(confirmation)
    order = await repository.get_order(session, confirmation.order_id)
    assert order is not None
    await session.refresh(order)
    entries = await crepo.entries(session, confirmation.id)
    vouchers = await crepo.vouchers(session, confirmation.id)
    rounds = await crepo.rounds(session, confirmation.id)
    entry_out = [_entry_out(e) for e in entries]
    voucher_out = [_voucher_out(v) for v in vouchers]
    history = [
        RoundOut(
            round=r.round,
            status=r.status,
            account_id=r.supplier_account_id,
            none_of_the_above=r.none_of_the_above,
            remark=r.remark,
            submitted_by=r.submitted_by,
            submitted_at=r.submitted_at,
            decision=r.decision,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            decision_note=r.decision_note,
            bank_transaction_id=r.bank_transaction_id,
            entries=[e for e in entry_out if e.round == r.round],
            vouchers=[v for v in voucher_out if v.round == r.round],
        )
        for r in rounds
    ]
    order_out: OrderOut = await service.order_out(session, order)
    return ConfirmationOut(
        **_brief(confirmation, order.order_no).model_dump(),
        entries=[e for e in entry_out if e.round == confirmation.round],
        vouchers=voucher_out,
        history=history,
        order=order_out,
    )


async def list_confirmations(
    session: AsyncSession,
    principal: Principal,
    *,
    status: ConfirmationStatus | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[ConfirmationBrief], int | None]:
    unit_id = None if principal.role == Role.OPS else principal.require_unit_id()
    rows = await crepo.list_confirmations(
        session,
        buyer_unit_id=unit_id,
        status=str(status) if status else None,
        after_id=after_id,
        limit=limit + 1,
    )
    page = rows[:limit]
    return [_brief(c, no) for c, no in page], (page[-1][0].id if len(rows) > limit else None)


async def voucher_file(
    session: AsyncSession, principal: Principal, confirmation_id: int, voucher_id: int
) -> PaymentVoucher:
    await _readable_confirmation(session, principal, confirmation_id)
    voucher = await crepo.get_voucher(session, confirmation_id, voucher_id)
    if voucher is None:
        raise NotFound("凭证不存在", code="voucher_not_found")
    return voucher
