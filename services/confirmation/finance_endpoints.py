"""HTTP endpoints of the finance side: checks, finance filing lists, the aggregate and its
hand-overs up the finance tree, the platform's list, and the Excel exports (thin: auth, scope,
then `finance_service` / `exports`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from services.confirmation import exports
from services.confirmation import finance_repo as repo
from services.confirmation import finance_service as svc
from services.confirmation.finance_repo import UnitFilter
from services.confirmation.finance_schemas import (
    AggregateOut,
    CheckItem,
    CheckPage,
    FinanceFilingPage,
    LiveAggregateOut,
    NoteIn,
    ReasonIn,
)
from shared import idempotency
from shared.auth import Principal, Role, ensure_unit_in_scope, require_roles
from shared.errors import NotFound, ValidationFailed
from shared.http_deps import SessionDep
from shared.masking import mask_mobile
from shared.models import FilingStatus, UnitKind
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.policy import effective_policies
from shared.settings import get_settings

FinanceOrOps = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.OPS))]
PlatformOrOps = Annotated[Principal, Depends(require_roles(Role.PLATFORM, Role.OPS))]
ExportReader = Annotated[Principal, Depends(require_roles(Role.UNIT, Role.FINANCE, Role.OPS))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Year = Annotated[int, Path(ge=2000, le=2100, description="fiscal year, e.g. 2024")]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
FinanceDepartmentQuery = Annotated[
    int | None,
    Query(ge=1, le=2**63 - 1, description="a finance department of the caller's subtree"),
]
CheckKind = Literal[
    "not_filed",
    "below_national_floor",
    "below_soft_floor",
    "flagged",
    "not_confirmed",
    "no_canteen_remark",
    "shared_contact",
]
FlagCode = Literal[
    "below_soft_floor",
    "sharp_change_total",
    "sharp_change_ratio",
    "representative_not_filed",
    "union_zero_amounts",
    "shared_contact_mobile",
]

finance_router = APIRouter(prefix="/api/v1/finance", tags=["finance"])
platform_router = APIRouter(prefix="/api/v1/platform", tags=["platform"])
department_export_router = APIRouter(prefix="/api/v1/departments", tags=["exports"])


def _item(row: dict[str, Any], extra: dict[str, Any] | None = None) -> CheckItem:
    return CheckItem(
        unit_id=row["unit_id"],
        unit_code=row["unit_code"],
        unit_name=row["unit_name"],
        region_code=row["region_code"],
        finance_department_id=row["finance_department_id"],
        finance_department_name=row["finance_department_name"],
        filing_id=row["filing_id"],
        status=row["status"],
        canteen_status=row["canteen_status"],
        union_status=row["union_status"],
        canteen_type=row["canteen_type"],
        canteen_total=row["canteen_total"],
        canteen_ratio=row["canteen_ratio"],
        reserved_amount=row["reserved_amount"],
        union_total=row["union_total"],
        union_expected_amount=row["union_expected_amount"],
        remark=row["remark"],
        flags=list(row["flags"] or []),
        contact_name=row["contact_name"],
        contact_mobile=mask_mobile(row["contact_mobile"]),
        submitted_at=row["submitted_at"],
        **(extra or {}),
    )


# ---------------------------------------------------------------------------------------------
# checks and lists


@finance_router.get("/{year}/checks")
async def checks(
    year: Year,
    session: SessionDep,
    principal: FinanceOrOps,
    kind: CheckKind,
    flag: FlagCode | None = None,
    finance_department_id: FinanceDepartmentQuery = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> CheckPage:
    """异常填报 / 未填报: the active budget units of the caller's whole scope in the check `kind`,
    with the figures that put them there (`threshold`; for `not_filed` the deadline, `days_left`
    and `close_to_deadline`). `flagged` may be narrowed by `flag`. `total` counts every match."""
    fds, _ = await svc.scope_ids_or_all(session, principal, finance_department_id)
    # the national-floor check compares in SQL (every region's floor); the others need the
    # policy only for the figures of the page's units
    policies = (
        await svc.region_policies(session, year, fds) if kind == "below_national_floor" else {}
    )
    flt = svc.check_filter(kind, policies, flag)
    rows = await repo.list_units(
        session, year, fds, flt, after_id=decode_cursor(cursor), limit=limit
    )
    page = rows[:limit]
    if kind in ("not_filed", "below_soft_floor") and page:
        policies = await effective_policies(session, year, sorted({r["region_code"] for r in page}))
    today = svc.today()
    return CheckPage(
        kind=kind,
        total=await repo.count_units(session, year, fds, flt),
        items=[_item(r, svc.check_extras(kind, r, policies, today)) for r in page],
        next_cursor=encode_cursor(page[-1]["unit_id"]) if len(rows) > limit else None,
    )


@finance_router.get("/{year}/filings")
async def finance_filings(
    year: Year,
    session: SessionDep,
    principal: FinanceOrOps,
    status: FilingStatus | None = None,
    flag: FlagCode | None = None,
    department_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    finance_department_id: FinanceDepartmentQuery = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> FinanceFilingPage:
    """The filings of the caller's scope without knowing ids: by status, flag and department
    (a supervising unit: its whole subtree). A department outside the scope: 404."""
    fds, _ = await svc.scope_ids_or_all(session, principal, finance_department_id)
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if status is not None:
        conditions.append("f.status = :status")
        params["status"] = status.value
    if flag is not None:
        conditions.append("f.flags @> ARRAY[CAST(:flag AS varchar)]")
        params["flag"] = flag
    if department_id is not None:
        department = await repo.get_unit(session, department_id)
        if department is None or department.kind != UnitKind.BUDGET_UNIT:
            raise NotFound("单位不存在或无权访问", code="unit_not_found")
        await ensure_unit_in_scope(session, principal, department_id)
        conditions.append("u.path LIKE :dept_path")
        params["dept_path"] = department.path + "%"
    flt = UnitFilter(conditions, params, filing_required=True)
    rows = await repo.list_units(
        session, year, fds, flt, after_id=decode_cursor(cursor), limit=limit
    )
    page = rows[:limit]
    return FinanceFilingPage(
        total=await repo.count_units(session, year, fds, flt),
        items=[_item(r) for r in page],
        next_cursor=encode_cursor(page[-1]["unit_id"]) if len(rows) > limit else None,
    )


# ---------------------------------------------------------------------------------------------
# aggregate and hand-overs


@finance_router.get("/{year}/aggregate")
async def get_aggregate(
    year: Year,
    session: SessionDep,
    principal: FinanceOrOps,
    finance_department_id: FinanceDepartmentQuery = None,
) -> LiveAggregateOut:
    """The caller's region by department and by sub-region: live counts and sums, each
    department summary's status, each lower finance department's hand-over, what still blocks
    the hand-over (`missing`), and the history of the caller's own hand-overs."""
    scope = await svc.finance_scope(session, principal, finance_department_id)
    return await svc.live_aggregate(session, year, scope)


@finance_router.post("/{year}/aggregate/submit", status_code=201, response_model=AggregateOut)
async def submit_aggregate(
    year: Year,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.FINANCE))],
    idempotency_key: IdempotencyKey = None,
) -> AggregateOut | JSONResponse:
    """汇总上报: a city/county department hands its region to its parent finance department; the
    provincial department hands the province to the platform. 409 `aggregate_incomplete` with
    `missing` while a department summary is not confirmed or a lower hand-over not received.
    `Idempotency-Key` makes a retry return the first answer."""
    replay = await idempotency.claim(
        session,
        principal,
        idempotency_key,
        method="POST",
        path=request.url.path,
        request_hash=idempotency.request_hash({}),
    )
    if replay is not None:
        return JSONResponse(replay.response_body, status_code=replay.response_status)
    scope = await svc.finance_scope(session, principal, None)
    out = svc.aggregate_out(await svc.submit_aggregate(session, principal, year, scope))
    await idempotency.complete(
        session, principal, idempotency_key, 201, out.model_dump(mode="json")
    )
    return out


async def _decide(
    session: SessionDep,
    request: Request,
    principal: Principal,
    year: int,
    aggregate_id: int,
    action: str,
    reason: str | None,
    idempotency_key: str | None,
) -> AggregateOut | JSONResponse:
    replay = await idempotency.claim(
        session,
        principal,
        idempotency_key,
        method="POST",
        path=request.url.path,
        request_hash=idempotency.request_hash({"action": action, "reason": reason}),
    )
    if replay is not None:
        return JSONResponse(replay.response_body, status_code=replay.response_status)
    aggregate = await svc.aggregate_for_decider(session, principal, aggregate_id)
    if aggregate.year != year:
        raise NotFound("汇总不存在或无权访问", code="aggregate_not_found")
    await svc.decide_aggregate(session, principal, aggregate, action, reason)
    out = svc.aggregate_out(aggregate)
    await idempotency.complete(
        session, principal, idempotency_key, 200, out.model_dump(mode="json")
    )
    return out


@finance_router.get("/{year}/aggregates/{aggregate_id}")
async def read_aggregate(
    year: Year, aggregate_id: RowId, session: SessionDep, principal: FinanceOrOps
) -> AggregateOut:
    """One hand-over: for the department that handed it over, the one receiving it, and ops."""
    found = await repo.get_aggregate(session, aggregate_id)
    if (
        found is None
        or found.year != year
        or (
            principal.role == Role.FINANCE
            and principal.unit_id
            not in (found.finance_department_id, found.parent_finance_department_id)
        )
    ):
        raise NotFound("汇总不存在或无权访问", code="aggregate_not_found")
    return svc.aggregate_out(found)


@finance_router.post("/{year}/aggregates/{aggregate_id}/confirm", response_model=AggregateOut)
async def confirm_aggregate(
    year: Year,
    aggregate_id: RowId,
    body: NoteIn,
    request: Request,
    session: SessionDep,
    principal: FinanceOrOps,
    idempotency_key: IdempotencyKey = None,
) -> AggregateOut | JSONResponse:
    """The level above confirms a hand-over (the platform's: ops). `Idempotency-Key` honoured."""
    return await _decide(
        session, request, principal, year, aggregate_id, "confirm", body.note, idempotency_key
    )


@finance_router.post("/{year}/aggregates/{aggregate_id}/return", response_model=AggregateOut)
async def return_aggregate(
    year: Year,
    aggregate_id: RowId,
    body: ReasonIn,
    request: Request,
    session: SessionDep,
    principal: FinanceOrOps,
    idempotency_key: IdempotencyKey = None,
) -> AggregateOut | JSONResponse:
    """The level above returns a hand-over with a reason; the lower department resubmits.
    `Idempotency-Key` honoured."""
    return await _decide(
        session, request, principal, year, aggregate_id, "return", body.reason, idempotency_key
    )


@platform_router.get("/aggregates/{year}")
async def platform_aggregates(
    year: Year,
    session: SessionDep,
    principal: PlatformOrOps,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[AggregateOut]:
    """Provincial hand-overs to the platform (every version, oldest first)."""
    rows = await repo.platform_aggregates(session, year, decode_cursor(cursor), limit)
    page = rows[:limit]
    return Page[AggregateOut](
        items=[svc.aggregate_out(a) for a in page],
        next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


# ---------------------------------------------------------------------------------------------
# Excel


def _file(book: exports.XlsxBook, filename: str) -> FileResponse:
    return FileResponse(
        book.path,
        media_type=exports.XLSX_MEDIA_TYPE,
        filename=filename,
        background=BackgroundTask(book.discard),
    )


@finance_router.get("/{year}/export.xlsx", response_class=FileResponse)
async def export_finance(
    year: Year,
    session: SessionDep,
    principal: FinanceOrOps,
    finance_department_id: FinanceDepartmentQuery = None,
) -> FileResponse:
    """The region's workbook: 汇总 (by department), 明细 (every unit), 未填报, 低于比例 (below the
    soft floor at submit, or below the national floor now), 异常 (any flag, or a `none` canteen
    whose remark is not 无食堂)."""
    fds, scope_name = await svc.scope_ids_or_all(session, principal, finance_department_id)
    policies = await svc.region_policies(session, year, fds)
    names = await repo.unit_names(session, fds)
    roots = {r["id"]: r["name"] for r in await repo.department_roots(session, fds)}

    def stream(flt: UnitFilter) -> AsyncIterator[list[dict[str, Any]]]:
        return svc.with_departments(repo.stream_units(session, year, fds, flt), roots)

    book = exports.XlsxBook(ZoneInfo(get_settings().timezone))
    try:
        departments = await repo.sums_by_department(session, year, fds)
        for d in departments:
            d["finance_department_name"] = names.get(d["finance_department_id"], "")
        await exports.write_sheet(book, "汇总", exports.SUMMARY_COLUMNS, departments)
        everything = UnitFilter([], {})
        await exports.write_sheet(book, "明细", exports.UNIT_COLUMNS, stream(everything))
        not_filed = svc.check_filter("not_filed", policies)
        await exports.write_sheet(
            book,
            "未填报",
            exports.NOT_FILED_COLUMNS,
            stream(not_filed),
        )
        national = svc.check_filter("below_national_floor", policies)
        below = UnitFilter(
            [
                "f.version > 0",
                "(f.flags @> ARRAY['below_soft_floor']::varchar[] OR "
                + national.conditions[1]
                + ")",
            ],
            national.params,
            filing_required=True,
        )
        await exports.write_sheet(book, "低于比例", exports.UNIT_COLUMNS, stream(below))
        anomalies = UnitFilter(
            [
                "f.version > 0",
                "(cardinality(f.flags) > 0 OR "
                "(f.canteen_type = 'none' AND coalesce(f.remark, '') <> :no_canteen))",
            ],
            {"no_canteen": svc.NO_CANTEEN_REMARK},
            filing_required=True,
        )
        await exports.write_sheet(book, "异常", exports.UNIT_COLUMNS, stream(anomalies))
        await _close(book)
    except BaseException:
        book.discard()
        raise
    return _file(book, f"{year}-finance-{scope_name}.xlsx")


async def _close(book: exports.XlsxBook) -> None:
    import asyncio

    await asyncio.to_thread(book.close)


@department_export_router.get("/{unit_id}/summary/{year}/export.xlsx", response_class=FileResponse)
async def export_department(
    unit_id: RowId, year: Year, session: SessionDep, principal: ExportReader
) -> FileResponse:
    """A department's workbook (the supervising unit and every unit under it): 汇总 (one row of
    counts and sums with the summary's status) and 明细 (every unit). For the department itself
    (and its superiors), its finance department's region, and ops; 404 outside scope."""
    department = await repo.get_unit(session, unit_id)
    if department is None or department.kind != UnitKind.BUDGET_UNIT:
        raise NotFound("单位不存在或无权访问", code="unit_not_found")
    await ensure_unit_in_scope(session, principal, unit_id)
    if department.path == "":
        raise ValidationFailed("单位数据不完整", code="unit_without_path")  # pragma: no cover
    names = await repo.unit_names(session, [department.finance_department_id or 0])
    totals = await repo.sums_of_subtree(session, year, department.path)
    totals.update(
        department_name=department.name,
        finance_department_name=names.get(department.finance_department_id or 0, ""),
        summary_status=await repo.latest_summary_status(session, year, unit_id) or "not_submitted",
    )
    book = exports.XlsxBook(ZoneInfo(get_settings().timezone))
    try:
        await exports.write_sheet(book, "汇总", exports.SUMMARY_COLUMNS, [totals])
        subtree = UnitFilter(["u.path LIKE :dept_path"], {"dept_path": department.path + "%"})
        await exports.write_sheet(
            book,
            "明细",
            exports.UNIT_COLUMNS,
            svc.with_departments(
                repo.stream_units(session, year, None, subtree), {unit_id: department.name}
            ),
        )
        await _close(book)
    except BaseException:
        book.discard()
        raise
    return _file(book, f"{year}-department-{department.code}.xlsx")
