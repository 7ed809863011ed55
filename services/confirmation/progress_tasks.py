"""Celery task of the progress counters: the nightly drift check (beat, `progress.check_drift`).

Also a command: `python -m services.confirmation.progress_tasks check|rebuild` (rebuild replaces
the counters by a recomputation from the orders, e.g. after loading orders with triggers off or
after changing the priority-area reference data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from services.confirmation import progress, progress_repository
from shared.celery_app import celery_app, run_async
from shared.db import dispose_engine, unit_of_work

CHECK_DRIFT = "progress.check_drift"


async def check() -> dict[str, Any]:
    async with unit_of_work() as session:
        return await progress.check_drift(session)


async def rebuild() -> None:
    async with unit_of_work() as session:
        await progress_repository.rebuild(session)


@celery_app.task(name=CHECK_DRIFT)
def check_drift() -> dict[str, Any]:
    """Recompute the counters from the orders and report any difference (logged as an error;
    there must never be one)."""
    return run_async(check())


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.confirmation.progress_tasks")
    parser.add_argument("command", choices=["check", "rebuild"])
    args = parser.parse_args(argv)

    async def run() -> dict[str, Any]:
        try:
            if args.command == "rebuild":
                await rebuild()
            return await check()
        finally:
            await dispose_engine()

    report = asyncio.run(run())
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["drift_rows"] == 0 else 1


if __name__ == "__main__":
    sys.exit(_main())
