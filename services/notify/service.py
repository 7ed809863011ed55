"""Operations on SMS messages and templates (API.md "Notifications"); every change audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import repository as repo
from services.notify.schemas import (
    AttemptOut,
    MessageDetailOut,
    MessageOut,
    StatsOut,
    TemplateIn,
    TemplateOut,
)
from shared import audit
from shared.auth import Principal
from shared.db import unit_of_work
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.masking import scrub_mobiles
from shared.models import FINAL_STATUSES, SmsOutbox, SmsStatus, SmsTemplate
from shared.settings import get_settings
from shared.sms import DEFAULT_TEMPLATES, current_template, enqueue_after_commit

RESENDABLE = (SmsStatus.FAILED, SmsStatus.UNDELIVERED)
PROVIDER_NAMES = ("aliyun", "tencent", "log")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MessageNotFound(NotFound):
    code = "sms_message_not_found"


class NotResendable(Conflict):
    code = "sms_not_resendable"


class TemplateNotFound(NotFound):
    code = "sms_template_not_found"


def message_out(row: SmsOutbox) -> MessageOut:
    return MessageOut(
        id=row.id,
        event_key=row.event_key,
        unit_id=row.unit_id,
        template=row.template,
        template_version=row.template_version,
        mobile=row.mobile,
        status=row.status,
        attempts=row.attempts,
        segments=row.segments,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        last_error_code=row.last_error_code,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        purged_at=row.purged_at,
    )


async def list_messages(
    session: AsyncSession,
    *,
    status: SmsStatus | None,
    template: str | None,
    unit_id: int | None,
    since: datetime | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[MessageOut], bool]:
    """A page, newest first, and whether more follow."""
    rows = await repo.list_messages(
        session,
        status=status,
        template=template,
        unit_id=unit_id,
        since=since,
        after_id=after_id,
        limit=limit + 1,
    )
    return [message_out(r) for r in rows[:limit]], len(rows) > limit


async def message_detail(session: AsyncSession, message_id: int) -> MessageDetailOut:
    row = await repo.get_message(session, message_id)
    if row is None:
        raise MessageNotFound("短信不存在")
    history = [
        AttemptOut(
            at=a.started_at,
            kind=a.kind,
            provider=a.provider,
            outcome=a.outcome,
            error_code=a.error_code,
            error_message=a.error_message,
            provider_message_id=a.provider_message_id,
            finished_at=a.finished_at,
        )
        for a in await repo.attempts_of(session, message_id)
    ]
    return MessageDetailOut(
        **message_out(row).model_dump(), body=scrub_mobiles(row.body), history=history
    )


async def resend(session: AsyncSession, principal: Principal, message_id: int) -> MessageOut:
    """A `failed` or `undelivered` message goes back to `pending` with a fresh retry budget."""
    row = await repo.lock_message(session, message_id)
    if row is None:
        raise MessageNotFound("短信不存在")
    if row.status not in RESENDABLE:
        raise NotResendable(
            f"只有发送失败或未送达的短信可以重发（当前状态：{row.status}）",
            extra={"status": str(row.status)},
        )
    if row.mobile_ciphertext is None:
        raise NotResendable("该短信的手机号已按保留期限清除，无法重发", code="sms_mobile_purged")
    old = row.status
    row.status = SmsStatus.PENDING
    row.next_attempt_at = datetime.now(UTC)
    row.attempts_before_resend = row.attempts
    await session.flush()
    await audit.record(
        session,
        principal,
        "sms.resend",
        "sms_message",
        row.id,
        changes={"status": [str(old), str(SmsStatus.PENDING)]},
    )
    enqueue_after_commit(session, row.id)
    return message_out(row)


async def stats(session: AsyncSession, since: datetime | None) -> StatsOut:
    return StatsOut(
        by_status=await repo.counts_by(session, SmsOutbox.status, since),
        by_template=await repo.counts_by(session, SmsOutbox.template, since),
        by_provider=await repo.counts_by(session, SmsOutbox.provider, since),
        segments_by_template=await repo.segments_by_template(session, since),
    )


def template_out(row: SmsTemplate) -> TemplateOut:
    return TemplateOut(
        name=row.name,
        version=row.version,
        body=row.body,
        provider_codes={str(k): str(v) for k, v in row.provider_codes.items()},
        placeholders=sorted(set(_PLACEHOLDER.findall(row.body))),
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def list_templates(session: AsyncSession) -> list[TemplateOut]:
    return [template_out(await current_template(session, name)) for name in DEFAULT_TEMPLATES]


async def put_template(
    session: AsyncSession, principal: Principal, name: str, body: TemplateIn
) -> TemplateOut:
    """A new version (messages keep the version they were rendered with). Placeholders must be
    parameters the template's events give; provider codes only for known providers."""
    if name not in DEFAULT_TEMPLATES:
        raise TemplateNotFound(f"短信模板 {name} 不存在")
    allowed = set(_PLACEHOLDER.findall(DEFAULT_TEMPLATES[name]))
    unknown = sorted(set(_PLACEHOLDER.findall(body.body)) - allowed)
    if unknown:
        raise ValidationFailed.at(
            ["body", "body"],
            f"模板参数 {', '.join(unknown)} 不存在；可用参数：{', '.join(sorted(allowed))}",
            code="template_unknown_param",
        )
    codes = body.provider_codes
    if codes is not None:
        bad = sorted(set(codes) - set(PROVIDER_NAMES))
        if bad:
            raise ValidationFailed.at(
                ["body", "provider_codes"],
                f"未知的短信服务商：{', '.join(bad)}",
                code="unknown_provider",
            )
    current = await current_template(session, name)
    new_codes = dict(current.provider_codes) if codes is None else dict(codes)
    if current.body == body.body and current.provider_codes == new_codes:
        return template_out(current)
    row = await repo.add_template_version(
        session, name, current.version + 1, body.body, new_codes, principal.sub
    )
    await audit.record(
        session,
        principal,
        "sms.template_updated",
        "sms_template",
        name,
        changes=audit.diff(
            {"version": current.version, "body": current.body, "codes": current.provider_codes},
            {"version": row.version, "body": row.body, "codes": new_codes},
        ),
    )
    return template_out(row)


async def purge_old_mobiles() -> int:
    """Drop the numbers of settled messages (sent, delivered, undelivered, failed) older than
    `SMS_RETENTION_DAYS`; the rows stay for statistics."""
    before = datetime.now(UTC) - timedelta(days=get_settings().sms_retention_days)
    async with unit_of_work() as session:
        purged = await repo.purge_mobiles(
            session, before, [str(SmsStatus.SENT), *(str(s) for s in FINAL_STATUSES)]
        )
        if purged:
            await audit.record(
                session,
                None,
                "sms.mobiles_purged",
                "sms_message",
                "*",
                changes={"count": [None, purged], "before": [None, before.isoformat()]},
            )
        return purged
