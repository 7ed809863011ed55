"""Request and response models of the payments service (API.md "Payments")."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models.payments import (
    OrderStatus,
    PurchaseChannel,
    ReviewReason,
    ReviewStatus,
    TxOutcome,
)
from shared.money import Money, MoneyOut
from shared.text import ensure_storable

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
"""A BIGINT id: larger numbers would fail in the database (422 instead of a 500)."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """Text the database cannot store (NUL, lone surrogates) is a 422, never a 500."""
        return ensure_storable(value) if isinstance(value, str) else value


class SupplierAccountIn(_In):
    holder_name: str = Field(min_length=1, max_length=200)
    account_no: str = Field(min_length=4, max_length=40, pattern=r"^[0-9]+$")
    bank_name: str = Field(min_length=1, max_length=200)
    is_settlement: bool = False


class SupplierIn(_In):
    name: str = Field(min_length=1, max_length=200)
    accounts: list[SupplierAccountIn] = Field(default_factory=list, max_length=50)


class SupplierAccountOut(BaseModel):
    id: int
    holder_name: str | None
    account_no: str | None  # masked: `1001 **** * 7931`
    bank_name: str
    is_settlement: bool


class SupplierOut(BaseModel):
    id: int
    name: str
    accounts: list[SupplierAccountOut]


class OrderIn(_In):
    order_no: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    buyer_unit_id: Id
    supplier_id: Id
    amount: Money
    placed_at: datetime
    region_code: str | None = Field(default=None, max_length=4)
    origin_county: str | None = Field(default=None, max_length=100)
    payment_code: str | None = Field(
        default=None, description="only for orders migrated from the old system"
    )
    purchase_channel: PurchaseChannel = PurchaseChannel.UNIT

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Decimal) -> Decimal:
        if amount <= 0:
            raise ValueError("订单金额须大于 0")
        return amount

    @field_validator("placed_at")
    @classmethod
    def _plausible_moment(cls, placed_at: datetime) -> datetime:
        """Years 1970–2999: far-off years overflow once converted to UTC (a 500, not a 422)."""
        if not 1970 <= placed_at.year <= 2999:
            raise ValueError("下单时间超出允许范围（1970 年至 2999 年）")
        return placed_at


class AllocationOut(BaseModel):
    id: int
    bank_transaction_id: int | None
    amount: MoneyOut
    source: str
    created_at: datetime


class OrderEventOut(BaseModel):
    action: str
    from_status: str | None
    to_status: str
    amount: MoneyOut | None
    bank_transaction_id: int | None
    actor_sub: str
    reason: str | None
    at: datetime


class OrderOut(BaseModel):
    id: int
    order_no: str
    payment_code: str
    status: OrderStatus
    amount: MoneyOut
    paid_amount: MoneyOut
    outstanding_amount: MoneyOut
    buyer_unit_id: int
    supplier_id: int
    settlement_account: SupplierAccountOut
    placed_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    purchase_channel: PurchaseChannel = PurchaseChannel.UNIT
    completed_at: datetime | None = None


class OrderDetailOut(OrderOut):
    allocations: list[AllocationOut]
    timeline: list[OrderEventOut]


class CompleteIn(_In):
    completed_at: datetime | None = None

    @field_validator("completed_at")
    @classmethod
    def _plausible(cls, moment: datetime | None) -> datetime | None:
        if moment is not None and not 1970 <= moment.year <= 2999:
            raise ValueError("完成时间超出允许范围（1970 年至 2999 年）")
        return moment


class CancelIn(_In):
    reason: str | None = Field(default=None, max_length=300)


class StatementImportOut(BaseModel):
    statement_id: int
    format: str
    profile: str | None
    status: str
    lines_total: int
    lines_new: int
    lines_duplicate: int
    lines_ignored: int


class StatementOut(BaseModel):
    statement_id: int
    filename: str
    format: str
    profile: str | None
    status: str
    error: str | None
    lines_total: int
    lines_new: int
    lines_duplicate: int
    lines_ignored: int
    matched: int
    partial: int
    review: int
    unmatched: int
    pending: int
    ignored: int
    credit_total: MoneyOut
    """Every credit line of the file (duplicates and ignored ones included)."""
    amounts: dict[str, MoneyOut]
    """The credit lines by outcome, summed: adds up to `credit_total`."""


class ReviewCaseBrief(BaseModel):
    id: int
    reason: ReviewReason
    status: ReviewStatus
    order_no: str | None
    suggested_order_no: str | None


class BankTransactionOut(BaseModel):
    id: int
    statement_id: int
    bank_ref: str | None
    account_no: str | None  # masked
    direction: str
    amount: MoneyOut
    currency: str
    booked_at: datetime | None
    value_date: date | None
    payer_name: str | None  # masked
    payer_account: str | None  # masked
    payer_bank: str | None
    remark: str | None
    channel: str | None
    outcome: TxOutcome
    reason: str | None
    review_case: ReviewCaseBrief | None
    allocations: list[AllocationOut]


class ReviewCaseOut(BaseModel):
    id: int
    reason: ReviewReason
    status: ReviewStatus
    bank_transaction_id: int | None
    amount: MoneyOut | None
    account_no: str | None  # masked receiving account
    payer_name: str | None  # masked
    payer_account: str | None  # masked
    remark: str | None
    booked_at: datetime | None
    order_no: str | None
    suggested_order_no: str | None
    details: dict[str, object] | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str | None
    created_at: datetime


class ResolveIn(_In):
    action: Literal["allocate", "reject"]
    order_no: str | None = Field(default=None, max_length=40)
    note: str = Field(min_length=1, max_length=1000)
