"""HTTP routes of the progress reads (API.md "Progress toward the reserved share")."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from services.confirmation import progress
from shared.auth import Principal, Role, require_roles
from shared.http_deps import SessionDep
from shared.pagination import Cursor, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/progress", tags=["progress"])

Year = Annotated[int, Path(ge=2000, le=2999)]
PathId = Annotated[int, Path(ge=1, le=2**63 - 1)]
UnitReader = Annotated[Principal, Depends(require_roles(Role.UNIT, Role.FINANCE, Role.OPS))]
FinanceReader = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.OPS))]
GroupByQ = Annotated[progress.GroupBy, Query()]
SortQ = Annotated[progress.Sort, Query()]
OrderQ = Annotated[str, Query(pattern="^(asc|desc)$")]
GROUP_LABELS = {"unit": "单位", "department": "部门", "region": "地区"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/{year}/units/{unit_id}")
async def unit_progress(
    year: Year, unit_id: PathId, session: SessionDep, principal: UnitReader
) -> progress.UnitProgressOut:
    """A unit's progress (the unit itself, its superiors, its finance departments, ops)."""
    return await progress.unit_progress(session, principal, year, unit_id)


@router.get("/{year}/finance/{finance_department_id}")
async def finance_progress(
    year: Year,
    finance_department_id: PathId,
    session: SessionDep,
    principal: FinanceReader,
    group_by: GroupByQ = "unit",
    sort: SortQ = "completion_pct",
    order: OrderQ = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> progress.FinanceProgressOut:
    offset = decode_cursor(cursor) or 0
    out, next_offset = await progress.finance_progress(
        session,
        principal,
        year=year,
        finance_department_id=finance_department_id,
        group_by=group_by,
        sort=sort,
        descending=order == "desc",
        offset=offset,
        limit=limit,
    )
    out.next_cursor = encode_cursor(next_offset) if next_offset is not None else None
    return out


@router.get(
    "/{year}/finance/{finance_department_id}/export.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}},
)
async def finance_progress_export(
    year: Year,
    finance_department_id: PathId,
    session: SessionDep,
    principal: FinanceReader,
    group_by: GroupByQ = "unit",
    sort: SortQ = "completion_pct",
    order: OrderQ = "asc",
) -> Response:
    """Every row of the view (not one page), then the totals; built off the event loop."""
    out, _ = await progress.finance_progress(
        session,
        principal,
        year=year,
        finance_department_id=finance_department_id,
        group_by=group_by,
        sort=sort,
        descending=order == "desc",
        offset=0,
        limit=None,
    )
    title = f"{year} 年预留份额完成情况（按{GROUP_LABELS[group_by]}）"
    body = await asyncio.to_thread(progress.build_xlsx, out.items, out.totals, title)
    filename = f"progress-{year}-{finance_department_id}-{group_by}.xlsx"
    return Response(
        body,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
