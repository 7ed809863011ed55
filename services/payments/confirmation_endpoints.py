"""HTTP routes of the self-service payment confirmation (API.md "Self-service payment
confirmation"), the buyer's order list and the payee-account SMS. Thin: auth, parse, call the
service (`services.payments.confirmations`)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import ValidationError

from services.payments import buyer_orders, confirmations, vouchers
from services.payments.confirmation_schemas import (
    ApproveIn,
    ConfirmationBrief,
    ConfirmationIn,
    ConfirmationOut,
    ConfirmationUpdateIn,
    PayeeAccountsOut,
    PayeeSmsIn,
    PayeeSmsOut,
    PaymentIn,
    RejectIn,
)
from services.payments.endpoints import OrderNo, PathId
from services.payments.schemas import OrderOut
from shared.auth import Principal, Role, require_roles
from shared.db import unit_of_work
from shared.errors import NotFound, ValidationFailed
from shared.http_deps import SessionDep
from shared.models import ConfirmationStatus, OrderStatus
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.text import ensure_storable

router = APIRouter(prefix="/api/v1", tags=["payment confirmation"])

Buyer = Annotated[Principal, Depends(require_roles(Role.UNIT))]
Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]
BuyerOrOps = Annotated[Principal, Depends(require_roles(Role.UNIT, Role.OPS))]
OrderLister = Annotated[Principal, Depends(require_roles(Role.UNIT, Role.OPS, Role.PLATFORM))]


@router.get("/orders")
async def list_orders(
    session: SessionDep,
    principal: OrderLister,
    status: Annotated[OrderStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[OrderOut]:
    """A buyer unit its own orders (a superior also its descendants'); operations and the
    platform all."""
    items, last = await buyer_orders.list_orders(
        session, principal, status=status, after_id=decode_cursor(cursor), limit=limit
    )
    return Page(items=items, next_cursor=encode_cursor(last) if last is not None else None)


@router.get("/orders/{order_no}/payee-accounts")
async def payee_accounts(
    order_no: OrderNo, session: SessionDep, principal: Buyer
) -> PayeeAccountsOut:
    return await confirmations.payee_accounts(session, principal, order_no)


@router.post("/orders/{order_no}/send-payee-sms", status_code=202)
async def send_payee_sms(
    order_no: OrderNo, body: PayeeSmsIn, session: SessionDep, principal: Buyer
) -> PayeeSmsOut:
    return await buyer_orders.send_payee_sms(session, principal, order_no, body.mobile)


@router.post("/orders/{order_no}/payment-confirmations", status_code=201)
async def create_confirmation(
    order_no: OrderNo, body: ConfirmationIn, session: SessionDep, principal: Buyer
) -> ConfirmationOut:
    return await confirmations.create_confirmation(session, principal, order_no, body)


@router.put("/payment-confirmations/{confirmation_id}")
async def resubmit_confirmation(
    confirmation_id: PathId, body: ConfirmationUpdateIn, session: SessionDep, principal: Buyer
) -> ConfirmationOut:
    return await confirmations.resubmit(session, principal, confirmation_id, body)


@router.get("/payment-confirmations")
async def list_confirmations(
    session: SessionDep,
    principal: BuyerOrOps,
    status: Annotated[ConfirmationStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ConfirmationBrief]:
    """Operations: every confirmation (the review queue is `?status=under_review`); a buyer
    unit: its own."""
    items, last = await confirmations.list_confirmations(
        session, principal, status=status, after_id=decode_cursor(cursor), limit=limit
    )
    return Page(items=items, next_cursor=encode_cursor(last) if last is not None else None)


@router.get("/payment-confirmations/{confirmation_id}")
async def get_confirmation(
    confirmation_id: PathId, session: SessionDep, principal: BuyerOrOps
) -> ConfirmationOut:
    return await confirmations.confirmation_view(session, principal, confirmation_id)


@router.get(
    "/payment-confirmations/{confirmation_id}/vouchers/{voucher_id}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/bmp": {}}}},
)
async def get_voucher(
    confirmation_id: PathId, voucher_id: PathId, session: SessionDep, principal: BuyerOrOps
) -> FileResponse:
    """The receipt image: operations and the buyer unit only (404 for anyone else)."""
    voucher = await confirmations.voucher_file(session, principal, confirmation_id, voucher_id)
    path = vouchers.path_of(voucher.storage_key)
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("凭证文件不存在", code="voucher_file_missing")
    return FileResponse(
        path,
        media_type=voucher.content_type,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


def _handoff_form(
    payer_name: str, payer_account_no: str, amount: str, paid_on: date, remark: str | None
) -> confirmations.HandoffForm:
    """The form fields checked by the rules of a JSON entry (422 with field paths)."""
    try:
        entry = PaymentIn(
            payer_name=payer_name,
            payer_account_no=payer_account_no,
            amount=amount,
            paid_on=paid_on,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ["body", *[str(p) for p in first["loc"]]]
        raise ValidationFailed.at(loc, str(first["msg"]).removeprefix("Value error, ")) from exc
    try:
        remark = ensure_storable(remark.strip()) if remark and remark.strip() else None
    except ValueError as exc:
        raise ValidationFailed.at(["body", "remark"], str(exc)) from exc
    return confirmations.HandoffForm(
        payer_name=entry.payer_name,
        payer_account_no=entry.payer_account_no,
        amount=entry.amount,
        paid_on=entry.paid_on,
        remark=remark,
    )


@router.post("/payment-confirmations/{confirmation_id}/handoff")
async def handoff(
    confirmation_id: PathId,
    principal: Buyer,
    payer_name: Annotated[str, Form(min_length=1, max_length=200)],
    amount: Annotated[str, Form(max_length=20)],
    paid_on: Annotated[date, Form()],
    files: Annotated[list[UploadFile], File(description="1–150 receipt images, ≤ 5 MiB each")],
    payer_account_no: Annotated[str, Form(max_length=60)] = "",
    remark: Annotated[str | None, Form(max_length=300)] = None,
) -> ConfirmationOut:
    """补填信息提交客服人工处理: the payment and its receipts; the confirmation goes to 审核中.

    The images are copied and checked off the event loop, stored before the rows commit, and
    the files this upload created are removed again if the transaction does not commit."""
    if not 1 <= len(files) <= vouchers.MAX_FILES:
        raise ValidationFailed.at(
            ["body", "files"],
            f"请上传 1 至 {vouchers.MAX_FILES} 张付款凭证图片（本次 {len(files)} 个文件）",
            code="too_many_files" if files else "files_required",
        )
    form = _handoff_form(payer_name, payer_account_no, amount, paid_on, remark)
    staged: list[vouchers.StagedImage] = []
    try:
        async with unit_of_work() as session:
            confirmation = await confirmations.handoff_target(session, principal, confirmation_id)
            staged = await asyncio.to_thread(vouchers.stage, [(f.filename, f.file) for f in files])
            await asyncio.to_thread(vouchers.commit_files, staged)
            await confirmations.record_handoff(session, principal, confirmation, form, staged)
    except BaseException:
        await asyncio.to_thread(vouchers.remove_created, staged)
        raise
    async with unit_of_work() as session:
        return await confirmations.confirmation_view(session, principal, confirmation_id)


@router.post("/payment-confirmations/{confirmation_id}/approve")
async def approve(
    confirmation_id: PathId, body: ApproveIn, session: SessionDep, principal: Ops
) -> ConfirmationOut:
    return await confirmations.approve(session, principal, confirmation_id, body)


@router.post("/payment-confirmations/{confirmation_id}/reject")
async def reject(
    confirmation_id: PathId, body: RejectIn, session: SessionDep, principal: Ops
) -> ConfirmationOut:
    return await confirmations.reject(session, principal, confirmation_id, body)
