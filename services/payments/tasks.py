"""Celery tasks of this service (thin: ids in, unit of work, service layer)."""

from __future__ import annotations

import logging

from services.payments import matching
from shared.celery_app import celery_app, run_async

log = logging.getLogger(__name__)

MATCH_PENDING = "payments.match_pending"
MAX_BATCHES_PER_TASK = 1000


@celery_app.task(name=MATCH_PENDING)
def match_pending() -> dict[str, int]:
    """Match pending bank lines batch by batch until none is left to claim (also the 60 s beat
    safety net). Several workers may run it at once: batches are claimed with SKIP LOCKED."""
    run_async(_sweep_stale_imports())
    result = run_async(matching.match_pending(max_batches=MAX_BATCHES_PER_TASK))
    return {"claimed": result.claimed, **result.outcomes}


async def _sweep_stale_imports() -> None:
    """Statements stuck in `importing` past the lease (their importer died) are failed; riding
    on the matcher's 60 s beat. A failure here never stops matching."""
    from services.payments.importer import fail_stale_imports

    try:
        await fail_stale_imports()
    except Exception:
        log.warning("sweep of stale statement imports failed; retried on the next run")


def enqueue_matching() -> None:
    """Send `payments.match_pending` (call only after the import's transaction committed). A
    broker outage is logged, not raised: the beat safety net picks the lines up."""
    try:
        match_pending.apply_async()
    except Exception:
        log.exception("could not enqueue %s; the beat safety net will match later", MATCH_PENDING)
