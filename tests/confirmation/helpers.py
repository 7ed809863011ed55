"""Setup shared by the confirmation tests: units filing through the filing service's API."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import AuditLog, Filing, OrgUnit, SmsOutbox
from shared.pii import decrypt_mobile
from tests.conftest import auth
from tests.filing.helpers import own_body, save_and_submit


def body_with_mobile(mobile: str, total: str = "1000000", ratio: str = "30") -> dict[str, Any]:
    body = own_body(total, ratio)
    body["contact"] = {"name": "李四", "mobile": mobile, "landline": ""}
    body["union_contact"] = None
    return body


async def file(
    filing_client: httpx.AsyncClient, unit: OrgUnit, mobile: str, total: str = "1000000"
) -> int:
    """The unit saves and submits its 2024 filing; returns the filing id."""
    response = await save_and_submit(filing_client, unit, body_with_mobile(mobile, total))
    return int(response.json()["id"])


async def decide(
    client: httpx.AsyncClient,
    superior: OrgUnit,
    filing_id: int,
    decision: str,
    reason: str | None = None,
    parts: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"note": None} if decision == "confirm" else {"reason": reason}
    if parts is not None:
        body["parts"] = parts
    return await client.post(
        f"/api/v1/confirmations/2024/filings/{filing_id}/{decision}",
        json=body,
        headers={**auth("unit", superior.id), **(headers or {})},
    )


def plain_mobile(row: SmsOutbox) -> str:
    """The number an outbox row sends to (stored encrypted; `mobile` holds the masked form)."""
    assert row.mobile_ciphertext is not None and row.mobile_key_id is not None
    return decrypt_mobile(row.mobile_ciphertext, row.mobile_key_id)


async def outbox(session: AsyncSession) -> dict[str, SmsOutbox]:
    rows = (await session.execute(select(SmsOutbox).order_by(SmsOutbox.id))).scalars()
    out = {r.event_key: r for r in rows}
    await session.commit()  # ends the read (the next one sees newer commits), keeps objects
    return out


async def statuses(session: AsyncSession, *filing_ids: int) -> list[str]:
    rows = await session.execute(
        select(Filing.id, Filing.status)
        .where(Filing.id.in_(filing_ids))
        .execution_options(populate_existing=True)
    )
    found = {i: s.value for i, s in rows}
    await session.commit()  # ends the read (the next one sees newer commits), keeps objects
    return [found[i] for i in filing_ids]


async def audit_actions(session: AsyncSession, entity_type: str, entity_id: int) -> list[str]:
    rows = await session.execute(
        select(AuditLog.action)
        .where(AuditLog.entity_type == entity_type, AuditLog.entity_id == str(entity_id))
        .order_by(AuditLog.id)
    )
    out = list(rows.scalars())
    await session.commit()  # ends the read (the next one sees newer commits), keeps objects
    return out
