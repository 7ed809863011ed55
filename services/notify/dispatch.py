"""Sending the outbox: claim, call the provider outside any transaction, record the outcome.

States (docs/notify.md): `pending → sending → sent → delivered | undelivered`, `failed`
(permanent error or retries exhausted), `unknown` (no answer: the message may have gone out).

- **Claim** (`repository.claim_for_send`): `pending` and due → `sending`, `attempts + 1`, lease
  until `next_attempt_at`; `FOR UPDATE SKIP LOCKED`, so two workers (or a worker and the sweep)
  never send one row at once. The provider call happens after that transaction committed.
- **Record**: the outcome is applied only if the row still carries this claim's attempt number
  (a fence: a worker that comes back after its lease ran out and the row was settled by someone
  else only writes its attempt row).
- **Unknown** rows, and `sending` rows whose lease ran out (worker killed), are never re-sent
  blindly: `settle_message` asks the provider first and re-sends only when it has no record.
- **Retries** by error class: `retry` backs off exponentially with jitter (a provider-side error
  also cools that provider down, and the next provider of the list is tried at once); `wait`
  (per-number flow control) waits the provider's window without using the retry budget;
  `permanent` fails at once with the provider's code.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import repository as repo
from services.notify.providers import (
    Outcome,
    SendRequest,
    SendResult,
    SmsProvider,
    StatusReport,
    build_providers,
)
from shared.db import unit_of_work
from shared.models import SmsOutbox, SmsStatus
from shared.pii import decrypt_mobile
from shared.settings import get_settings
from shared.sms import DEFAULT_SIGN_NAME, SEND_TASK, SETTLE_TASK, enqueue_after_commit

log = logging.getLogger(__name__)


@lru_cache
def configured_providers() -> tuple[SmsProvider, ...]:
    """The ordered failover list of `SMS_PROVIDERS`, built once per process."""
    return tuple(build_providers(get_settings()))


def _providers(providers: Sequence[SmsProvider] | None) -> Sequence[SmsProvider]:
    return providers if providers is not None else configured_providers()


def _now() -> datetime:
    return datetime.now(UTC)


def backoff_seconds(retry_no: int) -> float:
    """Exponential backoff with jitter: base × 2^(n-1), capped, times a random 0.5–1.0."""
    settings = get_settings()
    delay = min(
        settings.sms_retry_max_seconds, settings.sms_retry_base_seconds * 2 ** max(retry_no - 1, 0)
    )
    return delay * random.uniform(0.5, 1.0)


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def ordered_params(template_body: str, params: dict[str, Any]) -> dict[str, str]:
    """Parameters in the order of the template's placeholders (Tencent's are positional; JSONB
    does not keep key order), then any others."""
    out: dict[str, str] = {}
    for name in _PLACEHOLDER.findall(template_body):
        if name not in out:
            out[name] = str(params.get(name, ""))
    for key, value in params.items():
        out.setdefault(key, str(value))
    return out


def _sign_name(provider: str) -> str:
    return str(getattr(get_settings(), f"sms_{provider}_sign_name", "") or DEFAULT_SIGN_NAME)


async def choose_provider(
    session: AsyncSession, providers: Sequence[SmsProvider]
) -> tuple[SmsProvider, bool]:
    """The first provider not cooling down; when all are, the one whose cool-down ends first.
    Second value: whether another provider than this one is currently available."""
    cooled = await repo.cooldowns(session)
    available = [p for p in providers if p.name not in cooled]
    if available:
        return available[0], len(available) > 1
    return min(providers, key=lambda p: cooled[p.name]), False


# ----------------------------------------------------------------------------- send


@dataclass(frozen=True)
class _Prepared:
    attempt_no: int
    attempt_id: int
    provider: SmsProvider
    request: SendRequest


async def send_message(message_id: int, providers: Sequence[SmsProvider] | None = None) -> str:
    """Send one message if it can be claimed; returns what happened (for logs and tests)."""
    providers = _providers(providers)
    settings = get_settings()
    async with unit_of_work() as session:
        claim = await repo.claim_for_send(session, message_id, settings.sms_sending_lease_seconds)
        if claim is None:
            return "not_claimed"
        provider, _ = await choose_provider(session, providers)
        attempt = await repo.add_attempt(session, message_id, claim.attempts, "send", provider.name)
        if claim.mobile_ciphertext is None or claim.mobile_key_id is None:
            await _fail(session, message_id, claim.attempts, attempt.id, "mobile_purged")
            return "failed"
        template = await repo.template_version(session, claim.template, claim.template_version)
        codes = template.provider_codes if template is not None else {}
        prepared = _Prepared(
            attempt_no=claim.attempts,
            attempt_id=attempt.id,
            provider=provider,
            request=SendRequest(
                message_id=message_id,
                mobile=decrypt_mobile(claim.mobile_ciphertext, claim.mobile_key_id),
                template=claim.template,
                # no code set for this provider: the template name (a real provider refuses it
                # as an unknown template: a permanent failure that operations see)
                template_code=str(codes.get(provider.name) or claim.template),
                params=ordered_params(template.body if template else claim.body, claim.params),
                body=claim.body,
                sign_name=_sign_name(provider.name),
            ),
        )
    try:
        result = await prepared.provider.send(prepared.request)
    except Exception as exc:  # the request may have been written: treat as unknown
        log.warning(
            "SMS %s: provider %s raised %s; status unknown, will query",
            message_id,
            provider.name,
            type(exc).__name__,
        )
        result = SendResult(
            outcome=Outcome.UNKNOWN,
            provider=provider.name,
            error_code=type(exc).__name__,
            error_message="调用短信服务商时出现异常，发送结果未知，将先查询再决定是否重发",
        )
    async with unit_of_work() as session:
        return await _record_send(session, message_id, prepared, result, providers)


async def _fail(
    session: AsyncSession, message_id: int, attempt_no: int, attempt_id: int, code: str
) -> None:
    await repo.finish_attempt(
        session, attempt_id, "permanent", error_code=code, error_message="号码已按保留期限清除"
    )
    row = await repo.lock_message(session, message_id)
    if row is not None and row.attempts == attempt_no:
        row.status = SmsStatus.FAILED
        row.last_error_code = code
        row.last_error = "号码已按保留期限清除，无法发送"


async def _record_send(
    session: AsyncSession,
    message_id: int,
    prepared: _Prepared,
    result: SendResult,
    providers: Sequence[SmsProvider],
) -> str:
    settings = get_settings()
    provider = prepared.provider.name
    await repo.finish_attempt(
        session,
        prepared.attempt_id,
        str(result.outcome),
        error_code=result.error_code,
        error_message=result.error_message,
        provider_message_id=result.provider_message_id,
    )
    if result.outcome == Outcome.SENT:
        await repo.clear_cooldown(session, provider)
    elif result.provider_side:
        await repo.cool_down(
            session,
            provider,
            settings.sms_failover_cooldown_seconds,
            f"{result.outcome}: {result.error_code}",
        )
    row = await repo.lock_message(session, message_id)
    if row is None:
        return "gone"
    if row.attempts != prepared.attempt_no or row.status not in (
        SmsStatus.SENDING,
        SmsStatus.UNKNOWN,
        SmsStatus.PENDING,
    ):
        # Settled meanwhile (a receipt came first, or the lease ran out and a query or a newer
        # attempt took over): keep what is known, only fill the provider's id.
        if result.outcome == Outcome.SENT and row.attempts == prepared.attempt_no:
            row.provider = row.provider or provider
            row.provider_message_id = row.provider_message_id or result.provider_message_id
            row.sent_at = row.sent_at or _now()
        return "superseded"

    now = _now()
    row.provider = provider
    if result.outcome == Outcome.SENT:
        row.status = SmsStatus.SENT
        row.provider_message_id = result.provider_message_id
        row.sent_at = now
        row.last_error_code = None
        row.last_error = None
        await apply_stored_receipts(session, row)
        return "sent"
    row.last_error_code = result.error_code
    row.last_error = result.error_message or result.error_code
    if result.outcome == Outcome.PERMANENT:
        row.status = SmsStatus.FAILED
        return "failed"
    if result.outcome == Outcome.UNKNOWN:
        row.status = SmsStatus.UNKNOWN
        row.next_attempt_at = now + timedelta(seconds=settings.sms_query_delay_seconds)
        enqueue_after_commit(
            session, message_id, task=SETTLE_TASK, countdown=settings.sms_query_delay_seconds
        )
        return "unknown"
    if result.outcome == Outcome.WAIT:
        delay = (
            result.retry_after
            if result.retry_after is not None
            else settings.sms_wait_default_seconds
        )
        row.attempts_before_resend += 1  # a wait does not use the retry budget
    else:  # RETRY
        if row.attempts - row.attempts_before_resend >= settings.sms_max_attempts:
            row.status = SmsStatus.FAILED
            row.last_error = f"重试{settings.sms_max_attempts}次仍未成功：{row.last_error}"
            return "failed"
        others = [p for p in providers if p.name != provider]
        cooled = await repo.cooldowns(session)
        if result.provider_side and any(p.name not in cooled for p in others):
            delay = 0.0  # failover: the next provider at once
        else:
            retries = row.attempts - row.attempts_before_resend
            delay = max(backoff_seconds(retries), result.retry_after or 0.0)
    row.status = SmsStatus.PENDING
    row.next_attempt_at = now + timedelta(seconds=delay)
    enqueue_after_commit(session, message_id, task=SEND_TASK, countdown=delay)
    return str(result.outcome)


# ----------------------------------------------------------------------------- settle


async def settle_message(message_id: int, providers: Sequence[SmsProvider] | None = None) -> str:
    """Settle an `unknown` row (or a `sending` row whose worker vanished) by asking the provider
    that was called: found → sent/delivered/undelivered; no record → pending (re-send)."""
    providers = _providers(providers)
    settings = get_settings()
    async with unit_of_work() as session:
        row = await repo.claim_for_settle(session, message_id)
        if row is None:
            return "not_claimed"
        last = await repo.last_send_attempt(session, message_id)
        provider_name = (last.provider if last else None) or row.provider
        await repo.mark_lost_attempts(session, message_id)
        msg = await repo.lock_message(session, message_id)
        assert msg is not None
        msg.status = SmsStatus.UNKNOWN
        msg.next_attempt_at = _now() + timedelta(seconds=settings.sms_sending_lease_seconds)
        attempt_no = msg.attempts
        provider = next((p for p in providers if p.name == provider_name), None)
        if last is None or provider is None or msg.mobile_ciphertext is None:
            # never called a provider (or it is no longer configured): nothing can have gone
            # out through it that we could ask about → back to pending only when never called
            if last is None:
                msg.status = SmsStatus.PENDING
                msg.next_attempt_at = _now()
                enqueue_after_commit(session, message_id)
                return "requeued"
            msg.next_attempt_at = _now() + timedelta(seconds=settings.sms_retry_max_seconds)
            msg.last_error = f"无法向短信服务商 {provider_name} 查询发送结果（未配置或号码已清除）"
            return "unqueryable"
        query_attempt = await repo.add_attempt(
            session, message_id, attempt_no, "query", provider.name
        )
        mobile = decrypt_mobile(msg.mobile_ciphertext, msg.mobile_key_id or "")
        sent_at = last.started_at
        known_pmid = last.provider_message_id or msg.provider_message_id
    error: str | None = None
    reports: list[StatusReport] = []
    try:
        reports = await provider.query(
            message_id=message_id,
            mobile=mobile,
            provider_message_id=known_pmid,
            sent_at=sent_at,
        )
    except Exception as exc:
        error = type(exc).__name__
        log.warning("SMS %s: status query at %s failed (%s)", message_id, provider.name, error)
    async with unit_of_work() as session:
        mine = [
            r
            for r in reports
            if r.message_id == message_id
            or (known_pmid is not None and r.provider_message_id == known_pmid)
        ]
        outcome = "error" if error else ("found" if mine else "not_found")
        await repo.finish_attempt(
            session,
            query_attempt.id,
            outcome,
            error_code=error,
            provider_message_id=next((r.provider_message_id for r in mine), None),
        )
        msg = await repo.lock_message(session, message_id)
        if msg is None or msg.status != SmsStatus.UNKNOWN or msg.attempts != attempt_no:
            return "superseded"
        now = _now()
        if error:
            delay = max(settings.sms_query_delay_seconds, 1.0) * 2
            msg.next_attempt_at = now + timedelta(seconds=delay)
            enqueue_after_commit(session, message_id, task=SETTLE_TASK, countdown=delay)
            return "query_failed"
        if not mine:
            msg.status = SmsStatus.PENDING
            msg.next_attempt_at = now
            msg.last_error = "服务商无此短信记录，重新发送"
            enqueue_after_commit(session, message_id)
            return "resend"
        msg.status = SmsStatus.SENT
        msg.provider = provider.name
        msg.provider_message_id = msg.provider_message_id or next(
            (r.provider_message_id for r in mine if r.provider_message_id), None
        )
        msg.sent_at = msg.sent_at or sent_at
        msg.last_error_code = None
        msg.last_error = None
        for report in mine:
            apply_report(msg, report)
        await apply_stored_receipts(session, msg)
        return str(msg.status)


# ----------------------------------------------------------------------------- receipts


def apply_report(row: SmsOutbox, report: StatusReport) -> bool:
    """Apply one delivery report to its message (row locked by the caller). Idempotent and
    order-independent: `delivered` is final (a later failure report does not undo it); a report
    on a row still `sending`/`unknown`/`pending` proves the send went out. Returns whether the
    row changed."""
    if report.delivered is None:
        return False
    if row.status == SmsStatus.DELIVERED:
        return False
    if not report.delivered and row.status in (SmsStatus.UNDELIVERED, SmsStatus.FAILED):
        return False
    row.status = SmsStatus.DELIVERED if report.delivered else SmsStatus.UNDELIVERED
    row.provider = row.provider or report.provider
    row.provider_message_id = row.provider_message_id or report.provider_message_id
    row.sent_at = row.sent_at or report.at or _now()
    if report.delivered:
        row.delivered_at = report.at or _now()
        row.last_error_code = None
        row.last_error = None
    else:
        row.last_error_code = report.error_code
        row.last_error = f"运营商回执：未送达（{report.error_code or '未知原因'}）"
    return True


async def apply_stored_receipts(session: AsyncSession, row: SmsOutbox) -> None:
    """Receipts that arrived before the send call returned (or before the provider's id was
    known) are applied once the id is known."""
    for receipt in await repo.unapplied_receipts(
        session, row.id, row.provider, row.provider_message_id
    ):
        apply_report(
            row,
            StatusReport(
                provider=receipt.provider,
                provider_message_id=receipt.provider_message_id,
                message_id=receipt.message_id,
                delivered=receipt.delivered,
                error_code=receipt.error_code,
                at=receipt.reported_at,
            ),
        )
        receipt.applied_to = row.id
    await session.flush()


async def record_receipts(session: AsyncSession, reports: Sequence[StatusReport]) -> int:
    """Store every report and apply those whose message is known; returns how many changed a
    message. Messages are locked in id order (no deadlock between concurrent callbacks)."""
    resolved: list[tuple[int | None, StatusReport]] = []
    for report in reports:
        target: int | None = None
        if report.message_id is not None and await repo.message_exists(session, report.message_id):
            target = report.message_id
        elif report.provider_message_id:
            target = await repo.message_id_by_provider_id(
                session, report.provider, report.provider_message_id
            )
        resolved.append((target, report))
    changed = 0
    for target, report in sorted(resolved, key=lambda t: (t[0] is None, t[0] or 0)):
        receipt = await repo.add_receipt(
            session,
            provider=report.provider,
            provider_message_id=report.provider_message_id,
            message_id=report.message_id,
            delivered=report.delivered,
            error_code=report.error_code,
            reported_at=report.at,
        )
        if target is None:
            continue
        row = await repo.lock_message(session, target)
        if row is None:
            continue
        # an early receipt (the send call has not returned yet) is proof enough: apply it
        if apply_report(row, report):
            changed += 1
        receipt.applied_to = row.id
    await session.flush()
    return changed


# ----------------------------------------------------------------------------- sweep


async def sweep(
    providers: Sequence[SmsProvider] | None = None, *, time_budget: float = 25.0
) -> dict[str, int]:
    """The beat safety net (every 30 s): send due `pending` rows whose enqueue was lost or whose
    retry is due, settle `unknown` rows and `sending` rows whose lease ran out. Safe to run
    beside the workers: every row is claimed with SKIP LOCKED."""
    settings = get_settings()
    started = time.monotonic()
    counts: dict[str, int] = {}
    async with unit_of_work() as session:
        pending, settle = await repo.due_ids(session, settings.sms_sweep_batch_size)
    for message_id in settle:
        outcome = await settle_message(message_id, providers)
        counts[f"settle_{outcome}"] = counts.get(f"settle_{outcome}", 0) + 1
        if time.monotonic() - started > time_budget:
            return counts
    for message_id in pending:
        outcome = await send_message(message_id, providers)
        counts[outcome] = counts.get(outcome, 0) + 1
        if time.monotonic() - started > time_budget:
            break
    return counts
