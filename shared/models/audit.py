"""Audit log (who, when, what changed, why) and the idempotency-key store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, intpk


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[intpk]
    at: Mapped[CreatedAt]
    actor_sub: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_unit_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any] | None]
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id", "at"),)


class IdempotencyRecord(Base):
    """The stored response of a write made with an `Idempotency-Key` header."""

    __tablename__ = "idempotency_records"
    actor_sub: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime]
