"""HTTP endpoints of the confirmation service (thin: auth, scope, then the service layer).

Routers: `confirmations_router` (superior's list and decisions), `departments_router` (department
summary), `finance_router` (finance review of summaries). Checks, aggregates, units search and
exports live in their own modules and routers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.confirmation import service, summaries
from services.confirmation.schemas import (
    BatchConfirmIn,
    BatchOut,
    ConfirmIn,
    DecisionOut,
    FilingDetailOut,
    FlagCode,
    PendingItemOut,
    ReturnIn,
    ReviewConfirmIn,
    ReviewReturnIn,
    SummaryDetailOut,
    SummaryOut,
    SummarySnapshotOut,
)
from shared import idempotency
from shared.auth import Principal, Role, require_roles
from shared.http_deps import SessionDep
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor

FinancePrincipal = Annotated[Principal, Depends(require_roles(Role.FINANCE))]
FinanceOrOps = Annotated[Principal, Depends(require_roles(Role.FINANCE, Role.OPS))]
UnitPrincipal = Annotated[Principal, Depends(require_roles(Role.UNIT))]
ReaderPrincipal = Annotated[Principal, Depends(require_roles(Role.UNIT, Role.FINANCE, Role.OPS))]
FilingId = Annotated[int, Path(ge=1, le=2**63 - 1)]
UnitId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Year = Annotated[int, Path(ge=2000, le=2100, description="fiscal year, e.g. 2024")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]

M = TypeVar("M", bound=BaseModel)

SummaryId = Annotated[int, Path(ge=1, le=2**63 - 1)]

confirmations_router = APIRouter(prefix="/api/v1/confirmations", tags=["confirmations"])
summaries_router = APIRouter(prefix="/api/v1/departments", tags=["department summaries"])
reviews_router = APIRouter(prefix="/api/v1/finance", tags=["finance review"])


async def idempotent(
    session: SessionDep,
    principal: Principal,
    request: Request,
    key: str | None,
    body: BaseModel | None,
    status: int,
    action: Callable[[], Awaitable[M]],
) -> M | JSONResponse:
    """Run a write once per `Idempotency-Key`: a retry with the same key and body replays the
    first answer (and writes nothing, so no second SMS); another body is 409."""
    replay = await idempotency.claim(
        session,
        principal,
        key,
        method=request.method,
        path=request.url.path,
        request_hash=idempotency.request_hash(body.model_dump(mode="json") if body else {}),
    )
    if replay is not None:
        return JSONResponse(replay.response_body, status_code=replay.response_status)
    out = await action()
    await idempotency.complete(session, principal, key, status, out.model_dump(mode="json"))
    return out


# ---------------------------------------------------------------------------------------------
# superior's confirmation (预留份额信息确认)


@confirmations_router.get("/{year}/pending")
async def pending(
    year: Year,
    session: SessionDep,
    principal: UnitPrincipal,
    flag: Annotated[FlagCode | None, Query(description="only filings with this flag")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[PendingItemOut]:
    """Submitted filings of the caller's descendants awaiting its confirmation: this year against
    last year, the change and the flags (one query per page)."""
    return await service.pending(
        session, principal, year, flag=flag, after_id=decode_cursor(cursor), limit=limit
    )


@confirmations_router.get("/{year}/filings/{filing_id}")
async def filing_detail(
    year: Year, filing_id: FilingId, session: SessionDep, principal: ReaderPrincipal
) -> FilingDetailOut:
    """One filing as in the pending list, plus every submitted version."""
    return await service.filing_detail(session, principal, year, filing_id)


@confirmations_router.post("/{year}/filings/{filing_id}/confirm", response_model=DecisionOut)
async def confirm(
    year: Year,
    filing_id: FilingId,
    body: ConfirmIn,
    request: Request,
    session: SessionDep,
    principal: UnitPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> DecisionOut | JSONResponse:
    """确认 by a superior unit; queues the `filing_confirmed` SMS to the filing contact."""
    return await idempotent(
        session,
        principal,
        request,
        idempotency_key,
        body,
        200,
        lambda: service.confirm(session, principal, year, filing_id, body.note),
    )


@confirmations_router.post("/{year}/filings/{filing_id}/return", response_model=DecisionOut)
async def return_filing(
    year: Year,
    filing_id: FilingId,
    body: ReturnIn,
    request: Request,
    session: SessionDep,
    principal: UnitPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> DecisionOut | JSONResponse:
    """退回 by a superior unit with a reason, whole or one part (`parts`: canteen, union);
    queues the `filing_returned` SMS with the reason."""
    return await idempotent(
        session,
        principal,
        request,
        idempotency_key,
        body,
        200,
        lambda: service.return_(
            session, principal, year, filing_id, body.reason, tuple(body.parts)
        ),
    )


@confirmations_router.post("/{year}/confirm-batch", response_model=BatchOut)
async def confirm_batch(
    year: Year,
    body: BatchConfirmIn,
    request: Request,
    session: SessionDep,
    principal: UnitPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> BatchOut | JSONResponse:
    """Confirm many filings; each on its own (`results[].ok`, `code` when refused)."""

    async def run() -> BatchOut:
        results = await service.confirm_batch(session, principal, year, body.filing_ids, body.note)
        return BatchOut(results=results)

    return await idempotent(session, principal, request, idempotency_key, body, 200, run)


# ---------------------------------------------------------------------------------------------
# department summary (本部门及下属单位确认汇总)


@summaries_router.get("/{unit_id}/summary/{year}")
async def department_summary(
    unit_id: UnitId, year: Year, session: SessionDep, principal: ReaderPrincipal
) -> SummaryOut:
    """Completeness (who has not filed, who awaits confirmation, by name), totals, flagged count
    and the summary's status and history (the supervising unit, its finance department, ops)."""
    return await summaries.department_summary(session, principal, unit_id, year)


@summaries_router.post(
    "/{unit_id}/summary/{year}/submit", status_code=201, response_model=SummarySnapshotOut
)
async def submit_summary(
    unit_id: UnitId,
    year: Year,
    request: Request,
    session: SessionDep,
    principal: UnitPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> SummarySnapshotOut | JSONResponse:
    """报送: the immutable snapshot to the finance department of its level; 409
    `department_incomplete` with `blocking` while a unit has not filed or is not confirmed."""
    return await idempotent(
        session,
        principal,
        request,
        idempotency_key,
        None,
        201,
        lambda: summaries.submit_summary(session, principal, unit_id, year),
    )


# ---------------------------------------------------------------------------------------------
# finance review (财政部门审核确认)


@reviews_router.get("/{year}/summaries")
async def list_summaries(
    year: Year,
    session: SessionDep,
    principal: FinanceOrOps,
    status: Annotated[
        Literal["submitted", "confirmed", "returned"] | None, Query(description="filter")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SummarySnapshotOut]:
    """Summaries sent to the caller's finance department (ops: every one)."""
    items, last = await summaries.list_summaries(
        session, principal, year, status=status, after_id=decode_cursor(cursor), limit=limit
    )
    return Page[SummarySnapshotOut](
        items=items, next_cursor=encode_cursor(last) if last is not None else None
    )


@reviews_router.get("/{year}/summaries/{summary_id}")
async def summary_detail(
    year: Year, summary_id: SummaryId, session: SessionDep, principal: FinanceOrOps
) -> SummaryDetailOut:
    """A summary with its units as submitted, every version and the review history."""
    return await summaries.summary_detail(session, principal, year, summary_id)


@reviews_router.post("/{year}/summaries/{summary_id}/confirm", response_model=SummarySnapshotOut)
async def confirm_summary(
    year: Year,
    summary_id: SummaryId,
    body: ReviewConfirmIn,
    request: Request,
    session: SessionDep,
    principal: FinancePrincipal,
    idempotency_key: IdempotencyKey = None,
) -> SummarySnapshotOut | JSONResponse:
    """审核确认: filings → `finance_confirmed`; SMS `summary_confirmed` to the department."""
    return await idempotent(
        session,
        principal,
        request,
        idempotency_key,
        body,
        200,
        lambda: summaries.review(session, principal, year, summary_id, "confirm", body.note),
    )


@reviews_router.post("/{year}/summaries/{summary_id}/return", response_model=SummarySnapshotOut)
async def return_summary(
    year: Year,
    summary_id: SummaryId,
    body: ReviewReturnIn,
    request: Request,
    session: SessionDep,
    principal: FinancePrincipal,
    idempotency_key: IdempotencyKey = None,
) -> SummarySnapshotOut | JSONResponse:
    """退回 to the department with a reason: filings → `finance_returned`; SMS
    `summary_returned` with the reason to the department's contact."""
    return await idempotent(
        session,
        principal,
        request,
        idempotency_key,
        body,
        200,
        lambda: summaries.review(session, principal, year, summary_id, "return", body.reason),
    )
