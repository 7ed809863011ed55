"""The Celery application: every queue, route and beat entry is named here, in one place.

Tasks are thin: they take ids, open their own unit of work (`shared.db.unit_of_work`) inside
`run_async`, and call the service layer. Worker: `celery -A shared.celery_app:celery_app worker
-Q default,matching,notify`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
)
from kombu import Queue

from shared.logs import (
    LogContext,
    bind_context,
    configure_logging,
    current_request_id,
    mask_all_handlers,
)
from shared.settings import get_settings

T = TypeVar("T")

QUEUE_DEFAULT = "default"
QUEUE_MATCHING = "matching"  # bank-statement matching (payments)
QUEUE_NOTIFY = "notify"  # SMS sending (notify)
QUEUES = (QUEUE_DEFAULT, QUEUE_MATCHING, QUEUE_NOTIFY)

TASK_MODULES = [
    "shared.tasks",
    "services.payments.tasks",
    "services.notify.tasks",
    "services.confirmation.progress_tasks",
]


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery(
        "reserved_share",
        broker=settings.celery_broker_url,
        backend=settings.celery_broker_url,
        include=TASK_MODULES,
    )
    app.conf.update(
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=QUEUE_DEFAULT,
        task_routes={
            "payments.*": {"queue": QUEUE_MATCHING},
            "notify.*": {"queue": QUEUE_NOTIFY},
        },
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        task_acks_late=True,  # a task lost with its worker is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        worker_send_task_events=True,  # Flower
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        timezone=settings.timezone,
        beat_schedule={
            # safety nets: rows stuck in a state are picked up even if an enqueue was lost.
            "payments-match-pending": {
                "task": "payments.match_pending",
                "schedule": 60.0,
            },
            # progress counters against a recomputation from the orders (drift must be zero)
            "progress-check-drift": {
                "task": "progress.check_drift",
                "schedule": crontab(hour=2, minute=30),
            },
            # SMS outbox: lost enqueues, due retries, unknown and stuck `sending` rows
            "notify-sweep": {"task": "notify.sweep", "schedule": 30.0},
            # SMS filing reminders (N and M days before the deadline: policy data), 09:00 local
            "notify-reminders": {
                "task": "notify.queue_reminders",
                "schedule": crontab(hour=9, minute=0),
            },
            # SMS numbers dropped after SMS_RETENTION_DAYS
            "notify-purge-mobiles": {
                "task": "notify.purge_mobiles",
                "schedule": crontab(hour=3, minute=30),
            },
        },
    )
    return app


celery_app = make_celery()


@setup_logging.connect
def _one_log_format(*_: Any, loglevel: Any = None, **__: Any) -> None:
    """Worker, beat and Flower log in the services' format (`LOG_FORMAT`), masked; connecting
    this signal keeps Celery from installing its own handlers."""
    import sys

    name = "celery"
    for arg in sys.argv[1:]:
        if arg in {"worker", "beat", "flower"}:
            name = arg
            break
    configure_logging(loglevel if isinstance(loglevel, str | int) else None, service=name)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_worker_logs(*_: Any, **__: Any) -> None:
    """Worker and beat logs are scrubbed of mobile and account numbers like the services'."""
    mask_all_handlers()


REQUEST_ID_TASK_HEADER = "request_id"


@before_task_publish.connect
def _carry_request_id(*_: Any, headers: dict[str, Any] | None = None, **__: Any) -> None:
    """A task enqueued while serving a request (or running a task) carries its request id, so an
    import and the matching it triggered can be followed in the logs."""
    request_id = current_request_id()
    if request_id and headers is not None and not headers.get(REQUEST_ID_TASK_HEADER):
        headers[REQUEST_ID_TASK_HEADER] = request_id


@task_prerun.connect
def _bind_task_context(
    *_: Any, task_id: str | None = None, task: Task | None = None, **__: Any
) -> None:
    if task is None or task_id is None:
        return
    request_id = getattr(task.request, REQUEST_ID_TASK_HEADER, None)
    if not request_id:
        request_id = (getattr(task.request, "headers", None) or {}).get(REQUEST_ID_TASK_HEADER)
    ctx = LogContext(request_id=str(request_id or task_id), task_name=task.name, task_id=task_id)
    bind_context(ctx)


@task_postrun.connect
def _unbind_task_context(*_: Any, **__: Any) -> None:
    bind_context(None)


_loop: asyncio.AbstractEventLoop | None = None


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on this worker process's own long-lived event loop (the async engine and
    its pooled connections belong to that loop, so it is reused across tasks)."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coro)
