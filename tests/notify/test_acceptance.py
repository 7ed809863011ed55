"""Acceptance of the notify dispatch: real Celery workers and a real (private) Redis, against the
provider emulator (real HTTP on loopback), PostgreSQL as everywhere.

Every test starts its own worker processes on a private `redis-server` (so no other worker of
the test session takes the tasks, and a test may stop that Redis) with providers pointed at the
emulator. The last test scans every log line those processes wrote for a mobile number.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from services.notify import dispatch
from shared.celery_app import QUEUE_NOTIFY, celery_app
from shared.db import unit_of_work
from shared.models import SmsAttempt, SmsOutbox, SmsReceipt, SmsStatus
from shared.settings import get_settings
from shared.sms import queue_sms, wait_for_enqueues
from tests.notify.emulator_fixture import (  # noqa: F401 - fixtures
    EmulatorHandle,
    emulator_fixture,
    sms_emulator_fixture,
)
from tests.notify.helpers import PrivateRedis, queue_message, start_worker, stop_workers

pytestmark = [pytest.mark.worker]

LOG_DIR = Path(tempfile.mkdtemp(prefix="notify-acceptance-logs-"))
MOBILE = "13912345678"
RECEIPT_TOKEN = "acceptance-receipt-token"


def _env(emulator: EmulatorHandle, providers: str, **extra: str) -> dict[str, str]:
    return {
        **emulator.settings_env(providers=providers, timeout=5.0),
        "ENVIRONMENT": "test",
        "SMS_RETRY_BASE_SECONDS": "0.2",
        "SMS_RETRY_MAX_SECONDS": "1",
        "SMS_QUERY_DELAY_SECONDS": "0.3",
        "SMS_SENDING_LEASE_SECONDS": "60",
        "SMS_FAILOVER_COOLDOWN_SECONDS": "300",
        "SMS_RECEIPT_TOKEN": RECEIPT_TOKEN,
        **extra,
    }


@pytest.fixture
def workers(broker: PrivateRedis) -> Iterator[Callable[..., list[subprocess.Popen[bytes]]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], count: int = 1) -> list[subprocess.Popen[bytes]]:
        procs = [
            start_worker(
                broker.url,
                env,
                f"notify-{len(started) + i}",
                str(LOG_DIR / f"worker-{os.getpid()}.log"),
            )
            for i in range(count)
        ]
        started.extend(procs)
        return procs

    yield start
    stop_workers(started)


async def _wait(predicate: Callable[[], Any], within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def _row(message_id: int) -> SmsOutbox:
    async with unit_of_work() as session:
        row = await session.get(SmsOutbox, message_id)
        assert row is not None
        return row


def _status_is(message_id: int, *statuses: SmsStatus) -> Callable[[], Any]:
    async def check() -> bool:
        return (await _row(message_id)).status in statuses

    return check


async def _attempts(message_id: int) -> list[tuple[str, str, str | None]]:
    async with unit_of_work() as session:
        stmt = select(SmsAttempt).where(SmsAttempt.message_id == message_id).order_by("id")
        return [(a.kind, a.provider, a.outcome) for a in (await session.execute(stmt)).scalars()]


def _sweep_via_worker() -> None:
    celery_app.send_task("notify.sweep", queue=QUEUE_NOTIFY, ignore_result=True)


async def test_a_broker_down_at_commit_the_row_waits_and_the_sweep_sends_it(
    broker: PrivateRedis, emulator: EmulatorHandle, workers: Callable[..., Any]
) -> None:
    broker.stop()  # Redis down when the event commits: the commit succeeds all the same
    message_id = await queue_message(mobile=MOBILE)
    await asyncio.sleep(0.5)
    row = await _row(message_id)
    assert row.status == SmsStatus.PENDING and row.attempts == 0
    assert emulator.sends() == []

    broker.start()  # Redis back: nothing was enqueued, the beat sweep finds the row
    assert broker.queued_task_ids() == []
    workers(_env(emulator, "aliyun"))
    _sweep_via_worker()
    await _wait(_status_is(message_id, SmsStatus.SENT, SmsStatus.DELIVERED))
    assert len(emulator.sends()) == 1
    assert (await _row(message_id)).attempts == 1


async def test_b_provider_500_twice_then_ok_one_sent_three_attempts(
    emulator: EmulatorHandle, workers: Callable[..., Any]
) -> None:
    emulator.faults(provider="aliyun", fail_5xx=2)
    workers(_env(emulator, "aliyun"))
    message_id = await queue_message(mobile=MOBILE)
    await _wait(_status_is(message_id, SmsStatus.SENT, SmsStatus.DELIVERED))
    row = await _row(message_id)
    assert row.attempts == 3
    assert [o for _, _, o in await _attempts(message_id)] == ["retry", "retry", "sent"]
    sends = emulator.sends()
    assert len(sends) == 1 and sends[0]["message_id"] == str(message_id)
    assert row.provider_message_id == sends[0]["id"]


async def test_c_timeout_after_accept_is_unknown_then_found_by_query_not_sent_again(
    emulator: EmulatorHandle, workers: Callable[..., Any]
) -> None:
    emulator.faults(provider="aliyun", timeout_after_accept=1, hold_seconds=5)
    env = _env(emulator, "aliyun")
    env["SMS_HTTP_TIMEOUT_SECONDS"] = "1"
    workers(env)
    message_id = await queue_message(mobile=MOBILE)
    await _wait(_status_is(message_id, SmsStatus.SENT, SmsStatus.DELIVERED))
    assert await _attempts(message_id) == [
        ("send", "aliyun", "unknown"),
        ("query", "aliyun", "found"),
    ]
    await asyncio.sleep(1)
    assert len(emulator.sends()) == 1
    assert (await _row(message_id)).attempts == 1  # QuerySendDetails carries no BizId


async def test_d_worker_killed_while_sending_the_sweep_resolves_it_without_duplicate(
    emulator: EmulatorHandle, workers: Callable[..., Any]
) -> None:
    emulator.faults(provider="aliyun", timeout_after_accept=1, hold_seconds=60)
    env = _env(emulator, "aliyun", SMS_SENDING_LEASE_SECONDS="2")
    env["SMS_HTTP_TIMEOUT_SECONDS"] = "30"  # the worker waits in the call when it is killed
    (first,) = workers(env)
    message_id = await queue_message(mobile=MOBILE)
    await _wait(_status_is(message_id, SmsStatus.SENDING))
    await _wait(lambda: asyncio.to_thread(emulator.sends))  # the provider accepted it
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert (await _row(message_id)).status == SmsStatus.SENDING

    workers(env)
    await asyncio.sleep(2.5)  # the lease runs out
    _sweep_via_worker()
    await _wait(_status_is(message_id, SmsStatus.SENT, SmsStatus.DELIVERED))
    assert [(k, o) for k, _, o in await _attempts(message_id)] == [
        ("send", "lost"),
        ("query", "found"),
    ]
    assert len(emulator.sends()) == 1


async def test_e_two_workers_and_the_sweep_racing_on_1000_messages_send_exactly_1000(
    emulator: EmulatorHandle, workers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    workers(_env(emulator, "aliyun"), count=2)
    async with unit_of_work() as session:
        for i in range(1000):
            await queue_sms(
                session,
                event_key=f"race:{i}",
                template="filing_confirmed",
                mobile=f"139{i:08d}",
                params={"unit_name": f"单位{i}", "year": 2026},
            )
    # the sweep races the workers from this process (same claims, same emulator)
    provider = emulator.aliyun_provider()
    monkeypatch.setattr(get_settings(), "sms_sweep_batch_size", 1000)
    for _ in range(3):
        await dispatch.sweep([provider])

    async def all_sent() -> bool:
        async with unit_of_work() as session:
            left = await session.scalar(
                select(func.count()).where(SmsOutbox.status != SmsStatus.SENT)
            )
        return left == 0

    await _wait(all_sent, within=240)
    wait_for_enqueues()
    sends = emulator.sends()
    assert len(sends) == 1000
    assert len({s["message_id"] for s in sends}) == 1000
    async with unit_of_work() as session:
        attempts = await session.scalar(select(func.count()).select_from(SmsAttempt))
    assert attempts == 1000


@pytest.fixture
def notify_server(broker: PrivateRedis, emulator: EmulatorHandle) -> Iterator[str]:
    """The notify service under uvicorn (its own process) for the emulator's receipt pushes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "DATABASE_URL": get_settings().database_url,
        "REDIS_URL": broker.url,
        "SMS_RECEIPT_TOKEN": RECEIPT_TOKEN,
    }
    log_file = open(LOG_DIR / f"notify-{os.getpid()}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "services.notify.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("notify service did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log_file.close()


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_f_duplicate_and_early_receipts_give_one_delivered(
    provider: str,
    emulator: EmulatorHandle,
    workers: Callable[..., Any],
    notify_server: str,
) -> None:
    url = f"{notify_server}/api/v1/sms/receipts/{provider}?token={RECEIPT_TOKEN}"
    emulator.configure(**{f"{provider}_receipt_url": url})
    emulator.faults(provider=provider, duplicate_receipts=True, early_receipts=True)
    workers(_env(emulator, provider))
    message_id = await queue_message(mobile=MOBILE)
    await _wait(_status_is(message_id, SmsStatus.DELIVERED))

    async def both_receipts() -> bool:
        async with unit_of_work() as session:
            n = await session.scalar(select(func.count()).select_from(SmsReceipt))
        return (n or 0) >= 2  # the report and its duplicate (at least)

    await _wait(both_receipts)
    row = await _row(message_id)
    assert row.status == SmsStatus.DELIVERED and row.delivered_at is not None
    assert row.provider_message_id == emulator.sends()[0]["id"]
    assert len(emulator.sends()) == 1
    async with unit_of_work() as session:
        applied = (await session.execute(text("SELECT applied_to FROM sms_receipts"))).scalars()
        assert set(applied) == {message_id}


async def test_g_permanent_error_fails_after_one_attempt(
    emulator: EmulatorHandle, workers: Callable[..., Any]
) -> None:
    emulator.faults(provider="aliyun", invalid_numbers=[MOBILE])
    workers(_env(emulator, "aliyun,tencent"))
    message_id = await queue_message(mobile=MOBILE)
    await _wait(_status_is(message_id, SmsStatus.FAILED))
    row = await _row(message_id)
    assert row.attempts == 1 and row.last_error_code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert row.last_error and row.last_error != row.last_error_code  # a Chinese explanation
    await asyncio.sleep(1)
    assert await _attempts(message_id) == [("send", "aliyun", "permanent")]


async def test_h_failover_to_the_second_provider(
    emulator: EmulatorHandle, workers: Callable[..., Any]
) -> None:
    emulator.faults(provider="aliyun", fail_5xx=5)
    workers(_env(emulator, "aliyun,tencent"))
    first = await queue_message(mobile=MOBILE, event_key="failover:1")
    await _wait(_status_is(first, SmsStatus.SENT, SmsStatus.DELIVERED))
    assert await _attempts(first) == [
        ("send", "aliyun", "retry"),
        ("send", "tencent", "sent"),
    ]
    second = await queue_message(mobile="13912345679", event_key="failover:2")
    await _wait(_status_is(second, SmsStatus.SENT, SmsStatus.DELIVERED))
    assert await _attempts(second) == [("send", "tencent", "sent")]  # aliyun cooling down
    assert len(emulator.sends(provider="tencent")) == 2
    assert emulator.sends(provider="aliyun") == []


# a mainland mobile standing alone: a task id like f16854939436 is no leak
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


def test_z_no_mobile_number_in_any_log_line_of_the_workers_and_the_service() -> None:
    """Runs last in this module: every line the worker processes and the notify service wrote
    during these tests (sends, retries, queries, receipts) is free of mobile numbers."""
    files = sorted(LOG_DIR.glob("*.log"))
    assert files, "no log captured"
    lines = [line for f in files for line in f.read_text(errors="replace").splitlines()]
    assert any("notify.send" in line for line in lines)  # the logs really cover the sends
    leaked = [line for line in lines if _MOBILE_IN_TEXT.search(line)]
    assert leaked == []
