"""Suppliers and bank accounts, orders with payment codes (付款识别码), bank statements and their
transactions, payment allocations, review cases, self-service payment confirmations (货款确认)
and their vouchers."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, Money, intpk, str_enum


class Supplier(Base):
    __tablename__ = "suppliers"
    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[CreatedAt]


class SupplierAccount(Base):
    """A supplier's bank account; `is_settlement` marks its platform settlement account
    (平台专用货款结算账户), the only kind whose credits are matched automatically."""

    __tablename__ = "supplier_accounts"
    id: Mapped[intpk]
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    account_no: Mapped[str] = mapped_column(String(40), unique=True)
    bank_name: Mapped[str] = mapped_column(String(200))
    is_settlement: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[CreatedAt]


class OrderStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"  # 待支付
    PARTIALLY_PAID = "partially_paid"  # 部分支付
    PAID = "paid"  # 已支付
    CANCELLED = "cancelled"  # 已取消


# Foreign keys of the bulk paths that the database checks once per statement with triggers
# instead of per row (migration 0003 explains why); the models keep them for the ORM's joins, and
# `alembic check` skips them.
STATEMENT_CHECKED_FOREIGN_KEYS = frozenset(
    {
        "fk_bank_transactions_statement_id_statements",
        "fk_payment_allocations_bank_transaction_id_bank_transactions",
        "fk_payment_allocations_order_id_orders",
        "fk_payment_allocations_confirmation_id_payment_confirmations",
    }
)


def include_in_schema_comparison(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's `include_object`: the statement-checked foreign keys exist in the models only."""
    return not (type_ == "foreign_key_constraint" and name in STATEMENT_CHECKED_FOREIGN_KEYS)


OPEN_ORDER_STATUSES = (OrderStatus.PENDING_PAYMENT, OrderStatus.PARTIALLY_PAID)


class PurchaseChannel(enum.StrEnum):
    UNIT = "unit"  # the unit's own buyer account
    CONTRACTOR = "contractor"  # the canteen contractor's account (counts for the unit)
    PERSONAL = "personal"  # staff bound to the unit, mini-program (个人采购 计入本单位)
    UNION = "union"  # union procurement (工会采购)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[intpk]
    order_no: Mapped[str] = mapped_column(String(40), unique=True)
    buyer_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    purchase_channel: Mapped[PurchaseChannel] = mapped_column(
        str_enum(PurchaseChannel, "purchase_channel"), default=PurchaseChannel.UNIT
    )
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    settlement_account_id: Mapped[int] = mapped_column(ForeignKey("supplier_accounts.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, "order_status"), default=OrderStatus.PENDING_PAYMENT
    )
    payment_code: Mapped[str] = mapped_column(String(6))
    payment_code_legacy: Mapped[bool] = mapped_column(Boolean, default=False)
    placed_at: Mapped[datetime]
    region_code: Mapped[str | None] = mapped_column(String(4))  # service-centre code
    origin_county: Mapped[str | None] = mapped_column(String(100))
    paid_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]  # fulfilment completed (counts toward progress)
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("paid_amount >= 0 AND paid_amount <= amount", name="paid_within_amount"),
        Index("ix_orders_payment_code", "payment_code"),
        # Paying an order changes paid_amount, status, paid_at and updated_at, none of them
        # indexed: with room left in each page the update is HOT (no index entries written).
        # So "one open order per code" is not a partial index on `status` but OpenPaymentCode.
        # Half of each page stays free: a statement pays orders placed around the same time,
        # neighbours in the table, in one transaction (no pruning in between); at 80 only a
        # quarter of those updates found room in their page.
        {"postgresql_with": {"fillfactor": "50"}},
    )


class OpenPaymentCode(Base):
    """The payment code of each open (pending or partially paid) order: a code identifies
    exactly one open order (primary key). Kept by triggers on `orders` (migration 0003): a row
    is added when an open order is inserted and removed in the same statement that pays or
    cancels the order, whatever code path (API, matcher, review, fixtures) writes the order."""

    __tablename__ = "open_payment_codes"
    payment_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)


class OrderEvent(Base):
    """The order's status timeline."""

    __tablename__ = "order_events"
    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    bank_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("bank_transactions.id"))
    actor_sub: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[CreatedAt]


class StatementFormat(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    XLS = "xls"  # old binary Excel (issue #10)
    MT940 = "mt940"
    CAMT053 = "camt053"


class Statement(Base):
    """One imported statement file."""

    __tablename__ = "statements"
    id: Mapped[intpk]
    filename: Mapped[str] = mapped_column(String(300))
    format: Mapped[StatementFormat] = mapped_column(str_enum(StatementFormat, "statement_format"))
    profile: Mapped[str | None] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="importing")
    lines_total: Mapped[int] = mapped_column(Integer, default=0)
    lines_new: Mapped[int] = mapped_column(Integer, default=0)
    lines_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    lines_ignored: Mapped[int] = mapped_column(Integer, default=0)
    imported_by: Mapped[str] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    finished_at: Mapped[datetime | None]
    # the sum of the credit lines read from the file (duplicates and ignored ones included)
    credit_total: Mapped[Decimal] = mapped_column(Numeric(20, 2), server_default="0")
    # renewed by every committed batch; an `importing` statement past its lease is failed
    heartbeat_at: Mapped[datetime | None]


class TxOutcome(enum.StrEnum):
    PENDING = "pending"  # not yet processed by the matcher
    MATCHED = "matched"  # allocated; the order is paid
    PARTIAL = "partial"  # allocated; the order is still partially paid
    REVIEW = "review"  # manual review, see review_cases
    UNMATCHED = "unmatched"  # no code: kept for the buyer's self-service confirmation
    IGNORED = "ignored"  # debit, or credit to an account that is no known settlement account


class BankTransaction(Base):
    """One statement line, stored once whatever the number of files it arrived in.

    `dedupe_key` is the bank reference scoped by the receiving account, or, where the bank gives
    none, a hash of the line's fields with an occurrence number.
    """

    __tablename__ = "bank_transactions"
    id: Mapped[intpk]
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    bank_ref: Mapped[str | None] = mapped_column(String(100))
    account_no: Mapped[str] = mapped_column(String(40))  # receiving (our supplier's) account
    direction: Mapped[str] = mapped_column(String(6))  # credit | debit
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    booked_at: Mapped[datetime | None]
    value_date: Mapped[date | None] = mapped_column(Date)
    payer_name: Mapped[str | None] = mapped_column(String(200))
    payer_account: Mapped[str | None] = mapped_column(String(60))
    payer_bank: Mapped[str | None] = mapped_column(String(200))
    remark: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(30))
    outcome: Mapped[TxOutcome] = mapped_column(
        str_enum(TxOutcome, "tx_outcome"), default=TxOutcome.PENDING
    )
    reason: Mapped[str | None] = mapped_column(String(40))
    processed_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    __table_args__ = (
        # No index involves `outcome`, `reason` or `processed_at` (the matcher's work list is
        # MatchWork), and pages keep room for one more version of each line: recording the
        # outcome is a HOT update that writes no index entry.
        # The buyer's payment confirmation looks lines up by receiving account and amount
        # (neither ever changes: recording the outcome stays a HOT update).
        Index("ix_bank_transactions_account_no_amount", "account_no", "amount"),
        {"postgresql_with": {"fillfactor": "50"}},
    )


class MatchWork(Base):
    """The matcher's work list: one row per imported batch that stored pending lines, naming
    them by range (the statement's lines with ids `first_tx_id`..`last_tx_id` still pending;
    one importer writes a statement's batches one after another, so the ranges of a statement
    never overlap). Added by the import in the statement that inserts the lines; a matcher
    locks rows `FOR UPDATE SKIP LOCKED` (workers take disjoint work), and in the transaction
    that records the outcomes deletes them, or moves `first_tx_id` past the lines it took.
    `lines` counts the pending lines left (a buyer's payment confirmation that settles some of
    them itself lowers it). One row per batch instead of one per line: no row per line to
    insert, delete and vacuum."""

    __tablename__ = "match_work"
    id: Mapped[intpk]
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"))
    first_tx_id: Mapped[int] = mapped_column(BigInteger)
    last_tx_id: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[CreatedAt]
    __table_args__ = (
        CheckConstraint("lines > 0", name="lines_positive"),
        CheckConstraint("first_tx_id <= last_tx_id", name="range"),
    )


class AllocationSource(enum.StrEnum):
    AUTO = "auto"  # matcher, by payment code
    REVIEW = "review"  # an operator resolving a review case
    SELF_SERVICE = "self_service"  # the buyer's payment confirmation matched a bank line


class PaymentAllocation(Base):
    """Money of one bank line applied to one order. One line pays at most one order (unique)."""

    __tablename__ = "payment_allocations"
    id: Mapped[intpk]
    bank_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_transactions.id"), unique=True
    )
    confirmation_id: Mapped[int | None] = mapped_column(ForeignKey("payment_confirmations.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[AllocationSource] = mapped_column(
        str_enum(AllocationSource, "allocation_source")
    )
    actor_sub: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[CreatedAt]
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)


class ReviewReason(enum.StrEnum):
    OVERPAYMENT = "overpayment"  # amount above the order's outstanding amount
    ORDER_ALREADY_PAID = "order_already_paid"  # code of a paid order
    ORDER_CANCELLED = "order_cancelled"  # code of a cancelled order
    PAYEE_NOT_SETTLEMENT = (
        "payee_not_settlement_account"  # paid to another account than the order's
    )
    MULTIPLE_CODES = "multiple_codes"  # two different codes in one remark
    CASH_DEPOSIT = "cash_deposit"  # 现金存入
    PAYER_ACCOUNT_INVALID = "payer_account_invalid"  # letters or symbols in the payer account
    CODE_SUGGESTION = (
        "code_suggestion"  # one character from an open order's code, same payee+amount
    )
    SELF_SERVICE = "self_service"  # handed over from a buyer's payment confirmation


class ReviewStatus(enum.StrEnum):
    OPEN = "open"
    ALLOCATED = "allocated"
    REJECTED = "rejected"


class ReviewCase(Base):
    __tablename__ = "review_cases"
    id: Mapped[intpk]
    bank_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_transactions.id"), unique=True
    )
    confirmation_id: Mapped[int | None] = mapped_column(ForeignKey("payment_confirmations.id"))
    reason: Mapped[ReviewReason] = mapped_column(str_enum(ReviewReason, "review_reason"))
    status: Mapped[ReviewStatus] = mapped_column(
        str_enum(ReviewStatus, "review_status"), default=ReviewStatus.OPEN
    )
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))  # order the code named
    suggested_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    details: Mapped[dict[str, Any] | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    __table_args__ = (Index("ix_review_cases_status_reason", "status", "reason"),)


class ConfirmationStatus(enum.StrEnum):
    MATCHED = "matched"  # entries matched received bank lines: the order changed at once
    NOT_FOUND = "not_found"  # some entry matched no bank line (yet): confirm later or hand off
    UNDER_REVIEW = "under_review"  # 审核中
    CONFIRMED = "confirmed"  # 货款确认成功
    FAILED = "failed"  # 货款确认失败 (may be modified and resubmitted)


class PaymentConfirmation(Base):
    """A buyer's self-service payment confirmation (货款确认) for one order."""

    __tablename__ = "payment_confirmations"
    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    buyer_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    supplier_account_id: Mapped[int | None] = mapped_column(ForeignKey("supplier_accounts.id"))
    none_of_the_above: Mapped[bool] = mapped_column(Boolean, default=False)  # 以上都不是
    status: Mapped[ConfirmationStatus] = mapped_column(
        str_enum(ConfirmationStatus, "confirmation_status")
    )
    failure_reason: Mapped[str | None] = mapped_column(Text)
    remark: Mapped[str | None] = mapped_column(String(300))
    submitted_by: Mapped[str] = mapped_column(String(100))
    # submission round: 1, then +1 per modification after a failure (PUT); history in
    # payment_confirmation_rounds (shared/models/confirmations.py)
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    __table_args__ = (Index("ix_payment_confirmations_status_id", "status", "id"),)


class PaymentConfirmationEntry(Base):
    """One payment the buyer declares (添加支付信息), from the bank's receipt."""

    __tablename__ = "payment_confirmation_entries"
    id: Mapped[intpk]
    confirmation_id: Mapped[int] = mapped_column(ForeignKey("payment_confirmations.id"), index=True)
    payer_name: Mapped[str] = mapped_column(String(200))
    payer_account: Mapped[str] = mapped_column(String(60))
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_on: Mapped[date | None] = mapped_column(Date)
    is_cash: Mapped[bool] = mapped_column(Boolean, default=False)
    bank_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("bank_transactions.id"))
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # `declared` (POST/PUT, matched at once) or `handoff` (补填信息 with the receipts)
    kind: Mapped[str] = mapped_column(String(10), default="declared", server_default="declared")
    # matched | not_found | handoff_required | ambiguous, and why
    result: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))


class PaymentVoucher(Base):
    """An uploaded receipt image (jpeg/png/jpg/bmp, ≤ 5 MB, ≤ 150 per confirmation)."""

    __tablename__ = "payment_vouchers"
    id: Mapped[intpk]
    confirmation_id: Mapped[int] = mapped_column(ForeignKey("payment_confirmations.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    uploaded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[CreatedAt]
    __table_args__ = (UniqueConstraint("confirmation_id", "sha256"),)
