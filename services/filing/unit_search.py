"""`GET /api/v1/units?finance_department_id=&kind=&q=&limit=&cursor=`: find units without ids.

A finance department cannot list its own budget units through `/units/{id}/children` (they hang
on it through `finance_department_id`, not `parent_id`); this search covers that, scope-checked:
a finance department sees the units of its region (its own and the finance departments under
it), a unit its own subtree, ops everything.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.filing import org_service
from services.filing.schemas import UnitOut
from shared.auth import Principal, Role, ensure_unit_in_scope, require_roles
from shared.errors import NotFound
from shared.http_deps import SessionDep
from shared.models import OrgUnit, UnitKind
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor

Reader = Annotated[Principal, Depends(require_roles(Role.UNIT, Role.FINANCE, Role.OPS))]

unit_search_router = APIRouter(prefix="/api/v1/units", tags=["units"])


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_units(
    session: AsyncSession,
    principal: Principal,
    *,
    finance_department_id: int | None,
    kind: UnitKind | None,
    q: str | None,
    after_id: int | None,
    limit: int,
) -> list[OrgUnit]:
    """Every query of the search (one statement, keyset by id)."""
    stmt = select(OrgUnit).order_by(OrgUnit.id).limit(limit + 1)
    if principal.role == Role.UNIT:
        me = await session.get(OrgUnit, principal.require_unit_id())
        if me is None:
            return []
        stmt = stmt.where(OrgUnit.path.startswith(me.path, autoescape=True))
    elif principal.role == Role.FINANCE:
        me = await org_service.ensure_finance_department(session, principal)
        fds = select(OrgUnit.id).where(
            OrgUnit.kind == UnitKind.FINANCE_DEPARTMENT,
            OrgUnit.path.startswith(me.path, autoescape=True),
        )
        stmt = stmt.where(
            or_(
                OrgUnit.finance_department_id.in_(fds),
                OrgUnit.path.startswith(me.path, autoescape=True),
            )
        )
    if finance_department_id is not None:
        stmt = stmt.where(OrgUnit.finance_department_id == finance_department_id)
    if kind is not None:
        stmt = stmt.where(OrgUnit.kind == kind)
    if q:
        pattern = f"%{_like_escape(q)}%"
        stmt = stmt.where(or_(OrgUnit.name.ilike(pattern, escape="\\"), OrgUnit.code == q.strip()))
    if after_id is not None:
        stmt = stmt.where(OrgUnit.id > after_id)
    return list((await session.execute(stmt)).scalars())


@unit_search_router.get("")
async def list_units(
    session: SessionDep,
    principal: Reader,
    finance_department_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    kind: UnitKind | None = None,
    q: Annotated[
        str | None, Query(max_length=100, description="part of the name, or the code")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[UnitOut]:
    """Units of the caller's scope by finance department, kind and name (mobiles masked). A
    finance department outside the caller's scope: 404."""
    if finance_department_id is not None:
        fd = await session.get(OrgUnit, finance_department_id)
        if fd is None or fd.kind != UnitKind.FINANCE_DEPARTMENT:
            raise NotFound("财政部门不存在或无权访问", code="finance_department_not_found")
        if principal.role != Role.UNIT:
            await ensure_unit_in_scope(session, principal, finance_department_id)
    rows = await search_units(
        session,
        principal,
        finance_department_id=finance_department_id,
        kind=kind,
        q=q,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    items = rows[:limit]
    return Page[UnitOut](
        items=[
            org_service.unit_out(u, masked=not org_service.sees_own(principal, u.id)) for u in items
        ],
        next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None,
    )
