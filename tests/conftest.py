"""Test infrastructure: real PostgreSQL (DATABASE_URL) and Redis (REDIS_URL), no mocks.

The schema is migrated to head once per session; after every test all tables but `regions`
(reference data the factories rely on) are truncated, so tests may commit freely (concurrency
tests need real transactions).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

os.environ.setdefault("ENVIRONMENT", "test")

# The tests drop and recreate the schema of the database they use. `reserved_share` is the
# database `make run` serves (embedded or real): never wipe it; use `reserved_share_test` beside it.
PROTECTED_DATABASES = {"reserved_share"}


def _use_separate_test_database() -> None:
    import asyncio

    from sqlalchemy.engine import make_url

    url = make_url(
        os.environ.get(
            "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/reserved_share"
        )
    )
    if url.database not in PROTECTED_DATABASES:
        return
    test_url = url.set(database=f"{url.database}_test")

    async def create() -> None:
        admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": test_url.database}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{test_url.database}"'))
        await admin.dispose()

    asyncio.run(create())
    os.environ["DATABASE_URL"] = test_url.render_as_string(hide_password=False)


_use_separate_test_database()

from shared.auth import Role, mint_token  # noqa: E402
from shared.celery_app import QUEUE_NOTIFY, QUEUES  # noqa: E402
from shared.db import dispose_engine, get_sessionmaker  # noqa: E402
from shared.models import Base  # noqa: E402
from shared.settings import get_settings  # noqa: E402

KEEP_TABLES = {"regions"}


def alembic_config() -> Config:
    cfg = Config(os.path.join(os.path.dirname(__file__), "..", "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    return cfg


async def _reset_schema() -> None:
    engine = create_async_engine(get_settings().database_url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session", autouse=True)
async def migrated_database() -> AsyncIterator[None]:
    await _reset_schema()
    import asyncio

    await asyncio.to_thread(command.upgrade, alembic_config(), "head")
    from tests.factories import ensure_base_regions

    async with get_sessionmaker()() as session, session.begin():
        await ensure_base_regions(session)
    yield
    await dispose_engine()


TRUNCATE_SQL = "TRUNCATE {} RESTART IDENTITY CASCADE".format(
    ", ".join(t.name for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES)
)


@pytest.fixture(autouse=True)
async def clean_tables(migrated_database: None) -> AsyncIterator[None]:
    yield
    # The session's Celery worker may still be matching lines a test's import enqueued: the
    # TRUNCATE can then lose a deadlock against that batch (PostgreSQL aborts one of the two).
    # The batch finishes by itself; the TRUNCATE is simply tried again.
    for attempt in range(10):
        try:
            async with get_sessionmaker()() as session, session.begin():
                await session.execute(text(TRUNCATE_SQL))
            return
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != "40P01" or attempt == 9:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    """A session whose transaction the test commits itself (`await session.commit()`)."""
    async with get_sessionmaker()() as s:
        yield s


def auth(role: Role | str, unit_id: int | None = None, *, sub: str | None = None) -> dict[str, str]:
    """Authorization header for a freshly minted token."""
    return {"Authorization": f"Bearer {mint_token(role, unit_id, sub=sub)}"}


def _client_factory(module: str) -> Callable[[], httpx.AsyncClient]:
    def make() -> httpx.AsyncClient:
        import importlib

        app = importlib.import_module(f"services.{module}.app").create_app()
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{module}.test"
        )

    return make


@pytest.fixture
async def filing_client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client_factory("filing")() as client:
        yield client


@pytest.fixture
async def confirmation_client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client_factory("confirmation")() as client:
        yield client


@pytest.fixture
async def payments_client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client_factory("payments")() as client:
        yield client


@pytest.fixture
async def notify_client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client_factory("notify")() as client:
        yield client


@pytest.fixture(scope="session")
def celery_worker_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker (solo pool) on every queue, with this test run's DATABASE_URL and
    REDIS_URL; stopped at the end of the session."""
    settings = get_settings()
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    log_path = os.path.join(tempfile.gettempdir(), f"celery-test-worker-{os.getpid()}.log")
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
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
            # not the notify queue: the SMS that tests queue are sent by the notify tests' own
            # workers (on private Redis servers), never by this one in the middle of other tests
            ",".join(q for q in QUEUES if q != QUEUE_NOTIFY),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
