"""Building the ordered provider list (failover order) from settings."""

from __future__ import annotations

from typing import Any

from services.notify.providers.aliyun import AliyunProvider
from services.notify.providers.base import SmsProvider
from services.notify.providers.log import LogProvider
from services.notify.providers.tencent import TencentProvider

KNOWN = ("log", "aliyun", "tencent")


def provider_names(settings: Any) -> list[str]:
    """`SMS_PROVIDERS` ("aliyun,tencent"), duplicates dropped, order kept; default `log`."""
    raw = getattr(settings, "sms_providers", "log") or "log"
    names = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    out: list[str] = []
    for name in (str(n).strip().lower() for n in names):
        if name and name not in out:
            out.append(name)
    return out or ["log"]


def _secret(value: Any) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter else (value or ""))


def _require(name: str, **values: str) -> None:
    missing = [k.upper() for k, v in values.items() if not v]
    if missing:
        raise ValueError(f"SMS provider {name!r} needs settings: {', '.join(missing)}")


def build_provider(name: str, settings: Any) -> SmsProvider:
    timeout = float(getattr(settings, "sms_http_timeout_seconds", 10.0))
    connect_timeout = float(getattr(settings, "sms_connect_timeout_seconds", 3.0))
    if name == "log":
        return LogProvider()
    if name == "aliyun":
        key_id = settings.sms_aliyun_access_key_id
        secret = _secret(settings.sms_aliyun_access_key_secret)
        _require(
            name,
            sms_aliyun_access_key_id=key_id,
            sms_aliyun_access_key_secret=secret,
            sms_aliyun_endpoint=settings.sms_aliyun_endpoint,
        )
        return AliyunProvider(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=settings.sms_aliyun_endpoint,
            sign_name=settings.sms_aliyun_sign_name,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
    if name == "tencent":
        secret_id = settings.sms_tencent_secret_id
        secret_key = _secret(settings.sms_tencent_secret_key)
        _require(
            name,
            sms_tencent_secret_id=secret_id,
            sms_tencent_secret_key=secret_key,
            sms_tencent_sdk_app_id=settings.sms_tencent_sdk_app_id,
            sms_tencent_endpoint=settings.sms_tencent_endpoint,
        )
        return TencentProvider(
            secret_id=secret_id,
            secret_key=secret_key,
            sdk_app_id=settings.sms_tencent_sdk_app_id,
            endpoint=settings.sms_tencent_endpoint,
            sign_name=settings.sms_tencent_sign_name,
            region=settings.sms_tencent_region,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
    raise ValueError(f"unknown SMS provider {name!r} in SMS_PROVIDERS (known: {', '.join(KNOWN)})")


def build_providers(settings: Any) -> list[SmsProvider]:
    return [build_provider(name, settings) for name in provider_names(settings)]
