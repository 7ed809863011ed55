"""The emulator's in-memory state: accepted sends, switchable faults, pushed receipts."""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Provider = Literal["aliyun", "tencent"]
PROVIDERS: tuple[Provider, ...] = ("aliyun", "tencent")


class Faults(BaseModel):
    """Switchable faults of one provider. Counters apply to the next N send calls."""

    fail_5xx: int = Field(default=0, ge=0)  # next N sends: HTTP 5xx, nothing recorded
    status_5xx: int = Field(default=500, ge=500, le=599)
    throttle: int = Field(default=0, ge=0)  # next N sends: Throttling.User / RequestLimitExceeded
    number_limit: int = Field(default=0, ge=0)  # next N sends: per-number flow control
    number_limit_window: Literal["minute", "hour", "day"] = "minute"
    enforce_number_limits: bool = False  # count real windows (Aliyun 1/min 5/h 10/day, ...)
    timeout_after_accept: int = Field(default=0, ge=0)  # next N sends: recorded, answer held
    hold_seconds: float = Field(default=30.0, ge=0)
    errors: list[str] = Field(default_factory=list)  # next sends answer these codes, one each
    invalid_numbers: list[str] = Field(default_factory=list)  # always "invalid number"
    undelivered_numbers: list[str] = Field(default_factory=list)  # accepted, receipt says FAIL
    fail_query: int = Field(default=0, ge=0)  # next N status queries: HTTP 500
    receipts: Literal["auto", "manual", "off"] = "auto"  # manual: POST /_emulator/deliver
    receipt_delay: float = Field(default=0.05, ge=0)
    duplicate_receipts: bool = False  # every report pushed twice (two batches)
    early_receipts: bool = False  # the report is pushed before the send call is answered
    out_of_order_receipts: bool = False  # batches pushed newest first


class FaultsUpdate(Faults):
    provider: Provider | None = None  # None: both providers


class EmulatorConfig(BaseModel):
    aliyun_receipt_url: str | None = None
    tencent_receipt_url: str | None = None
    receipt_headers: dict[str, str] = Field(default_factory=dict)
    verify_signatures: bool = True
    aliyun_credentials: dict[str, str] = Field(
        default_factory=lambda: {"emulator-access-key-id": "emulator-access-key-secret"}
    )
    tencent_credentials: dict[str, str] = Field(
        default_factory=lambda: {"emulator-secret-id": "emulator-secret-key"}
    )
    batch_window: float = Field(default=0.05, ge=0)
    receipt_retry_delays: list[float] = Field(default_factory=lambda: [0.2, 0.5, 1.0])


class ConfigUpdate(BaseModel):
    aliyun_receipt_url: str | None = None
    tencent_receipt_url: str | None = None
    receipt_headers: dict[str, str] | None = None
    verify_signatures: bool | None = None


@dataclass
class Send:
    provider: Provider
    id: str  # BizId / SerialNo
    message_id: str | None  # OutId / SessionContext as sent
    mobile: str  # 11 digits
    sign_name: str
    template_code: str
    params: Any
    at: datetime
    status: Literal["waiting", "delivered", "undelivered"] = "waiting"
    report_at: datetime | None = None
    held: bool = False  # answered late (timeout-after-accept)
    generation: int = 0  # State.generation when accepted (receipts from before a reset drop)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "id": self.id,
            "message_id": self.message_id,
            "mobile": self.mobile,
            "sign_name": self.sign_name,
            "template_code": self.template_code,
            "params": self.params,
            "at": self.at.isoformat(),
            "status": self.status,
            "report_at": self.report_at.isoformat() if self.report_at else None,
            "held": self.held,
        }


@dataclass
class State:
    config: EmulatorConfig
    faults: dict[Provider, Faults] = field(default_factory=lambda: {p: Faults() for p in PROVIDERS})
    sends: list[Send] = field(default_factory=list)
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    request_counts: dict[str, int] = field(default_factory=dict)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    sink: list[dict[str, Any]] = field(default_factory=list)
    generation: int = 0

    def reset(self) -> None:
        self.generation += 1
        self.faults = {p: Faults() for p in PROVIDERS}
        self.sends.clear()
        self.requests.clear()
        self.request_counts.clear()
        self.pushes.clear()
        self.sink.clear()


def new_biz_id() -> str:
    """Aliyun BizIds look like `900619746936498440^0`."""
    return f"{secrets.randbelow(9 * 10**17) + 10**17}^0"


def new_serial_no() -> str:
    """Tencent SerialNos look like `2019:-7361471580445698345`."""
    return f"3369:{secrets.randbelow(10**19)}"
