"""Issue #10, finding 8: faults during an import. A PostgreSQL restart mid-import (a PRIVATE
PostgreSQL started here, never the machine's) leaves no statement `importing` and the command
exits 2 with its JSON summary; a sweep fails statements stuck past the lease; with Redis stopped
(a PRIVATE redis-server) an HTTP import does not stall `/healthz`, and every line is matched
after Redis returns."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.payments.importer import fail_stale_imports
from shared.auth import Role
from shared.models.payments import Statement, StatementFormat
from tests.conftest import auth
from tests.factories import make_order, make_supplier, make_unit
from tests.payments.helpers import bank_csv, settle

REPO = Path(__file__).resolve().parents[2]
PORT = 18503  # engineer 10's private range
LIVENESS_BOUND = 1.0


# --- the lease sweep -----------------------------------------------------------------------


async def test_the_sweep_fails_statements_stuck_in_importing_past_the_lease(
    session: AsyncSession,
) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    for name, heartbeat in (("stuck.csv", old), ("alive.csv", datetime.now(UTC))):
        session.add(
            Statement(
                filename=name,
                format=StatementFormat.CSV,
                sha256="0" * 64,
                status="importing",
                imported_by="t",
                heartbeat_at=heartbeat,
            )
        )
    await session.commit()

    swept = await fail_stale_imports(lease_seconds=600)

    rows = (
        await session.execute(
            text("SELECT id, filename, status, error FROM statements ORDER BY id")
        )
    ).all()
    await session.commit()
    assert swept == [rows[0].id]
    assert [(r.filename, r.status) for r in rows] == [
        ("stuck.csv", "failed"),
        ("alive.csv", "importing"),
    ]
    assert "租约" in rows[0].error


# --- PostgreSQL restarted mid-import -------------------------------------------------------


@pytest.fixture
def private_postgres() -> Iterator[tuple[Any, str]]:
    """A PostgreSQL of this test only (pgserver, temp dir, unix socket), migrated to head."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    from alembic import command

    from tests.conftest import alembic_config

    root = Path(tempfile.mkdtemp(prefix="rs-pg-"))
    server = pgserver.get_server(str(root / "pg"), cleanup_mode="delete")
    try:
        server.psql("CREATE DATABASE faults;\n")
        socket_dir = server.get_postmaster_info().socket_dir
        url = f"postgresql+asyncpg://postgres@/faults?host={socket_dir}"
        cfg = alembic_config()
        cfg.attributes["database_url"] = url
        command.upgrade(cfg, "head")
        yield server, url
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


async def _statements(url: str) -> list[tuple[int, str, int]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id, status, lines_total FROM statements ORDER BY id")
            )
            return [(r.id, r.status, r.lines_total) for r in rows]
    finally:
        await engine.dispose()


async def test_postgres_restart_mid_import_fails_the_statement_and_the_command_exits_2(
    private_postgres: tuple[Any, str], tmp_path: Path
) -> None:
    import pgserver

    server, url = private_postgres
    rows = [{"ref": f"P{i}", "account": "6222", "amount": "1.00"} for i in range(300_000)]
    path = tmp_path / "big.csv"
    path.write_bytes(bank_csv(rows))
    env = {**os.environ, "DATABASE_URL": url, "IMPORT_BATCH_SIZE": "500"}
    args = [sys.executable, "-m", "services.payments.statements", "import", "--no-enqueue"]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*args, str(path)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    command = await asyncio.to_thread(start)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the first batches are committed
            listed = await _statements(url)
            if listed and listed[0][2] > 0:
                break
            assert command.poll() is None, command.communicate()
            await asyncio.sleep(0.05)
        assert listed and listed[0][1] == "importing"
        await asyncio.to_thread(
            pgserver.pg_ctl,  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "restart"],
            pgdata=server.pgdata,
            user=server.system_user,
        )
        out, err = await asyncio.to_thread(command.communicate, timeout=180)
    finally:
        if command.poll() is None:
            command.kill()

    assert command.returncode == 2, err
    assert "Traceback" not in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["code"] == "import_interrupted"
    assert 0 < summary["lines_total"] < 300_000
    (statement,) = await _statements(url)
    assert statement[0] == summary["statement_id"]
    assert statement[1] == "failed"  # never left `importing`
    assert statement[2] == summary["lines_total"]


# --- Redis stopped during an HTTP import ---------------------------------------------------


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.socket = directory / "redis.sock"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.socket.exists()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def payments_server(tmp_path: Path) -> Iterator[tuple[str, PrivateRedis]]:
    """The payments service in its own process (uvicorn, private port) on a private Redis."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    env = {
        **os.environ,
        "REDIS_URL": f"unix://{redis.socket}",
        "IMPORT_BATCH_SIZE": "200",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "services.payments.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(PORT),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{PORT}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, redis
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        redis.stop()


async def test_redis_down_during_an_http_import_blocks_nothing_and_lines_match_later(
    session: AsyncSession, payments_server: tuple[str, PrivateRedis]
) -> None:
    base, redis = payments_server
    account = "35000188110577777"
    buyer = await make_unit(session)
    supplier, settlement = await make_supplier(session, settlement_account=account)
    orders = [
        await make_order(
            session,
            buyer=buyer,
            supplier=supplier,
            settlement=settlement,
            amount="5.00",
            payment_code=f"r{i:05d}",
        )
        for i in range(20)
    ]
    await session.commit()
    rows = [
        {"ref": f"Q{i}", "account": account, "amount": "5.00", "remark": f"r{i:05d}"}
        for i in range(20)
    ] + [{"ref": f"F{i}", "account": account, "amount": "1.00"} for i in range(2_000)]
    redis.stop()  # the broker is gone for the whole import

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        done = asyncio.Event()

        async def probe() -> None:
            while True:
                started = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                latencies.append(time.perf_counter() - started)
                if done.is_set():
                    return
                await asyncio.sleep(0.02)

        async def send() -> httpx.Response:
            try:
                return await client.post(
                    "/api/v1/statements",
                    files={"file": ("lines.csv", bank_csv(rows))},
                    headers=auth(Role.IMPORTER),
                )
            finally:
                done.set()

        prober = asyncio.ensure_future(probe())
        started = time.perf_counter()
        response = await send()
        took = time.perf_counter() - started
        await prober

    assert response.status_code == 201, response.text
    assert response.json()["lines_new"] == 2_020
    print(f"\nimport with Redis down: {took:.2f}s, slowest /healthz {max(latencies):.3f}s")
    assert max(latencies) < LIVENESS_BOUND

    redis.start()  # Redis back: the lines are still queued for matching, none lost
    await settle(session)
    paid = (
        await session.execute(
            text("SELECT count(*) FROM orders WHERE status = 'paid' AND id = ANY(:ids)"),
            {"ids": [o.id for o in orders]},
        )
    ).scalar_one()
    pending = (
        await session.execute(
            text("SELECT count(*) FROM bank_transactions WHERE outcome = 'pending'")
        )
    ).scalar_one()
    await session.commit()
    assert (paid, pending) == (20, 0)
