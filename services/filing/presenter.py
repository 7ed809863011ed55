"""Filings as the API shows them: the form, last year's and the currently filed figures, flags."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.filing import repository as repo
from services.filing.org_service import contacts_out
from services.filing.schemas import (
    FiguresOut,
    FilingEventOut,
    FilingOut,
    FilingPolicyOut,
    FilingVersionOut,
    FlagOut,
    UnionOut,
)
from services.filing.service import FLAG_TEXT, STATUS_LABELS
from shared.masking import mask_mobile
from shared.models import Filing, FilingEvent, FilingVersion
from shared.policy import PolicyMissing, effective_policy


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def figures(version: FilingVersion | None, year: int) -> FiguresOut | None:
    if version is None:
        return None
    s = version.snapshot
    return FiguresOut(
        year=year,
        version=version.version_no,
        canteen_type=str(s.get("canteen_type")),
        canteen_total=_dec(s.get("canteen_total")),
        canteen_ratio=_dec(s.get("canteen_ratio")),
        reserved_amount=_dec(s.get("reserved_amount")),
        union_has_need=s.get("union_has_need"),
        union_total=_dec(s.get("union_total")),
        union_ratio=_dec(s.get("union_ratio")),
        union_expected_amount=_dec(s.get("union_expected_amount")),
        submitted_at=version.submitted_at,
    )


async def present_filing(session: AsyncSession, filing: Filing, *, masked: bool) -> FilingOut:
    """The filing; contacts' mobiles masked unless shown to the filing unit itself."""
    units = await repo.get_units(
        session, [u for u in (filing.unit_id, filing.representative_unit_id) if u is not None]
    )
    rep = units.get(filing.representative_unit_id) if filing.representative_unit_id else None
    previous = await repo.latest_version_of(session, filing.unit_id, filing.year - 1)
    filed = await repo.latest_version(session, filing.id)
    policy = await _policy_for(session, filing, units[filing.unit_id].region_code)
    contact, union_contact = contacts_out(filing, masked=masked)
    return FilingOut(
        id=filing.id,
        unit_id=filing.unit_id,
        unit_name=units[filing.unit_id].name,
        year=filing.year,
        status=filing.status.value,
        status_label=STATUS_LABELS[filing.status],
        canteen_status=filing.canteen_status.value,
        canteen_status_label=STATUS_LABELS[filing.canteen_status],
        union_status=filing.union_status.value,
        union_status_label=STATUS_LABELS[filing.union_status],
        canteen_type=filing.canteen_type,
        shared_filled_by=filing.shared_filled_by,
        representative_unit_id=filing.representative_unit_id,
        representative_unit_name=rep.name if rep else None,
        shared_unit_ids=await repo.shared_unit_ids(session, filing.id),
        contractor_name=filing.contractor_name,
        canteen_total=filing.canteen_total,
        canteen_ratio=filing.canteen_ratio,
        reserved_amount=filing.reserved_amount,
        remark=filing.remark,
        union=UnionOut(
            has_need=filing.union_has_need,
            total=filing.union_total,
            ratio=filing.union_ratio,
            expected_amount=filing.union_expected_amount,
            remark=filing.union_remark,
        ),
        union_expected_amount=filing.union_expected_amount,
        contact=contact,
        union_contact=union_contact,
        justification=filing.justification,
        flags=list(filing.flags or []),
        flag_details=[FlagOut(code=f, detail=FLAG_TEXT.get(f, f)) for f in filing.flags or []],
        version=filing.version,
        submitted_at=filing.submitted_at,
        submitted_by=filing.submitted_by,
        previous_year=figures(previous, filing.year - 1),
        filed=figures(filed, filing.year),
        policy=policy,
    )


async def _policy_for(
    session: AsyncSession, filing: Filing, region_code: str
) -> FilingPolicyOut | None:
    try:
        p = await effective_policy(session, filing.year, region_code)
    except PolicyMissing:
        return None
    return FilingPolicyOut(
        national_floor=p.national_floor,
        encouraged_ratio=p.encouraged_ratio,
        soft_floor=p.soft_floor,
        filing_deadline=p.filing_deadline,
    )


def mask_changes(changes: dict[str, Any] | None) -> dict[str, Any] | None:
    if not changes:
        return changes
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if "mobile" in key and isinstance(value, list):
            out[key] = [mask_mobile(v) if isinstance(v, str) else v for v in value]
        elif "mobile" in key and isinstance(value, str):
            out[key] = mask_mobile(value)
        else:
            out[key] = value
    return out


def event_out(event: FilingEvent, *, masked: bool) -> FilingEventOut:
    return FilingEventOut(
        action=event.action,
        from_status=event.from_status,
        to_status=event.to_status,
        actor_sub=event.actor_sub,
        actor_role=event.actor_role,
        actor_unit_id=event.actor_unit_id,
        at=event.at,
        reason=event.reason,
        changes=mask_changes(event.changes) if masked else event.changes,
    )


def version_out(version: FilingVersion, *, masked: bool) -> FilingVersionOut:
    snapshot = dict(version.snapshot)
    if masked:
        for key in ("contact_mobile", "union_contact_mobile"):
            snapshot[key] = mask_mobile(snapshot.get(key))
    submitted_at: datetime = version.submitted_at
    return FilingVersionOut(
        version_no=version.version_no,
        submitted_by=version.submitted_by,
        submitted_at=submitted_at,
        snapshot=snapshot,
    )
