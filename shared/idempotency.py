"""`Idempotency-Key` support for writes a client may retry.

Usage inside an endpoint (same transaction as the write):

    replay = await idempotency.claim(session, principal, key, request_hash=h, method=m, path=p)
    if replay is not None:
        return JSONResponse(replay.response_body, status_code=replay.response_status)
    ... do the write ...
    await idempotency.complete(session, principal, key, status, body)

The claim is an `INSERT ... ON CONFLICT DO NOTHING`: a concurrent request with the same key waits
on the first one's row until it commits, then replays its stored response.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import Conflict, ValidationFailed
from shared.models import IdempotencyRecord

KEY_TTL = timedelta(days=7)


def request_hash(payload: Any) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False).encode()
    ).hexdigest()


async def claim(
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    *,
    method: str,
    path: str,
    request_hash: str,
) -> IdempotencyRecord | None:
    """Claim `key`; returns the stored record to replay when the key was already used."""
    if key is None:
        return None
    if not 1 <= len(key) <= 200:
        raise ValidationFailed.at(
            ["header", "Idempotency-Key"], "Idempotency-Key 长度须为1到200个字符"
        )
    stmt = (
        insert(IdempotencyRecord)
        .values(
            actor_sub=principal.sub,
            key=key,
            method=method,
            path=path,
            request_hash=request_hash,
            response_status=0,
            response_body=None,
            expires_at=datetime.now(UTC) + KEY_TTL,
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    )
    if (await session.execute(stmt)).first() is not None:
        return None
    record = (
        await session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.actor_sub == principal.sub, IdempotencyRecord.key == key
            )
        )
    ).scalar_one()
    if record.request_hash != request_hash or record.path != path or record.method != method:
        raise Conflict("该 Idempotency-Key 已用于另一个不同的请求", code="idempotency_key_reused")
    return record


async def complete(
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    status: int,
    body: dict[str, Any] | None,
) -> None:
    if key is None:
        return
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.actor_sub == principal.sub, IdempotencyRecord.key == key)
        .values(response_status=status, response_body=body)
    )
