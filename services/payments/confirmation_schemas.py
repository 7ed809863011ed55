"""Request and response models of the self-service payment confirmation (API.md "Self-service
payment confirmation")."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from services.payments.schemas import Id, OrderOut, SupplierAccountOut, _In
from shared.money import Money, MoneyOut

STATUS_LABELS = {
    "matched": "已匹配（订单状态已更新）",
    "not_found": "未找到到账记录",
    "under_review": "审核中",
    "confirmed": "货款确认成功",
    "failed": "货款确认失败",
}


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValueError("金额须大于 0")
    return amount


def _plausible_day(day: date) -> date:
    if not 2000 <= day.year <= 2999:
        raise ValueError("付款日期超出允许范围")
    return day


class NoneOfTheAbove(BaseModel):
    allowed: bool
    reason: str | None
    cutoff: date | None


class PayeeAccountsOut(BaseModel):
    order_no: str
    accounts: list[SupplierAccountOut]
    none_of_the_above: NoneOfTheAbove


class PaymentIn(_In):
    """One payment from the bank's receipt (添加支付信息)."""

    payer_name: str = Field(min_length=1, max_length=200)
    payer_account_no: str = Field(default="", max_length=60)
    amount: Money
    paid_on: date
    method: Literal["transfer", "cash"] = "transfer"

    _amount = field_validator("amount")(_positive)
    _day = field_validator("paid_on")(_plausible_day)


class ConfirmationIn(_In):
    account_id: Id | None = None
    payments: list[PaymentIn] = Field(min_length=1, max_length=20)


class ConfirmationUpdateIn(ConfirmationIn):
    remark: str | None = Field(default=None, max_length=300)


class EntryOut(BaseModel):
    id: int
    round: int
    kind: str  # declared | handoff
    payer_name: str
    payer_account_no: str | None  # masked
    amount: MoneyOut
    paid_on: date | None
    method: str
    result: str | None  # matched | not_found | handoff_required | ambiguous
    reason: str | None
    advice: str | None
    bank_transaction_id: int | None


class VoucherOut(BaseModel):
    id: int
    round: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    url: str
    created_at: datetime


class RoundOut(BaseModel):
    round: int
    status: str
    account_id: int | None
    none_of_the_above: bool
    remark: str | None
    submitted_by: str
    submitted_at: datetime
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    bank_transaction_id: int | None
    entries: list[EntryOut]
    vouchers: list[VoucherOut]


class ConfirmationBrief(BaseModel):
    id: int
    order_no: str
    buyer_unit_id: int
    status: str
    status_label: str
    round: int
    account_id: int | None
    none_of_the_above: bool
    failure_reason: str | None
    remark: str | None
    created_at: datetime
    updated_at: datetime


class ConfirmationOut(ConfirmationBrief):
    entries: list[EntryOut]  # the current round's
    vouchers: list[VoucherOut]  # every round's
    history: list[RoundOut]
    order: OrderOut


class ApproveIn(_In):
    bank_transaction_id: Id | None = None
    note: str | None = Field(default=None, max_length=1000)


class RejectIn(_In):
    reason: str = Field(min_length=1, max_length=300)


class PayeeSmsIn(_In):
    mobile: str = Field(pattern=r"^1[3-9][0-9]{9}$")


class PayeeSmsOut(BaseModel):
    queued: bool
    mobile: str  # masked
    order_sends_left_today: int
    mobile_sends_left_today: int
