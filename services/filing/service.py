"""Reserved-share filing (预留份额填报): drafting, submitting and the lifecycle of a filing.

Lifecycle: draft → submitted (locked, 待上级预算单位确认) → confirmed, or returned (退回) → modified
and resubmitted. Each submission is kept as an immutable `FilingVersion`; every transition is a
`FilingEvent` (who, when, what changed, why). `return_filing` and `confirm_filing` are the entry
points the confirmation service reuses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.filing import clock
from services.filing import repository as repo
from services.filing.org_service import CONTACT_FIELDS, load_unit, set_unit_contacts
from services.filing.schemas import FilingDraftIn, SubmitIn
from shared import audit, sms
from shared.auth import Principal, Role, unit_in_scope
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.models import (
    CanteenType,
    Filing,
    FilingEvent,
    FilingReopening,
    FilingStatus,
    FilingVersion,
    OrgUnit,
    SharedFilledBy,
    UnitKind,
    UnitStatus,
)
from shared.money import format_amount, percent_of
from shared.policy import EffectivePolicy, effective_policy

NO_CANTEEN_REMARK = "无食堂"
"""The literal downstream systems match for `none` (not 无饭堂)."""
REMARK_MAX_CHARS = 50
RATIO_MAX = Decimal(100)
SHARP_CHANGE_RELATIVE = Decimal("0.5")
"""A total or ratio that moved by more than 50% (relative) from last year is flagged."""

STATUS_LABELS = {
    FilingStatus.DRAFT: "草稿",
    FilingStatus.SUBMITTED: "待上级预算单位确认",
    FilingStatus.RETURNED: "已退回",
    FilingStatus.CONFIRMED: "上级预算单位已确认",
    FilingStatus.DEPARTMENT_SUBMITTED: "部门已报送同级财政",
    FilingStatus.FINANCE_CONFIRMED: "财政部门已审核",
    FilingStatus.FINANCE_RETURNED: "财政部门已退回",
}
EDITABLE = {FilingStatus.DRAFT, FilingStatus.RETURNED}


class Flag:
    """Anomaly codes computed at submit (README "Filing flags")."""

    BELOW_SOFT_FLOOR = "below_soft_floor"
    SHARP_CHANGE_TOTAL = "sharp_change_total"
    SHARP_CHANGE_RATIO = "sharp_change_ratio"
    REPRESENTATIVE_NOT_FILED = "representative_not_filed"
    UNION_ZERO_AMOUNTS = "union_zero_amounts"
    SHARED_CONTACT_MOBILE = "shared_contact_mobile"


FLAG_TEXT = {
    Flag.BELOW_SOFT_FLOOR: "预留比例低于本地区原则上不低于的比例（已填写说明）",
    Flag.SHARP_CHANGE_TOTAL: "食堂食材采购总额较上年变化超过50%",
    Flag.SHARP_CHANGE_RATIO: "预留比例较上年变化超过50%",
    Flag.REPRESENTATIVE_NOT_FILED: "共用食堂的代表单位尚未提交本年度填报",
    Flag.UNION_ZERO_AMOUNTS: "有工会采购需求，但工会采购总额或比例为0",
    Flag.SHARED_CONTACT_MOBILE: "联系人手机号同时被其他无隶属关系的单位使用",
}

CANTEEN_FIELDS = (
    "canteen_type",
    "shared_filled_by",
    "representative_unit_id",
    "shared_unit_ids",
    "contractor_name",
    "canteen_total",
    "canteen_ratio",
    "remark",
)
UNION_FIELDS = ("union_has_need", "union_total", "union_ratio", "union_remark")


def shared_other_remark(representative_name: str) -> str:
    """The remark of a `shared/other` filing, rendered from its representative (notice text)."""
    return f"共用{representative_name}食堂"


class _Errors:
    """Collects field errors so that a clerk sees every problem of the form at once."""

    def __init__(self) -> None:
        self.items: list[tuple[list[str | int], str, str]] = []

    def add(self, loc: list[str | int], msg: str, code: str) -> None:
        self.items.append((["body", *loc], msg, code))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        loc, msg, code = self.items[0]
        field = ".".join(str(p) for p in loc[1:])
        raise ValidationFailed(
            f"{field}: {msg}"
            if len(self.items) == 1
            else f"{field}: {msg}（共{len(self.items)}处错误）",
            code=code,
            errors=[{"loc": lc, "msg": m, "code": c} for lc, m, c in self.items],
        )


# ---------------------------------------------------------------------------------------------
# draft


@dataclass
class DraftValues:
    values: dict[str, Any]
    shared_unit_ids: list[int]


async def _check_draft(
    session: AsyncSession, unit: OrgUnit, data: FilingDraftIn, policy: EffectivePolicy
) -> DraftValues:
    """Every rule of SPEC.md §2 that the form alone decides (the submit adds floors/deadline)."""
    errors = _Errors()
    kind = data.canteen_type
    needs_figures = kind in (CanteenType.OWN, CanteenType.OUTSOURCED) or (
        kind == CanteenType.SHARED and data.shared_filled_by == SharedFilledBy.SELF
    )
    values: dict[str, Any] = {
        "canteen_type": kind,
        "shared_filled_by": None,
        "representative_unit_id": None,
        "contractor_name": None,
        "canteen_total": None,
        "canteen_ratio": None,
        "reserved_amount": None,
        "remark": data.remark,
    }
    shared_ids: list[int] = []

    # shared: who fills
    if kind == CanteenType.SHARED:
        if data.shared_filled_by is None:
            errors.add(
                ["shared_filled_by"],
                "共用食堂须选择“由本单位填写”(self)或“由其他单位填写”(other)",
                "shared_filled_by_required",
            )
        values["shared_filled_by"] = data.shared_filled_by
    elif data.shared_filled_by is not None:
        errors.add(["shared_filled_by"], "仅共用食堂可填写此项", "field_not_allowed")

    # figures
    if needs_figures:
        for name, label in (
            ("canteen_total", "年度食堂食材采购总额"),
            ("canteen_ratio", "预留比例"),
        ):
            if getattr(data, name) is None:
                errors.add([name], f"请填写{label}", "field_required")
        if data.canteen_ratio is not None and data.canteen_ratio > RATIO_MAX:
            errors.add(["canteen_ratio"], "预留比例不能超过100（单位为%）", "ratio_above_100")
        elif data.canteen_ratio is not None:
            floor = policy.national_floor
            if floor is not None and data.canteen_ratio < floor:
                errors.add(
                    ["canteen_ratio"],
                    f"预留比例不得低于全国最低比例{format_amount(floor)}%",
                    "ratio_below_national_floor",
                )
        values["canteen_total"] = data.canteen_total
        values["canteen_ratio"] = data.canteen_ratio
        if data.canteen_total is not None and data.canteen_ratio is not None:
            values["reserved_amount"] = percent_of(data.canteen_total, data.canteen_ratio)
    else:
        which = "无食堂" if kind == CanteenType.NONE else "由其他单位填写的共用食堂"
        for name in ("canteen_total", "canteen_ratio"):
            if getattr(data, name) is not None:
                errors.add([name], f"{which}不填写采购总额和预留比例", "field_not_allowed")

    # outsourced: the purchasing entity
    if kind == CanteenType.OUTSOURCED:
        if data.contractor_name is None:
            errors.add(
                ["contractor_name"], "食堂外包须填写采购执行主体（承包方）名称", "field_required"
            )
        elif len(data.contractor_name) > 200:
            errors.add(["contractor_name"], "采购执行主体名称不能超过200个字", "too_long")
        values["contractor_name"] = data.contractor_name
    elif data.contractor_name is not None:
        errors.add(["contractor_name"], "仅食堂外包可填写采购执行主体", "field_not_allowed")

    # shared/self: the units sharing the canteen
    if kind == CanteenType.SHARED and data.shared_filled_by == SharedFilledBy.SELF:
        shared_ids = sorted(set(data.shared_unit_ids))
        found = await repo.get_units(session, shared_ids)
        for i, uid in enumerate(data.shared_unit_ids):
            if uid == unit.id:
                errors.add(["shared_unit_ids", i], "共用单位不能是本单位", "shared_unit_invalid")
            elif uid not in found or found[uid].kind != UnitKind.BUDGET_UNIT:
                errors.add(["shared_unit_ids", i], f"预算单位 {uid} 不存在", "unit_not_found")
    elif data.shared_unit_ids:
        errors.add(
            ["shared_unit_ids"], "仅由本单位填写的共用食堂可列出共用单位", "field_not_allowed"
        )

    # shared/other: the representative, and the rendered remark
    if kind == CanteenType.SHARED and data.shared_filled_by == SharedFilledBy.OTHER:
        rep_id = data.representative_unit_id
        if rep_id is None:
            errors.add(
                ["representative_unit_id"],
                "由其他单位填写时须指定代表填报的单位",
                "representative_required",
            )
        else:
            rep = await repo.get_unit(session, rep_id)
            if rep_id == unit.id:
                errors.add(
                    ["representative_unit_id"], "代表单位不能是本单位", "representative_invalid"
                )
            elif rep is None or rep.kind != UnitKind.BUDGET_UNIT:
                errors.add(
                    ["representative_unit_id"],
                    f"代表单位 {rep_id} 不存在",
                    "representative_not_found",
                )
            elif rep.status != UnitStatus.ACTIVE:
                errors.add(
                    ["representative_unit_id"],
                    "代表单位已合并或撤销，请选择现有单位",
                    "representative_inactive",
                )
            else:
                rendered = shared_other_remark(rep.name)
                if data.remark is not None and data.remark != rendered:
                    errors.add(
                        ["remark"],
                        f"由其他单位填写时备注由系统生成（“{rendered}”），请留空",
                        "remark_not_allowed",
                    )
                values["representative_unit_id"] = rep.id
                values["remark"] = rendered
    else:
        if data.representative_unit_id is not None:
            errors.add(
                ["representative_unit_id"],
                "仅由其他单位填写的共用食堂可指定代表单位",
                "field_not_allowed",
            )
        if data.remark is not None and len(data.remark) > REMARK_MAX_CHARS:
            errors.add(["remark"], f"备注最多{REMARK_MAX_CHARS}个字", "remark_too_long")
        if kind == CanteenType.NONE and data.remark != NO_CANTEEN_REMARK:
            errors.add(
                ["remark"],
                f"无食堂须在备注中填写“{NO_CANTEEN_REMARK}”三个字（不能写成其他文字）",
                "no_canteen_remark_must_be_exact",
            )

    # union
    union = data.union
    values.update(
        union_has_need=union.has_need,
        union_total=None,
        union_ratio=None,
        union_expected_amount=None,
        union_remark=union.remark,
    )
    if union.remark is not None and len(union.remark) > REMARK_MAX_CHARS:
        errors.add(["union", "remark"], f"备注最多{REMARK_MAX_CHARS}个字", "remark_too_long")
    if union.has_need:
        for name, label in (("total", "工会采购总额"), ("ratio", "工会采购预留比例")):
            if getattr(union, name) is None:
                errors.add(["union", name], f"请填写{label}", "field_required")
        if union.ratio is not None and union.ratio > RATIO_MAX:
            errors.add(
                ["union", "ratio"], "工会采购预留比例不能超过100（单位为%）", "ratio_above_100"
            )
        values["union_total"] = union.total
        values["union_ratio"] = union.ratio
        if union.total is not None and union.ratio is not None:
            values["union_expected_amount"] = percent_of(union.total, union.ratio)
    else:
        for name in ("total", "ratio"):
            if getattr(union, name) is not None:
                errors.add(["union", name], "无工会采购需求时不填写总额和比例", "field_not_allowed")
        if union.remark is None:
            errors.add(
                ["union", "remark"], "无工会采购需求时须在备注中说明原因", "union_remark_required"
            )

    errors.raise_if_any()

    union_contact = data.union_contact
    values.update(
        contact_name=data.contact.name,
        contact_mobile=data.contact.mobile,
        contact_landline=data.contact.landline,
        union_contact_name=union_contact.name if union_contact else None,
        union_contact_mobile=union_contact.mobile if union_contact else None,
        union_contact_landline=union_contact.landline if union_contact else None,
    )
    return DraftValues(values=values, shared_unit_ids=shared_ids)


async def _my_active_unit(session: AsyncSession, principal: Principal) -> OrgUnit:
    unit = await load_unit(session, principal.require_unit_id())
    if unit.kind != UnitKind.BUDGET_UNIT:
        raise Forbidden("只有预算单位填报预留份额", code="not_a_budget_unit")
    if unit.status != UnitStatus.ACTIVE:
        raise Conflict("本单位已合并或撤销，不能再填报", code="unit_inactive")
    return unit


def _snapshot_values(filing: Filing, shared_ids: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (*CANTEEN_FIELDS, "reserved_amount", *UNION_FIELDS, "union_expected_amount"):
        if name == "shared_unit_ids":
            out[name] = list(shared_ids)
            continue
        value = getattr(filing, name)
        if isinstance(value, Decimal):
            value = format_amount(value)
        out[name] = value.value if isinstance(value, enum.Enum) else value
    for name in CONTACT_FIELDS:
        out[name] = getattr(filing, name)
    return out


async def _record(
    session: AsyncSession,
    principal: Principal,
    filing: Filing,
    action: str,
    from_status: FilingStatus | None,
    *,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """One transition of a filing: an event of its history and an entry of the audit log
    (who, when, what changed, why)."""
    await repo.add_event(
        session,
        FilingEvent(
            filing_id=filing.id,
            action=action,
            from_status=from_status.value if from_status else None,
            to_status=filing.status.value,
            actor_sub=principal.sub,
            actor_role=str(principal.role),
            actor_unit_id=principal.unit_id,
            reason=reason,
            changes=changes or None,
        ),
    )
    await audit.record(
        session, principal, f"filing.{action}", "filing", filing.id, changes=changes, reason=reason
    )


async def save_draft(
    session: AsyncSession, principal: Principal, year: int, data: FilingDraftIn
) -> Filing:
    """Create or replace this unit's draft of `year` (only while draft or returned)."""
    unit = await _my_active_unit(session, principal)
    policy = await effective_policy(session, year, unit.region_code)
    draft = await _check_draft(session, unit, data, policy)

    filing = await repo.get_filing(session, unit.id, year)
    created = filing is None
    if filing is None:
        filing = await repo.create_filing(
            session,
            Filing(
                unit_id=unit.id,
                year=year,
                status=FilingStatus.DRAFT,
                canteen_status=FilingStatus.DRAFT,
                union_status=FilingStatus.DRAFT,
                canteen_type=data.canteen_type,
                flags=[],
                version=0,
            ),
        )
        old_shared: list[int] = []
    else:
        filing = await repo.lock_filing(session, filing.id)
        old_shared = await repo.shared_unit_ids(session, filing.id)
    if filing.status not in EDITABLE:
        raise Conflict(
            f"本年度填报已提交（{STATUS_LABELS[filing.status]}），不能修改；"
            "如需修改请联系上级预算单位退回",
            code="filing_locked",
        )
    before = _snapshot_values(filing, old_shared)
    for name, value in draft.values.items():
        setattr(filing, name, value)
    after = _snapshot_values(filing, draft.shared_unit_ids)
    changes = {} if created else audit.diff(before, after)
    if filing.status == FilingStatus.RETURNED:
        _ensure_only_returned_parts_changed(filing, changes)
    filing.updated_at = datetime.now(UTC)
    await repo.flush(session)
    await repo.replace_shared_units(session, filing.id, draft.shared_unit_ids)

    # contacts belong to the unit too (核对完善预算单位联系人信息): no re-approval needed
    await set_unit_contacts(session, principal, unit, {f: draft.values[f] for f in CONTACT_FIELDS})
    if created:
        await _record(session, principal, filing, "drafted", None, changes=audit.diff({}, after))
    elif changes:
        await _record(session, principal, filing, "draft_updated", filing.status, changes=changes)
    return filing


def _ensure_only_returned_parts_changed(filing: Filing, changes: dict[str, Any]) -> None:
    """A part that was not returned stays as filed. The remark of a `shared/other` filing is
    rendered from its representative's current name, so a rename alone does not touch it."""
    if filing.representative_unit_id is not None and "representative_unit_id" not in changes:
        changes = {k: v for k, v in changes.items() if k != "remark"}
    locked: list[tuple[str, tuple[str, ...]]] = []
    if filing.canteen_status != FilingStatus.RETURNED:
        locked.append(("食堂食材", CANTEEN_FIELDS))
    if filing.union_status != FilingStatus.RETURNED:
        locked.append(("工会采购", UNION_FIELDS))
    for label, fields in locked:
        touched = [f for f in fields if f in changes]
        if touched:
            raise Conflict(
                f"本次仅退回了其他部分，{label}部分未被退回，不能修改",
                code="part_locked",
                errors=[{"loc": ["body", f], "msg": f"{label}部分未被退回"} for f in touched],
            )


# ---------------------------------------------------------------------------------------------
# submit


async def _check_deadline(session: AsyncSession, filing: Filing, policy: EffectivePolicy) -> None:
    """The year's deadline (inclusive, local date) binds the first submission; a finance
    department may reopen one unit; a filing returned by its superior may always be resubmitted."""
    if filing.status == FilingStatus.RETURNED:
        return
    deadline = policy.require("filing_deadline")
    today = clock.today()
    if today <= deadline:
        return
    if await repo.open_reopening(session, filing.unit_id, filing.year, today) is not None:
        return
    raise Conflict(
        f"{filing.year}年度预留份额填报已于{deadline.isoformat()}截止，不能再提交；"
        "如需补报，请联系同级财政部门开通补报",
        code="filing_deadline_passed",
        extra={"deadline": deadline.isoformat()},
    )


async def submit(session: AsyncSession, principal: Principal, year: int, data: SubmitIn) -> Filing:
    unit = await _my_active_unit(session, principal)
    found = await repo.get_filing(session, unit.id, year)
    if found is None:
        raise NotFound("尚未填写本年度的预留份额，请先保存草稿", code="filing_not_found")
    filing = await repo.lock_filing(session, found.id)
    if filing.status not in EDITABLE:
        raise Conflict(
            f"本年度填报已提交（{STATUS_LABELS[filing.status]}），不能重复提交",
            code="filing_already_submitted",
        )
    if not data.declaration:
        raise ValidationFailed.at(
            ["body", "declaration"],
            "请确认“我单位本次填报的内容真实有效，无瞒报、漏报、错报情况”后再提交",
            code="declaration_required",
        )
    policy = await effective_policy(session, year, unit.region_code)
    national_floor = policy.require("national_floor")
    await _check_deadline(session, filing, policy)

    flags: list[str] = []
    ratio = filing.canteen_ratio
    if ratio is not None and ratio < national_floor:
        raise ValidationFailed.at(
            ["body", "canteen_ratio"],
            f"预留比例{format_amount(ratio)}%低于全国最低比例{format_amount(national_floor)}%，"
            "不能提交",
            code="ratio_below_national_floor",
        )
    justification = None
    if ratio is not None and policy.soft_floor is not None and ratio < policy.soft_floor:
        if data.justification is None:
            raise ValidationFailed.at(
                ["body", "justification"],
                f"预留比例{format_amount(ratio)}%低于本地区原则上不低于的"
                f"{format_amount(policy.soft_floor)}%，须填写情况说明后才能提交",
                code="justification_required",
            )
        justification = data.justification
        flags.append(Flag.BELOW_SOFT_FLOOR)

    if filing.representative_unit_id is not None:
        rep = await repo.get_unit(session, filing.representative_unit_id)
        if rep is None or rep.status != UnitStatus.ACTIVE:
            raise ValidationFailed.at(
                ["body", "representative_unit_id"],
                "代表单位已合并或撤销，请修改草稿重新选择",
                code="representative_inactive",
            )
        filing.remark = shared_other_remark(rep.name)  # the representative may have been renamed
        if not await repo.has_submitted_filing(session, rep.id, year):
            flags.append(Flag.REPRESENTATIVE_NOT_FILED)

    previous = await repo.latest_version_of(session, unit.id, year - 1)
    if previous is not None:
        prev = previous.snapshot
        if _sharp_change(prev.get("canteen_total"), filing.canteen_total):
            flags.append(Flag.SHARP_CHANGE_TOTAL)
        if _sharp_change(prev.get("canteen_ratio"), filing.canteen_ratio):
            flags.append(Flag.SHARP_CHANGE_RATIO)

    if filing.union_has_need and (not filing.union_total or not filing.union_ratio):
        flags.append(Flag.UNION_ZERO_AMOUNTS)

    for mobile in {m for m in (filing.contact_mobile, filing.union_contact_mobile) if m}:
        if await repo.units_sharing_mobile(session, unit, mobile, year):
            flags.append(Flag.SHARED_CONTACT_MOBILE)
            break

    now = datetime.now(UTC)
    from_status = filing.status
    last = await repo.latest_version(session, filing.id)
    shared_ids = await repo.shared_unit_ids(session, filing.id)
    filing.justification = justification
    filing.flags = flags
    filing.status = FilingStatus.SUBMITTED
    if filing.canteen_status in EDITABLE:
        filing.canteen_status = FilingStatus.SUBMITTED
    if filing.union_status in EDITABLE:
        filing.union_status = FilingStatus.SUBMITTED
    filing.version += 1
    filing.submitted_at = now
    filing.submitted_by = principal.sub
    filing.updated_at = now
    snapshot = {
        **_snapshot_values(filing, shared_ids),
        "justification": justification,
        "flags": flags,
        "unit_name": unit.name,
        "year": year,
    }
    await repo.flush(session)
    await repo.add_version(
        session,
        FilingVersion(
            filing_id=filing.id,
            version_no=filing.version,
            snapshot=snapshot,
            submitted_by=principal.sub,
            submitted_at=now,
        ),
    )
    await _record(
        session,
        principal,
        filing,
        "submitted" if from_status == FilingStatus.DRAFT else "resubmitted",
        from_status,
        changes=audit.diff(last.snapshot if last else {}, snapshot),
        reason=justification,
    )
    return filing


def _sharp_change(previous: Any, current: Decimal | None) -> bool:
    if previous is None or current is None:
        return False
    old = Decimal(str(previous))
    if old == 0:
        return current != 0
    return abs(current - old) / old > SHARP_CHANGE_RELATIVE


# ---------------------------------------------------------------------------------------------
# superior's decisions (driven by the confirmation service)


async def filing_for_superior(
    session: AsyncSession, principal: Principal, filing_id: int
) -> Filing:
    """The filing, if `principal` is a unit acting as superior of its unit (a strict ancestor)."""
    filing = await repo.get_filing_by_id(session, filing_id)
    if filing is None or not await unit_in_scope(session, principal, filing.unit_id):
        raise NotFound("填报不存在或无权访问", code="filing_not_found")
    if principal.role != Role.UNIT or principal.unit_id == filing.unit_id:
        raise Forbidden("只有上级预算单位可以确认或退回本填报", code="not_superior")
    return await repo.lock_filing(session, filing_id)


RETURNABLE = {FilingStatus.SUBMITTED, FilingStatus.FINANCE_RETURNED}
"""A superior returns a filing awaiting it, or one whose department summary the finance
department returned (the department sends single filings back to their units to fix)."""


def _require_submitted(
    filing: Filing, verb: str, allowed: frozenset[FilingStatus] | set[FilingStatus] | None = None
) -> None:
    """The superior decides only on a filing awaiting it (待上级预算单位确认)."""
    if filing.status not in (allowed or {FilingStatus.SUBMITTED}):
        raise Conflict(
            f"只能{verb}待确认的填报（当前：{STATUS_LABELS[filing.status]}）",
            code="filing_not_submitted",
        )


def _statuses(filing: Filing) -> dict[str, str]:
    return {
        "status": filing.status.value,
        "canteen_status": filing.canteen_status.value,
        "union_status": filing.union_status.value,
    }


async def _decided(
    session: AsyncSession,
    principal: Principal,
    filing: Filing,
    action: str,
    before: dict[str, str],
    reason: str | None,
) -> Filing:
    """Store a superior's decision; the event lists every status that changed, `[old, new]`."""
    filing.updated_at = datetime.now(UTC)
    await repo.flush(session)
    await _record(
        session,
        principal,
        filing,
        action,
        FilingStatus(before["status"]),
        changes=audit.diff(before, _statuses(filing)),
        reason=reason,
    )
    return filing


async def return_filing(
    session: AsyncSession,
    principal: Principal,
    filing: Filing,
    reason: str,
    parts: tuple[str, ...] = ("canteen", "union"),
) -> Filing:
    """退回: submitted (or finance_returned) → returned (the chosen parts), with a reason.
    `filing` must be locked. Queues the `filing_returned` SMS to the filing contact."""
    _require_submitted(filing, "退回", RETURNABLE)
    before = _statuses(filing)
    filing.status = FilingStatus.RETURNED
    if "canteen" in parts:
        filing.canteen_status = FilingStatus.RETURNED
    if "union" in parts:
        filing.union_status = FilingStatus.RETURNED
    await _decided(session, principal, filing, "returned", before, reason)
    await queue_decision_sms(session, filing, "returned", reason)
    return filing


async def confirm_filing(
    session: AsyncSession, principal: Principal, filing: Filing, note: str | None = None
) -> Filing:
    """确认: submitted → confirmed (both parts). `filing` must be locked."""
    _require_submitted(filing, "确认")
    before = _statuses(filing)
    filing.status = FilingStatus.CONFIRMED
    filing.canteen_status = FilingStatus.CONFIRMED
    filing.union_status = FilingStatus.CONFIRMED
    await _decided(session, principal, filing, "confirmed", before, note)
    await queue_decision_sms(session, filing, "confirmed", None)
    return filing


async def queue_decision_sms(
    session: AsyncSession, filing: Filing, decision: str, reason: str | None
) -> int | None:
    """The SMS to the unit's filing contact, in the decision's transaction. The event key is per
    filing version and decision (`filing:{id}:confirmed:v{version}`), so a retried request or a
    replayed decision queues nothing twice. Returns the outbox id, None if nothing was queued."""
    if not filing.contact_mobile:
        return None
    unit = await repo.get_unit(session, filing.unit_id)
    return await sms.queue_sms(
        session,
        event_key=f"filing:{filing.id}:{decision}:v{filing.version}",
        template=f"filing_{decision}",
        mobile=filing.contact_mobile,
        params={
            "unit_name": unit.name if unit else "",
            "year": filing.year,
            "reason": reason,
        },
        unit_id=filing.unit_id,
    )


async def update_filing_contacts(
    session: AsyncSession, principal: Principal, unit: OrgUnit, values: dict[str, str | None]
) -> None:
    """Contacts change without re-approval: copy them onto the unit's latest filing (any status),
    recorded as an event that keeps the status."""
    for filing in await repo.latest_filings_of_unit(session, unit.id):
        locked = await repo.lock_filing(session, filing.id)
        old = {f: getattr(locked, f) for f in CONTACT_FIELDS}
        changes = audit.diff(old, values)
        if not changes:
            continue
        for name, value in values.items():
            setattr(locked, name, value)
        await repo.flush(session)
        await _record(
            session, principal, locked, "contacts_updated", locked.status, changes=changes
        )


async def reopen(
    session: AsyncSession,
    principal: Principal,
    unit: OrgUnit,
    year: int,
    open_until: date,
    reason: str,
) -> FilingReopening:
    """补报: a finance department lets one unit submit after the deadline until `open_until`."""
    if open_until < clock.today():
        raise ValidationFailed.at(
            ["body", "open_until"], "补报截止日期不能早于今天", code="open_until_in_past"
        )
    reopening = await repo.add_reopening(
        session,
        FilingReopening(
            year=year,
            unit_id=unit.id,
            open_until=open_until,
            granted_by=principal.sub,
            reason=reason,
        ),
    )
    await audit.record(
        session,
        principal,
        "filing.reopened",
        "org_unit",
        unit.id,
        changes={"year": year, "open_until": open_until.isoformat()},
        reason=reason,
    )
    return reopening
