"""deploy/embedded.py: pass-through, signal forwarding, socket-path fallback, real start/stop."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
WRAPPER = REPO / "deploy" / "embedded.py"


def load_wrapper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_embedded", WRAPPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrapped(code: str, env: dict[str, str], **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRAPPER), "--", sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        **kw,
    )


def test_passes_through_when_both_urls_are_set() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql+asyncpg://x@h/db", "REDIS_URL": "redis://h/0"}
    code = "import os, sys; print(os.environ['DATABASE_URL'], os.environ['REDIS_URL']); sys.exit(3)"
    proc = wrapped(code, env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert out.split() == ["postgresql+asyncpg://x@h/db", "redis://h/0"]
    assert "embedded services" not in err


def test_forwards_sigterm_and_returns_child_exit_code() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://x@h/db", "REDIS_URL": "redis://h/0"}
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = wrapped(code, env, start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 7


def test_long_repo_path_moves_pg_data_to_short_tmp_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load_wrapper()
    monkeypatch.setattr(mod, "STATE", Path("/tmp") / ("x" * 120) / ".embedded")
    pgdata = mod.pg_data_dir()
    assert str(pgdata).startswith("/tmp/reserved-share-")
    assert len(str(pgdata / mod.PG_SOCKET_NAME)) < 107


PROBE = """
import asyncio, os, sys
import asyncpg, redis
db, ru = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
assert db.startswith("postgresql+asyncpg://postgres@/reserved_share?host="), db
assert ru.startswith("unix://"), ru
async def main():
    conn = await asyncpg.connect(db.replace("+asyncpg", "", 1))
    print(await conn.fetchval("SELECT current_database()"))
    await conn.close()
asyncio.run(main())
print(redis.Redis.from_url(ru).ping())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_starts_real_embedded_servers_and_stops_them() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = wrapped(PROBE, env)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert out.split() == ["reserved_share", "True"]
    assert "started PostgreSQL" in err or "attached to running PostgreSQL" in err
    if "stopped embedded redis, postgres" in err:  # nobody else was using them
        pid_file = load_wrapper().pg_data_dir() / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _alive(pid)
        settings = REPO / ".embedded" / "redis" / "redis.db.settings"
        if settings.exists():
            redis_pid_file = Path(json.loads(settings.read_text())["pidfile"])
            assert not redis_pid_file.exists()
    else:
        assert "running for other wrappers" in err
