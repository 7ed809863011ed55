"""Queueing an SMS: one outbox row written in the transaction of the event it announces.

This is the one entry point every service uses (confirmation, filing, payments, reminders). The
notify service owns what happens next (templates, sending, receipts); callers only say *which*
event, *which* template and *which* parameters.

- `event_key` identifies the event (`filing:{id}:confirmed:v{version}`,
  `filing:{id}:returned:v{version}`, `summary:{id}:returned:v{version}`, ...): a second call with
  the same key queues nothing (`ON CONFLICT DO NOTHING`), so a retried request or a repeated
  decision never sends twice.
- After the transaction commits, the row's id is handed to the notify Celery task
  `notify.send` (an `after_commit` hook on the session, run in a background thread: a request
  never waits for, nor fails because of, the broker); until then, and if the enqueue is lost
  (Redis down), the row waits in the outbox and the beat sweep (`notify.sweep`, every 30 s)
  sends it. A rolled-back transaction enqueues nothing.
- The text is rendered from the current version of the template (`sms_templates`, seeded from
  `DEFAULT_TEMPLATES`); the row keeps the version, the body and its SMS segment count.
- The number is stored encrypted (`shared.pii`), with a keyed hash and the masked form.
"""

from __future__ import annotations

import logging
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.masking import mask_mobile
from shared.models import SmsOutbox, SmsTemplate
from shared.pii import encrypt_mobile, mobile_hash, normalize_mobile

log = logging.getLogger(__name__)

SEND_TASK = "notify.send"
SETTLE_TASK = "notify.settle"
DEFAULT_SIGN_NAME = "832平台"
"""The SMS signature (签名) a provider prepends as 【832平台】 unless its own sign-name setting
says otherwise: templates never contain it, the segment count includes it."""
SEGMENT_CHARS = 70  # one SMS: 70 characters (the 【signature】 included)
PART_CHARS = 67  # a longer text goes out in parts of 67 characters, each billed

# Default Chinese texts of the templates (the notify service keeps versioned copies in the
# database; these are the first version). `${param}` placeholders.
DEFAULT_TEMPLATES: dict[str, str] = {
    "filing_confirmed": ("${unit_name}：您单位${year}年度预留份额填报已由上级预算单位确认。"),
    "filing_returned": (
        "${unit_name}：您单位${year}年度预留份额填报已被上级预算单位退回，"
        "原因：${reason}。请登录采购人系统修改后重新提交。"
    ),
    "summary_confirmed": ("${unit_name}：您部门${year}年度预留份额汇总已由财政部门审核确认。"),
    "summary_returned": (
        "${unit_name}：您部门${year}年度预留份额汇总已被财政部门退回，"
        "原因：${reason}。请修改后重新报送。"
    ),
    "payment_confirmed": "订单${order_no}的货款确认成功。",
    "payment_failed": "订单${order_no}的货款确认失败，原因：${reason}。",
    "payee_account": (
        "订单${order_no}应付${amount}元，收款户名${holder_name}，"
        "账号${account_no}，开户行${bank_name}，转账时请在用途/备注中填写付款识别码${payment_code}。"
    ),
    "filing_reminder": (
        "${unit_name}：${year}年度预留份额填报将于${deadline}截止，您单位尚未提交，请及时填报。"
    ),
}


def segment_count(text: str) -> int:
    """SMS parts billed for `text`: 1 up to 70 characters, else ceil(len / 67)."""
    length = len(text)
    if length <= SEGMENT_CHARS:
        return 1
    return math.ceil(length / PART_CHARS)


async def current_template(session: AsyncSession, name: str) -> SmsTemplate:
    """The latest version of a template; version 1 is seeded from `DEFAULT_TEMPLATES` on first
    use (idempotent under concurrency: `ON CONFLICT DO NOTHING`)."""
    stmt = (
        select(SmsTemplate)
        .where(SmsTemplate.name == name)
        .order_by(SmsTemplate.version.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        await session.execute(
            pg_insert(SmsTemplate)
            .values(
                name=name,
                version=1,
                body=DEFAULT_TEMPLATES[name],
                provider_codes={},
                created_by="system",
            )
            .on_conflict_do_nothing(index_elements=["name", "version"])
        )
        row = (await session.execute(stmt)).scalar_one()
    return row


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
    tpl = await current_template(session, template)
    body = render(tpl.body, params)
    number = normalize_mobile(mobile)
    ciphertext, key_id = encrypt_mobile(number)
    stmt = (
        pg_insert(SmsOutbox)
        .values(
            event_key=event_key,
            unit_id=unit_id,
            mobile=mask_mobile(number) or "",
            mobile_ciphertext=ciphertext,
            mobile_key_id=key_id,
            mobile_hash=mobile_hash(number),
            template=template,
            template_version=tpl.version,
            params=params,
            body=body,
            segments=segment_count(f"【{DEFAULT_SIGN_NAME}】{body}"),
        )
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(SmsOutbox.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is not None:
        enqueue_after_commit(session, new_id)
    return new_id


def after_commit_ids(session: AsyncSession) -> list[int]:
    """The outbox ids this session queued (to enqueue once its transaction has committed)."""
    return list(session.info.get("sms_outbox_ids", []))


# ------------------------------------------------------------------ enqueue after the commit

_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sms-enqueue")
_inflight: set[Future[None]] = set()
_inflight_lock = threading.Lock()


def enqueue_after_commit(
    session: AsyncSession, message_id: int, *, task: str = SEND_TASK, countdown: float = 0
) -> None:
    """Hand `message_id` to `task` once this session's transaction has committed (never before;
    nothing after a rollback). `sms_outbox_ids` keeps the plain sends (`after_commit_ids`)."""
    if task == SEND_TASK and not countdown:
        session.info.setdefault("sms_outbox_ids", []).append(message_id)
    else:
        session.info.setdefault("sms_enqueue_later", []).append((task, message_id, countdown))
    if not session.info.get("sms_hooked"):
        session.info["sms_hooked"] = True
        event.listen(session.sync_session, "after_commit", _on_commit)
        event.listen(session.sync_session, "after_rollback", _on_rollback)


def _take(sync_session: Session) -> list[tuple[str, int, float]]:
    """The jobs not handed over yet (`sms_outbox_ids` itself stays readable after the commit,
    for `after_commit_ids`)."""
    info = sync_session.info
    done: set[int] = info.setdefault("sms_enqueued_ids", set())
    ids = [i for i in info.get("sms_outbox_ids", []) if i not in done]
    done.update(ids)
    later = info.pop("sms_enqueue_later", [])
    return [(SEND_TASK, i, 0.0) for i in ids] + list(later)


def _on_commit(sync_session: Session) -> None:
    jobs = _take(sync_session)
    if not jobs:
        return
    try:
        future = _executor.submit(_publish, jobs)
    except RuntimeError:  # interpreter shutting down: the sweep sends them
        return
    with _inflight_lock:
        _inflight.add(future)
    future.add_done_callback(_forget)


def _on_rollback(sync_session: Session) -> None:
    """Rows of a rolled-back transaction do not exist: forget their ids."""
    info = sync_session.info
    done: set[int] = info.get("sms_enqueued_ids", set())
    info["sms_outbox_ids"] = [i for i in info.get("sms_outbox_ids", []) if i in done]
    info.pop("sms_enqueue_later", None)


def _forget(future: Future[None]) -> None:
    with _inflight_lock:
        _inflight.discard(future)


def _publish(jobs: list[tuple[str, int, float]]) -> None:
    """Runs in the enqueue thread. A broker outage is logged, never raised: the rows wait in the
    outbox and the beat sweep sends them."""
    from shared.celery_app import QUEUE_NOTIFY, celery_app

    for task, message_id, countdown in jobs:
        try:
            celery_app.send_task(
                task,
                args=(message_id,),
                queue=QUEUE_NOTIFY,
                countdown=countdown or None,
                retry=False,  # a broker outage must not hold the thread: the sweep is there
                ignore_result=True,  # no result-backend subscription (it would retry on Redis)
            )
        except Exception as exc:
            log.warning(
                "could not enqueue %s for SMS %s (%s); the sweep will pick it up",
                task,
                message_id,
                type(exc).__name__,
            )


def wait_for_enqueues(timeout: float = 30.0) -> None:
    """Block until the enqueues handed to the background thread are done (tests, shutdown)."""
    with _inflight_lock:
        pending = list(_inflight)
    if pending:
        wait_futures(pending, timeout=timeout)
