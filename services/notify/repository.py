"""Every query of the notify service. Functions flush; they never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import (
    SmsAttempt,
    SmsOutbox,
    SmsProviderCooldown,
    SmsReceipt,
    SmsStatus,
    SmsTemplate,
)

# ----------------------------------------------------------------------------- claiming


@dataclass(frozen=True)
class Claim:
    id: int
    attempts: int
    template: str
    template_version: int
    params: dict[str, Any]
    body: str
    mobile_ciphertext: bytes | None
    mobile_key_id: str | None


_CLAIM_SEND = text(
    """
    UPDATE sms_outbox o
       SET status = 'sending', attempts = o.attempts + 1,
           next_attempt_at = now() + make_interval(secs => :lease)
      FROM (SELECT id FROM sms_outbox
             WHERE id = :id AND status = 'pending' AND next_attempt_at <= now()
             FOR UPDATE SKIP LOCKED) c
     WHERE o.id = c.id
    RETURNING o.id, o.attempts, o.template, o.template_version, o.params, o.body,
              o.mobile_ciphertext, o.mobile_key_id
    """
)


async def claim_for_send(session: AsyncSession, message_id: int, lease: float) -> Claim | None:
    """`pending` and due → `sending` with a lease, attempts + 1; None when another worker holds
    it, it is not due, or it is in any other state (so a row is never sent twice at once)."""
    row = (await session.execute(_CLAIM_SEND, {"id": message_id, "lease": lease})).one_or_none()
    if row is None:
        return None
    return Claim(
        id=row.id,
        attempts=row.attempts,
        template=row.template,
        template_version=row.template_version,
        params=dict(row.params),
        body=row.body,
        mobile_ciphertext=row.mobile_ciphertext,
        mobile_key_id=row.mobile_key_id,
    )


_CLAIM_SETTLE = text(
    """
    SELECT id, status, attempts, mobile_ciphertext, mobile_key_id, provider, provider_message_id
      FROM sms_outbox
     WHERE id = :id AND status IN ('unknown', 'sending') AND next_attempt_at <= now()
     FOR UPDATE SKIP LOCKED
    """
)


async def claim_for_settle(session: AsyncSession, message_id: int) -> Any | None:
    """An `unknown` row due for its status query, or a `sending` row whose lease ran out (its
    worker vanished), locked; None otherwise."""
    return (await session.execute(_CLAIM_SETTLE, {"id": message_id})).one_or_none()


async def due_ids(session: AsyncSession, limit: int) -> tuple[list[int], list[int]]:
    """(pending rows due for a send, unknown/expired-sending rows due for a query), oldest due
    first."""
    pending = (
        (
            await session.execute(
                select(SmsOutbox.id)
                .where(
                    SmsOutbox.status == SmsStatus.PENDING, SmsOutbox.next_attempt_at <= func.now()
                )
                .order_by(SmsOutbox.next_attempt_at)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    settle = (
        (
            await session.execute(
                select(SmsOutbox.id)
                .where(
                    SmsOutbox.status.in_([SmsStatus.UNKNOWN, SmsStatus.SENDING]),
                    SmsOutbox.next_attempt_at <= func.now(),
                )
                .order_by(SmsOutbox.next_attempt_at)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    return list(pending), list(settle)


async def lock_message(session: AsyncSession, message_id: int) -> SmsOutbox | None:
    stmt = select(SmsOutbox).where(SmsOutbox.id == message_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_message(session: AsyncSession, message_id: int) -> SmsOutbox | None:
    return await session.get(SmsOutbox, message_id)


# ----------------------------------------------------------------------------- attempts


async def add_attempt(
    session: AsyncSession, message_id: int, attempt_no: int, kind: str, provider: str
) -> SmsAttempt:
    attempt = SmsAttempt(message_id=message_id, attempt_no=attempt_no, kind=kind, provider=provider)
    session.add(attempt)
    await session.flush()
    return attempt


async def finish_attempt(
    session: AsyncSession,
    attempt_id: int,
    outcome: str,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    provider_message_id: str | None = None,
) -> None:
    await session.execute(
        update(SmsAttempt)
        .where(SmsAttempt.id == attempt_id)
        .values(
            outcome=outcome,
            finished_at=func.now(),
            error_code=error_code,
            error_message=error_message,
            provider_message_id=provider_message_id,
        )
    )


async def last_send_attempt(session: AsyncSession, message_id: int) -> SmsAttempt | None:
    stmt = (
        select(SmsAttempt)
        .where(SmsAttempt.message_id == message_id, SmsAttempt.kind == "send")
        .order_by(SmsAttempt.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_lost_attempts(session: AsyncSession, message_id: int) -> None:
    """Send attempts still open when their lease ran out: the worker vanished mid-call."""
    await session.execute(
        update(SmsAttempt)
        .where(
            SmsAttempt.message_id == message_id,
            SmsAttempt.kind == "send",
            SmsAttempt.outcome.is_(None),
        )
        .values(outcome="lost", finished_at=func.now())
    )


async def attempts_of(session: AsyncSession, message_id: int) -> list[SmsAttempt]:
    stmt = select(SmsAttempt).where(SmsAttempt.message_id == message_id).order_by(SmsAttempt.id)
    return list((await session.execute(stmt)).scalars())


async def message_id_by_provider_id(
    session: AsyncSession, provider: str, provider_message_id: str
) -> int | None:
    stmt = (
        select(SmsAttempt.message_id)
        .where(
            SmsAttempt.provider == provider,
            SmsAttempt.provider_message_id == provider_message_id,
        )
        .limit(1)
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:
        return int(found)
    stmt2 = (
        select(SmsOutbox.id)
        .where(SmsOutbox.provider == provider, SmsOutbox.provider_message_id == provider_message_id)
        .limit(1)
    )
    found = (await session.execute(stmt2)).scalar_one_or_none()
    return int(found) if found is not None else None


async def message_exists(session: AsyncSession, message_id: int) -> bool:
    stmt = select(SmsOutbox.id).where(SmsOutbox.id == message_id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


# ----------------------------------------------------------------------------- receipts


async def add_receipt(session: AsyncSession, **values: Any) -> SmsReceipt:
    receipt = SmsReceipt(**values)
    session.add(receipt)
    await session.flush()
    return receipt


async def unapplied_receipts(
    session: AsyncSession, message_id: int, provider: str | None, provider_message_id: str | None
) -> list[SmsReceipt]:
    """Receipts stored before their message was known to have been sent (early receipts)."""
    cond = [SmsReceipt.message_id == message_id]
    if provider and provider_message_id:
        cond.append(
            and_(
                SmsReceipt.provider == provider,
                SmsReceipt.provider_message_id == provider_message_id,
            )
        )
    stmt = (
        select(SmsReceipt)
        .where(SmsReceipt.applied_to.is_(None), or_(*cond))
        .order_by(SmsReceipt.id)
    )
    return list((await session.execute(stmt)).scalars())


# ----------------------------------------------------------------------------- providers


async def cooldowns(session: AsyncSession) -> dict[str, datetime]:
    stmt = select(SmsProviderCooldown.provider, SmsProviderCooldown.cooled_until).where(
        SmsProviderCooldown.cooled_until > func.now()
    )
    return {p: until for p, until in (await session.execute(stmt)).all()}


async def cool_down(session: AsyncSession, provider: str, seconds: float, reason: str) -> None:
    await session.execute(
        text(
            """
            INSERT INTO sms_provider_cooldowns (provider, cooled_until, reason)
            VALUES (:p, now() + make_interval(secs => :s), :r)
            ON CONFLICT (provider) DO UPDATE
               SET cooled_until = EXCLUDED.cooled_until, reason = EXCLUDED.reason
            """
        ),
        {"p": provider, "s": seconds, "r": reason},
    )


async def clear_cooldown(session: AsyncSession, provider: str) -> None:
    await session.execute(
        text("DELETE FROM sms_provider_cooldowns WHERE provider = :p"), {"p": provider}
    )


# ----------------------------------------------------------------------------- templates


async def template_version(session: AsyncSession, name: str, version: int) -> SmsTemplate | None:
    stmt = select(SmsTemplate).where(SmsTemplate.name == name, SmsTemplate.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_template_version(
    session: AsyncSession,
    name: str,
    version: int,
    body: str,
    provider_codes: dict[str, str],
    created_by: str,
) -> SmsTemplate:
    row = SmsTemplate(
        name=name,
        version=version,
        body=body,
        provider_codes=provider_codes,
        created_by=created_by,
    )
    session.add(row)
    await session.flush()
    return row


# ----------------------------------------------------------------------------- operations


async def list_messages(
    session: AsyncSession,
    *,
    status: str | None,
    template: str | None,
    unit_id: int | None,
    since: datetime | None,
    after_id: int | None,
    limit: int,
) -> list[SmsOutbox]:
    """Newest first; the cursor is the last id of the previous page."""
    stmt = select(SmsOutbox)
    if status is not None:
        stmt = stmt.where(SmsOutbox.status == status)
    if template is not None:
        stmt = stmt.where(SmsOutbox.template == template)
    if unit_id is not None:
        stmt = stmt.where(SmsOutbox.unit_id == unit_id)
    if since is not None:
        stmt = stmt.where(SmsOutbox.created_at >= since)
    if after_id is not None:
        stmt = stmt.where(SmsOutbox.id < after_id)
    stmt = stmt.order_by(SmsOutbox.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def counts_by(session: AsyncSession, column: Any, since: datetime | None) -> dict[str, int]:
    stmt = select(column, func.count()).group_by(column)
    if since is not None:
        stmt = stmt.where(SmsOutbox.created_at >= since)
    return {str(k): int(n) for k, n in (await session.execute(stmt)).all() if k is not None}


async def segments_by_template(session: AsyncSession, since: datetime | None) -> dict[str, int]:
    stmt = select(SmsOutbox.template, func.sum(SmsOutbox.segments)).group_by(SmsOutbox.template)
    stmt = stmt.where(
        SmsOutbox.status.in_([SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.UNDELIVERED])
    )
    if since is not None:
        stmt = stmt.where(SmsOutbox.created_at >= since)
    return {str(k): int(n or 0) for k, n in (await session.execute(stmt)).all()}


async def purge_mobiles(session: AsyncSession, before: datetime, final: Sequence[str]) -> int:
    """Drop the number (cipher text, hash, masked form) of messages in a final state created
    before `before`; the rows stay for statistics."""
    result = await session.execute(
        update(SmsOutbox)
        .where(
            SmsOutbox.created_at < before,
            SmsOutbox.status.in_(list(final)),
            SmsOutbox.purged_at.is_(None),
        )
        .values(
            mobile="***********",
            mobile_ciphertext=None,
            mobile_key_id=None,
            mobile_hash=None,
            purged_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ----------------------------------------------------------------------------- reminders


async def reminder_candidate_regions(session: AsyncSession) -> list[str]:
    stmt = text(
        """
        SELECT DISTINCT region_code FROM org_units
         WHERE kind = 'budget_unit' AND status = 'active' AND contact_mobile IS NOT NULL
        """
    )
    return [str(r) for r in (await session.execute(stmt)).scalars()]


async def policy_years(session: AsyncSession, around: date) -> list[int]:
    stmt = text("SELECT DISTINCT year FROM policies WHERE year BETWEEN :a AND :b ORDER BY year")
    rows = await session.execute(stmt, {"a": around.year - 1, "b": around.year + 1})
    return [int(r) for r in rows.scalars()]


async def units_without_submitted_filing(
    session: AsyncSession, year: int, region_codes: Sequence[str]
) -> list[Any]:
    """Active budget units of these regions with a contact mobile and no filing of the year
    beyond `draft` (never submitted)."""
    stmt = text(
        """
        SELECT u.id, u.name, u.contact_mobile, u.region_code FROM org_units u
         WHERE u.kind = 'budget_unit' AND u.status = 'active' AND u.contact_mobile IS NOT NULL
           AND u.region_code = ANY(:regions)
           AND NOT EXISTS (SELECT 1 FROM filings f
                            WHERE f.unit_id = u.id AND f.year = :year AND f.status <> 'draft')
         ORDER BY u.id
        """
    )
    return list((await session.execute(stmt, {"year": year, "regions": list(region_codes)})).all())
