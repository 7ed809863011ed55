"""Department summaries (本部门及下属单位确认汇总) and their finance review (财政部门审核确认).

- The supervising unit (the top budget unit of a department) sees its completeness: who has not
  filed, who awaits confirmation, by name; totals and the flagged count.
- It submits the summary to the finance department of its level only when complete (409
  `department_incomplete` with `blocking`). Merged or revoked units never block. The submitted
  summary is an immutable snapshot (`DepartmentSummaryVersion`: units and figures as submitted);
  its filings move to `department_submitted`.
- The finance department confirms it (filings → `finance_confirmed`) or returns it with a reason
  (filings → `finance_returned`). The department may then return single filings to their units
  (the superior's `return`), which fix and resubmit; the department resubmits the summary as
  version + 1 (history kept). Both decisions queue an SMS to the department's contact.

Locks, always in this order: the department's unit row, the summary row, the filings by id. A
superior's decision on a filing takes `FOR UPDATE NOWAIT` on that filing, so while a summary is
being submitted a return of one of its filings gets 409, and a return already in flight is
waited for and then seen: a summary never contains a returned filing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.confirmation import repository as repo
from services.confirmation.schemas import (
    BlockingUnitOut,
    SummaryDetailOut,
    SummaryEventOut,
    SummaryOut,
    SummarySnapshotOut,
    SummaryUnitOut,
    SummaryVersionOut,
    TotalsOut,
)
from services.filing.org_service import ensure_finance_department
from shared import audit, sms
from shared.auth import Principal, Role, unit_in_scope
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import (
    DepartmentSummary,
    DepartmentSummaryVersion,
    FilingStatus,
    FinanceReview,
    OrgUnit,
    SummaryStatus,
    UnitKind,
    UnitStatus,
)
from shared.money import format_amount

ZERO = Decimal("0.00")

CONFIRMED_OR_LATER = frozenset(
    {
        FilingStatus.CONFIRMED.value,
        FilingStatus.DEPARTMENT_SUBMITTED.value,
        FilingStatus.FINANCE_CONFIRMED.value,
        FilingStatus.FINANCE_RETURNED.value,
    }
)
"""A filing that needs no (new) confirmation: confirmed by its superior, or already part of a
summary (after a finance return, the filings the department did not send back stay as they are)."""
FILED = CONFIRMED_OR_LATER | {FilingStatus.SUBMITTED.value}
INTO_SUMMARY = (FilingStatus.CONFIRMED.value, FilingStatus.FINANCE_RETURNED.value)
OWN_INTO_SUMMARY = (*INTO_SUMMARY, FilingStatus.SUBMITTED.value)
"""The supervising unit's own filing: submitted is enough (no superior in its department)."""

_SUMMARY_LABELS = {
    SummaryStatus.SUBMITTED: "待财政部门审核",
    SummaryStatus.CONFIRMED: "财政部门已审核确认",
    SummaryStatus.RETURNED: "财政部门已退回",
}


# ---------------------------------------------------------------------------------------------
# completeness


@dataclass
class Completeness:
    units_total: int = 0
    filed: int = 0
    confirmed: int = 0
    blocking: list[BlockingUnitOut] = field(default_factory=list)
    included: list[RowMapping] = field(default_factory=list)
    canteen_total: Decimal = ZERO
    reserved_amount: Decimal = ZERO
    union_total: Decimal = ZERO
    union_expected_amount: Decimal = ZERO
    flagged_count: int = 0

    @property
    def ready(self) -> bool:
        return not self.blocking and bool(self.included)

    def totals(self) -> TotalsOut:
        return TotalsOut(
            canteen_total=self.canteen_total,
            reserved_amount=self.reserved_amount,
            union_total=self.union_total,
            union_expected_amount=self.union_expected_amount,
        )


def _blocking_reason(status: str | None) -> str:
    if status is None or status == FilingStatus.DRAFT.value:
        return "not_filed"
    if status == FilingStatus.RETURNED.value:
        return "returned"
    return "awaiting_confirmation"


def completeness(department: OrgUnit, rows: list[RowMapping]) -> Completeness:
    """Who counts, who blocks, and the sums of what a submit would send.

    Every active budget unit of the department counts and must have a confirmed filing (the
    supervising unit's own: submitted is enough, it has no superior in the department). A merged
    or revoked unit never blocks; its confirmed filing, if any, is still summed (its figures stay
    attributable to it)."""
    out = Completeness()
    for row in rows:
        status = row["status"]
        own = row["unit_id"] == department.id
        ok = status in CONFIRMED_OR_LATER or (own and status == FilingStatus.SUBMITTED.value)
        active = row["unit_status"] == UnitStatus.ACTIVE.value
        if not active and not ok:
            continue
        out.units_total += 1
        if status in FILED:
            out.filed += 1
        if not ok:
            out.blocking.append(
                BlockingUnitOut(
                    unit_id=row["unit_id"],
                    unit_name=row["unit_name"],
                    reason=_blocking_reason(status),
                    filing_id=row["filing_id"],
                    filing_status=status,
                )
            )
            continue
        out.confirmed += 1
        out.included.append(row)
        out.canteen_total += row["canteen_total"] or ZERO
        out.reserved_amount += row["reserved_amount"] or ZERO
        if row["union_has_need"]:
            out.union_total += row["union_total"] or ZERO
            out.union_expected_amount += row["union_expected_amount"] or ZERO
        if row["flags"]:
            out.flagged_count += 1
    return out


# ---------------------------------------------------------------------------------------------
# reading


def _not_found() -> NotFound:
    return NotFound("单位不存在或无权访问", code="unit_not_found")


async def _department(session: AsyncSession, principal: Principal, unit_id: int) -> OrgUnit:
    """The department's supervising unit, if the caller may see it (itself, its finance
    department's scope, ops); 422 when the unit is not the top budget unit of a department."""
    if not await unit_in_scope(session, principal, unit_id):
        raise _not_found()
    unit = await repo.get_unit(session, unit_id)
    if unit is None:
        raise _not_found()
    await _ensure_supervising(session, unit)
    return unit


async def _ensure_supervising(session: AsyncSession, unit: OrgUnit) -> None:
    parent = await repo.get_unit(session, unit.parent_id) if unit.parent_id else None
    if unit.kind != UnitKind.BUDGET_UNIT or (
        parent is not None and parent.kind == UnitKind.BUDGET_UNIT
    ):
        raise ValidationFailed.at(
            ["path", "unit_id"],
            "只有主管预算单位（部门的最上级预算单位）报送本部门汇总",
            code="not_a_supervising_unit",
        )


def _fmt(value: Any) -> str | None:
    return None if value is None else format_amount(value)


def _history(
    versions: list[DepartmentSummaryVersion], reviews: list[FinanceReview]
) -> list[SummaryEventOut]:
    events = [
        SummaryEventOut(
            action="submitted" if v.version_no == 1 else "resubmitted",
            version=v.version_no,
            actor_sub=v.submitted_by,
            actor_unit_id=v.snapshot.get("department_unit_id"),
            at=v.submitted_at,
            reason=None,
        )
        for v in versions
    ]
    events += [
        SummaryEventOut(
            action="confirmed" if r.action == "confirm" else "returned",
            version=r.summary_version,
            actor_sub=r.reviewer_sub,
            actor_unit_id=r.reviewer_unit_id,
            at=r.at,
            reason=r.reason,
        )
        for r in reviews
    ]
    return sorted(events, key=lambda e: (e.at, e.version))


async def department_summary(
    session: AsyncSession, principal: Principal, unit_id: int, year: int
) -> SummaryOut:
    """Completeness, totals and status of the department's summary of `year` (live figures)."""
    department = await _department(session, principal, unit_id)
    rows = await repo.department_rows(session, department, year)
    c = completeness(department, rows)
    summary = await repo.get_summary(session, department.id, year)
    history: list[SummaryEventOut] = []
    if summary is not None:
        history = _history(
            await repo.summary_versions(session, summary.id),
            await repo.summary_reviews(session, summary.id),
        )
    return SummaryOut(
        id=summary.id if summary else None,
        year=year,
        department_unit_id=department.id,
        department_name=department.name,
        finance_department_id=department.finance_department_id,
        status=summary.status.value if summary else "not_submitted",
        version=summary.version if summary else 0,
        ready=c.ready,
        units_total=c.units_total,
        filed=c.filed,
        confirmed=c.confirmed,
        blocking=c.blocking,
        totals=c.totals(),
        flagged_count=c.flagged_count,
        submitted_at=summary.submitted_at if summary else None,
        history=history,
    )


# ---------------------------------------------------------------------------------------------
# submitting


def _snapshot(
    department: OrgUnit, year: int, version: int, finance_id: int, c: Completeness
) -> dict[str, Any]:
    return {
        "year": year,
        "version": version,
        "department_unit_id": department.id,
        "department_name": department.name,
        "finance_department_id": finance_id,
        "units_count": len(c.included),
        "totals": {
            "canteen_total": format_amount(c.canteen_total),
            "reserved_amount": format_amount(c.reserved_amount),
            "union_total": format_amount(c.union_total),
            "union_expected_amount": format_amount(c.union_expected_amount),
        },
        "flagged_count": c.flagged_count,
        "units": [
            {
                "unit_id": r["unit_id"],
                "unit_name": r["unit_name"],
                "filing_id": r["filing_id"],
                "filing_version": r["version"],
                "canteen_type": r["canteen_type"],
                "canteen_total": _fmt(r["canteen_total"]),
                "canteen_ratio": _fmt(r["canteen_ratio"]),
                "reserved_amount": _fmt(r["reserved_amount"]),
                "union_has_need": r["union_has_need"],
                "union_total": _fmt(r["union_total"]),
                "union_ratio": _fmt(r["union_ratio"]),
                "union_expected_amount": _fmt(r["union_expected_amount"]),
                "flags": list(r["flags"] or []),
            }
            for r in c.included
        ],
    }


async def _move_filings(
    session: AsyncSession,
    principal: Principal,
    filing_ids: list[int],
    from_statuses: tuple[str, ...],
    to_status: FilingStatus,
    action: str,
    reason: str | None,
) -> None:
    """Move the summary's filings in one statement, with one event and one audit entry each;
    a filing that is no longer where it should be is a lost race: 409, nothing moved."""
    moved = await repo.move_filings(session, filing_ids, from_statuses, to_status.value)
    if len(moved) != len(set(filing_ids)):
        raise Conflict("部分填报的状态刚被其他操作改变，请刷新页面后重试", code="concurrent_update")
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    for filing_id, status, canteen_status, union_status in moved:
        changes = audit.diff(
            {"status": status, "canteen_status": canteen_status, "union_status": union_status},
            dict.fromkeys(("status", "canteen_status", "union_status"), to_status.value),
        )
        events.append(
            {
                "filing_id": filing_id,
                "action": action,
                "from_status": status,
                "to_status": to_status.value,
                "actor_sub": principal.sub,
                "actor_role": str(principal.role),
                "actor_unit_id": principal.unit_id,
                "reason": reason,
                "changes": changes,
                "at": now,
            }
        )
        audits.append(
            {
                "actor_sub": principal.sub,
                "actor_role": str(principal.role),
                "actor_unit_id": principal.unit_id,
                "action": f"filing.{action}",
                "entity_type": "filing",
                "entity_id": str(filing_id),
                "changes": changes,
                "reason": reason,
            }
        )
    await repo.add_filing_events(session, events)
    await repo.add_audit_rows(session, audits)


async def submit_summary(
    session: AsyncSession, principal: Principal, unit_id: int, year: int
) -> SummarySnapshotOut:
    """报送: the supervising unit sends its complete department to its finance department."""
    if principal.role != Role.UNIT or principal.unit_id != unit_id:
        if await unit_in_scope(session, principal, unit_id):
            raise ValidationFailed.at(
                ["path", "unit_id"],
                "只有主管预算单位本身可以报送本部门汇总",
                code="not_a_supervising_unit",
            )
        raise _not_found()
    department = await repo.lock_unit(session, unit_id)
    if department is None:
        raise _not_found()
    await _ensure_supervising(session, department)
    if department.status != UnitStatus.ACTIVE:
        raise Conflict("本单位已合并或撤销，不能报送汇总", code="unit_inactive")
    finance_id = department.finance_department_id
    if finance_id is None:
        raise Conflict(
            "本单位未设置同级财政部门，无法报送汇总，请联系财政部门", code="no_finance_department"
        )
    summary = await repo.get_summary(session, department.id, year)
    if summary is not None:
        summary = await repo.lock_summary(session, summary.id)
        if summary.status != SummaryStatus.RETURNED:
            raise Conflict(
                f"本部门{year}年度汇总已报送（{_SUMMARY_LABELS[summary.status]}），不能重复报送",
                code="summary_already_submitted",
            )

    await repo.lock_department_filings(session, department, year)
    c = completeness(department, await repo.department_rows(session, department, year))
    if not c.ready:
        blocking = c.blocking
        raise Conflict(
            f"本部门尚有{len(blocking)}个单位未填报或未确认，暂不能报送汇总"
            if blocking
            else "本部门没有可汇总的填报",
            code="department_incomplete",
            extra={"blocking": [b.model_dump(mode="json") for b in blocking]},
        )

    now = datetime.now(UTC)
    version = summary.version + 1 if summary else 1
    snapshot = _snapshot(department, year, version, finance_id, c)
    figures = {
        "units_count": len(c.included),
        "canteen_total": c.canteen_total,
        "reserved_amount": c.reserved_amount,
        "union_total": c.union_total,
        "union_expected_amount": c.union_expected_amount,
        "flagged_count": c.flagged_count,
        "snapshot": snapshot,
        "submitted_by": principal.sub,
        "submitted_at": now,
    }
    before = None
    if summary is None:
        summary = DepartmentSummary(
            year=year,
            department_unit_id=department.id,
            finance_department_id=finance_id,
            status=SummaryStatus.SUBMITTED,
            version=version,
            updated_at=now,
            **figures,
        )
        await repo.add(session, summary)
    else:
        before = {"status": summary.status.value, "version": summary.version}
        summary.status = SummaryStatus.SUBMITTED
        summary.version = version
        summary.finance_department_id = finance_id
        summary.updated_at = now
        for name, value in figures.items():
            setattr(summary, name, value)
        await session.flush()
    await repo.add(
        session,
        DepartmentSummaryVersion(
            summary_id=summary.id,
            version_no=version,
            units_count=len(c.included),
            canteen_total=c.canteen_total,
            reserved_amount=c.reserved_amount,
            union_total=c.union_total,
            union_expected_amount=c.union_expected_amount,
            flagged_count=c.flagged_count,
            snapshot=snapshot,
            submitted_by=principal.sub,
            submitted_at=now,
        ),
    )
    for own, allowed in ((True, OWN_INTO_SUMMARY), (False, INTO_SUMMARY)):
        await _move_filings(
            session,
            principal,
            [int(r["filing_id"]) for r in c.included if (r["unit_id"] == department.id) == own],
            allowed,
            FilingStatus.DEPARTMENT_SUBMITTED,
            "department_submitted",
            None,
        )
    await audit.record(
        session,
        principal,
        "summary.submitted" if version == 1 else "summary.resubmitted",
        "department_summary",
        summary.id,
        changes=audit.diff(
            before or {}, {"status": SummaryStatus.SUBMITTED.value, "version": version}
        )
        | {"units_count": [None, len(c.included)]},
    )
    return snapshot_out(summary, department.name)


def _units_out(snapshot: dict[str, Any]) -> list[SummaryUnitOut]:
    return [
        SummaryUnitOut(
            unit_id=u["unit_id"],
            unit_name=u["unit_name"],
            filing_id=u["filing_id"],
            filing_version=u["filing_version"],
            canteen_type=u.get("canteen_type"),
            canteen_total=_dec(u.get("canteen_total")),
            canteen_ratio=_dec(u.get("canteen_ratio")),
            reserved_amount=_dec(u.get("reserved_amount")),
            union_has_need=u.get("union_has_need"),
            union_total=_dec(u.get("union_total")),
            union_expected_amount=_dec(u.get("union_expected_amount")),
            flags=list(u.get("flags") or []),
        )
        for u in snapshot.get("units", [])
    ]


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def snapshot_out(
    summary: DepartmentSummary, department_name: str, *, with_units: bool = True
) -> SummarySnapshotOut:
    return SummarySnapshotOut(
        id=summary.id,
        year=summary.year,
        department_unit_id=summary.department_unit_id,
        department_name=department_name,
        finance_department_id=summary.finance_department_id,
        status=summary.status.value,
        version=summary.version,
        units_count=summary.units_count,
        totals=TotalsOut(
            canteen_total=summary.canteen_total,
            reserved_amount=summary.reserved_amount,
            union_total=summary.union_total,
            union_expected_amount=summary.union_expected_amount,
        ),
        flagged_count=summary.flagged_count,
        submitted_by=summary.submitted_by,
        submitted_at=summary.submitted_at,
        units=_units_out(summary.snapshot) if with_units else None,
    )


# ---------------------------------------------------------------------------------------------
# finance review (财政部门审核确认)


async def _finance_id(session: AsyncSession, principal: Principal) -> int | None:
    """The finance department whose summaries the caller reviews (None: ops, every one)."""
    if principal.role == Role.OPS:
        return None
    me = await ensure_finance_department(session, principal)
    return me.id


async def list_summaries(
    session: AsyncSession,
    principal: Principal,
    year: int,
    *,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[SummarySnapshotOut], int | None]:
    """Summaries sent to the caller's finance department (ops: all), oldest first."""
    finance_id = await _finance_id(session, principal)
    rows = await repo.list_summaries(
        session,
        year,
        finance_department_id=finance_id,
        status=status,
        after_id=after_id,
        limit=limit + 1,
    )
    items = [snapshot_out(s, name, with_units=False) for s, name in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit else None)


async def _reviewable(
    session: AsyncSession,
    principal: Principal,
    year: int,
    summary_id: int,
    *,
    lock: bool,
) -> DepartmentSummary:
    """A summary sent to the caller's finance department (404 for another one's: existence does
    not leak across regions)."""
    finance_id = await _finance_id(session, principal)
    summary = await repo.get_summary_by_id(session, summary_id)
    if (
        summary is None
        or summary.year != year
        or (finance_id is not None and summary.finance_department_id != finance_id)
    ):
        raise NotFound("汇总不存在或无权访问", code="summary_not_found")
    if lock:
        summary = await repo.lock_summary(session, summary.id, nowait=True)
    return summary


async def summary_detail(
    session: AsyncSession, principal: Principal, year: int, summary_id: int
) -> SummaryDetailOut:
    summary = await _reviewable(session, principal, year, summary_id, lock=False)
    department = await repo.get_unit(session, summary.department_unit_id)
    versions = await repo.summary_versions(session, summary.id)
    reviews = await repo.summary_reviews(session, summary.id)
    base = snapshot_out(summary, department.name if department else "")
    return SummaryDetailOut(
        **base.model_dump(),
        history=_history(versions, reviews),
        versions=[
            SummaryVersionOut(
                version=v.version_no,
                submitted_by=v.submitted_by,
                submitted_at=v.submitted_at,
                snapshot=v.snapshot,
            )
            for v in versions
        ],
    )


async def review(
    session: AsyncSession,
    principal: Principal,
    year: int,
    summary_id: int,
    decision: str,
    reason: str | None,
) -> SummarySnapshotOut:
    """确认 (`confirm`: filings → finance_confirmed) or 退回 (`return`: filings →
    finance_returned, with a reason) of a submitted summary, with the SMS to the department."""
    summary = await _reviewable(session, principal, year, summary_id, lock=True)
    if summary.status != SummaryStatus.SUBMITTED:
        raise Conflict(
            f"只能审核待审核的汇总（当前：{_SUMMARY_LABELS[summary.status]}）",
            code="summary_not_submitted",
        )
    confirm = decision == "confirm"
    new_status = SummaryStatus.CONFIRMED if confirm else SummaryStatus.RETURNED
    to_filing = FilingStatus.FINANCE_CONFIRMED if confirm else FilingStatus.FINANCE_RETURNED
    filing_ids = [int(u["filing_id"]) for u in summary.snapshot.get("units", [])]
    await repo.lock_department_filings_by_id(session, filing_ids)
    await _move_filings(
        session,
        principal,
        filing_ids,
        (FilingStatus.DEPARTMENT_SUBMITTED.value,),
        to_filing,
        to_filing.value,
        reason,
    )
    before = summary.status.value
    summary.status = new_status
    summary.updated_at = datetime.now(UTC)
    await session.flush()
    await repo.add(
        session,
        FinanceReview(
            summary_id=summary.id,
            action=decision,
            reviewer_sub=principal.sub,
            reviewer_unit_id=principal.require_unit_id(),
            reason=reason,
            summary_version=summary.version,
        ),
    )
    await audit.record(
        session,
        principal,
        "summary.confirmed" if confirm else "summary.returned",
        "department_summary",
        summary.id,
        changes={"status": [before, new_status.value], "version": summary.version},
        reason=reason,
    )
    department = await repo.get_unit(session, summary.department_unit_id)
    assert department is not None
    await _queue_summary_sms(
        session, summary, department, "confirmed" if confirm else "returned", reason
    )
    return snapshot_out(summary, department.name)


async def _queue_summary_sms(
    session: AsyncSession,
    summary: DepartmentSummary,
    department: OrgUnit,
    decision: str,
    reason: str | None,
) -> int | None:
    """`summary_confirmed` / `summary_returned` to the department's contact (the supervising
    unit's contact; else its own filing's contact), once per summary version and decision."""
    mobile = department.contact_mobile or await repo.filing_contact_mobile(
        session, department.id, summary.year
    )
    if not mobile:
        return None
    return await sms.queue_sms(
        session,
        event_key=f"summary:{summary.id}:{decision}:v{summary.version}",
        template=f"summary_{decision}",
        mobile=mobile,
        params={"unit_name": department.name, "year": summary.year, "reason": reason},
        unit_id=department.id,
    )
