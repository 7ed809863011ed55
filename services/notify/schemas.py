"""Request and response models of the notify service (API.md "Notifications")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.models import SmsStatus


class MessageOut(BaseModel):
    id: int
    event_key: str
    unit_id: int | None
    template: str
    template_version: int
    mobile: str  # masked
    status: SmsStatus
    attempts: int
    segments: int
    provider: str | None
    provider_message_id: str | None
    last_error_code: str | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    purged_at: datetime | None


class AttemptOut(BaseModel):
    at: datetime
    kind: str  # send | query
    provider: str
    outcome: str | None  # null while in flight
    error_code: str | None
    error_message: str | None
    provider_message_id: str | None
    finished_at: datetime | None


class MessageDetailOut(MessageOut):
    body: str
    history: list[AttemptOut]


class StatsOut(BaseModel):
    by_status: dict[str, int]
    by_template: dict[str, int]
    by_provider: dict[str, int]
    segments_by_template: dict[str, int]  # SMS parts billed (sent, delivered, undelivered)


class TemplateOut(BaseModel):
    name: str
    version: int
    body: str
    provider_codes: dict[str, str]
    placeholders: list[str]
    created_by: str
    created_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=500)
    provider_codes: dict[str, str] | None = None  # null/absent: keep the current codes
