"""Every query of the finance side of the confirmation service: scope, live aggregates, checks,
finance filing lists, export rows and the aggregate hand-overs (`finance_aggregates`).

Set-based SQL throughout: a province has tens of thousands of units, so nothing here loads a
unit per row. A finance department's scope is the finance departments under it (path prefix)
and every budget unit whose `finance_department_id` is one of them (`shared.auth` rule).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.models import (
    AggregateStatus,
    FinanceAggregate,
    OrgUnit,
    UnitKind,
    UnitStatus,
)

BUDGET = UnitKind.BUDGET_UNIT.value
FINANCE = UnitKind.FINANCE_DEPARTMENT.value
ACTIVE = UnitStatus.ACTIVE.value

FILED_STATUSES = (
    "submitted",
    "returned",
    "confirmed",
    "department_submitted",
    "finance_confirmed",
    "finance_returned",
)
CONFIRMED_STATUSES = ("confirmed", "department_submitted", "finance_confirmed", "finance_returned")
"""Confirmed by the superior (or further along the chain)."""

# "filed": submitted at least once (the row keeps its last submitted figures unless returned and
# being edited, in which case the figures shown are the ones being corrected).
_FILED = "f.version > 0"

_SUMS = f"""
       count(*)                                                          AS units,
       count(*) FILTER (WHERE {_FILED})                                  AS filed,
       count(*) FILTER (WHERE f.status = ANY(:confirmed_statuses))       AS confirmed,
       count(*) FILTER (WHERE {_FILED} AND cardinality(f.flags) > 0)     AS flagged,
       coalesce(sum(f.canteen_total) FILTER (WHERE {_FILED}), 0)         AS canteen_total,
       coalesce(sum(f.reserved_amount) FILTER (WHERE {_FILED}), 0)       AS reserved_amount,
       coalesce(sum(f.union_total) FILTER (WHERE {_FILED}), 0)           AS union_total,
       coalesce(sum(f.union_expected_amount) FILTER (WHERE {_FILED}), 0) AS union_expected_amount
"""

# Units of a department: the supervising unit's subtree, as a byte-order range on the
# materialised path (`/1/5/` .. `/1/50`), which the text_pattern_ops index answers per department.
_IN_DEPARTMENT = "u.path ~>=~ r.path AND u.path ~<~ (left(r.path, -1) || '0')"

# Department roots (主管预算单位): budget units whose parent is none or not a budget unit (two
# index probes: by `parent_id IS NULL`, and from the finance departments down by `parent_id`).
_ROOTS_OF = """
    SELECT r.id, r.name, r.path, r.finance_department_id, r.parent_id, r.status
      FROM org_units r
     WHERE r.parent_id IS NULL AND r.kind = '{budget}' {cond}
    UNION ALL
    SELECT r.id, r.name, r.path, r.finance_department_id, r.parent_id, r.status
      FROM org_units p
      JOIN org_units r ON r.parent_id = p.id
     WHERE p.kind <> '{budget}' AND r.kind = '{budget}' {cond}
"""
_ROOTS = f"""
    SELECT * FROM ({
    _ROOTS_OF.format(budget=BUDGET, cond="AND r.finance_department_id = ANY(:fds)")
}) roots_of WHERE status = '{ACTIVE}'
"""


@dataclass(frozen=True)
class FinanceDept:
    id: int
    name: str
    path: str
    parent_id: int | None
    region_code: str
    status: str


async def finance_departments_under(session: AsyncSession, root: OrgUnit) -> list[FinanceDept]:
    """The finance department `root` and every finance department under it (path prefix)."""
    rows = await session.execute(
        text(
            f"""
            SELECT id, name, path, parent_id, region_code, status FROM org_units
             WHERE kind = '{FINANCE}' AND path LIKE :prefix
             ORDER BY path
            """
        ),
        {"prefix": root.path + "%"},
    )
    return [FinanceDept(*r) for r in rows]


async def all_finance_department_ids(session: AsyncSession) -> list[int]:
    rows = await session.execute(text(f"SELECT id FROM org_units WHERE kind = '{FINANCE}'"))
    return [int(r) for r in rows.scalars()]


async def get_unit(session: AsyncSession, unit_id: int) -> OrgUnit | None:
    return await session.get(OrgUnit, unit_id)


async def lock_unit(session: AsyncSession, unit_id: int) -> OrgUnit:
    """`SELECT ... FOR UPDATE` of a finance department: serialises its hand-overs and the
    decisions on the hand-overs it receives."""
    stmt = (
        select(OrgUnit)
        .where(OrgUnit.id == unit_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


# ---------------------------------------------------------------------------------------------
# live figures


def _params(year: int, fds: Sequence[int], **extra: Any) -> dict[str, Any]:
    return {"year": year, "fds": list(fds), "confirmed_statuses": list(CONFIRMED_STATUSES), **extra}


async def sums_by_finance_department_and_top(
    session: AsyncSession, year: int, fds: Sequence[int]
) -> list[dict[str, Any]]:
    """Counts and sums per (finance department, first element of the unit's path) in one scan:
    when a department's supervising unit has no parent, the first path element is the
    department, so one pass gives both the regions and the departments of a province. The
    grouping expression is the one of the extended statistics `st_org_units_department`
    (migration 0011): keep them identical."""
    rows = await session.execute(
        text(
            f"""
            SELECT u.finance_department_id AS fd,
                   CAST(split_part(u.path, '/', 2) AS bigint) AS top, {_SUMS}
              FROM org_units u
              LEFT JOIN filings f ON f.unit_id = u.id AND f.year = :year
             WHERE u.kind = '{BUDGET}' AND u.status = '{ACTIVE}'
               AND u.finance_department_id = ANY(:fds)
             GROUP BY 1, 2
            """
        ),
        _params(year, fds),
    )
    return [dict(r._mapping) for r in rows]


async def department_roots(
    session: AsyncSession, fds: Sequence[int] | None
) -> list[dict[str, Any]]:
    """Supervising units (any status) of the finance departments `fds` (None: all)."""
    cond = "" if fds is None else "AND r.finance_department_id = ANY(:fds)"
    rows = await session.execute(
        text(f"SELECT * FROM ({_ROOTS_OF.format(budget=BUDGET, cond=cond)}) x ORDER BY id"),
        {} if fds is None else {"fds": list(fds)},
    )
    return [dict(r._mapping) for r in rows]


async def sums_by_department(
    session: AsyncSession, year: int, fds: Sequence[int]
) -> list[dict[str, Any]]:
    """One row per department (supervising unit) of the finance departments `fds`: its live counts
    and sums over the supervising unit's subtree, and its latest summary (id, status)."""
    rows = await session.execute(
        text(
            f"""
            WITH roots AS ({_ROOTS})
            SELECT r.id AS department_id, r.name AS department_name,
                   r.finance_department_id, s.id AS summary_id, s.status AS summary_status,
                   {_SUMS}
              FROM roots r
              JOIN org_units u ON {_IN_DEPARTMENT}
              LEFT JOIN filings f ON f.unit_id = u.id AND f.year = :year
              LEFT JOIN LATERAL (
                   SELECT ds.id, ds.status FROM department_summaries ds
                    WHERE ds.department_unit_id = r.id AND ds.year = :year
                    ORDER BY ds.id DESC LIMIT 1) s ON true
             WHERE u.kind = '{BUDGET}' AND u.status = '{ACTIVE}'
             GROUP BY r.id, r.name, r.finance_department_id, s.id, s.status
             ORDER BY r.id
            """
        ),
        _params(year, fds),
    )
    return [dict(r._mapping) for r in rows]


async def departments_of(session: AsyncSession, year: int, fd: int) -> list[dict[str, Any]]:
    """The departments of finance department `fd`'s own level and each one's latest summary,
    figures as submitted (`department_summaries`)."""
    rows = await session.execute(
        text(
            f"""
            WITH roots AS ({_ROOTS})
            SELECT r.id AS department_id, r.name AS department_name, r.parent_id,
                   r.finance_department_id,
                   s.id AS summary_id, s.status AS summary_status, s.units_count,
                   s.canteen_total, s.reserved_amount, s.union_total,
                   s.union_expected_amount, s.flagged_count
              FROM roots r
              LEFT JOIN LATERAL (
                   SELECT ds.* FROM department_summaries ds
                    WHERE ds.department_unit_id = r.id AND ds.year = :year
                    ORDER BY ds.id DESC LIMIT 1) s ON true
             ORDER BY r.id
            """
        ),
        {"year": year, "fds": [fd]},
    )
    return [dict(r._mapping) for r in rows]


async def lock_summaries(session: AsyncSession, summary_ids: Sequence[int]) -> None:
    """`FOR SHARE` on the summaries a hand-over is built from (no return races the snapshot)."""
    if summary_ids:
        await session.execute(
            text("SELECT id FROM department_summaries WHERE id = ANY(:ids) ORDER BY id FOR SHARE"),
            {"ids": sorted(summary_ids)},
        )


async def sums_of_subtree(session: AsyncSession, year: int, path: str) -> dict[str, Any]:
    """Counts and sums of the active budget units of one subtree (a department)."""
    row = (
        await session.execute(
            text(
                f"""
                SELECT {_SUMS}
                  FROM org_units u
                  LEFT JOIN filings f ON f.unit_id = u.id AND f.year = :year
                 WHERE u.kind = '{BUDGET}' AND u.status = '{ACTIVE}' AND u.path LIKE :prefix
                """
            ),
            {"year": year, "prefix": path + "%", "confirmed_statuses": list(CONFIRMED_STATUSES)},
        )
    ).one()
    return dict(row._mapping)


async def latest_summary_status(session: AsyncSession, year: int, department_id: int) -> str | None:
    value = await session.scalar(
        text(
            """
            SELECT status FROM department_summaries
             WHERE department_unit_id = :d AND year = :year ORDER BY id DESC LIMIT 1
            """
        ),
        {"d": department_id, "year": year},
    )
    return None if value is None else str(value)


async def unit_names(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    rows = await session.execute(
        text("SELECT id, name FROM org_units WHERE id = ANY(:ids)"), {"ids": list(ids)}
    )
    return {int(r.id): str(r.name) for r in rows}


async def distinct_regions(session: AsyncSession, fds: Sequence[int] | None) -> list[str]:
    """Region codes of the units of the finance departments `fds` (None: every unit)."""
    cond = "" if fds is None else "AND finance_department_id = ANY(:fds)"
    rows = await session.execute(
        text(f"SELECT DISTINCT region_code FROM org_units WHERE kind = '{BUDGET}' {cond}"),
        {} if fds is None else {"fds": list(fds)},
    )
    return [str(r) for r in rows.scalars()]


# ---------------------------------------------------------------------------------------------
# unit lists (checks, finance filing lists, export rows)

UNIT_COLUMNS = """
       u.id AS unit_id, u.code AS unit_code, u.name AS unit_name, u.region_code,
       u.finance_department_id, fd.name AS finance_department_name,
       f.id AS filing_id, f.status, f.canteen_status, f.union_status, f.version,
       f.canteen_type, f.canteen_total, f.canteen_ratio, f.reserved_amount, f.remark,
       f.union_has_need, f.union_total, f.union_ratio, f.union_expected_amount,
       f.contact_name, coalesce(f.contact_mobile, u.contact_mobile) AS contact_mobile,
       f.flags, f.submitted_at, f.justification
"""


@dataclass
class UnitFilter:
    """The WHERE of a unit list: SQL conditions over `u` (unit) and `f` (its filing)."""

    conditions: list[str]
    params: dict[str, Any]
    filing_required: bool = False


async def list_units(
    session: AsyncSession,
    year: int,
    fds: Sequence[int] | None,
    flt: UnitFilter,
    *,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A keyset page (by unit id) of the active budget units in scope matching `flt`."""
    where = [f"u.kind = '{BUDGET}'", f"u.status = '{ACTIVE}'", *flt.conditions]
    params: dict[str, Any] = {"year": year, **flt.params, "limit": limit + 1}
    if fds is not None:
        where.append("u.finance_department_id = ANY(:fds)")
        params["fds"] = list(fds)
    if after_id is not None:
        where.append("u.id > :after")
        params["after"] = after_id
    join = "JOIN" if flt.filing_required else "LEFT JOIN"
    rows = await session.execute(
        text(
            f"""
            SELECT {UNIT_COLUMNS}
              FROM org_units u
              {join} filings f ON f.unit_id = u.id AND f.year = :year
              LEFT JOIN org_units fd ON fd.id = u.finance_department_id
             WHERE {" AND ".join(where)}
             ORDER BY u.id
             LIMIT :limit
            """
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]


async def count_units(
    session: AsyncSession, year: int, fds: Sequence[int] | None, flt: UnitFilter
) -> int:
    where = [f"u.kind = '{BUDGET}'", f"u.status = '{ACTIVE}'", *flt.conditions]
    params: dict[str, Any] = {"year": year, **flt.params}
    if fds is not None:
        where.append("u.finance_department_id = ANY(:fds)")
        params["fds"] = list(fds)
    join = "JOIN" if flt.filing_required else "LEFT JOIN"
    value = await session.scalar(
        text(
            f"""
            SELECT count(*) FROM org_units u
              {join} filings f ON f.unit_id = u.id AND f.year = :year
             WHERE {" AND ".join(where)}
            """
        ),
        params,
    )
    return int(value or 0)


async def stream_units(
    session: AsyncSession,
    year: int,
    fds: Sequence[int] | None,
    flt: UnitFilter,
    *,
    batch: int = 2_000,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every matching unit in id order (with its `path`), in batches, through a server-side
    cursor: memory stays flat whatever the province's size."""
    where = [f"u.kind = '{BUDGET}'", f"u.status = '{ACTIVE}'", *flt.conditions]
    params: dict[str, Any] = {"year": year, **flt.params}
    if fds is not None:
        where.append("u.finance_department_id = ANY(:fds)")
        params["fds"] = list(fds)
    join = "JOIN" if flt.filing_required else "LEFT JOIN"
    stmt = text(
        f"""
        SELECT {UNIT_COLUMNS}, u.path
          FROM org_units u
          {join} filings f ON f.unit_id = u.id AND f.year = :year
          LEFT JOIN org_units fd ON fd.id = u.finance_department_id
         WHERE {" AND ".join(where)}
         ORDER BY u.id
        """
    )
    result = await session.stream(stmt.execution_options(yield_per=batch), params)
    async for part in result.mappings().partitions(batch):
        yield [dict(r) for r in part]


# ---------------------------------------------------------------------------------------------
# aggregates (hand-overs)


async def aggregate_history(session: AsyncSession, year: int, fd: int) -> list[FinanceAggregate]:
    stmt = (
        select(FinanceAggregate)
        .where(FinanceAggregate.year == year, FinanceAggregate.finance_department_id == fd)
        .order_by(FinanceAggregate.version)
    )
    return list((await session.execute(stmt)).scalars())


async def latest_aggregates(
    session: AsyncSession, year: int, fds: Sequence[int], *, lock: bool = False
) -> dict[int, FinanceAggregate]:
    """The latest hand-over (highest version) of each finance department in `fds`."""
    if not fds:
        return {}
    newer = aliased(FinanceAggregate)
    stmt = select(FinanceAggregate).where(
        FinanceAggregate.year == year,
        FinanceAggregate.finance_department_id.in_(fds),
        ~exists().where(
            newer.year == FinanceAggregate.year,
            newer.finance_department_id == FinanceAggregate.finance_department_id,
            newer.version > FinanceAggregate.version,
        ),
    )
    rows = list((await session.execute(stmt)).scalars())
    if lock and rows:
        locked = (
            select(FinanceAggregate)
            .where(FinanceAggregate.id.in_([r.id for r in rows]))
            .order_by(FinanceAggregate.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        rows = list((await session.execute(locked)).scalars())
    return {r.finance_department_id: r for r in rows}


async def get_aggregate(session: AsyncSession, aggregate_id: int) -> FinanceAggregate | None:
    return await session.get(FinanceAggregate, aggregate_id)


async def lock_aggregate(session: AsyncSession, aggregate_id: int) -> FinanceAggregate:
    stmt = (
        select(FinanceAggregate)
        .where(FinanceAggregate.id == aggregate_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def add_aggregate(session: AsyncSession, aggregate: FinanceAggregate) -> FinanceAggregate:
    session.add(aggregate)
    await session.flush()
    return aggregate


async def platform_aggregates(
    session: AsyncSession, year: int, after_id: int | None, limit: int
) -> list[FinanceAggregate]:
    """Hand-overs to the platform (no parent finance department), oldest first."""
    stmt = (
        select(FinanceAggregate)
        .where(
            FinanceAggregate.year == year,
            FinanceAggregate.parent_finance_department_id.is_(None),
        )
        .order_by(FinanceAggregate.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        stmt = stmt.where(FinanceAggregate.id > after_id)
    return list((await session.execute(stmt)).scalars())


def money(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


LIVE_STATUSES = (AggregateStatus.SUBMITTED, AggregateStatus.CONFIRMED)
