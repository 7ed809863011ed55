"""Filing reminders (填报提醒): units with no submitted filing, N and M days before the deadline.

N and M are policy data (`policies.reminder_days_first/second`, resolved along the region chain
by `shared.policy.reminder_policy`). Each reminder is an outbox row keyed
`reminder:{unit_id}:{year}:{date}`, so a re-run of the same day queues nothing more.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.notify import repository as repo
from shared.db import unit_of_work
from shared.errors import DomainError
from shared.policy import reminder_policy
from shared.settings import get_settings
from shared.sms import queue_sms

log = logging.getLogger(__name__)


def business_today() -> date:
    return datetime.now(ZoneInfo(get_settings().timezone)).date()


async def queue_reminders(today: date | None = None) -> int:
    """Queue today's reminders; returns how many new messages were queued."""
    today = today or business_today()
    queued = 0
    async with unit_of_work() as session:
        regions = await repo.reminder_candidate_regions(session)
        for year in await repo.policy_years(session, today):
            due: dict[str, date] = {}
            for region in regions:
                try:
                    policy = await reminder_policy(session, year, region)
                except DomainError:  # no policy for this region and year
                    continue
                deadline = policy.filing_deadline
                if deadline is None:
                    continue
                if any(deadline - timedelta(days=n) == today for n in policy.days_before):
                    due[region] = deadline
            if not due:
                continue
            for unit in await repo.units_without_submitted_filing(session, year, list(due)):
                deadline = due[unit.region_code]
                new_id = await queue_sms(
                    session,
                    event_key=f"reminder:{unit.id}:{year}:{today.isoformat()}",
                    template="filing_reminder",
                    mobile=unit.contact_mobile,
                    params={
                        "unit_name": unit.name,
                        "year": year,
                        "deadline": f"{deadline.year}年{deadline.month}月{deadline.day}日",
                    },
                    unit_id=unit.id,
                )
                queued += new_id is not None
    log.info("filing reminders queued for %s: %d", today.isoformat(), queued)
    return queued
