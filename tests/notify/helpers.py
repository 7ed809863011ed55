"""Notify test helpers: a private redis-server, pointing Celery at it, a stand-in provider.

The private Redis is a real `redis-server` on a unix socket in a temporary directory, started and
stopped by the test (never the machine's Redis): the tests stop it to simulate a broker outage,
and the Celery workers they start consume only from it, so no other worker of the test session
can take their tasks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from kombu import pools as kombu_pools

from services.notify.providers import Outcome, SendRequest, SendResult, StatusReport
from shared.celery_app import QUEUE_NOTIFY, celery_app
from shared.db import unit_of_work
from shared.settings import get_settings
from shared.sms import queue_sms, wait_for_enqueues


class PrivateRedis:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="notify-redis-")
        self.socket = os.path.join(self.dir, "redis.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                "0",
                "--unixsocket",
                self.socket,
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=self.socket, socket_timeout=5)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def queued_task_ids(self) -> list[int]:
        """Message ids of the `notify.send` tasks waiting in the notify queue."""
        import base64
        import json

        out: list[int] = []
        for raw in self.client().lrange(QUEUE_NOTIFY, 0, -1):
            envelope = json.loads(raw)
            body = json.loads(base64.b64decode(envelope["body"]))
            out.append(int(body[0][0]))
        return out


def point_celery_at(url: str) -> None:
    """Repoint this process's Celery app (the after-commit enqueue) at another Redis."""
    broker = "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url
    app: Any = celery_app  # private attributes: the connection and producer pools
    # Close every kombu pool AND drop them from kombu's global registries: a pool closed but
    # left registered would be handed back (closed) when the app is pointed at its old URL again.
    kombu_pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None  # result backends cached per thread: built anew on next use
    app._local = threading.local()
    app.conf.update(
        broker_url=broker, broker_write_url=broker, broker_read_url=broker, result_backend=broker
    )


@dataclass
class StandInProvider:
    """A provider in memory: plays a script of outcomes, remembers what it accepted (so its
    status query finds the accepted messages), parses receipts as `StatusReport`s directly."""

    name: str = "standin"
    script: list[Outcome] = field(default_factory=list)
    accepted: dict[int, str] = field(default_factory=dict)  # message id → provider id
    calls: list[SendRequest] = field(default_factory=list)
    provider_side: bool = True
    query_error: bool = False

    async def send(self, req: SendRequest) -> SendResult:
        self.calls.append(req)
        outcome = self.script.pop(0) if self.script else Outcome.SENT
        pmid = f"{self.name}-{len(self.calls)}"
        if outcome in (Outcome.SENT, Outcome.UNKNOWN):  # unknown: accepted, answer lost
            self.accepted[req.message_id] = pmid
        return SendResult(
            outcome=outcome,
            provider=self.name,
            provider_message_id=pmid if outcome == Outcome.SENT else None,
            error_code=None if outcome == Outcome.SENT else f"E_{outcome}",
            error_message=None if outcome == Outcome.SENT else f"错误 {outcome}",
            retry_after=0.0 if outcome == Outcome.WAIT else None,
            provider_side=self.provider_side and outcome == Outcome.RETRY,
        )

    async def query(
        self,
        *,
        message_id: int,
        mobile: str,
        provider_message_id: str | None,
        sent_at: datetime,
    ) -> list[StatusReport]:
        if self.query_error:
            raise ConnectionError("query failed")
        pmid = self.accepted.get(message_id)
        if pmid is None:
            return []
        return [StatusReport(self.name, pmid, message_id, None, None, datetime.now(UTC))]

    def parse_receipts(self, payload: Any) -> list[StatusReport]:
        return [
            StatusReport(
                self.name,
                item.get("pmid"),
                item.get("message_id"),
                item.get("delivered"),
                item.get("error_code"),
                None,
            )
            for item in payload
        ]


async def queue_message(
    *,
    event_key: str = "test:1",
    template: str = "filing_confirmed",
    mobile: str = "13812345678",
    params: dict[str, Any] | None = None,
    unit_id: int | None = None,
) -> int:
    """Queue one SMS the way an event does (its own committed transaction); returns its id."""
    async with unit_of_work() as session:
        new_id = await queue_sms(
            session,
            event_key=event_key,
            template=template,
            mobile=mobile,
            params=params or {"unit_name": "测试单位", "year": 2026},
            unit_id=unit_id,
        )
    assert new_id is not None
    wait_for_enqueues()
    return new_id


def start_worker(
    redis_url: str, env_extra: dict[str, str], name: str, log_path: str
) -> subprocess.Popen[bytes]:
    """A real Celery worker (solo pool) on the notify queue of the private Redis."""
    settings = get_settings()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url,
        **env_extra,
    }
    log_file = open(log_path, "ab")  # noqa: SIM115 - the worker owns it until it exits
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shared.celery_app:celery_app",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            QUEUE_NOTIFY,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}-{os.getpid()}@%h",
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )


def stop_workers(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
