"""End to end through a real Celery worker: the import enqueues `payments.match_pending` on the
`matching` queue after its commit, and the worker settles the statement."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.tasks import match_pending
from tests.payments.helpers import import_fixture, line_outcomes, load_sample_orders
from tests.payments.test_sample_statements import EXPECTED_LINES


@pytest.mark.worker
async def test_a_real_worker_matches_an_imported_statement(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    celery_worker_process: subprocess.Popen[bytes],
) -> None:
    await load_sample_orders(session, payments_client)
    await import_fixture(payments_client, "statement_bank_export.csv")  # enqueues matching
    # queued behind the import's own task on the same solo worker: when this one is done,
    # every line has been through the worker
    result = match_pending.apply_async()
    await asyncio.to_thread(result.get, timeout=90)
    assert await line_outcomes(session) == EXPECTED_LINES
    assert celery_worker_process.poll() is None
