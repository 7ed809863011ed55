"""Migrations upgrade to head and downgrade to base on real PostgreSQL, and match the models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from shared.models import Base
from shared.models.payments import include_in_schema_comparison
from shared.settings import get_settings
from tests.conftest import alembic_config


@pytest.fixture
async def scratch_database_url() -> AsyncIterator[str]:
    """A brand-new empty database on the same server, dropped afterwards."""
    url = make_url(get_settings().database_url)
    name = f"migr_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        names = {r[0] for r in rows}
    await engine.dispose()
    return names


async def _diff_against_models(url: str) -> list[object]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync_conn: compare_metadata(
                MigrationContext.configure(
                    sync_conn,
                    opts={
                        "compare_type": True,
                        "include_object": include_in_schema_comparison,
                    },
                ),
                Base.metadata,
            )
        )
    await engine.dispose()
    return list(diff)


def test_migrations_have_a_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1


async def test_upgrade_to_head_creates_every_model_table_and_downgrade_to_base_removes_them(
    scratch_database_url: str,
) -> None:
    cfg = alembic_config()
    cfg.attributes["database_url"] = scratch_database_url

    await asyncio.to_thread(command.upgrade, cfg, "head")
    assert await _tables(scratch_database_url) == set(Base.metadata.tables) | {"alembic_version"}
    assert await _diff_against_models(scratch_database_url) == []

    await asyncio.to_thread(command.downgrade, cfg, "base")
    assert await _tables(scratch_database_url) == {"alembic_version"}

    await asyncio.to_thread(command.upgrade, cfg, "head")
    assert set(Base.metadata.tables) <= await _tables(scratch_database_url)
