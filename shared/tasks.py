"""Infrastructure tasks (health)."""

from __future__ import annotations

from sqlalchemy import text

from shared.celery_app import celery_app, run_async
from shared.db import unit_of_work
from shared.logs import current_request_id


async def _db_now() -> str:
    async with unit_of_work() as session:
        return str((await session.execute(text("SELECT now()"))).scalar_one())


@celery_app.task(name="shared.ping")
def ping(payload: str) -> dict[str, str | None]:
    """Round trip through broker, worker, PostgreSQL and result backend (used by the tests);
    `request_id` is the one the task's log lines carry (that of the request that enqueued it)."""
    return {"echo": payload, "db_now": run_async(_db_now()), "request_id": current_request_id()}
