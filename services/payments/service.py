"""Domain rules of suppliers, orders (识别码支付) and manual review (人工审核). No SQL, no HTTP.

Every state change is audited (`shared.audit`) and, for orders, written to the order's timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import codes, repository
from services.payments.schemas import (
    AllocationOut,
    BankTransactionOut,
    OrderDetailOut,
    OrderEventOut,
    OrderIn,
    OrderOut,
    ResolveIn,
    ReviewCaseBrief,
    ReviewCaseOut,
    StatementOut,
    SupplierAccountOut,
    SupplierIn,
    SupplierOut,
)
from shared import audit
from shared.auth import Principal, Role, ensure_unit_in_scope
from shared.errors import Conflict, DomainError, NotFound, ValidationFailed
from shared.masking import mask_account, mask_name
from shared.models.payments import (
    OPEN_ORDER_STATUSES,
    AllocationSource,
    BankTransaction,
    Order,
    OrderEvent,
    OrderStatus,
    PaymentAllocation,
    ReviewCase,
    ReviewReason,
    ReviewStatus,
    SupplierAccount,
    TxOutcome,
)
from shared.settings import get_settings

CODE_ATTEMPTS = 20

# ----------------------------------------------------------------------------- suppliers


def account_out(account: SupplierAccount) -> SupplierAccountOut:
    return SupplierAccountOut(
        id=account.id,
        holder_name=mask_name(account.holder_name),
        account_no=mask_account(account.account_no),
        bank_name=account.bank_name,
        is_settlement=account.is_settlement,
    )


async def create_supplier(
    session: AsyncSession, principal: Principal, body: SupplierIn
) -> SupplierOut:
    """A supplier and its bank accounts; at most one is its settlement account (结算账户)."""
    if sum(a.is_settlement for a in body.accounts) > 1:
        raise ValidationFailed.at(
            ["body", "accounts"], "一个供应商只能有一个结算账户", code="several_settlement_accounts"
        )
    numbers = [a.account_no for a in body.accounts]
    if len(set(numbers)) != len(numbers):
        raise ValidationFailed.at(["body", "accounts"], "账号重复", code="duplicate_account_no")
    if numbers and await repository.existing_account_nos(session, numbers):
        raise Conflict("该银行账号已登记在其他供应商名下", code="account_no_taken")
    try:
        async with session.begin_nested():
            supplier, accounts = await repository.add_supplier(
                session, body.name, [a.model_dump() for a in body.accounts]
            )
    except IntegrityError as exc:  # a concurrent registration of the same account number
        raise Conflict("该银行账号已登记在其他供应商名下", code="account_no_taken") from exc
    await audit.record(
        session,
        principal,
        "supplier.create",
        "supplier",
        supplier.id,
        changes={"name": [None, supplier.name], "accounts": [None, len(accounts)]},
    )
    return SupplierOut(
        id=supplier.id, name=supplier.name, accounts=[account_out(a) for a in accounts]
    )


async def get_supplier(session: AsyncSession, supplier_id: int) -> SupplierOut:
    supplier = await repository.get_supplier(session, supplier_id)
    if supplier is None:
        raise NotFound("供应商不存在", code="supplier_not_found")
    accounts = await repository.supplier_accounts(session, supplier_id)
    return SupplierOut(
        id=supplier.id, name=supplier.name, accounts=[account_out(a) for a in accounts]
    )


# ----------------------------------------------------------------------------- orders


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return moment


def _same_order(order: Order, body: OrderIn, legacy_code: str | None) -> bool:
    return (
        order.buyer_unit_id == body.buyer_unit_id
        and order.supplier_id == body.supplier_id
        and order.amount == body.amount
        and order.placed_at == _aware(body.placed_at)
        and order.region_code == body.region_code
        and order.origin_county == body.origin_county
        and order.purchase_channel == body.purchase_channel
        and (legacy_code is None or order.payment_code == legacy_code)
    )


def _replay(order: Order, body: OrderIn, legacy_code: str | None) -> Order:
    if not _same_order(order, body, legacy_code):
        raise Conflict("订单号已存在，且内容与本次提交不一致", code="order_no_conflict")
    return order


async def create_order(
    session: AsyncSession, principal: Principal, body: OrderIn
) -> tuple[Order, bool]:
    """An order from the trading platform; idempotent on `order_no`. Returns (order, created).

    The payment code is generated (`codes.generate`) unless the order was migrated from the old
    system (`payment_code` given, taken as given). A code is unique among open orders (partial
    unique index); a generated code that collides is replaced by a fresh one.
    """
    legacy_code: str | None = None
    if body.payment_code is not None:
        legacy_code = codes.normalise_legacy(body.payment_code)
        if legacy_code is None:
            raise ValidationFailed.at(
                ["body", "payment_code"], "付款识别码须为6位字母或数字", code="invalid_payment_code"
            )
    existing = await repository.get_order_by_no(session, body.order_no)
    if existing is not None:
        return _replay(existing, body, legacy_code), False
    if not await repository.unit_exists(session, body.buyer_unit_id):
        raise ValidationFailed.at(
            ["body", "buyer_unit_id"], "采购单位不存在", code="unit_not_found"
        )
    if await repository.get_supplier(session, body.supplier_id) is None:
        raise ValidationFailed.at(
            ["body", "supplier_id"], "供应商不存在", code="supplier_not_found"
        )
    settlement = next(
        (
            a
            for a in await repository.supplier_accounts(session, body.supplier_id)
            if a.is_settlement
        ),
        None,
    )
    if settlement is None:
        raise ValidationFailed.at(
            ["body", "supplier_id"], "该供应商尚未登记结算账户", code="no_settlement_account"
        )
    for _ in range(CODE_ATTEMPTS):
        order = Order(
            order_no=body.order_no,
            buyer_unit_id=body.buyer_unit_id,
            supplier_id=body.supplier_id,
            settlement_account_id=settlement.id,
            amount=body.amount,
            paid_amount=Decimal("0.00"),
            status=OrderStatus.PENDING_PAYMENT,
            payment_code=legacy_code or codes.generate(),
            payment_code_legacy=legacy_code is not None,
            placed_at=_aware(body.placed_at),
            region_code=body.region_code,
            origin_county=body.origin_county,
            purchase_channel=body.purchase_channel,
        )
        try:
            await repository.add_order(session, order)
        except IntegrityError:
            raced = await repository.get_order_by_no(session, body.order_no)
            if raced is not None:  # the same order_no committed concurrently
                return _replay(raced, body, legacy_code), False
            if legacy_code is not None:
                raise Conflict(
                    "该付款识别码已被另一笔未支付订单使用", code="payment_code_in_use"
                ) from None
            continue  # generated code taken by an open order: draw again
        await repository.add_order_event(
            session,
            OrderEvent(
                order_id=order.id,
                action="created",
                from_status=None,
                to_status=OrderStatus.PENDING_PAYMENT,
                amount=order.amount,
                actor_sub=principal.sub,
            ),
        )
        await audit.record(
            session,
            principal,
            "order.create",
            "order",
            order.id,
            changes={"order_no": [None, order.order_no], "amount": [None, str(order.amount)]},
        )
        return order, True
    raise DomainError("暂时无法生成付款识别码，请重试", code="payment_code_exhausted", status=503)


async def _readable_order(session: AsyncSession, principal: Principal, order_no: str) -> Order:
    order = await repository.get_order_by_no(session, order_no)
    if order is None:
        raise NotFound("订单不存在", code="order_not_found")
    if principal.role == Role.UNIT:
        try:
            await ensure_unit_in_scope(session, principal, order.buyer_unit_id)
        except NotFound:
            raise NotFound("订单不存在", code="order_not_found") from None
    return order


async def order_out(session: AsyncSession, order: Order) -> OrderOut:
    account = await repository.get_account(session, order.settlement_account_id)
    assert account is not None
    return OrderOut(
        id=order.id,
        order_no=order.order_no,
        payment_code=order.payment_code,
        status=order.status,
        amount=order.amount,
        paid_amount=order.paid_amount,
        outstanding_amount=order.amount - order.paid_amount,
        buyer_unit_id=order.buyer_unit_id,
        supplier_id=order.supplier_id,
        settlement_account=account_out(account),
        placed_at=order.placed_at,
        paid_at=order.paid_at,
        cancelled_at=order.cancelled_at,
        purchase_channel=order.purchase_channel,
        completed_at=order.completed_at,
    )


def allocation_out(a: PaymentAllocation) -> AllocationOut:
    return AllocationOut(
        id=a.id,
        bank_transaction_id=a.bank_transaction_id,
        amount=a.amount,
        source=str(a.source),
        created_at=a.created_at,
    )


async def order_detail(
    session: AsyncSession, principal: Principal, order_no: str
) -> OrderDetailOut:
    """The order, its allocations (bank lines applied) and its status timeline."""
    order = await _readable_order(session, principal, order_no)
    base = await order_out(session, order)
    allocations = await repository.order_allocations(session, order.id)
    events = await repository.order_events(session, order.id)
    return OrderDetailOut(
        **base.model_dump(),
        allocations=[allocation_out(a) for a in allocations],
        timeline=timeline(order, events, allocations),
    )


PAYMENT_ALLOCATED = "payment_allocated"


def timeline(
    order: Order, events: list[OrderEvent], allocations: list[PaymentAllocation]
) -> list[OrderEventOut]:
    """The status timeline: the order's events (creation, cancellation, allocations made by an
    operator, with the note) and one `payment_allocated` entry per automatic allocation, derived
    from the allocation itself (time, amount, bank line, actor) rather than stored twice; the
    status before and after it come from the running paid total (allocations in id order)."""
    manual = {
        e.bank_transaction_id
        for e in events
        if e.action == PAYMENT_ALLOCATED and e.bank_transaction_id is not None
    }
    entries = [
        OrderEventOut(
            action=e.action,
            from_status=e.from_status,
            to_status=e.to_status,
            amount=e.amount,
            bank_transaction_id=e.bank_transaction_id,
            actor_sub=e.actor_sub,
            reason=e.reason,
            at=e.at,
        )
        for e in events
    ]
    paid = Decimal("0.00")
    for a in allocations:
        before = paid
        paid += a.amount
        if a.source != AllocationSource.AUTO or (
            a.bank_transaction_id is not None and a.bank_transaction_id in manual
        ):  # operators' and buyers' allocations have their stored event (with the note)
            continue
        entries.append(
            OrderEventOut(
                action=PAYMENT_ALLOCATED,
                from_status=OrderStatus.PENDING_PAYMENT
                if before == 0
                else OrderStatus.PARTIALLY_PAID,
                to_status=OrderStatus.PAID if paid >= order.amount else OrderStatus.PARTIALLY_PAID,
                amount=a.amount,
                bank_transaction_id=a.bank_transaction_id,
                actor_sub=a.actor_sub,
                reason=None,
                at=a.created_at,
            )
        )
    # by time, creation first (a matcher's transaction may have begun before the order's);
    # stable, so events keep their stored order among themselves
    entries.sort(key=lambda e: (e.action != "created", e.at))
    return entries


async def cancel_order(
    session: AsyncSession, principal: Principal, order_no: str, reason: str | None
) -> Order:
    """Cancel while nothing is paid; cancelling a cancelled order again is a no-op (retry)."""
    order = await repository.get_order_by_no(session, order_no, for_update=True)
    if order is None:
        raise NotFound("订单不存在", code="order_not_found")
    if order.status == OrderStatus.CANCELLED:
        return order
    if order.status != OrderStatus.PENDING_PAYMENT or order.paid_amount > 0:
        raise Conflict("订单已有付款，不能取消", code="order_has_payments")
    old = order.status
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = datetime.now(UTC)
    order.updated_at = order.cancelled_at
    await session.flush()
    await repository.add_order_event(
        session,
        OrderEvent(
            order_id=order.id,
            action="cancelled",
            from_status=old,
            to_status=OrderStatus.CANCELLED,
            actor_sub=principal.sub,
            reason=reason,
        ),
    )
    await audit.record(
        session,
        principal,
        "order.cancel",
        "order",
        order.id,
        changes={"status": [str(old), str(OrderStatus.CANCELLED)]},
        reason=reason,
    )
    return order


async def complete_order(
    session: AsyncSession, principal: Principal, order_no: str, completed_at: datetime | None
) -> Order:
    """The platform reports fulfilment complete (`completed_at`, default now). Paid and completed,
    in either order, the order counts toward progress (trigger of migration 0009, same
    transaction). Completing again is a no-op (retry); a cancelled order cannot be completed."""
    order = await repository.get_order_by_no(session, order_no, for_update=True)
    if order is None:
        raise NotFound("订单不存在", code="order_not_found")
    if order.completed_at is not None:
        return order
    if order.status == OrderStatus.CANCELLED:
        raise Conflict("订单已取消，不能标记为已完成", code="order_cancelled")
    order.completed_at = _aware(completed_at) if completed_at else datetime.now(UTC)
    order.updated_at = datetime.now(UTC)
    await session.flush()
    await repository.add_order_event(
        session,
        OrderEvent(
            order_id=order.id,
            action="completed",
            from_status=order.status,
            to_status=order.status,
            actor_sub=principal.sub,
        ),
    )
    await audit.record(
        session,
        principal,
        "order.complete",
        "order",
        order.id,
        changes={"completed_at": [None, order.completed_at.isoformat()]},
    )
    return order


# ----------------------------------------------------------------------------- statements


async def statement_view(session: AsyncSession, statement_id: int) -> StatementOut:
    statement = await repository.get_statement(session, statement_id)
    if statement is None:
        raise NotFound("对账单不存在", code="statement_not_found")
    counts = await repository.outcome_counts(session, statement_id)
    amounts = await repository.credit_amounts(session, statement_id)
    return StatementOut(
        statement_id=statement.id,
        filename=statement.filename,
        format=str(statement.format),
        profile=statement.profile,
        status=statement.status,
        error=statement.error,
        lines_total=statement.lines_total,
        lines_new=statement.lines_new,
        lines_duplicate=statement.lines_duplicate,
        lines_ignored=statement.lines_ignored,
        **{str(o): counts.get(str(o), 0) for o in TxOutcome},
        credit_total=statement.credit_total,
        amounts={str(o): amounts.get(str(o), Decimal(0)) for o in TxOutcome},
    )


async def _case_brief(session: AsyncSession, case: ReviewCase) -> ReviewCaseBrief:
    nos = await repository.order_nos(
        session, [i for i in (case.order_id, case.suggested_order_id) if i is not None]
    )
    return ReviewCaseBrief(
        id=case.id,
        reason=case.reason,
        status=case.status,
        order_no=nos.get(case.order_id) if case.order_id else None,
        suggested_order_no=nos.get(case.suggested_order_id) if case.suggested_order_id else None,
    )


async def bank_transaction_view(session: AsyncSession, tx_id: int) -> BankTransactionOut:
    tx = await repository.get_bank_transaction(session, tx_id)
    if tx is None:
        raise NotFound("银行流水不存在", code="bank_transaction_not_found")
    case = await repository.review_case_for_transaction(session, tx.id)
    allocations = await repository.transaction_allocations(session, tx.id)
    return BankTransactionOut(
        id=tx.id,
        statement_id=tx.statement_id,
        bank_ref=tx.bank_ref,
        account_no=mask_account(tx.account_no),
        direction=tx.direction,
        amount=tx.amount,
        currency=tx.currency,
        booked_at=tx.booked_at,
        value_date=tx.value_date,
        payer_name=mask_name(tx.payer_name),
        payer_account=mask_account(tx.payer_account),
        payer_bank=tx.payer_bank,
        remark=tx.remark,
        channel=tx.channel,
        outcome=tx.outcome,
        reason=tx.reason,
        review_case=await _case_brief(session, case) if case else None,
        allocations=[allocation_out(a) for a in allocations],
    )


# ----------------------------------------------------------------------------- review


def _case_out(
    case: ReviewCase, tx: BankTransaction | None, order_nos: dict[int, str]
) -> ReviewCaseOut:
    return ReviewCaseOut(
        id=case.id,
        reason=case.reason,
        status=case.status,
        bank_transaction_id=case.bank_transaction_id,
        amount=tx.amount if tx else None,
        account_no=mask_account(tx.account_no) if tx else None,
        payer_name=mask_name(tx.payer_name) if tx else None,
        payer_account=mask_account(tx.payer_account) if tx else None,
        remark=tx.remark if tx else None,
        booked_at=tx.booked_at if tx else None,
        order_no=order_nos.get(case.order_id) if case.order_id else None,
        suggested_order_no=(
            order_nos.get(case.suggested_order_id) if case.suggested_order_id else None
        ),
        details=case.details,
        resolved_by=case.resolved_by,
        resolved_at=case.resolved_at,
        resolution_note=case.resolution_note,
        created_at=case.created_at,
    )


async def list_review_cases(
    session: AsyncSession,
    *,
    reason: ReviewReason | None,
    status: ReviewStatus | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[ReviewCaseOut], int | None]:
    rows = await repository.list_review_cases(
        session, reason=reason, status=status, after_id=after_id, limit=limit + 1
    )
    page = rows[:limit]
    ids = {i for c, _ in page for i in (c.order_id, c.suggested_order_id) if i is not None}
    nos = await repository.order_nos(session, sorted(ids))
    items = [_case_out(c, tx, nos) for c, tx in page]
    return items, (page[-1][0].id if len(rows) > limit else None)


async def resolve_review_case(
    session: AsyncSession, principal: Principal, case_id: int, body: ResolveIn
) -> ReviewCaseOut:
    """An operator allocates the line to an order (same rules and same allocation path as the
    matcher: open order, amount ≤ outstanding) or rejects it. Resolving twice is a 409."""
    case = await repository.get_review_case(session, case_id, for_update=True)
    if case is None:
        raise NotFound("审核事项不存在", code="review_case_not_found")
    if case.status != ReviewStatus.OPEN:
        raise Conflict("该审核事项已处理", code="review_case_resolved")
    old: dict[str, Any] = {"status": str(case.status), "order_id": case.order_id}
    now = datetime.now(UTC)
    if body.action == "allocate":
        await _allocate_case(session, principal, case, body, now)
    else:
        case.status = ReviewStatus.REJECTED
    case.resolved_by = principal.sub
    case.resolved_at = now
    case.resolution_note = body.note
    await session.flush()
    await audit.record(
        session,
        principal,
        f"review_case.{body.action}",
        "review_case",
        case.id,
        changes=audit.diff(old, {"status": str(case.status), "order_id": case.order_id}),
        reason=body.note,
    )
    tx = (
        await repository.get_bank_transaction(session, case.bank_transaction_id)
        if case.bank_transaction_id
        else None
    )
    ids = [i for i in (case.order_id, case.suggested_order_id) if i is not None]
    return _case_out(case, tx, await repository.order_nos(session, ids))


async def _allocate_case(
    session: AsyncSession, principal: Principal, case: ReviewCase, body: ResolveIn, now: datetime
) -> None:
    if not body.order_no:
        raise ValidationFailed.at(["body", "order_no"], "分配到订单时须填写订单号")
    if case.bank_transaction_id is None:
        raise Conflict("该审核事项没有对应的银行流水", code="no_bank_transaction")
    tx = await repository.get_bank_transaction(session, case.bank_transaction_id, for_update=True)
    assert tx is not None
    if await repository.transaction_allocations(session, tx.id):
        raise Conflict("该银行流水已分配到订单", code="already_allocated")
    order = await repository.get_order_by_no(session, body.order_no, for_update=True)
    if order is None:
        raise NotFound("订单不存在", code="order_not_found")
    if order.status not in OPEN_ORDER_STATUSES:
        raise Conflict("订单已支付或已取消，不能再分配款项", code="order_not_open")
    outstanding = order.amount - order.paid_amount
    if tx.amount > outstanding:
        raise Conflict(f"流水金额 {tx.amount} 超过订单未付金额 {outstanding}", code="overpayment")
    to_status = OrderStatus.PAID if tx.amount == outstanding else OrderStatus.PARTIALLY_PAID
    allocation = repository.Allocation(
        bank_transaction_id=tx.id,
        order_id=order.id,
        amount=tx.amount,
        from_status=str(order.status),
        to_status=str(to_status),
        # as the matcher does: paid when the money arrived (booking time), not when resolved
        paid_at=(tx.booked_at or now) if to_status == OrderStatus.PAID else None,
    )
    try:
        async with session.begin_nested():
            await repository.apply_allocations(
                session,
                [allocation],
                source=AllocationSource.REVIEW,
                actor_sub=principal.sub,
                reason=body.note,
            )
    except IntegrityError as exc:
        raise Conflict("该银行流水已分配到订单", code="already_allocated") from exc
    await repository.set_outcomes(
        session,
        [
            (
                tx.id,
                TxOutcome.MATCHED if to_status == OrderStatus.PAID else TxOutcome.PARTIAL,
                tx.reason,
            )
        ],
    )
    await session.refresh(order)
    case.status = ReviewStatus.ALLOCATED
    case.order_id = order.id
