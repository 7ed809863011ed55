"""The HTTP call shared by the providers: httpx with timeouts, and what a failure means.

- nothing was written (connect error, connect/pool timeout) → `RETRY`, provider-side;
- the request was (maybe) written but no complete answer came (read/write timeout, connection
  dropped, 504 from a gateway) → `UNKNOWN`: the message may have gone out;
- 500/502/503 without a provider error code → `RETRY`, provider-side.
"""

from __future__ import annotations

import json
import logging
import ssl
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.notify.providers.base import Outcome, SendResult

log = logging.getLogger("services.notify.providers")

NOT_WRITTEN = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
MAYBE_WRITTEN = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class HttpConfig:
    """Endpoint and timeouts of one provider."""

    def __init__(self, endpoint: str, *, timeout: float, connect_timeout: float) -> None:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
        self.host = parts.netloc
        self.path = parts.path or "/"
        self.timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))

    def client(self) -> httpx.AsyncClient:
        # One client per call (Celery tasks may each run in their own event loop), sharing one
        # TLS context: building a context per client costs tens of milliseconds.
        return httpx.AsyncClient(timeout=self.timeout, trust_env=False, verify=tls_context())


@cache
def tls_context() -> ssl.SSLContext:
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def transport_failure(provider: str, label: str, exc: httpx.HTTPError) -> SendResult:
    kind = type(exc).__name__
    if isinstance(exc, NOT_WRITTEN):
        log.warning("%s: %s not sent (%s)", provider, label, kind)
        return SendResult(
            outcome=Outcome.RETRY,
            provider=provider,
            error_code=kind,
            error_message=f"{label}：连接短信平台失败（{kind}），稍后重试",
            provider_side=True,
        )
    if isinstance(exc, MAYBE_WRITTEN):
        log.warning("%s: %s sent but no answer (%s): outcome unknown", provider, label, kind)
        return SendResult(
            outcome=Outcome.UNKNOWN,
            provider=provider,
            error_code=kind,
            error_message=f"{label}：请求已发出但未收到应答（{kind}），短信可能已发送，需先查询",
            provider_side=True,
        )
    log.warning("%s: %s failed (%s)", provider, label, kind)
    return SendResult(
        outcome=Outcome.RETRY,
        provider=provider,
        error_code=kind,
        error_message=f"{label}：调用短信平台失败（{kind}）",
        provider_side=True,
    )


def http_failure(provider: str, label: str, response: httpx.Response) -> SendResult:
    """A response without a provider error code in it."""
    status = response.status_code
    if status == 504 or 200 <= status < 300:
        return SendResult(
            outcome=Outcome.UNKNOWN,
            provider=provider,
            error_code=f"HTTP {status}",
            error_message=f"{label}：应答无法识别（HTTP {status}），短信可能已发送，需先查询",
            provider_side=True,
        )
    return SendResult(
        outcome=Outcome.RETRY,
        provider=provider,
        error_code=f"HTTP {status}",
        error_message=f"{label}：短信平台返回 HTTP {status}，稍后重试",
        provider_side=True,
    )


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
