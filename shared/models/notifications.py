"""The SMS outbox and what the notify service keeps around it.

- `sms_outbox`: one SMS per event, written in the same transaction as the event it announces,
  sent by Celery (`services/notify`). The number is stored encrypted (`mobile_ciphertext`, AES-GCM,
  `mobile_key_id` names the key for rotation) with a keyed hash (`mobile_hash`) for lookups;
  `mobile` holds only the masked form (`138****5678`) shown in listings.
- `sms_attempts`: every provider call (send or status query) with its outcome.
- `sms_receipts`: every delivery receipt as received (matched to a message when possible).
- `sms_templates`: versioned texts with the providers' template codes.
- `sms_provider_cooldowns`: providers skipped by the failover until `cooled_until`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, intpk, str_enum


class SmsStatus(enum.StrEnum):
    PENDING = "pending"  # waiting to be sent (or re-sent) at next_attempt_at
    SENDING = "sending"  # claimed by a worker until next_attempt_at (the lease)
    SENT = "sent"  # accepted by the provider
    DELIVERED = "delivered"  # receipt or query: on the handset
    UNDELIVERED = "undelivered"  # receipt or query: the operator could not deliver it
    UNKNOWN = "unknown"  # the provider call timed out: query before any re-send
    FAILED = "failed"  # permanent error, or attempts exhausted; visible to operations


FINAL_STATUSES = (SmsStatus.DELIVERED, SmsStatus.UNDELIVERED, SmsStatus.FAILED)


class SmsOutbox(Base):
    """One SMS to send. `event_key` (e.g. `filing:42:confirmed:v3`) makes an event send once."""

    __tablename__ = "sms_outbox"
    id: Mapped[intpk]
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    mobile: Mapped[str] = mapped_column(String(20))  # masked only (138****5678)
    mobile_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)  # nonce + AES-GCM
    mobile_key_id: Mapped[str | None] = mapped_column(String(40))
    mobile_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    template: Mapped[str] = mapped_column(String(60))
    template_version: Mapped[int] = mapped_column(Integer, default=1)
    params: Mapped[dict[str, Any]]
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[SmsStatus] = mapped_column(
        str_enum(SmsStatus, "sms_status"), default=SmsStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # every claim; also the fence
    attempts_before_resend: Mapped[int] = mapped_column(Integer, default=0)  # retry budget base
    next_attempt_at: Mapped[CreatedAt]
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    last_error_code: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    __table_args__ = (
        Index(
            "ix_sms_outbox_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending', 'unknown')"),
        ),
        Index("ix_sms_outbox_created_at", "created_at"),
    )


class SmsAttempt(Base):
    """One call to a provider for a message: `kind` send or query; `outcome` null while in
    flight, then the provider's outcome (`sent`, `retry`, `wait`, `permanent`, `unknown`), `lost`
    (the worker vanished; settled by a query), or for queries `found` / `not_found` / `error`."""

    __tablename__ = "sms_attempts"
    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(
        ForeignKey("sms_outbox.id", ondelete="CASCADE"), index=True
    )
    attempt_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default="send")
    provider: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[CreatedAt]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    __table_args__ = (
        Index("ix_sms_attempts_provider_message_id", "provider", "provider_message_id"),
    )


class SmsReceipt(Base):
    """A delivery report as received (callback or query); kept even when no message matches yet
    (a receipt may arrive before the send call returned)."""

    __tablename__ = "sms_receipts"
    id: Mapped[intpk]
    provider: Mapped[str] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # our id echoed (OutId)
    delivered: Mapped[bool | None] = mapped_column(Boolean)
    error_code: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime | None]
    received_at: Mapped[CreatedAt]
    applied_to: Mapped[int | None] = mapped_column(BigInteger)  # the message it settled
    __table_args__ = (
        Index("ix_sms_receipts_provider_message_id", "provider", "provider_message_id"),
        Index("ix_sms_receipts_message_id", "message_id"),
    )


class SmsTemplate(Base):
    """One version of a template's text (`${param}` placeholders) and provider codes
    (`{"aliyun": "SMS_123456789", "tencent": "1234567"}`)."""

    __tablename__ = "sms_templates"
    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    provider_codes: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[CreatedAt]
    __table_args__ = (UniqueConstraint("name", "version"),)


class SmsProviderCooldown(Base):
    """A provider that failed provider-side is skipped by the failover until `cooled_until`."""

    __tablename__ = "sms_provider_cooldowns"
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    cooled_until: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)
