"""Celery tasks of this service (thin: ids in, unit of work, service layer)."""

from __future__ import annotations

from datetime import date

from services.notify import dispatch, reminders, service
from shared.celery_app import celery_app, run_async

SEND = "notify.send"
SETTLE = "notify.settle"
SWEEP = "notify.sweep"
QUEUE_REMINDERS = "notify.queue_reminders"
PURGE = "notify.purge_mobiles"


@celery_app.task(name=SEND, ignore_result=True)
def send(message_id: int) -> str:
    """Send one outbox message (enqueued after the event's commit; no-op unless claimable)."""
    return run_async(dispatch.send_message(message_id))


@celery_app.task(name=SETTLE, ignore_result=True)
def settle(message_id: int) -> str:
    """Query the provider about an `unknown` message before any re-send."""
    return run_async(dispatch.settle_message(message_id))


@celery_app.task(name=SWEEP)
def sweep() -> dict[str, int]:
    """Beat safety net every 30 s: lost enqueues, due retries, unknown and stuck rows."""
    return run_async(dispatch.sweep())


@celery_app.task(name=QUEUE_REMINDERS)
def queue_reminders(on: str | None = None) -> int:
    """Daily: `filing_reminder` SMS N and M days before the filing deadline (policy data)."""
    return run_async(reminders.queue_reminders(date.fromisoformat(on) if on else None))


@celery_app.task(name=PURGE)
def purge_mobiles() -> int:
    """Daily: drop the numbers of messages older than `SMS_RETENTION_DAYS`."""
    return run_async(service.purge_old_mobiles())
