"""Queueing an SMS: one outbox row written in the transaction of the event it announces.

This is the one entry point every service uses (confirmation, filing, payments, reminders). The
notify service owns what happens next (templates, sending, receipts); callers only say *which*
event, *which* template and *which* parameters.

- `event_key` identifies the event (`filing:{id}:confirmed:v{version}`,
  `filing:{id}:returned:v{version}`, `summary:{id}:returned:v{version}`, ...): a second call with
  the same key queues nothing (`ON CONFLICT DO NOTHING`), so a retried request or a repeated
  decision never sends twice.
- After the transaction commits, the row's id is handed to the notify Celery task (see
  `after_commit_ids`); until then, and if the enqueue is lost, the row waits in the outbox and the
  beat sweep sends it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import SmsOutbox

# Default Chinese texts of the templates (the notify service keeps versioned copies in the
# database; these are the first version). `${param}` placeholders.
DEFAULT_TEMPLATES: dict[str, str] = {
    "filing_confirmed": (
        "【832平台】${unit_name}：您单位${year}年度预留份额填报已由上级预算单位确认。"
    ),
    "filing_returned": (
        "【832平台】${unit_name}：您单位${year}年度预留份额填报已被上级预算单位退回，"
        "原因：${reason}。请登录采购人系统修改后重新提交。"
    ),
    "summary_confirmed": (
        "【832平台】${unit_name}：您部门${year}年度预留份额汇总已由财政部门审核确认。"
    ),
    "summary_returned": (
        "【832平台】${unit_name}：您部门${year}年度预留份额汇总已被财政部门退回，"
        "原因：${reason}。请修改后重新报送。"
    ),
    "payment_confirmed": "【832平台】订单${order_no}的货款确认成功。",
    "payment_failed": "【832平台】订单${order_no}的货款确认失败，原因：${reason}。",
    "payee_account": (
        "【832平台】订单${order_no}应付${amount}元，收款户名${holder_name}，"
        "账号${account_no}，开户行${bank_name}，转账时请在用途/备注中填写付款识别码${payment_code}。"
    ),
    "filing_reminder": (
        "【832平台】${unit_name}：${year}年度预留份额填报将于${deadline}截止，"
        "您单位尚未提交，请及时填报。"
    ),
}


def render(template_text: str, params: dict[str, Any]) -> str:
    """Replace `${name}` placeholders; a missing parameter renders as an empty string."""
    out = template_text
    for key, value in params.items():
        out = out.replace("${" + key + "}", "" if value is None else str(value))
    return out


async def queue_sms(
    session: AsyncSession,
    *,
    event_key: str,
    template: str,
    mobile: str,
    params: dict[str, Any],
    unit_id: int | None = None,
) -> int | None:
    """Write the outbox row for one event in the caller's transaction.

    Returns the new row's id, or None when this event already queued its message (idempotent).
    The id is also remembered on the session (`session.info["sms_outbox_ids"]`) so that the
    request/task infrastructure can enqueue the send after the commit.
    """
    if template not in DEFAULT_TEMPLATES:
        raise ValueError(f"unknown SMS template {template!r}")
    params = {k: ("" if v is None else str(v)) for k, v in params.items()}
    body = render(DEFAULT_TEMPLATES[template], params)
    stmt = (
        pg_insert(SmsOutbox)
        .values(
            event_key=event_key,
            unit_id=unit_id,
            mobile=mobile,
            template=template,
            params=params,
            body=body,
        )
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(SmsOutbox.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is not None:
        session.info.setdefault("sms_outbox_ids", []).append(new_id)
    return new_id


def after_commit_ids(session: AsyncSession) -> list[int]:
    """The outbox ids this session queued (to enqueue once its transaction has committed)."""
    return list(session.info.get("sms_outbox_ids", []))
