"""Issue #10, finding 5: the import command beside `make run`. The wrapper records the URLs it
serves in `.embedded/urls.json`; settings use them when DATABASE_URL/REDIS_URL are unset (never
in tests, never over the variables)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import settings as settings_module
from shared.settings import Settings, embedded_urls

REPO = Path(__file__).resolve().parent.parent
WRAPPER = REPO / "deploy" / "embedded.py"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A urls.json naming live unix sockets (a PostgreSQL socket dir and a Redis socket)."""
    pg_dir = tmp_path / "pg"
    pg_dir.mkdir()
    sockets = []
    for path in (pg_dir / ".s.PGSQL.5432", tmp_path / "redis.sock"):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sockets.append(sock)
    db = f"postgresql+asyncpg://postgres@/reserved_share?host={pg_dir}"
    redis = f"unix://{tmp_path / 'redis.sock'}"
    urls = tmp_path / "urls.json"
    urls.write_text(json.dumps({"database_url": db, "redis_url": redis}))
    monkeypatch.setattr(settings_module, "EMBEDDED_URLS_FILE", urls)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "development")
    yield db, redis
    for sock in sockets:
        sock.close()


def test_unset_variables_take_the_served_urls(served: tuple[str, str]) -> None:
    db, redis = served

    current = Settings()

    assert (current.database_url, current.redis_url) == (db, redis)
    assert current.celery_broker_url == redis.replace("unix://", "redis+socket://")


def test_variables_win_over_the_file(
    served: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/ci")

    current = Settings()

    assert current.database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/ci"
    assert current.redis_url == served[1]  # only the unset one comes from the file


def test_tests_never_read_the_file(
    served: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")

    assert Settings().database_url == Settings.model_fields["database_url"].default


def test_a_stale_file_whose_sockets_are_gone_is_ignored(tmp_path: Path) -> None:
    urls = tmp_path / "urls.json"
    urls.write_text(
        json.dumps(
            {
                "database_url": f"postgresql+asyncpg://postgres@/x?host={tmp_path}/gone",
                "redis_url": f"unix://{tmp_path}/gone.sock",
            }
        )
    )

    assert embedded_urls(urls) == {}
    assert embedded_urls(tmp_path / "missing.json") == {}
    (tmp_path / "broken.json").write_text("{not json")
    assert embedded_urls(tmp_path / "broken.json") == {}


IMPORT_BESIDE = """
import json, os, subprocess, sys
# the wrapper recorded what it serves
urls = json.load(open(".embedded/urls.json"))
assert urls == {"database_url": os.environ["DATABASE_URL"], "redis_url": os.environ["REDIS_URL"]}
subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], check=True,
               stdout=subprocess.DEVNULL)
# a second terminal: no variables at all
env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
env["ENVIRONMENT"] = "development"
done = subprocess.run(
    [sys.executable, "-m", "services.payments.statements", "import",
     "tests/fixtures/statements/statement.mt940"],
    env=env, capture_output=True, text=True, timeout=120,
)
print(done.returncode)
print(done.stdout.strip().splitlines()[-1])
"""


def test_the_import_command_reaches_the_embedded_servers_with_no_variables_set() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = subprocess.run(
        [sys.executable, str(WRAPPER), "--", sys.executable, "-c", IMPORT_BESIDE],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        timeout=240,
    )

    assert proc.returncode == 0, proc.stderr
    code, summary = proc.stdout.strip().splitlines()[-2:]
    assert code == "0", proc.stderr
    result = json.loads(summary)
    assert (result["format"], result["status"], result["lines_total"]) == ("mt940", "imported", 2)
    if "stopped embedded" in proc.stderr and "running for other wrappers" not in proc.stderr:
        assert not (REPO / ".embedded" / "urls.json").exists()
