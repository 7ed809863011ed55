"""Building the ordered provider list from settings."""

from __future__ import annotations

from typing import Any

from services.notify.providers.base import SmsProvider
from services.notify.providers.log import LogProvider


def provider_names(settings: Any) -> list[str]:
    raw = getattr(settings, "sms_providers", "log") or "log"
    names = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    out: list[str] = []
    for name in (str(n).strip().lower() for n in names):
        if name and name not in out:
            out.append(name)
    return out or ["log"]


def build_providers(settings: Any) -> list[SmsProvider]:
    providers: list[SmsProvider] = []
    for name in provider_names(settings):
        if name == "log":
            providers.append(LogProvider())
        else:
            raise ValueError(f"unknown SMS provider {name!r} in SMS_PROVIDERS")
    return providers
