"""Confirmation (预留份额确认): the superior's list, its decisions, and how a filing is shown.

The decisions themselves are the filing service's domain functions (`filing_for_superior`,
`confirm_filing`, `return_filing`): one rule set for both services' endpoints. They lock the
filing (`FOR UPDATE NOWAIT`: a second decider gets 409 at once), write the event, the audit entry
and the SMS outbox row in the caller's transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.confirmation import repository as repo
from services.confirmation.schemas import (
    BatchResultOut,
    ChangeOut,
    DecisionOut,
    FigureSetOut,
    FilingDetailOut,
    PendingItemOut,
    UnionFiguresOut,
)
from services.filing import presenter as filing_presenter
from services.filing import repository as filing_repo
from services.filing import service as filing_service
from services.filing.schemas import FlagOut
from shared.auth import Principal, Role, unit_in_scope
from shared.errors import DomainError, NotFound
from shared.models import Filing, FilingStatus, UnitKind
from shared.money import round_cents
from shared.pagination import Page, encode_cursor

HUNDRED = Decimal(100)


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _figures_from_row(row: RowMapping) -> FigureSetOut:
    return FigureSetOut(
        canteen_type=row["canteen_type"],
        canteen_total=row["canteen_total"],
        canteen_ratio=row["canteen_ratio"],
        reserved_amount=row["reserved_amount"],
        remark=row["remark"],
        union=UnionFiguresOut(
            has_need=row["union_has_need"],
            total=row["union_total"],
            ratio=row["union_ratio"],
            expected_amount=row["union_expected_amount"],
        ),
    )


def figures_from_snapshot(snapshot: dict[str, Any] | None) -> FigureSetOut | None:
    """Figures of a submitted version's snapshot (the filing service's `FilingVersion`)."""
    if snapshot is None:
        return None
    return FigureSetOut(
        canteen_type=snapshot.get("canteen_type"),
        canteen_total=_dec(snapshot.get("canteen_total")),
        canteen_ratio=_dec(snapshot.get("canteen_ratio")),
        reserved_amount=_dec(snapshot.get("reserved_amount")),
        remark=snapshot.get("remark"),
        union=UnionFiguresOut(
            has_need=snapshot.get("union_has_need"),
            total=_dec(snapshot.get("union_total")),
            ratio=_dec(snapshot.get("union_ratio")),
            expected_amount=_dec(snapshot.get("union_expected_amount")),
        ),
    )


def change_pct(current: Decimal | None, previous: Decimal | None) -> Decimal | None:
    """(this − last) / last × 100, half-up to two decimals; None without last or when last is 0."""
    if current is None or previous is None or previous == 0:
        return None
    return round_cents((current - previous) / previous * HUNDRED)


def change_points(current: Decimal | None, previous: Decimal | None) -> Decimal | None:
    if current is None or previous is None:
        return None
    return round_cents(current - previous)


def _change(current: FigureSetOut, previous: FigureSetOut | None) -> ChangeOut:
    if previous is None:
        return ChangeOut(
            canteen_total_pct=None, canteen_ratio_points=None, reserved_amount_pct=None
        )
    return ChangeOut(
        canteen_total_pct=change_pct(current.canteen_total, previous.canteen_total),
        canteen_ratio_points=change_points(current.canteen_ratio, previous.canteen_ratio),
        reserved_amount_pct=change_pct(current.reserved_amount, previous.reserved_amount),
    )


def item_from_row(row: RowMapping) -> PendingItemOut:
    current = _figures_from_row(row)
    previous = figures_from_snapshot(row["previous_snapshot"])
    flags = list(row["flags"] or [])
    return PendingItemOut(
        filing_id=row["filing_id"],
        unit_id=row["unit_id"],
        unit_name=row["unit_name"],
        year=row["year"],
        status=row["status"],
        canteen_status=row["canteen_status"],
        union_status=row["union_status"],
        version=row["version"],
        submitted_at=row["submitted_at"],
        current=current,
        previous_year=previous,
        change=_change(current, previous),
        flags=flags,
        flag_details=[FlagOut(code=f, detail=filing_service.FLAG_TEXT.get(f, f)) for f in flags],
        justification=row["justification"],
    )


async def pending(
    session: AsyncSession,
    principal: Principal,
    year: int,
    *,
    flag: str | None,
    after_id: int | None,
    limit: int,
) -> Page[PendingItemOut]:
    """The superior's list: submitted filings of its descendants (a unit without descendants gets
    an empty page)."""
    rows = await repo.pending_page(
        session, principal.require_unit_id(), year, flag=flag, after_id=after_id, limit=limit + 1
    )
    items = [item_from_row(r) for r in rows[:limit]]
    return Page[PendingItemOut](
        items=items,
        next_cursor=encode_cursor(items[-1].filing_id) if len(rows) > limit else None,
    )


def _not_found() -> NotFound:
    return NotFound("填报不存在或无权访问", code="filing_not_found")


async def filing_detail(
    session: AsyncSession, principal: Principal, year: int, filing_id: int
) -> FilingDetailOut:
    """The pending item of one filing in the caller's scope, plus every submitted version."""
    row = await repo.filing_item(session, filing_id)
    if row is None or row["year"] != year:
        raise _not_found()
    if not await unit_in_scope(session, principal, row["unit_id"]):
        raise _not_found()
    versions = await filing_repo.list_versions(session, filing_id)
    own = principal.role == Role.UNIT and principal.unit_id == row["unit_id"]
    return FilingDetailOut(
        **item_from_row(row).model_dump(),
        versions=[filing_presenter.version_out(v, masked=not own) for v in versions],
    )


async def _superior_filing(
    session: AsyncSession, principal: Principal, year: int, filing_id: int
) -> Filing:
    """The locked filing, if `principal` is a superior of its unit and it is of `year`."""
    filing = await filing_service.filing_for_superior(session, principal, filing_id)
    if filing.year != year:
        raise _not_found()
    return filing


async def _own_filing_back_from_finance(
    session: AsyncSession, principal: Principal, year: int, filing_id: int
) -> Filing | None:
    """The supervising unit's own filing, locked, when its finance department returned the
    department summary: the department sends it back to itself to fix it (it has no superior in
    the department to do so). None in every other case (the superior's rules apply)."""
    found = await filing_repo.get_filing_by_id(session, filing_id)
    if (
        found is None
        or principal.role != Role.UNIT
        or found.unit_id != principal.unit_id
        or found.year != year
        or found.status != FilingStatus.FINANCE_RETURNED
    ):
        return None
    unit = await filing_repo.get_unit(session, found.unit_id)
    parent = (
        await filing_repo.get_unit(session, unit.parent_id) if unit and unit.parent_id else None
    )
    if parent is not None and parent.kind == UnitKind.BUDGET_UNIT:
        return None  # not the top of its department: its superior returns it
    return await filing_repo.lock_filing(session, filing_id)


def _decision_out(filing: Filing, sms_queued: bool) -> DecisionOut:
    return DecisionOut(
        filing_id=filing.id,
        unit_id=filing.unit_id,
        year=filing.year,
        status=filing.status.value,
        canteen_status=filing.canteen_status.value,
        union_status=filing.union_status.value,
        version=filing.version,
        sms_queued=sms_queued,
    )


async def confirm(
    session: AsyncSession, principal: Principal, year: int, filing_id: int, note: str | None
) -> DecisionOut:
    """确认 (with the filing service's rules) and the `filing_confirmed` SMS."""
    filing = await _superior_filing(session, principal, year, filing_id)
    await filing_service.confirm_filing(session, principal, filing, note)
    return _decision_out(filing, bool(filing.contact_mobile))


async def return_(
    session: AsyncSession,
    principal: Principal,
    year: int,
    filing_id: int,
    reason: str,
    parts: tuple[str, ...],
) -> DecisionOut:
    """退回 (with the filing service's rules) and the `filing_returned` SMS with the reason."""
    filing = await _own_filing_back_from_finance(
        session, principal, year, filing_id
    ) or await _superior_filing(session, principal, year, filing_id)
    await filing_service.return_filing(session, principal, filing, reason, parts)
    return _decision_out(filing, bool(filing.contact_mobile))


async def confirm_batch(
    session: AsyncSession,
    principal: Principal,
    year: int,
    filing_ids: list[int],
    note: str | None,
) -> list[BatchResultOut]:
    """Each filing on its own (a savepoint each): one that cannot be confirmed (not found, not
    awaiting confirmation, locked by another decider) does not undo the others."""
    results: list[BatchResultOut] = []
    seen: set[int] = set()
    for filing_id in filing_ids:
        if filing_id in seen:
            continue
        seen.add(filing_id)
        savepoint = await session.begin_nested()
        try:
            await confirm(session, principal, year, filing_id, note)
        except DomainError as exc:
            await savepoint.rollback()
            results.append(
                BatchResultOut(filing_id=filing_id, ok=False, code=exc.code, detail=exc.detail)
            )
            continue
        await savepoint.commit()
        results.append(BatchResultOut(filing_id=filing_id, ok=True))
    return results
