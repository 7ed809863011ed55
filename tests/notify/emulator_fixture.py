"""Pytest fixtures running the SMS provider emulator on a free loopback port.

The emulator (services/notify/emulator) runs under uvicorn in a background thread of the test
process: real HTTP on 127.0.0.1, so a Celery worker in another process reaches it too.

Use in a test module or conftest:

    from tests.notify.emulator_fixture import emulator_fixture, sms_emulator_fixture  # noqa: F401

    async def test_x(emulator: EmulatorHandle) -> None:
        emulator.faults(provider="aliyun", fail_5xx=2)
        provider = emulator.aliyun_provider()
        ...
        assert len(emulator.sends()) == 1

The fixtures are named `sms_emulator` (session-scoped: one server) and `emulator` (the same
server, reset: sends, faults, receipts, request log, receipt URLs, before each test).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from services.notify.emulator.app import create_app
from services.notify.emulator.state import EmulatorConfig
from services.notify.providers.aliyun import AliyunProvider
from services.notify.providers.tencent import TencentProvider

ALIYUN_KEY_ID = "emulator-access-key-id"
ALIYUN_KEY_SECRET = "emulator-access-key-secret"
TENCENT_SECRET_ID = "emulator-secret-id"
TENCENT_SECRET_KEY = "emulator-secret-key"
TENCENT_SDK_APP_ID = "1400000000"
SIGN_NAME = "832平台"


class EmulatorHandle:
    """A running emulator: its URL, control calls, and providers/settings pointed at it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)

    # control ---------------------------------------------------------------------------------
    def reset(self) -> None:
        self._http.post("/_emulator/reset").raise_for_status()

    def faults(self, provider: str | None = None, **faults: Any) -> dict[str, Any]:
        """Replace the faults of one provider (or both) with these; the rest default."""
        body = {"provider": provider, **faults}
        resp = self._http.post("/_emulator/faults", json=body)
        resp.raise_for_status()
        return dict(resp.json())

    def current_faults(self) -> dict[str, Any]:
        """The faults in force per provider (counters as consumed so far)."""
        return dict(self._http.get("/_emulator/faults").json())

    def configure(self, **config: Any) -> dict[str, Any]:
        """Receipt URLs (`aliyun_receipt_url`, `tencent_receipt_url`), `receipt_headers`,
        `verify_signatures`."""
        resp = self._http.post("/_emulator/config", json=config)
        resp.raise_for_status()
        return dict(resp.json())

    def deliver(self, provider: str | None = None, ids: list[str] | None = None) -> int:
        resp = self._http.post("/_emulator/deliver", json={"provider": provider, "ids": ids})
        resp.raise_for_status()
        return int(resp.json()["queued"])

    # inspection ------------------------------------------------------------------------------
    def sends(self, provider: str | None = None, mobile: str | None = None) -> list[dict[str, Any]]:
        """Accepted sends, oldest first (filtered here: no mobile in a URL, hence in a log)."""
        resp = self._http.get("/_emulator/sends")
        resp.raise_for_status()
        return [
            s
            for s in resp.json()
            if (provider is None or s["provider"] == provider)
            and (mobile is None or s["mobile"] == mobile)
        ]

    def requests(self) -> dict[str, Any]:
        return dict(self._http.get("/_emulator/requests").json())

    def receipts(self) -> list[dict[str, Any]]:
        return list(self._http.get("/_emulator/receipts").json())

    def sink_url(self, provider: str) -> str:
        """A receipt URL served by the emulator itself (it keeps what it receives)."""
        return f"{self.base_url}/_emulator/sink?provider={provider}"

    def sink(self, provider: str | None = None) -> list[Any]:
        """Bodies received on `sink_url` (each a provider batch: a JSON array)."""
        rows = self._http.get("/_emulator/sink").json()
        return [r["body"] for r in rows if provider is None or r["provider"] == provider]

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
    ) -> Any:
        """Poll until `predicate()` is truthy (returns it) or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("emulator: condition not reached in time")
            time.sleep(interval)

    # providers and settings pointed at the emulator -------------------------------------------
    def aliyun_provider(self, *, timeout: float = 5.0, **kwargs: Any) -> AliyunProvider:
        options: dict[str, Any] = {
            "access_key_id": ALIYUN_KEY_ID,
            "access_key_secret": ALIYUN_KEY_SECRET,
            "endpoint": self.base_url,
            "sign_name": SIGN_NAME,
            "timeout": timeout,
            "connect_timeout": min(timeout, 2.0),
        }
        options.update(kwargs)
        return AliyunProvider(**options)

    def tencent_provider(self, *, timeout: float = 5.0, **kwargs: Any) -> TencentProvider:
        options: dict[str, Any] = {
            "secret_id": TENCENT_SECRET_ID,
            "secret_key": TENCENT_SECRET_KEY,
            "sdk_app_id": TENCENT_SDK_APP_ID,
            "endpoint": self.base_url,
            "sign_name": SIGN_NAME,
            "timeout": timeout,
            "connect_timeout": min(timeout, 2.0),
        }
        options.update(kwargs)
        return TencentProvider(**options)

    def settings_env(
        self, providers: str = "aliyun,tencent", timeout: float = 5.0
    ) -> dict[str, str]:
        """Environment variables (for `Settings()` or a worker process) using the emulator."""
        return {
            "SMS_PROVIDERS": providers,
            "SMS_HTTP_TIMEOUT_SECONDS": str(timeout),
            "SMS_ALIYUN_ACCESS_KEY_ID": ALIYUN_KEY_ID,
            "SMS_ALIYUN_ACCESS_KEY_SECRET": ALIYUN_KEY_SECRET,
            "SMS_ALIYUN_ENDPOINT": self.base_url,
            "SMS_ALIYUN_SIGN_NAME": SIGN_NAME,
            "SMS_TENCENT_SECRET_ID": TENCENT_SECRET_ID,
            "SMS_TENCENT_SECRET_KEY": TENCENT_SECRET_KEY,
            "SMS_TENCENT_ENDPOINT": self.base_url,
            "SMS_TENCENT_SDK_APP_ID": TENCENT_SDK_APP_ID,
            "SMS_TENCENT_SIGN_NAME": SIGN_NAME,
        }

    def close(self) -> None:
        self._http.close()


class EmulatorServer:
    """uvicorn serving the emulator app in a daemon thread, on a socket bound beforehand."""

    def __init__(self, config: EmulatorConfig | None = None, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(config),
                log_config=None,
                access_log=False,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=1,  # held (timeout-after-accept) answers are dropped
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmulatorServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("SMS emulator did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session", name="sms_emulator")
def sms_emulator_fixture() -> Iterator[EmulatorHandle]:
    server = EmulatorServer().start()
    handle = EmulatorHandle(server.base_url)
    try:
        yield handle
    finally:
        handle.close()
        server.stop()


@pytest.fixture(name="emulator")
def emulator_fixture(sms_emulator: EmulatorHandle) -> EmulatorHandle:
    sms_emulator.reset()
    sms_emulator.configure(
        aliyun_receipt_url=None,
        tencent_receipt_url=None,
        receipt_headers={},
        verify_signatures=True,
    )
    return sms_emulator
