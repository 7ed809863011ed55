"""HTTP endpoints of the filing service (thin: auth, scope, then the service layer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse

from services.filing import org_service, presenter, service
from services.filing import repository as repo
from services.filing.schemas import (
    ConfirmIn,
    ContactsIn,
    EffectivePolicyOut,
    FilingDraftIn,
    FilingEventOut,
    FilingOut,
    FilingVersionOut,
    PolicyIn,
    PolicyRowOut,
    ReopenIn,
    ReopenOut,
    ReturnIn,
    SubmitIn,
    UnitChangeOut,
    UnitCreate,
    UnitMerge,
    UnitOut,
    UnitRename,
)
from shared import idempotency
from shared.auth import CurrentPrincipal, Principal, Role, ensure_unit_in_scope, require_roles
from shared.errors import NotFound, ValidationFailed
from shared.http_deps import SessionDep
from shared.models import Filing, UnitKind
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.policy import effective_policy

UnitPrincipal = Annotated[Principal, Depends(require_roles(Role.UNIT))]
FinanceOrOps = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.OPS))]


async def _admin(principal: FinanceOrOps, session: SessionDep) -> Principal:
    """Ops, or a finance role whose token is bound to an active finance department."""
    if principal.role == Role.FINANCE:
        await org_service.ensure_finance_department(session, principal)
    return principal


AdminPrincipal = Annotated[Principal, Depends(_admin)]
ReaderPrincipal = Annotated[Principal, Depends(require_roles(Role.UNIT, Role.FINANCE, Role.OPS))]
UnitId = Annotated[int, Path(ge=1, le=2**63 - 1)]
FilingId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Year = Annotated[int, Path(ge=2000, le=2100, description="fiscal year, e.g. 2024")]
RegionCode = Annotated[str, Path(pattern=r"^[0-9]{6}$", description="GB/T 2260, 000000 national")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]

units_router = APIRouter(prefix="/api/v1/units", tags=["units"])
policies_router = APIRouter(prefix="/api/v1/policies", tags=["policies"])
filings_router = APIRouter(prefix="/api/v1/filings", tags=["filings"])


# ---------------------------------------------------------------------------------------------
# units


@units_router.post("", status_code=201)
async def create_unit(body: UnitCreate, session: SessionDep, principal: AdminPrincipal) -> UnitOut:
    """Register a budget unit (预算单位) or a finance department (财政部门)."""
    unit = await org_service.create_unit(session, principal, body)
    return org_service.unit_out(unit, masked=False)


@units_router.get("/mine")
async def my_unit(session: SessionDep, principal: ReaderPrincipal) -> UnitOut:
    if principal.role == Role.FINANCE:  # a finance token bound to a budget unit reads nothing
        await org_service.ensure_finance_department(session, principal)
    unit = await org_service.load_unit(session, principal.require_unit_id())
    return org_service.unit_out(unit, masked=False)


@units_router.put("/mine/contacts")
async def update_my_contacts(
    body: ContactsIn, session: SessionDep, principal: UnitPrincipal
) -> UnitOut:
    """Contacts change at any time, without re-approval (recorded in the audit log)."""
    unit = await org_service.load_unit(session, principal.require_unit_id())
    values = org_service.contacts_values(body)
    await org_service.set_unit_contacts(session, principal, unit, values)
    await service.update_filing_contacts(session, principal, unit, values)
    return org_service.unit_out(unit, masked=False)


@units_router.get("/{unit_id}")
async def get_unit(unit_id: UnitId, session: SessionDep, principal: ReaderPrincipal) -> UnitOut:
    unit = await org_service.visible_unit(session, principal, unit_id)
    return org_service.unit_out(unit, masked=not org_service.sees_own(principal, unit_id))


@units_router.get("/{unit_id}/children")
async def get_children(
    unit_id: UnitId,
    session: SessionDep,
    principal: ReaderPrincipal,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[UnitOut]:
    await org_service.visible_unit(session, principal, unit_id)
    rows = await repo.list_children(session, unit_id, decode_cursor(cursor), limit)
    items = rows[:limit]
    return Page[UnitOut](
        items=[org_service.unit_out(u, masked=True) for u in items],
        next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None,
    )


@units_router.get("/{unit_id}/history")
async def unit_history(
    unit_id: UnitId, session: SessionDep, principal: ReaderPrincipal
) -> list[UnitChangeOut]:
    """Renames, merges and contact changes of the unit, oldest first."""
    await org_service.visible_unit(session, principal, unit_id)
    masked = not org_service.sees_own(principal, unit_id)
    out = []
    for c in await repo.list_unit_changes(session, unit_id):
        old, new = c.old_value, c.new_value
        if masked:
            old = presenter.mask_changes(old)
            new = presenter.mask_changes(new)
        out.append(
            UnitChangeOut(
                kind=c.kind.value,
                old_value=old,
                new_value=new,
                related_unit_id=c.related_unit_id,
                actor_sub=c.actor_sub,
                reason=c.reason,
                effective_at=c.effective_at,
            )
        )
    return out


@units_router.patch("/{unit_id}")
async def rename_unit(
    unit_id: UnitId, body: UnitRename, session: SessionDep, principal: AdminPrincipal
) -> UnitOut:
    """更名: same id, so the unit keeps its filings; the old name stays in its history."""
    unit = await org_service.rename_unit(session, principal, unit_id, body)
    return org_service.unit_out(unit, masked=True)


@units_router.post("/{unit_id}/merge")
async def merge_unit(
    unit_id: UnitId, body: UnitMerge, session: SessionDep, principal: AdminPrincipal
) -> UnitOut:
    """合并: the unit is marked merged into another; its filings stay attributable to it."""
    unit = await org_service.merge_unit(session, principal, unit_id, body)
    return org_service.unit_out(unit, masked=True)


# ---------------------------------------------------------------------------------------------
# policy


@policies_router.put("/{year}/{region_code}")
async def put_policy(
    year: Year,
    region_code: RegionCode,
    body: PolicyIn,
    session: SessionDep,
    principal: AdminPrincipal,
) -> PolicyRowOut:
    """Set the row of (year, region): ops anywhere, a finance department for its own region."""
    row = await org_service.put_policy(session, principal, year, region_code, body)
    return PolicyRowOut(
        year=row.year,
        region_code=row.region_code,
        national_floor=row.national_floor,
        encouraged_ratio=row.encouraged_ratio,
        soft_floor=row.soft_floor,
        filing_deadline=row.filing_deadline,
        non_settlement_cutoff=row.non_settlement_cutoff,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


@policies_router.get("/{year}/{region_code}")
async def get_policy(
    year: Year, region_code: RegionCode, session: SessionDep, _: CurrentPrincipal
) -> EffectivePolicyOut:
    """The effective policy: per field, the most specific row (city → province → national)."""
    p = await effective_policy(session, year, region_code)
    return EffectivePolicyOut(
        year=p.year,
        region_code=p.region_code,
        chain=list(p.chain),
        national_floor=p.national_floor,
        encouraged_ratio=p.encouraged_ratio,
        soft_floor=p.soft_floor,
        filing_deadline=p.filing_deadline,
        non_settlement_cutoff=p.non_settlement_cutoff,
        sources=p.sources,
    )


# ---------------------------------------------------------------------------------------------
# filings of the caller's own unit


async def _my_filing(session: SessionDep, principal: Principal, year: int) -> Filing:
    filing = await repo.get_filing(session, principal.require_unit_id(), year)
    if filing is None:
        raise NotFound(f"本单位尚未填写{year}年度预留份额", code="filing_not_found")
    return filing


@filings_router.put("/{year}/mine")
async def save_draft(
    year: Year, body: FilingDraftIn, session: SessionDep, principal: UnitPrincipal
) -> FilingOut:
    """Create or replace the draft (only while draft or returned)."""
    filing = await service.save_draft(session, principal, year, body)
    return await presenter.present_filing(session, filing, masked=False)


@filings_router.get("/{year}/mine")
async def get_mine(year: Year, session: SessionDep, principal: UnitPrincipal) -> FilingOut:
    """The filing with statuses, computed amounts, last year's and currently filed figures."""
    filing = await _my_filing(session, principal, year)
    return await presenter.present_filing(session, filing, masked=False)


@filings_router.post("/{year}/mine/submit", response_model=FilingOut)
async def submit(
    year: Year,
    body: SubmitIn,
    request: Request,
    session: SessionDep,
    principal: UnitPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> FilingOut | JSONResponse:
    """Submit (locks the filing). `Idempotency-Key` makes a retry return the first answer."""
    replay = await idempotency.claim(
        session,
        principal,
        idempotency_key,
        method="POST",
        path=request.url.path,
        request_hash=idempotency.request_hash(body.model_dump(mode="json")),
    )
    if replay is not None:
        return JSONResponse(replay.response_body, status_code=replay.response_status)
    filing = await service.submit(session, principal, year, body)
    out = await presenter.present_filing(session, filing, masked=False)
    await idempotency.complete(
        session, principal, idempotency_key, 200, out.model_dump(mode="json")
    )
    return out


@filings_router.get("/{year}/mine/history")
async def my_history(
    year: Year, session: SessionDep, principal: UnitPrincipal
) -> list[FilingEventOut]:
    """Every transition, oldest first: who, when, what changed, why."""
    filing = await _my_filing(session, principal, year)
    return [
        presenter.event_out(e, masked=False) for e in await repo.list_events(session, filing.id)
    ]


@filings_router.get("/{year}/mine/versions")
async def my_versions(
    year: Year, session: SessionDep, principal: UnitPrincipal
) -> list[FilingVersionOut]:
    """Every submitted version (immutable snapshots), oldest first."""
    filing = await _my_filing(session, principal, year)
    versions = await repo.list_versions(session, filing.id)
    return [presenter.version_out(v, masked=False) for v in versions]


# ---------------------------------------------------------------------------------------------
# filings by id (superiors, finance departments, ops)


async def _visible_filing(session: SessionDep, principal: Principal, filing_id: int) -> Filing:
    filing = await repo.get_filing_by_id(session, filing_id)
    if filing is None:
        raise NotFound("填报不存在或无权访问", code="filing_not_found")
    try:
        await ensure_unit_in_scope(session, principal, filing.unit_id)
    except NotFound as exc:
        raise NotFound("填报不存在或无权访问", code="filing_not_found") from exc
    return filing


@filings_router.get("/{filing_id}")
async def get_filing(
    filing_id: FilingId, session: SessionDep, principal: ReaderPrincipal
) -> FilingOut:
    """A filing in the caller's scope (its own unit, a descendant, or its finance region)."""
    filing = await _visible_filing(session, principal, filing_id)
    own = org_service.sees_own(principal, filing.unit_id)
    return await presenter.present_filing(session, filing, masked=not own)


@filings_router.get("/{filing_id}/history")
async def filing_history(
    filing_id: FilingId, session: SessionDep, principal: ReaderPrincipal
) -> list[FilingEventOut]:
    filing = await _visible_filing(session, principal, filing_id)
    own = org_service.sees_own(principal, filing.unit_id)
    events = await repo.list_events(session, filing.id)
    return [presenter.event_out(e, masked=not own) for e in events]


@filings_router.post("/{filing_id}/return")
async def return_filing(
    filing_id: FilingId, body: ReturnIn, session: SessionDep, principal: UnitPrincipal
) -> FilingOut:
    """退回 by the superior unit, with a reason (optionally only the canteen or union part)."""
    filing = await service.filing_for_superior(session, principal, filing_id)
    await service.return_filing(session, principal, filing, body.reason, tuple(body.parts))
    return await presenter.present_filing(session, filing, masked=True)


@filings_router.post("/{filing_id}/confirm")
async def confirm_filing(
    filing_id: FilingId, body: ConfirmIn, session: SessionDep, principal: UnitPrincipal
) -> FilingOut:
    """确认 by the superior unit."""
    filing = await service.filing_for_superior(session, principal, filing_id)
    await service.confirm_filing(session, principal, filing, body.note)
    return await presenter.present_filing(session, filing, masked=True)


@filings_router.post("/{year}/units/{unit_id}/reopen", status_code=201)
async def reopen(
    year: Year, unit_id: UnitId, body: ReopenIn, session: SessionDep, principal: AdminPrincipal
) -> ReopenOut:
    """补报: a finance department (for a unit of its scope) or ops reopens filing after the
    deadline, until `open_until` (inclusive)."""
    unit = await org_service.visible_unit(session, principal, unit_id)
    if unit.kind != UnitKind.BUDGET_UNIT:
        raise ValidationFailed.at(
            ["path", "unit_id"], "只能为预算单位开通补报", code="not_a_budget_unit"
        )
    r = await service.reopen(session, principal, unit, year, body.open_until, body.reason)
    return ReopenOut(
        id=r.id,
        year=r.year,
        unit_id=r.unit_id,
        open_until=r.open_until,
        granted_by=r.granted_by,
        reason=r.reason,
    )
