"""SQL of the progress reads (reads of the counters kept by migration 0009's triggers), the
recomputation from orders and the drift check. No HTTP, no rules beyond the SQL."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
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
_UNITS_OF = """
    SELECT u.id, u.name, u.region_code, u.path,
           CAST(split_part(u.path, '/', 2) AS bigint) AS department_id,
           t.reserved_amount, t.union_expected_amount,
           coalesce(t.unit_amount, 0) AS unit_amount,
           coalesce(t.contractor_amount, 0) AS contractor_amount,
           coalesce(t.personal_amount, 0) AS personal_amount,
           coalesce(t.union_amount, 0) AS union_amount,
           coalesce(t.paired_amount, 0) AS paired_amount,
           coalesce(t.key_amount, 0) AS key_amount,
           coalesce(t.other_area_amount, 0) AS other_area_amount,
           coalesce(t.canteen_amount, 0) AS canteen_amount
      FROM org_units fd
      JOIN org_units u ON u.finance_department_id IN (
               SELECT f.id FROM org_units f
                WHERE f.path LIKE fd.path || '%' AND f.kind = 'finance_department')
      LEFT JOIN progress_unit_totals t ON t.year = :year AND t.unit_id = u.id
     WHERE fd.id = :fd AND u.kind = 'budget_unit'
"""

_SUMS = """
    count(*) AS units_count,
    sum(reserved_amount) AS reserved_amount,
    sum(union_expected_amount) AS union_expected_amount,
    sum(unit_amount) AS unit_amount, sum(contractor_amount) AS contractor_amount,
    sum(personal_amount) AS personal_amount, sum(union_amount) AS union_amount,
    sum(paired_amount) AS paired_amount, sum(key_amount) AS key_amount,
    sum(other_area_amount) AS other_area_amount, sum(canteen_amount) AS canteen_amount
"""

_PCT = "CASE WHEN {r} > 0 THEN round({a} * 100 / {r}, 2) END"

SORTS = {
    "completion_pct": _PCT.format(a="canteen_amount", r="reserved_amount"),
    "union_completion_pct": _PCT.format(a="union_amount", r="union_expected_amount"),
    "canteen_purchased": "canteen_amount",
    "reserved_amount": "reserved_amount",
    "union_purchased": "union_amount",
}

_GROUPS = {
    "unit": ("id", "name"),
    "department": (
        "department_id",
        "(SELECT d.name FROM org_units d WHERE d.id = g.key)",
    ),
    "region": ("region_code", "(SELECT r.name FROM regions r WHERE r.code = g.key)"),
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
    """The rows (grouped, sorted, one page), the totals and the units furthest behind."""
    key, name = _GROUPS[group_by]
    direction = "DESC NULLS LAST" if descending else "ASC NULLS LAST"
    if group_by == "unit":
        grouped = "SELECT *, id AS key FROM units"
    else:
        grouped = f"SELECT {key} AS key, {_SUMS} FROM units GROUP BY {key}"
    page_limit = "" if limit is None else f"LIMIT {int(limit) + 1}"
    base = f"WITH units AS MATERIALIZED ({_UNITS_OF}), g AS ({grouped})"
    params = {"year": year, "fd": finance_department_id, "offset": offset}
    label = "g.name" if group_by == "unit" else name
    rows = list(
        await session.execute(
            text(
                f"""{base}
                SELECT g.*, CAST({label} AS text) AS label FROM g
                 ORDER BY {SORTS[sort]} {direction}, g.key
                OFFSET :offset {page_limit}"""
            ),
            params,
        )
    )
    totals = (
        await session.execute(
            text(f"WITH units AS MATERIALIZED ({_UNITS_OF}) SELECT {_SUMS} FROM units"), params
        )
    ).one()
    behind_rows = list(
        await session.execute(
            text(
                f"""WITH units AS MATERIALIZED ({_UNITS_OF})
                SELECT *, id AS key, name AS label FROM units WHERE reserved_amount > 0
                 ORDER BY {SORTS["completion_pct"]} ASC, id LIMIT :n"""
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


async def counter_drift(session: AsyncSession) -> list[Any]:
    return list(await session.execute(text(_DRIFT)))


async def totals_drift(session: AsyncSession) -> list[Any]:
    return list(await session.execute(text(_TOTALS_DRIFT)))


async def rebuild(session: AsyncSession) -> None:
    """Replace every counter by a recomputation from the orders (and the targets from the latest
    submitted filing versions). Locks the counter tables for the transaction."""
    await session.execute(
        text("LOCK TABLE progress_counters, progress_unit_totals IN EXCLUSIVE MODE")
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


def as_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)
