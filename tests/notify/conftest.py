"""Fixtures of the notify tests: a private Redis the after-commit enqueue goes to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.settings import get_settings
from tests.notify.helpers import PrivateRedis, point_celery_at


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def broker(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """This process's Celery app points at the private Redis for the test (so no worker of the
    session takes the notify tasks), then back at REDIS_URL."""
    point_celery_at(private_redis.url)
    try:
        yield private_redis
    finally:
        point_celery_at(get_settings().redis_url)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "sms_retry_base_seconds", 0.0)
    monkeypatch.setattr(settings, "sms_query_delay_seconds", 0.0)
    monkeypatch.setattr(settings, "sms_wait_default_seconds", 0.0)
