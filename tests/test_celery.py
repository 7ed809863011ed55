"""A task goes through real Redis to a real worker process, touches PostgreSQL, and comes back."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from shared.celery_app import QUEUE_DEFAULT, QUEUE_MATCHING, QUEUE_NOTIFY, celery_app
from shared.tasks import ping


@pytest.mark.worker
async def test_task_round_trip_through_a_real_worker_and_redis(
    celery_worker_process: subprocess.Popen[bytes],
) -> None:
    result = ping.apply_async(args=("你好",), queue=QUEUE_DEFAULT)
    value = await asyncio.to_thread(result.get, timeout=90)
    assert value["echo"] == "你好"
    assert value["db_now"]  # the worker really queried PostgreSQL
    assert celery_worker_process.poll() is None


def test_every_queue_is_declared_and_routed_in_one_place() -> None:
    declared = {q.name for q in celery_app.conf.task_queues}
    assert declared == {QUEUE_DEFAULT, QUEUE_MATCHING, QUEUE_NOTIFY}
    routes = celery_app.conf.task_routes
    assert routes["payments.*"]["queue"] == QUEUE_MATCHING
    assert routes["notify.*"]["queue"] == QUEUE_NOTIFY
