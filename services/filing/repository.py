"""Every query of the filing service (units, policy rows, filings, versions, events)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import delete, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from shared.db import sqlstate
from shared.errors import Conflict
from shared.models import (
    Filing,
    FilingEvent,
    FilingReopening,
    FilingSharedUnit,
    FilingVersion,
    OrgUnit,
    OrgUnitChange,
    Policy,
    Region,
    UnitKind,
)

LOCK_NOT_AVAILABLE = "55P03"
UNIQUE_VIOLATION = "23505"


def concurrent_update() -> Conflict:
    return Conflict("该填报正被另一请求修改或提交，请刷新页面后重试", code="concurrent_update")


async def flush(session: AsyncSession) -> None:
    """Flush, turning a lost race (unique key, optimistic lock) into a 409."""
    try:
        await session.flush()
    except StaleDataError as exc:
        raise concurrent_update() from exc
    except IntegrityError as exc:
        if sqlstate(exc) == UNIQUE_VIOLATION:
            raise concurrent_update() from exc
        raise


# ---------------------------------------------------------------------------------------------
# regions and units


async def region_exists(session: AsyncSession, code: str) -> bool:
    return bool(await session.scalar(select(exists().where(Region.code == code))))


async def get_unit(session: AsyncSession, unit_id: int) -> OrgUnit | None:
    return await session.get(OrgUnit, unit_id)


async def get_units(session: AsyncSession, unit_ids: Sequence[int]) -> dict[int, OrgUnit]:
    if not unit_ids:
        return {}
    rows = await session.execute(select(OrgUnit).where(OrgUnit.id.in_(list(unit_ids))))
    return {u.id: u for u in rows.scalars()}


async def lock_units(session: AsyncSession, unit_ids: Sequence[int]) -> None:
    """`SELECT ... FOR UPDATE` of the units in id order (no deadlock), refreshing loaded ones."""
    stmt = (
        select(OrgUnit)
        .where(OrgUnit.id.in_(sorted(set(unit_ids))))
        .order_by(OrgUnit.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    await session.execute(stmt)


async def unit_code_taken(session: AsyncSession, code: str) -> bool:
    return bool(await session.scalar(select(exists().where(OrgUnit.code == code))))


async def add_unit(session: AsyncSession, unit: OrgUnit, parent: OrgUnit | None) -> OrgUnit:
    provisional = unit.code is None
    if provisional:
        unit.code = f"tmp-{uuid.uuid4().hex}"
    session.add(unit)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("单位编码已被使用", code="unit_code_taken") from exc
    unit.place_under(parent)
    if provisional:
        unit.code = f"U{unit.id:08d}"
    await session.flush()
    return unit


async def list_children(
    session: AsyncSession, parent_id: int, after_id: int | None, limit: int
) -> list[OrgUnit]:
    stmt = select(OrgUnit).where(OrgUnit.parent_id == parent_id).order_by(OrgUnit.id)
    if after_id is not None:
        stmt = stmt.where(OrgUnit.id > after_id)
    return list((await session.execute(stmt.limit(limit + 1))).scalars())


async def add_unit_change(session: AsyncSession, change: OrgUnitChange) -> None:
    session.add(change)
    await session.flush()


async def list_unit_changes(session: AsyncSession, unit_id: int) -> list[OrgUnitChange]:
    stmt = (
        select(OrgUnitChange)
        .where(OrgUnitChange.unit_id == unit_id)
        .order_by(OrgUnitChange.effective_at, OrgUnitChange.id)
    )
    return list((await session.execute(stmt)).scalars())


async def units_sharing_mobile(
    session: AsyncSession, unit: OrgUnit, mobile: str, year: int
) -> list[int]:
    """Units using `mobile` as a contact (on the unit or on a filing of `year`) that share no
    budget-unit ancestor with `unit` (unrelated: different department)."""
    rows = await session.execute(
        text(
            """
            SELECT u.id FROM org_units u
             WHERE u.id <> :me
               AND (u.contact_mobile = :m OR u.union_contact_mobile = :m
                    OR u.id IN (SELECT f.unit_id FROM filings f
                                 WHERE f.year = :year
                                   AND (f.contact_mobile = :m OR f.union_contact_mobile = :m)))
               AND NOT EXISTS (
                    SELECT 1 FROM org_units b
                     WHERE b.kind = :budget
                       AND u.path LIKE b.path || '%'
                       AND :me_path LIKE b.path || '%')
             ORDER BY u.id
            """
        ),
        {
            "me": unit.id,
            "m": mobile,
            "year": year,
            "me_path": unit.path,
            "budget": UnitKind.BUDGET_UNIT.value,
        },
    )
    return [int(r) for r in rows.scalars()]


# ---------------------------------------------------------------------------------------------
# policy rows and reopenings


async def get_policy_row(session: AsyncSession, year: int, region_code: str) -> Policy | None:
    stmt = select(Policy).where(Policy.year == year, Policy.region_code == region_code)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_or_create_policy_row(
    session: AsyncSession, year: int, region_code: str, actor: str
) -> Policy:
    await session.execute(
        insert(Policy)
        .values(year=year, region_code=region_code, updated_by=actor)
        .on_conflict_do_nothing(index_elements=["year", "region_code"])
    )
    stmt = (
        select(Policy)
        .where(Policy.year == year, Policy.region_code == region_code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def open_reopening(
    session: AsyncSession, unit_id: int, year: int, today: date
) -> FilingReopening | None:
    stmt = (
        select(FilingReopening)
        .where(
            FilingReopening.unit_id == unit_id,
            FilingReopening.year == year,
            FilingReopening.revoked_at.is_(None),
            FilingReopening.open_until >= today,
        )
        .order_by(FilingReopening.open_until.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_reopening(session: AsyncSession, reopening: FilingReopening) -> FilingReopening:
    session.add(reopening)
    await session.flush()
    return reopening


# ---------------------------------------------------------------------------------------------
# filings


async def get_filing(session: AsyncSession, unit_id: int, year: int) -> Filing | None:
    stmt = select(Filing).where(Filing.unit_id == unit_id, Filing.year == year)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_filing_by_id(session: AsyncSession, filing_id: int) -> Filing | None:
    return await session.get(Filing, filing_id)


async def lock_filing(session: AsyncSession, filing_id: int) -> Filing:
    """`SELECT ... FOR UPDATE NOWAIT`: a second writer of the same filing gets a 409 at once."""
    stmt = (
        select(Filing)
        .where(Filing.id == filing_id)
        .with_for_update(nowait=True)
        .execution_options(populate_existing=True)
    )
    try:
        return (await session.execute(stmt)).scalar_one()
    except DBAPIError as exc:
        if sqlstate(exc) == LOCK_NOT_AVAILABLE:
            raise concurrent_update() from exc
        raise


async def create_filing(session: AsyncSession, filing: Filing) -> Filing:
    session.add(filing)
    await flush(session)
    return filing


async def shared_unit_ids(session: AsyncSession, filing_id: int) -> list[int]:
    stmt = (
        select(FilingSharedUnit.unit_id)
        .where(FilingSharedUnit.filing_id == filing_id)
        .order_by(FilingSharedUnit.unit_id)
    )
    return [int(x) for x in (await session.execute(stmt)).scalars()]


async def replace_shared_units(
    session: AsyncSession, filing_id: int, unit_ids: Sequence[int]
) -> None:
    await session.execute(delete(FilingSharedUnit).where(FilingSharedUnit.filing_id == filing_id))
    if unit_ids:
        await session.execute(
            insert(FilingSharedUnit),
            [{"filing_id": filing_id, "unit_id": u} for u in sorted(set(unit_ids))],
        )


async def has_submitted_filing(session: AsyncSession, unit_id: int, year: int) -> bool:
    stmt = select(
        exists().where(Filing.unit_id == unit_id, Filing.year == year, Filing.version > 0)
    )
    return bool(await session.scalar(stmt))


async def latest_version(session: AsyncSession, filing_id: int) -> FilingVersion | None:
    stmt = (
        select(FilingVersion)
        .where(FilingVersion.filing_id == filing_id)
        .order_by(FilingVersion.version_no.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_version_of(session: AsyncSession, unit_id: int, year: int) -> FilingVersion | None:
    stmt = (
        select(FilingVersion)
        .join(Filing, Filing.id == FilingVersion.filing_id)
        .where(Filing.unit_id == unit_id, Filing.year == year)
        .order_by(FilingVersion.version_no.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_versions(session: AsyncSession, filing_id: int) -> list[FilingVersion]:
    stmt = (
        select(FilingVersion)
        .where(FilingVersion.filing_id == filing_id)
        .order_by(FilingVersion.version_no)
    )
    return list((await session.execute(stmt)).scalars())


async def add_version(session: AsyncSession, version: FilingVersion) -> None:
    session.add(version)
    await flush(session)


async def add_event(session: AsyncSession, event: FilingEvent) -> None:
    session.add(event)
    await flush(session)


async def list_events(session: AsyncSession, filing_id: int) -> list[FilingEvent]:
    stmt = (
        select(FilingEvent)
        .where(FilingEvent.filing_id == filing_id)
        .order_by(FilingEvent.at, FilingEvent.id)
    )
    return list((await session.execute(stmt)).scalars())


async def latest_filings_of_unit(session: AsyncSession, unit_id: int) -> list[Filing]:
    """The unit's filing of its most recent year (contacts follow the unit)."""
    latest = select(func.max(Filing.year)).where(Filing.unit_id == unit_id).scalar_subquery()
    stmt = select(Filing).where(Filing.unit_id == unit_id, Filing.year == latest)
    return list((await session.execute(stmt)).scalars())
