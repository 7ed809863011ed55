"""SMS providers behind one interface (see `base.py`), and the ordered failover list."""

from __future__ import annotations

from services.notify.providers.aliyun import AliyunProvider
from services.notify.providers.base import (
    Outcome,
    ProviderError,
    ReceiptFormatError,
    SendRequest,
    SendResult,
    SmsProvider,
    StatusReport,
)
from services.notify.providers.log import LogProvider
from services.notify.providers.registry import build_provider, build_providers, provider_names
from services.notify.providers.tencent import TencentProvider

__all__ = [
    "AliyunProvider",
    "LogProvider",
    "Outcome",
    "ProviderError",
    "ReceiptFormatError",
    "SendRequest",
    "SendResult",
    "SmsProvider",
    "StatusReport",
    "TencentProvider",
    "build_provider",
    "build_providers",
    "provider_names",
]
