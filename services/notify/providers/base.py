"""The one small interface every SMS provider implements (log, aliyun, tencent).

The dispatcher (services/notify) only speaks this interface: it builds a `SendRequest` from an
outbox row, calls `send`, and acts on the `Outcome` of the `SendResult`:

- `SENT`: the provider accepted the message (a receipt or a query settles delivery later);
- `RETRY`: transient (network, 5xx, throttling): back off and try again, maybe on the next provider
  (`provider_side=True` puts this provider in a failover cool-down);
- `WAIT`: per-number flow control: try again after `retry_after` seconds, not an error;
- `PERMANENT`: invalid number, unapproved template/signature, missing parameters, no balance...:
  fail at once with the provider's `error_code` and a Chinese `error_message`;
- `UNKNOWN`: the request was written but no answer came (timeout): the message may have gone
  out; `query` the provider before any re-send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SendRequest:
    message_id: int  # ours → Aliyun OutId / Tencent SessionContext
    mobile: str  # mainland 11 digits, no +86
    template: str  # our template name, e.g. "filing_returned"
    template_code: str  # the provider's template code/id
    params: dict[str, str]  # ordered as the template's placeholders (Tencent is positional)
    body: str  # rendered text (the log provider writes it, masked)
    sign_name: str


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    WAIT = "wait"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider: str
    provider_message_id: str | None = None  # BizId / SerialNo
    error_code: str | None = None  # provider's code, e.g. "isv.MOBILE_NUMBER_ILLEGAL"
    error_message: str | None = None  # Chinese explanation for operations
    retry_after: float | None = None  # seconds, for WAIT (per-number limits) / throttling
    # True for provider-side faults (5xx, SYSTEM_ERROR, network, timeouts, our credentials
    # refused) → failover cool-down
    provider_side: bool = False


@dataclass(frozen=True)
class StatusReport:
    provider: str
    provider_message_id: str | None
    message_id: int | None  # our id from OutId/SessionContext when present
    delivered: bool | None  # True delivered, False undelivered, None still waiting
    error_code: str | None
    at: datetime | None


@runtime_checkable
class SmsProvider(Protocol):
    name: str

    async def send(self, req: SendRequest) -> SendResult: ...

    async def query(
        self,
        *,
        message_id: int,
        mobile: str,
        provider_message_id: str | None,
        sent_at: datetime,
    ) -> list[StatusReport]:
        """The provider's reports for one sent message; [] = the provider has no record."""
        ...

    def parse_receipts(self, payload: Any) -> list[StatusReport]:
        """Reports of one receipt callback (the provider's batch JSON array)."""
        ...


class ProviderError(Exception):
    """A provider could not answer a `query` (network error, 5xx, error code): the caller must
    not read this as "no record" (that is `[]`) and must not re-send on it; ask again later."""

    def __init__(self, provider: str, message: str, *, code: str | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.code = code


class ReceiptFormatError(ValueError):
    """A receipt callback body that is not the provider's batch format (answer 400)."""
