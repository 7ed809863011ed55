"""The SMS outbox: written in the same transaction as the event it announces, sent by Celery."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, intpk, str_enum


class SmsStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the maximum attempts; visible to operations


class SmsOutbox(Base):
    """One SMS to send. `event_key` (e.g. `filing:42:confirmed:v3`) makes an event send once."""

    __tablename__ = "sms_outbox"
    id: Mapped[intpk]
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    mobile: Mapped[str] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(60))
    params: Mapped[dict[str, Any]]
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[SmsStatus] = mapped_column(
        str_enum(SmsStatus, "sms_status"), default=SmsStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[CreatedAt]
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    sent_at: Mapped[datetime | None]
    __table_args__ = (
        Index(
            "ix_sms_outbox_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )
