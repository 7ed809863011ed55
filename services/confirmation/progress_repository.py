"""SQL of the progress reads (reads of the counters kept by migration 0009's triggers), the
recomputation from orders and the drift check. No HTTP, no rules beyond the SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CANTEEN_CHANNELS = ("unit", "contractor", "personal")


async def unit_brief(session: AsyncSession, unit_id: int) -> Any:
    return (
        await session.execute(
            text("SELECT id, name, kind, status, path FROM org_units WHERE id = :id"),
            {"id": unit_id},
        )
    ).first()


async def unit_totals(session: AsyncSession, year: int, unit_id: int) -> Any:
    return (
        await session.execute(
            text("SELECT * FROM progress_unit_totals WHERE year = :y AND unit_id = :u"),
            {"y": year, "u": unit_id},
        )
    ).first()


async def merged_into(session: AsyncSession, year: int, unit_id: int) -> list[Any]:
    """Units merged into this one, with their own counted amounts of the year (their history
    stays under their own ids)."""
    rows = await session.execute(
        text(
            """
            SELECT u.id, u.name, coalesce(t.canteen_amount, 0) AS canteen_amount,
                   coalesce(t.union_amount, 0) AS union_amount
              FROM org_units u
              LEFT JOIN progress_unit_totals t ON t.year = :y AND t.unit_id = u.id
             WHERE u.merged_into_id = :u ORDER BY u.id
            """
        ),
        {"y": year, "u": unit_id},
    )
    return list(rows)


async def monthly_canteen(session: AsyncSession, years: list[int], unit_id: int) -> dict:
    """{(year, month): amount} of the canteen channels."""
    rows = await session.execute(
        text(
            """
            SELECT year, month, sum(amount) AS amount FROM progress_counters
             WHERE year = ANY(:years) AND unit_id = :u
               AND channel IN ('unit', 'contractor', 'personal')
             GROUP BY year, month
            """
        ),
        {"years": years, "u": unit_id},
    )
    return {(r.year, r.month): r.amount for r in rows}


# The units a finance department tracks: budget units whose finance department is it or one of
# the finance departments under it (same rule as shared.auth.unit_in_scope).
async def finance_departments_under(session: AsyncSession, finance_department_id: int) -> list[int]:
    """The finance department and those under it (down the `parent_id` index, a few rows)."""
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE fds AS (
                SELECT id FROM org_units WHERE id = :fd AND kind = 'finance_department'
                UNION
                SELECT c.id FROM org_units c JOIN fds ON c.parent_id = fds.id
                 WHERE c.kind = 'finance_department'
            )
            SELECT id FROM fds
            """
        ),
        {"fd": finance_department_id},
    )
    return [r.id for r in rows]


_TOTALS_COLUMNS = """
    t.reserved_amount, t.union_expected_amount, t.unit_amount, t.contractor_amount,
    t.personal_amount, t.union_amount, t.paired_amount, t.key_amount, t.other_area_amount,
    t.canteen_amount
"""

_SUMS = """
    count(*) AS units_count,
    sum(t.reserved_amount) AS reserved_amount,
    sum(t.union_expected_amount) AS union_expected_amount,
    coalesce(sum(t.unit_amount), 0) AS unit_amount,
    coalesce(sum(t.contractor_amount), 0) AS contractor_amount,
    coalesce(sum(t.personal_amount), 0) AS personal_amount,
    coalesce(sum(t.union_amount), 0) AS union_amount,
    coalesce(sum(t.paired_amount), 0) AS paired_amount,
    coalesce(sum(t.key_amount), 0) AS key_amount,
    coalesce(sum(t.other_area_amount), 0) AS other_area_amount,
    coalesce(sum(t.canteen_amount), 0) AS canteen_amount
"""

_PCT = "CASE WHEN {r} > 0 THEN round({a} * 100 / {r}, 2) END"

# sort key → SQL over a totals-shaped row `t` (the completion percentage is a stored column of
# the per-unit totals, indexed by (year, completion_pct, unit_id))
SORTS = {
    "completion_pct": _PCT.format(a="t.canteen_amount", r="t.reserved_amount"),
    "union_completion_pct": _PCT.format(a="t.union_amount", r="t.union_expected_amount"),
    "canteen_purchased": "t.canteen_amount",
    "reserved_amount": "t.reserved_amount",
    "union_purchased": "t.union_amount",
}

# The units listed are those with a row of totals for the year: a submitted filing (its targets)
# or a counted purchase. Units with neither have nothing to show (the filing checks list them).
_UNIT_ROWS = f"""
    SELECT t.unit_id AS key, u.name AS label, {_TOTALS_COLUMNS}
      FROM progress_unit_totals t
      JOIN org_units u ON u.id = t.unit_id
     WHERE t.year = :year AND u.finance_department_id = ANY(:fds) AND u.kind = 'budget_unit'
"""

_GROUP_KEYS = {"department": "t.department_id", "region": "t.region_code"}
# A group row sums its units (0, not NULL, when the scope has none in the year).
_GROUP_COUNT = "coalesce(sum(t.units_count), 0) AS units_count"
_GROUP_CANTEEN = "sum(t.unit_amount + t.contractor_amount + t.personal_amount)"
_GROUP_SUMS = _SUMS.replace("count(*) AS units_count", _GROUP_COUNT).replace(
    "sum(t.canteen_amount)", _GROUP_CANTEEN
)
_GROUP_LABELS = {
    "department": "(SELECT d.name FROM org_units d WHERE d.id = t.key)",
    "region": "(SELECT r.name FROM regions r WHERE r.code = t.key)",
}


@dataclass
class FinancePage:
    rows: list[Any]
    totals: Any
    behind: list[Any]
    more: bool


async def finance_rows(
    session: AsyncSession,
    *,
    year: int,
    finance_department_id: int,
    group_by: str,
    sort: str,
    descending: bool,
    offset: int,
    limit: int | None,
    behind: int = 10,
) -> FinancePage:
    """The rows (grouped, sorted, one page), the totals and the units furthest behind.

    By unit, sorted by completion ascending (the default), the page is an ordered scan of the
    totals' completion index that stops at the page; the totals are one aggregation over the
    department's units (GROUPING SETS gives the groups and the totals in the same pass)."""
    fds = await finance_departments_under(session, finance_department_id)
    params: dict[str, Any] = {"year": year, "fds": fds, "offset": offset}
    direction = "DESC NULLS LAST" if descending else "ASC NULLS LAST"
    page_limit = "" if limit is None else f"LIMIT {int(limit) + 1}"
    order = f"{SORTS[sort]} {direction}, t.unit_id"
    if sort == "completion_pct" and not descending:
        order = "t.completion_pct ASC NULLS LAST, t.unit_id"  # the index order
    if group_by == "unit":
        rows = list(
            await session.execute(
                text(f"{_UNIT_ROWS} ORDER BY {order} OFFSET :offset {page_limit}"), params
            )
        )
        totals = (
            await session.execute(
                text(
                    f"""SELECT {_GROUP_SUMS} FROM progress_group_totals t
                         WHERE t.year = :year AND t.finance_department_id = ANY(:fds)"""
                ),
                params,
            )
        ).one()
    else:
        key = _GROUP_KEYS[group_by]
        grouped = list(
            await session.execute(
                text(
                    f"""
                    WITH g AS (
                        SELECT {key} AS key, GROUPING({key}) AS is_total, {_GROUP_SUMS}
                          FROM progress_group_totals t
                         WHERE t.year = :year AND t.finance_department_id = ANY(:fds)
                         GROUP BY GROUPING SETS (({key}), ())
                    )
                    SELECT t.*, CAST({_GROUP_LABELS[group_by]} AS text) AS label FROM g t
                     ORDER BY t.is_total, {SORTS[sort]} {direction}, t.key
                    """
                ),
                params,
            )
        )
        totals = next(r for r in grouped if r.is_total)
        groups = [r for r in grouped if not r.is_total]
        rows = groups[offset:] if limit is None else groups[offset : offset + limit + 1]
    behind_rows = list(
        await session.execute(
            text(
                f"""{_UNIT_ROWS} AND t.reserved_amount > 0
                ORDER BY t.completion_pct ASC NULLS LAST, t.unit_id LIMIT :n"""
            ),
            {**params, "n": behind},
        )
    )
    more = limit is not None and len(rows) > limit
    return FinancePage(
        rows=rows[:limit] if limit is not None else rows,
        totals=totals,
        behind=behind_rows,
        more=more,
    )


# ----------------------------------------------------------------------------- recomputation

_EXPECTED = """
    WITH d AS (
        SELECT CAST(extract(year FROM greatest(paid_at, completed_at) AT TIME ZONE
                            'Asia/Shanghai') AS smallint) AS year,
               buyer_unit_id AS unit_id, purchase_channel AS channel,
               CAST(extract(month FROM greatest(paid_at, completed_at) AT TIME ZONE
                            'Asia/Shanghai') AS smallint) AS month,
               coalesce(origin_county, '') AS origin, amount
          FROM orders WHERE status = 'paid' AND completed_at IS NOT NULL
    ), classes AS MATERIALIZED (
        SELECT origin, progress_classify_origin(origin) AS area_class
          FROM (SELECT DISTINCT origin FROM d) o
    )
    SELECT d.year, d.unit_id, d.channel, d.month, c.area_class,
           sum(d.amount) AS amount, count(*) AS orders
      FROM d JOIN classes c ON c.origin = d.origin
     GROUP BY 1, 2, 3, 4, 5
"""

_DRIFT = f"""
    WITH e AS ({_EXPECTED}),
    a AS (SELECT * FROM progress_counters WHERE amount <> 0 OR orders <> 0)
    SELECT coalesce(e.year, a.year) AS year, coalesce(e.unit_id, a.unit_id) AS unit_id,
           coalesce(e.channel, a.channel) AS channel, coalesce(e.month, a.month) AS month,
           coalesce(e.area_class, a.area_class) AS area_class,
           coalesce(e.amount, 0) AS expected_amount, coalesce(a.amount, 0) AS counted_amount,
           coalesce(e.orders, 0) AS expected_orders, coalesce(a.orders, 0) AS counted_orders
      FROM e FULL JOIN a USING (year, unit_id, channel, month, area_class)
     WHERE e.amount IS DISTINCT FROM a.amount OR e.orders IS DISTINCT FROM a.orders
     ORDER BY 1, 2, 3, 4, 5
"""

# The per-unit totals must be the sums of the counters.
_TOTALS_DRIFT = """
    WITH c AS (
        SELECT year, unit_id,
               sum(amount) FILTER (WHERE channel = 'unit') AS unit_amount,
               sum(amount) FILTER (WHERE channel = 'contractor') AS contractor_amount,
               sum(amount) FILTER (WHERE channel = 'personal') AS personal_amount,
               sum(amount) FILTER (WHERE channel = 'union') AS union_amount,
               sum(amount) FILTER (WHERE area_class IN ('paired_county', 'key_county'))
                   AS paired_amount,
               sum(amount) FILTER (WHERE area_class = 'key_county') AS key_amount,
               sum(amount) FILTER (WHERE area_class = 'paired_area') AS other_area_amount,
               sum(orders) AS orders
          FROM progress_counters GROUP BY year, unit_id
    )
    SELECT coalesce(c.year, t.year) AS year, coalesce(c.unit_id, t.unit_id) AS unit_id
      FROM c FULL JOIN progress_unit_totals t USING (year, unit_id)
     WHERE coalesce(c.unit_amount, 0) <> coalesce(t.unit_amount, 0)
        OR coalesce(c.contractor_amount, 0) <> coalesce(t.contractor_amount, 0)
        OR coalesce(c.personal_amount, 0) <> coalesce(t.personal_amount, 0)
        OR coalesce(c.union_amount, 0) <> coalesce(t.union_amount, 0)
        OR coalesce(c.paired_amount, 0) <> coalesce(t.paired_amount, 0)
        OR coalesce(c.key_amount, 0) <> coalesce(t.key_amount, 0)
        OR coalesce(c.other_area_amount, 0) <> coalesce(t.other_area_amount, 0)
        OR coalesce(c.orders, 0) <> coalesce(t.orders, 0)
"""


# The per-(department, region) sums must be those of the per-unit totals under the current tree.
_GROUPS_DRIFT = """
    WITH e AS (
        SELECT t.year, coalesce(u.finance_department_id, 0) AS finance_department_id,
               CAST(coalesce(nullif(split_part(u.path, '/', 2), ''), '0') AS bigint)
                   AS department_id,
               u.region_code, count(*) AS units_count, sum(t.orders) AS orders,
               coalesce(sum(t.reserved_amount), 0) AS reserved_amount,
               coalesce(sum(t.union_expected_amount), 0) AS union_expected_amount,
               sum(t.canteen_amount) AS canteen_amount, sum(t.union_amount) AS union_amount,
               sum(t.paired_amount) AS paired_amount, sum(t.key_amount) AS key_amount,
               sum(t.other_area_amount) AS other_area_amount
          FROM progress_unit_totals t JOIN org_units u ON u.id = t.unit_id
         GROUP BY 1, 2, 3, 4
    ), a AS (
        SELECT year, finance_department_id, department_id, region_code, units_count, orders,
               reserved_amount, union_expected_amount,
               unit_amount + contractor_amount + personal_amount AS canteen_amount,
               union_amount, paired_amount, key_amount, other_area_amount
          FROM progress_group_totals WHERE units_count <> 0
    )
    SELECT year, finance_department_id, department_id, region_code
      FROM e FULL JOIN a USING (year, finance_department_id, department_id, region_code)
     WHERE (e.units_count, e.orders, e.reserved_amount, e.union_expected_amount,
            e.canteen_amount, e.union_amount, e.paired_amount, e.key_amount,
            e.other_area_amount)
           IS DISTINCT FROM
           (a.units_count, a.orders, a.reserved_amount, a.union_expected_amount,
            a.canteen_amount, a.union_amount, a.paired_amount, a.key_amount,
            a.other_area_amount)
"""

_GROUPS_REBUILD = """
    INSERT INTO progress_group_totals
           (year, finance_department_id, department_id, region_code, units_count, orders,
            reserved_amount, union_expected_amount, unit_amount, contractor_amount,
            personal_amount, union_amount, paired_amount, key_amount, other_area_amount)
    SELECT t.year, coalesce(u.finance_department_id, 0),
           CAST(coalesce(nullif(split_part(u.path, '/', 2), ''), '0') AS bigint),
           u.region_code, count(*), sum(t.orders),
           coalesce(sum(t.reserved_amount), 0), coalesce(sum(t.union_expected_amount), 0),
           sum(t.unit_amount), sum(t.contractor_amount), sum(t.personal_amount),
           sum(t.union_amount), sum(t.paired_amount), sum(t.key_amount),
           sum(t.other_area_amount)
      FROM progress_unit_totals t JOIN org_units u ON u.id = t.unit_id
     GROUP BY 1, 2, 3, 4
"""


async def groups_drift(session: AsyncSession) -> list[Any]:
    return list(await session.execute(text(_GROUPS_DRIFT)))


# The recomputation scans every counted order: no request-sized statement timeout.
_LONG = text("SET LOCAL statement_timeout = 0")


async def counter_drift(session: AsyncSession) -> list[Any]:
    await session.execute(_LONG)
    return list(await session.execute(text(_DRIFT)))


async def totals_drift(session: AsyncSession) -> list[Any]:
    return list(await session.execute(text(_TOTALS_DRIFT)))


async def rebuild(session: AsyncSession) -> None:
    """Replace every counter by a recomputation from the orders (and the targets from the latest
    submitted filing versions). Locks the counter tables for the transaction."""
    await session.execute(_LONG)
    await session.execute(
        text(
            "LOCK TABLE progress_counters, progress_unit_totals, progress_group_totals "
            "IN EXCLUSIVE MODE"
        )
    )
    await session.execute(text("DELETE FROM progress_counters"))
    await session.execute(text("DELETE FROM progress_unit_totals"))
    await session.execute(
        text(
            f"""
            INSERT INTO progress_counters (year, unit_id, channel, month, area_class, amount,
                                           orders)
            {_EXPECTED}
            """
        )
    )
    await session.execute(
        text(
            """
            INSERT INTO progress_unit_totals
                   (year, unit_id, unit_amount, contractor_amount, personal_amount,
                    union_amount, paired_amount, key_amount, other_area_amount, orders)
            SELECT year, unit_id,
                   coalesce(sum(amount) FILTER (WHERE channel = 'unit'), 0),
                   coalesce(sum(amount) FILTER (WHERE channel = 'contractor'), 0),
                   coalesce(sum(amount) FILTER (WHERE channel = 'personal'), 0),
                   coalesce(sum(amount) FILTER (WHERE channel = 'union'), 0),
                   coalesce(sum(amount) FILTER (
                       WHERE area_class IN ('paired_county', 'key_county')), 0),
                   coalesce(sum(amount) FILTER (WHERE area_class = 'key_county'), 0),
                   coalesce(sum(amount) FILTER (WHERE area_class = 'paired_area'), 0),
                   sum(orders)
              FROM progress_counters GROUP BY year, unit_id
            """
        )
    )
    await session.execute(
        text(
            """
            INSERT INTO progress_unit_totals AS t (year, unit_id, reserved_amount,
                                                   union_expected_amount)
            SELECT DISTINCT ON (f.year, f.unit_id) f.year, f.unit_id,
                   CAST(nullif(v.snapshot ->> 'reserved_amount', '') AS numeric(16, 2)),
                   CAST(nullif(v.snapshot ->> 'union_expected_amount', '') AS numeric(16, 2))
              FROM filing_versions v JOIN filings f ON f.id = v.filing_id
             ORDER BY f.year, f.unit_id, v.version_no DESC
            ON CONFLICT (year, unit_id) DO UPDATE
               SET reserved_amount = excluded.reserved_amount,
                   union_expected_amount = excluded.union_expected_amount
            """
        )
    )
    # the inserts above added to the group sums through the triggers; recompute them outright
    await session.execute(text("DELETE FROM progress_group_totals"))
    await session.execute(text(_GROUPS_REBUILD))
