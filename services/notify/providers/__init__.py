"""SMS providers behind one interface (see `base.py`), and the ordered failover list."""

from __future__ import annotations

from typing import Any

from services.notify.providers.base import (
    Outcome,
    SendRequest,
    SendResult,
    SmsProvider,
    StatusReport,
)
from services.notify.providers.log import LogProvider

__all__ = [
    "LogProvider",
    "Outcome",
    "SendRequest",
    "SendResult",
    "SmsProvider",
    "StatusReport",
    "build_providers",
]


def build_providers(settings: Any) -> list[SmsProvider]:
    """The ordered failover list named by `settings.sms_providers` (default: only `log`)."""
    from services.notify.providers.registry import build_providers as _build

    return _build(settings)
