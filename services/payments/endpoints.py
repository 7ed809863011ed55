"""HTTP routes of the payments service (API.md "Payments"). Thin: auth, parse, call service."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from services.payments import service
from services.payments.importer import MatchingTrigger, import_statement
from services.payments.schemas import (
    BankTransactionOut,
    CancelIn,
    CompleteIn,
    OrderDetailOut,
    OrderIn,
    OrderOut,
    ResolveIn,
    ReviewCaseOut,
    StatementImportOut,
    StatementOut,
    SupplierIn,
    SupplierOut,
)
from services.payments.uploads import UPLOAD_OPENAPI, read_statement_upload
from shared import idempotency
from shared.auth import Principal, Role, require_roles
from shared.errors import ValidationFailed
from shared.http_deps import SessionDep
from shared.models.payments import ReviewReason, ReviewStatus, StatementFormat
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["payments"])

PathId = Annotated[int, Path(ge=1, le=2**63 - 1)]
OrderNo = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]

Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]
Platform = Annotated[Principal, Depends(require_roles(Role.PLATFORM))]
SupplierAdmin = Annotated[Principal, Depends(require_roles(Role.OPS, Role.PLATFORM))]
OrderReader = Annotated[Principal, Depends(require_roles(Role.PLATFORM, Role.OPS, Role.UNIT))]
Importer = Annotated[Principal, Depends(require_roles(Role.IMPORTER))]
StatementReader = Annotated[Principal, Depends(require_roles(Role.IMPORTER, Role.OPS))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


async def _replay(
    session: SessionDep, principal: Principal, key: str | None, request: Request, body: object
) -> JSONResponse | None:
    """The stored answer when `Idempotency-Key` was already used for this request, else None
    (and the key is claimed in this request's transaction)."""
    record = await idempotency.claim(
        session,
        principal,
        key,
        method=request.method,
        path=request.url.path,
        request_hash=idempotency.request_hash(body),
    )
    if record is None:
        return None
    return JSONResponse(record.response_body, status_code=record.response_status)


@router.post("/suppliers", status_code=201, response_model=SupplierOut)
async def create_supplier(
    body: SupplierIn,
    request: Request,
    session: SessionDep,
    principal: SupplierAdmin,
    idempotency_key: IdempotencyKey = None,
) -> SupplierOut | JSONResponse:
    """`Idempotency-Key` makes a retry return the first answer (not a 409 `account_no_taken`)."""
    body_json = body.model_dump(mode="json")
    if (
        replay := await _replay(session, principal, idempotency_key, request, body_json)
    ) is not None:
        return replay
    out = await service.create_supplier(session, principal, body)
    await idempotency.complete(
        session, principal, idempotency_key, 201, out.model_dump(mode="json")
    )
    return out


@router.get("/suppliers/{supplier_id}")
async def get_supplier(supplier_id: PathId, session: SessionDep, _: SupplierAdmin) -> SupplierOut:
    return await service.get_supplier(session, supplier_id)


@router.post(
    "/orders",
    status_code=201,
    responses={200: {"description": "the same order_no again: the existing order"}},
)
async def create_order(body: OrderIn, session: SessionDep, principal: Platform) -> JSONResponse:
    order, created = await service.create_order(session, principal, body)
    out = await service.order_out(session, order)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/orders/{order_no}")
async def get_order(
    order_no: OrderNo, session: SessionDep, principal: OrderReader
) -> OrderDetailOut:
    return await service.order_detail(session, principal, order_no)


@router.post("/orders/{order_no}/cancel")
async def cancel_order(
    order_no: OrderNo, session: SessionDep, principal: Platform, body: CancelIn | None = None
) -> OrderOut:
    order = await service.cancel_order(session, principal, order_no, body.reason if body else None)
    return await service.order_out(session, order)


@router.post("/orders/{order_no}/complete")
async def complete_order(
    order_no: OrderNo, session: SessionDep, principal: Platform, body: CompleteIn | None = None
) -> OrderOut:
    order = await service.complete_order(
        session, principal, order_no, body.completed_at if body else None
    )
    return await service.order_out(session, order)


@router.post("/statements", status_code=201, openapi_extra=UPLOAD_OPENAPI)
async def import_statement_file(request: Request, principal: Importer) -> StatementImportOut:
    """multipart `file`, optional `format` and `profile`. The body is read here, after the role
    check, capped at `IMPORT_MAX_UPLOAD_BYTES` (413) while it streams to a temporary file; then
    it goes through the importer (parsing in a thread); each batch commits on its own and is
    handed to the matcher after commit."""
    upload = await read_statement_upload(request, get_settings().import_max_upload_bytes)
    try:
        if upload.format is not None and upload.format not in {f.value for f in StatementFormat}:
            raise ValidationFailed.at(
                ["body", "format"],
                "格式只能是 csv、xlsx、xls、mt940 或 camt053",
                code="unknown_format",
            )
        trigger = MatchingTrigger()
        try:
            result = await import_statement(
                upload.file.file,
                filename=upload.file.filename or "statement",
                actor_sub=principal.sub,
                format=upload.format,
                profile=upload.profile,
                on_batch_committed=trigger,
            )
        finally:
            await asyncio.to_thread(trigger.flush)
    finally:
        await upload.close()
    return StatementImportOut(**asdict(result))


@router.get("/statements/{statement_id}")
async def get_statement(
    statement_id: PathId, session: SessionDep, _: StatementReader
) -> StatementOut:
    return await service.statement_view(session, statement_id)


@router.get("/bank-transactions/{tx_id}")
async def get_bank_transaction(tx_id: PathId, session: SessionDep, _: Ops) -> BankTransactionOut:
    return await service.bank_transaction_view(session, tx_id)


@router.get("/review-cases")
async def list_review_cases(
    session: SessionDep,
    _: Ops,
    reason: Annotated[ReviewReason | None, Query()] = None,
    status: Annotated[ReviewStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ReviewCaseOut]:
    items, last = await service.list_review_cases(
        session, reason=reason, status=status, after_id=decode_cursor(cursor), limit=limit
    )
    return Page(items=items, next_cursor=encode_cursor(last) if last is not None else None)


@router.post("/review-cases/{case_id}/resolve", response_model=ReviewCaseOut)
async def resolve_review_case(
    case_id: PathId,
    body: ResolveIn,
    request: Request,
    session: SessionDep,
    principal: Ops,
    idempotency_key: IdempotencyKey = None,
) -> ReviewCaseOut | JSONResponse:
    """`Idempotency-Key` makes a retry return the first answer (without it, a second resolution
    is a 409 `review_case_resolved`)."""
    body_json = body.model_dump(mode="json")
    if (
        replay := await _replay(session, principal, idempotency_key, request, body_json)
    ) is not None:
        return replay
    out = await service.resolve_review_case(session, principal, case_id, body)
    await idempotency.complete(
        session, principal, idempotency_key, 200, out.model_dump(mode="json")
    )
    return out
