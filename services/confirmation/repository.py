"""Every query of the confirmation service (pending filings, department summaries, reviews)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

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
