"""Finance side of confirmation (财政部门): scope, checks (异常填报 / 未填报), the live aggregate of
a region and the hand-overs up the finance tree (汇总上报).

Rules (docs/confirmation-aggregates.md):
- a finance department hands its region up once every department of its own level has a
  confirmed summary and every finance department directly under it has handed its region up to
  it (submitted or confirmed); otherwise 409 `aggregate_incomplete` listing what is missing;
- a city/county department hands up to its parent finance department, the provincial one (no
  parent finance department) to the platform;
- a hand-over is an immutable snapshot (one row per version); the level above confirms it or
  returns it with a reason, and the lower department then submits version + 1;
- handing up confirms the lower hand-overs still awaiting this department (they are part of the
  snapshot, so they can no longer be returned).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.confirmation import finance_repo as repo
from services.confirmation.finance_repo import FinanceDept, UnitFilter
from services.confirmation.finance_schemas import (
    AggregateOut,
    DepartmentRow,
    Figures,
    LiveAggregateOut,
    MissingItem,
    RegionRow,
)
from services.filing import clock
from shared import audit
from shared.auth import Principal, Role
from shared.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from shared.models import AggregateStatus, FinanceAggregate, OrgUnit, UnitKind, UnitStatus
from shared.money import format_amount
from shared.policy import EffectivePolicy, effective_policies
from shared.settings import get_settings

NO_CANTEEN_REMARK = "无食堂"


class AggregateIncomplete(Conflict):
    code = "aggregate_incomplete"
    title = "Aggregate incomplete"


# ---------------------------------------------------------------------------------------------
# scope


@dataclass(frozen=True)
class FinanceScope:
    """The finance department acted for and the finance departments of its subtree."""

    root: OrgUnit
    departments: list[FinanceDept]

    @property
    def ids(self) -> list[int]:
        return [d.id for d in self.departments]


async def finance_scope(
    session: AsyncSession, principal: Principal, finance_department_id: int | None
) -> FinanceScope:
    """A `finance` caller acts for its own department (or one under it, when named); `ops` for the
    department it names. 404 for a department outside the caller's subtree."""
    if principal.role == Role.FINANCE:
        me = await repo.get_unit(session, principal.require_unit_id())
        if me is None or me.kind != UnitKind.FINANCE_DEPARTMENT or me.status != UnitStatus.ACTIVE:
            raise Forbidden("该账号绑定的单位不是有效的财政部门", code="not_a_finance_department")
        root = me
        if finance_department_id is not None and finance_department_id != me.id:
            target = await repo.get_unit(session, finance_department_id)
            if (
                target is None
                or target.kind != UnitKind.FINANCE_DEPARTMENT
                or not target.path.startswith(me.path)
            ):
                raise NotFound("财政部门不存在或无权访问", code="finance_department_not_found")
            root = target
    else:
        if finance_department_id is None:
            raise ValidationFailed.at(
                ["query", "finance_department_id"],
                "运营人员须指定财政部门（finance_department_id）",
                code="finance_department_required",
            )
        target = await repo.get_unit(session, finance_department_id)
        if target is None or target.kind != UnitKind.FINANCE_DEPARTMENT:
            raise NotFound("财政部门不存在或无权访问", code="finance_department_not_found")
        root = target
    return FinanceScope(root, await repo.finance_departments_under(session, root))


async def scope_ids_or_all(
    session: AsyncSession, principal: Principal, finance_department_id: int | None
) -> tuple[list[int], str]:
    """Finance departments of a list or export (ops without a department: every one), and the
    name of the scope for titles."""
    if principal.role == Role.OPS and finance_department_id is None:
        return await repo.all_finance_department_ids(session), "全部地区"
    scope = await finance_scope(session, principal, finance_department_id)
    return scope.ids, scope.root.name


# ---------------------------------------------------------------------------------------------
# live aggregate


def _figures(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return Figures().model_dump()
    return {
        "units": int(row["units"]),
        "filed": int(row["filed"]),
        "confirmed": int(row["confirmed"]),
        "flagged": int(row["flagged"]),
        "canteen_total": repo.money(row["canteen_total"]),
        "reserved_amount": repo.money(row["reserved_amount"]),
        "union_total": repo.money(row["union_total"]),
        "union_expected_amount": repo.money(row["union_expected_amount"]),
    }


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    for key, value in _figures(row).items():
        into[key] = into.get(key, 0) + value


def aggregate_out(a: FinanceAggregate) -> AggregateOut:
    return AggregateOut(
        id=a.id,
        year=a.year,
        finance_department_id=a.finance_department_id,
        parent_finance_department_id=a.parent_finance_department_id,
        recipient="finance_department" if a.parent_finance_department_id else "platform",
        version=a.version,
        status=a.status.value,
        units=a.units_count,
        filed=a.filed_count,
        confirmed=a.confirmed_count,
        flagged=a.flagged_count,
        canteen_total=a.canteen_total,
        reserved_amount=a.reserved_amount,
        union_total=a.union_total,
        union_expected_amount=a.union_expected_amount,
        snapshot=a.snapshot,
        submitted_by=a.submitted_by,
        submitted_at=a.submitted_at,
        decided_by=a.decided_by,
        decided_at=a.decided_at,
        decision_reason=a.decision_reason,
    )


def _children(scope: FinanceScope) -> list[FinanceDept]:
    return [d for d in scope.departments if d.parent_id == scope.root.id]


def _bucket_of(scope: FinanceScope) -> dict[int, int]:
    """Each finance department of the scope → the child of the root it lies under (or the root)."""
    children = _children(scope)
    out: dict[int, int] = {}
    for d in scope.departments:
        out[d.id] = next((c.id for c in children if d.path.startswith(c.path)), scope.root.id)
    return out


async def _missing(
    session: AsyncSession, year: int, scope: FinanceScope
) -> tuple[list[MissingItem], list[dict[str, Any]], dict[int, FinanceAggregate]]:
    """What blocks the hand-over: departments of the root's level without a confirmed summary,
    and active child finance departments without a live hand-over to the root."""
    departments = await repo.departments_of(session, year, scope.root.id)
    children = [c for c in _children(scope) if c.status == UnitStatus.ACTIVE.value]
    lower = await repo.latest_aggregates(session, year, [c.id for c in children])
    missing = [
        MissingItem(
            kind="department_summary",
            unit_id=d["department_id"],
            name=d["department_name"],
            status=d["summary_status"] or "not_submitted",
        )
        for d in departments
        if d["summary_status"] != "confirmed"
    ]
    for c in children:
        a = lower.get(c.id)
        if (
            a is None
            or a.status not in repo.LIVE_STATUSES
            or a.parent_finance_department_id != scope.root.id
        ):
            missing.append(
                MissingItem(
                    kind="lower_aggregate",
                    unit_id=c.id,
                    name=c.name,
                    status=a.status.value if a is not None else "not_submitted",
                )
            )
    return missing, departments, lower


async def live_aggregate(session: AsyncSession, year: int, scope: FinanceScope) -> LiveAggregateOut:
    """The region by department (own level) and by sub-region (child finance departments), with
    live counts and sums, summary and hand-over statuses, and what still blocks the hand-over."""
    rows = await repo.sums_by_finance_department_and_top(session, year, scope.ids)
    by_fd: dict[int, dict[str, Any]] = {}
    by_top: dict[int, dict[str, Any]] = {}
    totals: dict[str, Any] = {}
    for row in rows:
        _add(by_fd.setdefault(int(row["fd"]), {}), row)
        _add(by_top.setdefault(int(row["top"]), {}), row)
        _add(totals, row)
    missing, roots, lower = await _missing(session, year, scope)
    summaries = {
        r["department_id"]: (r["summary_id"], r["summary_status"])
        for r in roots
        if r["summary_id"] is not None
    }
    if all(r["parent_id"] is None for r in roots):
        # every supervising unit is the first element of its units' paths: one scan did it
        department_rows = [
            {
                "department_id": r["department_id"],
                "department_name": r["department_name"],
                "finance_department_id": r["finance_department_id"],
                **(by_top.get(r["department_id"]) or Figures().model_dump()),
            }
            for r in roots
        ]
    else:  # supervising units hung under finance departments: one range probe per department
        department_rows = await repo.sums_by_department(session, year, [scope.root.id])
    departments = [
        DepartmentRow(
            department_id=r["department_id"],
            department_name=r["department_name"],
            finance_department_id=r["finance_department_id"],
            summary_id=_summary(summaries, r["department_id"])[0],
            summary_status=_summary(summaries, r["department_id"])[1],
            **_figures(r),
        )
        for r in department_rows
    ]
    bucket = _bucket_of(scope)
    region_figures: dict[int, dict[str, Any]] = {}
    for fd, row in by_fd.items():
        b = bucket.get(fd)
        if b is not None and b != scope.root.id:
            _add(region_figures.setdefault(b, {}), row)
    children = _children(scope)
    regions = []
    for c in children:
        a = lower.get(c.id)
        regions.append(
            RegionRow(
                finance_department_id=c.id,
                finance_department_name=c.name,
                region_code=c.region_code,
                aggregate_id=a.id if a else None,
                aggregate_version=a.version if a else None,
                aggregate_status=a.status.value if a else "not_submitted",
                **(region_figures.get(c.id) or Figures().model_dump()),
            )
        )
    history = await repo.aggregate_history(session, year, scope.root.id)
    current = history[-1] if history else None
    return LiveAggregateOut(
        year=year,
        finance_department_id=scope.root.id,
        finance_department_name=scope.root.name,
        recipient="platform" if _parent_fd(scope.root) is None else "finance_department",
        status=current.status.value if current else "not_submitted",
        current_aggregate_id=current.id if current else None,
        ready=not missing,
        missing=missing,
        totals=Figures(**totals) if totals else Figures(),
        departments=departments,
        regions=regions,
        history=[aggregate_out(a) for a in history],
    )


def _summary(summaries: dict[int, tuple[int, str]], department_id: int) -> tuple[int | None, str]:
    found = summaries.get(department_id)
    return (found[0], found[1]) if found else (None, "not_submitted")


async def with_departments(
    batches: AsyncIterator[list[dict[str, Any]]], roots: dict[int, str]
) -> AsyncIterator[list[dict[str, Any]]]:
    """Name each row's department: the first supervising unit on its path."""
    async for batch in batches:
        for row in batch:
            row["department_name"] = next(
                (roots[int(x)] for x in row["path"].split("/") if x and int(x) in roots), None
            )
        yield batch


def _parent_fd(root: OrgUnit) -> int | None:
    """The finance department a hand-over goes to: the parent in the finance tree (none: the
    provincial department, which hands over to the platform)."""
    return root.parent_id


# ---------------------------------------------------------------------------------------------
# hand-over


def _money_str(value: Decimal) -> str:
    return format_amount(value)


async def submit_aggregate(
    session: AsyncSession, principal: Principal, year: int, scope: FinanceScope
) -> FinanceAggregate:
    """汇总上报: snapshot the confirmed department summaries and the lower hand-overs; 409
    `aggregate_incomplete` while anything is missing, `aggregate_already_submitted` while a
    previous hand-over is awaiting or confirmed."""
    root = await repo.lock_unit(session, scope.root.id)
    history = await repo.aggregate_history(session, year, root.id)
    current = history[-1] if history else None
    if current is not None and current.status in repo.LIVE_STATUSES:
        raise Conflict(
            f"{year}年度汇总已上报（第{current.version}版，"
            f"{'待上级确认' if current.status == AggregateStatus.SUBMITTED else '已确认'}），"
            "不能重复上报",
            code="aggregate_already_submitted",
            extra={"aggregate_id": current.id},
        )
    missing, departments, _ = await _missing(session, year, scope)
    if missing:
        names = "、".join(m.name for m in missing[:10])
        raise AggregateIncomplete(
            f"尚有{len(missing)}项未完成，不能上报汇总：{names}"
            + ("等" if len(missing) > 10 else ""),
            extra={"missing": [m.model_dump() for m in missing]},
        )
    await repo.lock_summaries(session, [d["summary_id"] for d in departments])
    # the live hand-overs to this department (a returned one, or one of a finance department
    # since closed that never handed up here, is no part of the snapshot)
    lower = {
        fd: a
        for fd, a in (
            await repo.latest_aggregates(session, year, [c.id for c in _children(scope)], lock=True)
        ).items()
        if a.parent_finance_department_id == root.id and a.status in repo.LIVE_STATUSES
    }
    now = datetime.now(UTC)
    totals: dict[str, Any] = {
        "units": 0,
        "filed": 0,
        "confirmed": 0,
        "flagged": 0,
        "canteen_total": Decimal(0),
        "reserved_amount": Decimal(0),
        "union_total": Decimal(0),
        "union_expected_amount": Decimal(0),
    }
    dept_snap = []
    for d in departments:
        units = int(d["units_count"])
        figures = {
            "units": units,
            "filed": units,  # a confirmed summary covers filed and confirmed units only
            "confirmed": units,
            "flagged": int(d["flagged_count"]),
            "canteen_total": repo.money(d["canteen_total"]),
            "reserved_amount": repo.money(d["reserved_amount"]),
            "union_total": repo.money(d["union_total"]),
            "union_expected_amount": repo.money(d["union_expected_amount"]),
        }
        for k, v in figures.items():
            totals[k] += v
        dept_snap.append(
            {
                "department_id": d["department_id"],
                "department_name": d["department_name"],
                "summary_id": d["summary_id"],
                **_snap_figures(figures),
            }
        )
    region_snap = []
    for fd_id, a in sorted(lower.items()):
        figures = {
            "units": a.units_count,
            "filed": a.filed_count,
            "confirmed": a.confirmed_count,
            "flagged": a.flagged_count,
            "canteen_total": a.canteen_total,
            "reserved_amount": a.reserved_amount,
            "union_total": a.union_total,
            "union_expected_amount": a.union_expected_amount,
        }
        for k, v in figures.items():
            totals[k] += v
        region_snap.append(
            {
                "finance_department_id": fd_id,
                "finance_department_name": a.snapshot.get("finance_department_name"),
                "aggregate_id": a.id,
                "aggregate_version": a.version,
                **_snap_figures(figures),
            }
        )
        if a.status == AggregateStatus.SUBMITTED:
            a.status = AggregateStatus.CONFIRMED
            a.decided_by = principal.sub
            a.decided_at = now
            a.decision_reason = "随上级汇总上报确认"
            await audit.record(
                session,
                principal,
                "aggregate.confirmed",
                "finance_aggregate",
                a.id,
                changes={"status": ["submitted", "confirmed"]},
                reason=a.decision_reason,
            )
    parent = _parent_fd(root)
    version = (current.version + 1) if current else 1
    aggregate = await repo.add_aggregate(
        session,
        FinanceAggregate(
            year=year,
            finance_department_id=root.id,
            parent_finance_department_id=parent,
            version=version,
            status=AggregateStatus.SUBMITTED,
            units_count=totals["units"],
            filed_count=totals["filed"],
            confirmed_count=totals["confirmed"],
            flagged_count=totals["flagged"],
            canteen_total=totals["canteen_total"],
            reserved_amount=totals["reserved_amount"],
            union_total=totals["union_total"],
            union_expected_amount=totals["union_expected_amount"],
            snapshot={
                "year": year,
                "finance_department_id": root.id,
                "finance_department_name": root.name,
                "region_code": root.region_code,
                "recipient": "platform" if parent is None else "finance_department",
                "parent_finance_department_id": parent,
                "version": version,
                "totals": _snap_figures(totals),
                "departments": dept_snap,
                "regions": region_snap,
            },
            submitted_by=principal.sub,
            submitted_at=now,
        ),
    )
    await audit.record(
        session,
        principal,
        "aggregate.submitted",
        "finance_aggregate",
        aggregate.id,
        changes={
            "version": version,
            "recipient": "platform" if parent is None else f"finance_department:{parent}",
            "reserved_amount": _money_str(aggregate.reserved_amount),
        },
    )
    return aggregate


def _snap_figures(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: (_money_str(v) if isinstance(v, Decimal) else int(v)) for k, v in figures.items()}


async def aggregate_for_decider(
    session: AsyncSession, principal: Principal, aggregate_id: int
) -> FinanceAggregate:
    """The hand-over, if the caller is the level above: the receiving finance department, or ops
    (for hand-overs to the platform, and anywhere). 404 otherwise."""
    found = await repo.get_aggregate(session, aggregate_id)
    if found is None:
        raise NotFound("汇总不存在或无权访问", code="aggregate_not_found")
    if principal.role == Role.FINANCE and found.parent_finance_department_id != principal.unit_id:
        raise NotFound("汇总不存在或无权访问", code="aggregate_not_found")
    if found.parent_finance_department_id is not None:
        # the receiver's row: a decision waits for (or blocks) the receiver's own hand-up
        await repo.lock_unit(session, found.parent_finance_department_id)
    return await repo.lock_aggregate(session, aggregate_id)


async def decide_aggregate(
    session: AsyncSession,
    principal: Principal,
    aggregate: FinanceAggregate,
    action: str,
    reason: str | None,
) -> FinanceAggregate:
    """Confirm, or return with a reason, a hand-over awaiting the caller (`aggregate` locked)."""
    if aggregate.status != AggregateStatus.SUBMITTED:
        raise Conflict(
            f"只能确认或退回待确认的汇总（当前：{aggregate.status.value}）",
            code="aggregate_not_submitted",
        )
    new = AggregateStatus.CONFIRMED if action == "confirm" else AggregateStatus.RETURNED
    aggregate.status = new
    aggregate.decided_by = principal.sub
    aggregate.decided_at = datetime.now(UTC)
    aggregate.decision_reason = reason
    await session.flush()
    await audit.record(
        session,
        principal,
        f"aggregate.{'confirmed' if action == 'confirm' else 'returned'}",
        "finance_aggregate",
        aggregate.id,
        changes={"status": ["submitted", new.value]},
        reason=reason,
    )
    return aggregate


# ---------------------------------------------------------------------------------------------
# checks


CHECK_KINDS = (
    "not_filed",
    "below_national_floor",
    "below_soft_floor",
    "flagged",
    "not_confirmed",
    "no_canteen_remark",
    "shared_contact",
)


async def region_policies(
    session: AsyncSession, year: int, fds: list[int] | None
) -> dict[str, EffectivePolicy | None]:
    """The effective policy of every region the scope's units are in (two queries)."""
    return await effective_policies(session, year, await repo.distinct_regions(session, fds))


def check_filter(
    kind: str, policies: dict[str, EffectivePolicy | None], flag: str | None = None
) -> UnitFilter:
    """The SQL of a check. The flags computed at submit (`filings.flags`) are reused as they
    are: `below_soft_floor`, `flagged` and `shared_contact` read them, never recompute them."""
    filed = "f.version > 0"
    if kind == "not_filed":
        return UnitFilter(["(f.id IS NULL OR f.version = 0)"], {})
    if kind == "below_national_floor":
        floors = [(c, p.national_floor) for c, p in policies.items() if p and p.national_floor]
        return UnitFilter(
            [
                filed,
                "f.canteen_ratio < (SELECT fl.floor FROM unnest("
                "CAST(:floor_codes AS varchar[]), CAST(:floor_values AS numeric[])) "
                "AS fl(code, floor) WHERE fl.code = u.region_code)",
            ],
            {
                "floor_codes": [c for c, _ in floors],
                "floor_values": [v for _, v in floors],
            },
            filing_required=True,
        )
    if kind == "below_soft_floor":
        return UnitFilter(
            [filed, "f.flags @> ARRAY['below_soft_floor']::varchar[]"], {}, filing_required=True
        )
    if kind == "flagged":
        if flag:
            return UnitFilter(
                [filed, "f.flags @> ARRAY[CAST(:flag AS varchar)]"],
                {"flag": flag},
                filing_required=True,
            )
        return UnitFilter([filed, "cardinality(f.flags) > 0"], {}, filing_required=True)
    if kind == "not_confirmed":
        return UnitFilter(["f.status IN ('submitted', 'returned')"], {}, filing_required=True)
    if kind == "no_canteen_remark":
        return UnitFilter(
            [filed, "f.canteen_type = 'none'", "coalesce(f.remark, '') <> :no_canteen"],
            {"no_canteen": NO_CANTEEN_REMARK},
            filing_required=True,
        )
    if kind == "shared_contact":
        return UnitFilter(
            [filed, "f.flags @> ARRAY['shared_contact_mobile']::varchar[]"],
            {},
            filing_required=True,
        )
    raise DomainError(f"未知的检查类型 {kind}", code="unknown_check")  # pragma: no cover


def check_extras(
    kind: str, row: dict[str, Any], policies: dict[str, EffectivePolicy | None], today: date
) -> dict[str, Any]:
    """The figures that put a unit in a check (floor, deadline and days left)."""
    policy = policies.get(row["region_code"])
    if policy is None:
        return {}
    if kind == "not_filed" and policy.filing_deadline is not None:
        days_left = (policy.filing_deadline - today).days
        window = get_settings().deadline_warning_days
        return {
            "deadline": policy.filing_deadline,
            "days_left": days_left,
            "close_to_deadline": 0 <= days_left <= window,
        }
    if kind == "below_national_floor":
        return {"threshold": policy.national_floor}
    if kind == "below_soft_floor":
        return {"threshold": policy.soft_floor}
    return {}


def today() -> date:
    return clock.today()
