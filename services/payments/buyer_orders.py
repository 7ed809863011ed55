"""The buyer's orders (`GET /api/v1/orders`) and the payee-account SMS (发送账户信息短信).
Domain rules; no SQL, no HTTP."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import confirmations_repository as crepo
from services.payments import service
from services.payments.confirmation_schemas import PayeeSmsOut
from services.payments.confirmations import business_tz, buyer_order, require_open
from services.payments.schemas import OrderOut
from shared import audit
from shared.auth import Principal, Role
from shared.errors import DomainError
from shared.masking import mask_mobile
from shared.models import OrderStatus, PayeeSmsRequest
from shared.settings import get_settings
from shared.sms import queue_sms

PAYEE_SMS_PER_ORDER_PER_DAY = 3
PAYEE_SMS_PER_MOBILE_PER_DAY = 10


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


# ----------------------------------------------------------------------------- orders list


async def list_orders(
    session: AsyncSession,
    principal: Principal,
    *,
    status: OrderStatus | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[OrderOut], int | None]:
    """A buyer unit its own orders and, as a superior, its descendants'; operations and the
    platform all."""
    scope = principal.require_unit_id() if principal.role == Role.UNIT else None
    orders = await crepo.list_orders(
        session, scope_unit_id=scope, status=status, after_id=after_id, limit=limit + 1
    )
    page = orders[:limit]
    await crepo.preload_accounts(session, [o.settlement_account_id for o in page])
    items = [await service.order_out(session, o) for o in page]
    return items, (page[-1].id if len(orders) > limit else None)


# ----------------------------------------------------------------------------- payee SMS


def mobile_hash(mobile: str) -> str:
    """A keyed hash of the mobile (the rate-limit table never holds the number itself)."""
    key = get_settings().jwt_secret.get_secret_value().encode()
    return hmac.new(key, f"payee-sms:{mobile}".encode(), hashlib.sha256).hexdigest()[:32]


async def send_payee_sms(
    session: AsyncSession, principal: Principal, order_no: str, mobile: str
) -> PayeeSmsOut:
    """发送账户信息短信: the supplier's settlement account, the amount and the payment code to a
    mobile the buyer gives; at most 3 per order and 10 per mobile per business day."""
    order = await buyer_order(session, principal, order_no)
    require_open(order)
    digest = mobile_hash(mobile)
    await crepo.lock_payee_sms(session, order.id, digest)
    today = datetime.now(business_tz()).date()
    order_today, mobile_today, pair_ever = await crepo.payee_sms_counts(
        session, order.id, digest, today
    )
    if order_today >= PAYEE_SMS_PER_ORDER_PER_DAY:
        raise RateLimited(
            f"该订单今日已发送 {PAYEE_SMS_PER_ORDER_PER_DAY} 次账户信息短信，请明日再试",
            code="payee_sms_order_limit",
        )
    if mobile_today >= PAYEE_SMS_PER_MOBILE_PER_DAY:
        raise RateLimited(
            f"该手机号今日已接收 {PAYEE_SMS_PER_MOBILE_PER_DAY} 条账户信息短信，请明日再试",
            code="payee_sms_mobile_limit",
        )
    account = await crepo.get_account(session, order.settlement_account_id)
    assert account is not None
    outbox_id = await queue_sms(
        session,
        event_key=f"payee_account:{order.order_no}:{digest[:16]}:{pair_ever + 1}",
        template="payee_account",
        mobile=mobile,
        params={
            "order_no": order.order_no,
            "amount": f"{order.amount - order.paid_amount:.2f}",
            "holder_name": account.holder_name,
            "account_no": account.account_no,
            "bank_name": account.bank_name,
            "payment_code": order.payment_code,
        },
        unit_id=order.buyer_unit_id,
    )
    await crepo.add_payee_sms_request(
        session,
        PayeeSmsRequest(
            order_id=order.id,
            mobile_hash=digest,
            business_day=today,
            requested_by=principal.sub,
            sms_outbox_id=outbox_id,
        ),
    )
    await audit.record(
        session,
        principal,
        "order.send_payee_sms",
        "order",
        order.id,
        changes={"mobile": [None, mask_mobile(mobile)]},
    )
    return PayeeSmsOut(
        queued=outbox_id is not None,
        mobile=mask_mobile(mobile) or "",
        order_sends_left_today=PAYEE_SMS_PER_ORDER_PER_DAY - order_today - 1,
        mobile_sends_left_today=PAYEE_SMS_PER_MOBILE_PER_DAY - mobile_today - 1,
    )
