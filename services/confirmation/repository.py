"""Every query of the confirmation service (pending filings, department summaries, reviews)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import RowMapping, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.filing.repository import LOCK_NOT_AVAILABLE
from shared.db import sqlstate
from shared.errors import Conflict
from shared.models import (
    AuditLog,
    Base,
    DepartmentSummary,
    DepartmentSummaryVersion,
    FilingEvent,
    FinanceReview,
    OrgUnit,
)

# A filing as the superior sees it: its unit's name and, through a lateral join, the latest
# submitted version of the same unit's filing of last year.
_ITEM_SELECT = """
SELECT f.id AS filing_id, f.unit_id, u.name AS unit_name, f.year, f.status, f.canteen_status,
       f.union_status, f.version, f.submitted_at, f.canteen_type, f.canteen_total,
       f.canteen_ratio, f.reserved_amount, f.remark, f.union_has_need, f.union_total,
       f.union_ratio, f.union_expected_amount, f.flags, f.justification,
       prev.snapshot AS previous_snapshot
"""
_PREVIOUS_JOIN = """
  LEFT JOIN LATERAL (
        SELECT pv.snapshot
          FROM filings pf
          JOIN filing_versions pv ON pv.filing_id = pf.id
         WHERE pf.unit_id = f.unit_id AND pf.year = f.year - 1
         ORDER BY pv.version_no DESC
         LIMIT 1) prev ON TRUE
"""


async def pending_page(
    session: AsyncSession,
    superior_id: int,
    year: int,
    *,
    flag: str | None,
    after_id: int | None,
    limit: int,
) -> list[RowMapping]:
    """Up to `limit` submitted filings (by id, after `after_id`) of the superior's strict
    descendants (materialised `path` prefix), with last year's figures: one query per page."""
    where = ["me.id = :me", "f.year = :year", "f.status = 'submitted'"]
    params: dict[str, Any] = {"me": superior_id, "year": year, "limit": limit}
    if flag is not None:
        where.append(":flag = ANY(f.flags)")
        params["flag"] = flag
    if after_id is not None:
        where.append("f.id > :after")
        params["after"] = after_id
    sql = f"""
        {_ITEM_SELECT}
          FROM org_units me
          JOIN org_units u ON u.path LIKE me.path || '%' AND u.id <> me.id
          JOIN filings f ON f.unit_id = u.id
        {_PREVIOUS_JOIN}
         WHERE {" AND ".join(where)}
         ORDER BY f.id
         LIMIT :limit
    """
    return list((await session.execute(text(sql), params)).mappings())


async def filing_item(session: AsyncSession, filing_id: int) -> RowMapping | None:
    """One filing as a pending item, whatever its status."""
    sql = f"""
        {_ITEM_SELECT}
          FROM filings f
          JOIN org_units u ON u.id = f.unit_id
        {_PREVIOUS_JOIN}
         WHERE f.id = :id
    """
    return (await session.execute(text(sql), {"id": filing_id})).mappings().first()


# ---------------------------------------------------------------------------------------------
# department summaries (本部门及下属单位确认汇总)


async def get_unit(session: AsyncSession, unit_id: int) -> OrgUnit | None:
    return await session.get(OrgUnit, unit_id)


async def lock_unit(session: AsyncSession, unit_id: int) -> OrgUnit | None:
    """`SELECT ... FOR UPDATE` of the department's unit row: summary submissions of one
    department are serialised (lock order: department, summary, filings by id)."""
    stmt = (
        select(OrgUnit)
        .where(OrgUnit.id == unit_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def department_rows(
    session: AsyncSession, department: OrgUnit, year: int
) -> list[RowMapping]:
    """Every budget unit of the department (the supervising unit and its descendants), with its
    filing of `year` if any: one query, ordered by unit id."""
    stmt = text(
        """
        SELECT u.id AS unit_id, u.name AS unit_name, u.status AS unit_status,
               f.id AS filing_id, f.status, f.canteen_status, f.union_status, f.version,
               f.canteen_type, f.canteen_total, f.canteen_ratio, f.reserved_amount,
               f.union_has_need, f.union_total, f.union_ratio, f.union_expected_amount,
               f.flags, f.contact_mobile
          FROM org_units u
          LEFT JOIN filings f ON f.unit_id = u.id AND f.year = :year
         WHERE u.path LIKE :path || '%'
           AND u.kind = 'budget_unit'
         ORDER BY u.id
        """
    )
    params = {"year": year, "path": department.path}
    return list((await session.execute(stmt, params)).mappings())


async def lock_department_filings(session: AsyncSession, department: OrgUnit, year: int) -> None:
    """`SELECT ... FOR UPDATE` of every filing of the department for `year`, in id order (no
    deadlock with another summary action). A superior's decision on one of them (which takes
    `FOR UPDATE NOWAIT`) gets 409 meanwhile; one already in flight is waited for, and what it
    committed is what the next statement sees."""
    stmt = text(
        """
        SELECT f.id
          FROM filings f
          JOIN org_units u ON u.id = f.unit_id
         WHERE u.path LIKE :path || '%' AND f.year = :year
         ORDER BY f.id
           FOR UPDATE OF f
        """
    )
    await session.execute(stmt, {"path": department.path, "year": year})


async def move_filings(
    session: AsyncSession,
    filing_ids: Sequence[int],
    from_statuses: Sequence[str],
    to_status: str,
) -> list[tuple[int, str, str, str]]:
    """Set the filings (and both parts) to `to_status`, only those still in `from_statuses`;
    returns `(id, old status, old canteen_status, old union_status)` of each row moved. The
    caller compares the count with what it expected (a lost race is a 409, never a partial move).
    `lock_version` is bumped so an ORM holder of a stale row fails its own update."""
    if not filing_ids:
        return []
    stmt = text(
        """
        UPDATE filings f
           SET status = :to, canteen_status = :to, union_status = :to,
               lock_version = f.lock_version + 1, updated_at = now()
          FROM filings old
         WHERE f.id = old.id
           AND f.id = ANY(:ids)
           AND f.status = ANY(:from_statuses)
        RETURNING f.id, old.status, old.canteen_status, old.union_status
        """
    )
    rows = await session.execute(
        stmt, {"ids": list(filing_ids), "from_statuses": list(from_statuses), "to": to_status}
    )
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


async def add_filing_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(FilingEvent), rows)


async def add_audit_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(AuditLog), rows)


async def get_summary(
    session: AsyncSession, department_id: int, year: int
) -> DepartmentSummary | None:
    stmt = select(DepartmentSummary).where(
        DepartmentSummary.department_unit_id == department_id, DepartmentSummary.year == year
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_summary_by_id(session: AsyncSession, summary_id: int) -> DepartmentSummary | None:
    return await session.get(DepartmentSummary, summary_id)


async def lock_summary(
    session: AsyncSession, summary_id: int, *, nowait: bool = False
) -> DepartmentSummary:
    """`SELECT ... FOR UPDATE [NOWAIT]` of a summary: `nowait` for reviewers (a second reviewer at
    the same moment gets 409 at once)."""
    stmt = (
        select(DepartmentSummary)
        .where(DepartmentSummary.id == summary_id)
        .with_for_update(nowait=nowait)
        .execution_options(populate_existing=True)
    )
    try:
        return (await session.execute(stmt)).scalar_one()
    except DBAPIError as exc:
        if sqlstate(exc) == LOCK_NOT_AVAILABLE:
            raise Conflict(
                "该汇总正被另一请求处理，请刷新页面后重试", code="concurrent_update"
            ) from exc
        raise


async def add(session: AsyncSession, row: Base) -> None:
    session.add(row)
    await session.flush()


async def summary_versions(
    session: AsyncSession, summary_id: int
) -> list[DepartmentSummaryVersion]:
    stmt = (
        select(DepartmentSummaryVersion)
        .where(DepartmentSummaryVersion.summary_id == summary_id)
        .order_by(DepartmentSummaryVersion.version_no)
    )
    return list((await session.execute(stmt)).scalars())


async def summary_reviews(session: AsyncSession, summary_id: int) -> list[FinanceReview]:
    stmt = (
        select(FinanceReview)
        .where(FinanceReview.summary_id == summary_id)
        .order_by(FinanceReview.at, FinanceReview.id)
    )
    return list((await session.execute(stmt)).scalars())


async def list_summaries(
    session: AsyncSession,
    year: int,
    *,
    finance_department_id: int | None,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> list[tuple[DepartmentSummary, str]]:
    """Summaries of `year` sent to one finance department (all of them for None), by id, with
    the department's current name."""
    stmt = (
        select(DepartmentSummary, OrgUnit.name)
        .join(OrgUnit, OrgUnit.id == DepartmentSummary.department_unit_id)
        .where(DepartmentSummary.year == year)
        .order_by(DepartmentSummary.id)
        .limit(limit)
    )
    if finance_department_id is not None:
        stmt = stmt.where(DepartmentSummary.finance_department_id == finance_department_id)
    if status is not None:
        stmt = stmt.where(DepartmentSummary.status == status)
    if after_id is not None:
        stmt = stmt.where(DepartmentSummary.id > after_id)
    return [(s, str(n)) for s, n in (await session.execute(stmt)).all()]


async def lock_department_filings_by_id(session: AsyncSession, filing_ids: Sequence[int]) -> None:
    """`SELECT ... FOR UPDATE` of these filings in id order (same order as every summary action)."""
    if filing_ids:
        stmt = text("SELECT id FROM filings WHERE id = ANY(:ids) ORDER BY id FOR UPDATE")
        await session.execute(stmt, {"ids": sorted(set(filing_ids))})


async def filing_contact_mobile(session: AsyncSession, unit_id: int, year: int) -> str | None:
    stmt = text("SELECT contact_mobile FROM filings WHERE unit_id = :u AND year = :y")
    value = await session.scalar(stmt, {"u": unit_id, "y": year})
    return str(value) if value else None
