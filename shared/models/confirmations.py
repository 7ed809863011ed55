"""Self-service payment confirmation (货款确认): the history of each submission round, and the
buyer's requests for the payee-account SMS (发送账户信息短信, rate-limited)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, intpk


class PaymentConfirmationRound(Base):
    """One submission of a confirmation (round 1 by POST, one more per PUT after a failure) and
    the review decision that closed it: the history the buyer and operations see."""

    __tablename__ = "payment_confirmation_rounds"
    id: Mapped[intpk]
    confirmation_id: Mapped[int] = mapped_column(ForeignKey("payment_confirmations.id"))
    round: Mapped[int] = mapped_column(Integer)
    supplier_account_id: Mapped[int | None] = mapped_column(ForeignKey("supplier_accounts.id"))
    none_of_the_above: Mapped[bool] = mapped_column(Boolean, default=False)
    remark: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # the confirmation's status after submission
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[CreatedAt]
    decision: Mapped[str | None] = mapped_column(String(20))  # confirmed | failed
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)  # approval note or failure reason
    bank_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("bank_transactions.id"))
    __table_args__ = (UniqueConstraint("confirmation_id", "round"),)


class PayeeSmsRequest(Base):
    """One payee-account SMS a buyer asked for (rate limits: per order and per mobile per
    business day). The mobile itself is only in the SMS outbox; here its hash."""

    __tablename__ = "payee_sms_requests"
    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    mobile_hash: Mapped[str] = mapped_column(String(64))
    business_day: Mapped[date] = mapped_column(Date)
    requested_by: Mapped[str] = mapped_column(String(100))
    sms_outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[CreatedAt]
    __table_args__ = (
        Index("ix_payee_sms_requests_order_day", "order_id", "business_day"),
        Index("ix_payee_sms_requests_mobile_day", "mobile_hash", "business_day"),
    )
