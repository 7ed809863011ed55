"""HTTP routes of the notify service (API.md "Notifications"). Thin: auth, parse, call service.

Operations endpoints take the `ops` role. The receipt callbacks are called by the providers,
which carry no JWT: they are authenticated by the secret `?token=` (`SMS_RECEIPT_TOKEN`).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from services.notify import dispatch, service
from services.notify.providers import StatusReport
from services.notify.providers.aliyun import parse_aliyun_receipts
from services.notify.providers.tencent import parse_tencent_receipts
from services.notify.schemas import (
    MessageDetailOut,
    MessageOut,
    StatsOut,
    TemplateIn,
    TemplateList,
    TemplateOut,
)
from shared.auth import Principal, Role, require_roles
from shared.errors import Unauthorized, ValidationFailed
from shared.http_deps import SessionDep
from shared.models import SmsStatus
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.settings import get_settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/sms", tags=["notify"])

Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]
PathId = Annotated[int, Path(ge=1, le=2**63 - 1)]
TemplateName = Annotated[str, Path(min_length=1, max_length=60, pattern=r"^[a-z_]+$")]


@router.get("/messages")
async def list_messages(
    session: SessionDep,
    _: Ops,
    status: SmsStatus | None = None,
    template: Annotated[str | None, Query(max_length=60)] = None,
    unit_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    since: datetime | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MessageOut]:
    items, more = await service.list_messages(
        session,
        status=status,
        template=template,
        unit_id=unit_id,
        since=since,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    next_cursor = encode_cursor(items[-1].id) if more and items else None
    return Page[MessageOut](items=items, next_cursor=next_cursor)


@router.get("/messages/{message_id}")
async def get_message(message_id: PathId, session: SessionDep, _: Ops) -> MessageDetailOut:
    return await service.message_detail(session, message_id)


@router.post("/messages/{message_id}/resend")
async def resend_message(message_id: PathId, session: SessionDep, principal: Ops) -> MessageOut:
    """Only `failed` or `undelivered` (else 409 `sms_not_resendable`); audited."""
    return await service.resend(session, principal, message_id)


@router.get("/stats")
async def stats(session: SessionDep, _: Ops, since: datetime | None = None) -> StatsOut:
    return await service.stats(session, since)


@router.get("/templates")
async def list_templates(session: SessionDep, _: Ops) -> TemplateList:
    return TemplateList(items=await service.list_templates(session))


@router.put("/templates/{name}")
async def put_template(
    name: TemplateName, body: TemplateIn, session: SessionDep, principal: Ops
) -> TemplateOut:
    return await service.put_template(session, principal, name, body)


RECEIPT_PARSERS: dict[str, Callable[[Any], list[StatusReport]]] = {
    "aliyun": parse_aliyun_receipts,
    "tencent": parse_tencent_receipts,
}
RECEIPT_ANSWERS: dict[str, dict[str, Any]] = {
    "aliyun": {"code": 0, "msg": "接收成功"},
    "tencent": {"result": 0, "errmsg": "OK"},
}


@router.post("/receipts/{provider}")
async def receive_receipts(
    provider: Literal["aliyun", "tencent"],
    request: Request,
    session: SessionDep,
    token: Annotated[str, Query(max_length=200)] = "",
) -> JSONResponse:
    """Delivery receipts pushed by a provider (a JSON array, several reports per request).
    Idempotent (a report applied twice changes nothing) and order-independent (a receipt that
    arrives before the send call returned is kept and applied when the send is recorded)."""
    expected = get_settings().sms_receipt_token.get_secret_value()
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("回执令牌无效", code="receipt_token_invalid")
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed.at(["body"], "回执不是合法的 JSON") from exc
    if not isinstance(payload, list):
        raise ValidationFailed.at(["body"], "回执应为 JSON 数组")
    try:
        reports = RECEIPT_PARSERS[provider](payload)
    except (ValueError, TypeError, KeyError) as exc:  # ReceiptFormatError is a ValueError
        raise ValidationFailed.at(["body"], "回执格式不正确") from exc
    changed = await dispatch.record_receipts(session, reports)
    log.info("%s receipts: %d reports, %d messages changed", provider, len(reports), changed)
    return JSONResponse(RECEIPT_ANSWERS[provider])
