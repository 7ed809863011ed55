"""Organisation (预算单位 / 财政部门) and policy rules of the filing service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.filing import repository as repo
from services.filing.schemas import (
    ContactOut,
    ContactsIn,
    PolicyIn,
    UnitCreate,
    UnitMerge,
    UnitOut,
    UnitRename,
)
from shared import audit
from shared.auth import Principal, Role, ensure_unit_in_scope, unit_in_scope
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.masking import mask_mobile
from shared.models import (
    Filing,
    OrgUnit,
    OrgUnitChange,
    Policy,
    UnitChangeKind,
    UnitKind,
    UnitStatus,
)
from shared.policy import NATIONAL_REGION, POLICY_FIELDS, region_chain

CONTACT_FIELDS = (
    "contact_name",
    "contact_mobile",
    "contact_landline",
    "union_contact_name",
    "union_contact_mobile",
    "union_contact_landline",
)


def contacts_out(source: OrgUnit | Filing, *, masked: bool) -> tuple[ContactOut, ContactOut | None]:
    """The filing contact and the union contact (None when not given) of a unit or a filing;
    `masked` hides mobiles (anyone but the unit itself sees them masked)."""

    def mobile(value: str | None) -> str | None:
        return mask_mobile(value) if masked else value

    contact = ContactOut(
        name=source.contact_name,
        mobile=mobile(source.contact_mobile),
        landline=source.contact_landline,
    )
    union = None
    if source.union_contact_name or source.union_contact_mobile:
        union = ContactOut(
            name=source.union_contact_name,
            mobile=mobile(source.union_contact_mobile),
            landline=source.union_contact_landline,
        )
    return contact, union


def unit_out(unit: OrgUnit, *, masked: bool) -> UnitOut:
    """A unit as shown; `masked` hides mobiles (anyone but the unit itself sees them masked)."""
    contact, union = contacts_out(unit, masked=masked)
    return UnitOut(
        id=unit.id,
        code=unit.code,
        name=unit.name,
        kind=unit.kind,
        parent_id=unit.parent_id,
        finance_department_id=unit.finance_department_id,
        region_code=unit.region_code,
        path=unit.path,
        status=unit.status,
        merged_into_id=unit.merged_into_id,
        contact=contact,
        union_contact=union,
    )


def sees_own(principal: Principal, unit_id: int) -> bool:
    return principal.role == Role.UNIT and principal.unit_id == unit_id


async def load_unit(session: AsyncSession, unit_id: int) -> OrgUnit:
    unit = await repo.get_unit(session, unit_id)
    if unit is None:
        raise NotFound("单位不存在或无权访问", code="unit_not_found")
    return unit


async def ensure_finance_department(session: AsyncSession, principal: Principal) -> OrgUnit:
    """The caller's own unit, which a `finance` role must be: an active finance department."""
    me = await load_unit(session, principal.require_unit_id())
    if me.kind != UnitKind.FINANCE_DEPARTMENT or me.status != UnitStatus.ACTIVE:
        raise Forbidden("该账号绑定的单位不是有效的财政部门", code="not_a_finance_department")
    return me


async def visible_unit(session: AsyncSession, principal: Principal, unit_id: int) -> OrgUnit:
    await ensure_unit_in_scope(session, principal, unit_id)
    return await load_unit(session, unit_id)


async def _unit_ref(
    session: AsyncSession, principal: Principal, unit_id: int, field: str
) -> OrgUnit:
    unit = await repo.get_unit(session, unit_id)
    if unit is None or not await unit_in_scope(session, principal, unit_id):
        raise ValidationFailed.at(
            ["body", field], f"单位 {unit_id} 不存在或不在本部门管辖范围内", code="unit_not_found"
        )
    return unit


async def _record_change(
    session: AsyncSession,
    principal: Principal,
    unit: OrgUnit,
    kind: UnitChangeKind,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    reason: str | None = None,
    related_unit_id: int | None = None,
) -> None:
    """One change of a unit: a row of its history and an entry of the audit log."""
    await repo.add_unit_change(
        session,
        OrgUnitChange(
            unit_id=unit.id,
            kind=kind,
            old_value=old,
            new_value=new,
            related_unit_id=related_unit_id,
            effective_at=datetime.now(UTC),
            actor_sub=principal.sub,
            reason=reason,
        ),
    )
    await audit.record(
        session,
        principal,
        "unit.contacts_updated" if kind == UnitChangeKind.CONTACTS else f"unit.{kind.value}",
        "org_unit",
        unit.id,
        changes=audit.diff(old or {}, new),
        reason=reason,
    )


async def create_unit(session: AsyncSession, principal: Principal, data: UnitCreate) -> OrgUnit:
    """Register a budget unit or a finance department (finance: within its own scope)."""
    if not await repo.region_exists(session, data.region_code):
        raise ValidationFailed.at(
            ["body", "region_code"], f"地区代码 {data.region_code} 不存在", code="region_not_found"
        )
    parent = None
    if data.parent_id is not None:
        parent = await _unit_ref(session, principal, data.parent_id, "parent_id")
        if parent.status != UnitStatus.ACTIVE:
            raise ValidationFailed.at(
                ["body", "parent_id"], "上级单位已合并或撤销", code="unit_inactive"
            )
        if parent.kind != data.kind:
            raise ValidationFailed.at(
                ["body", "parent_id"],
                "上级须与本单位同类（预算单位的上级为预算单位，财政部门的上级为财政部门）",
                code="parent_kind_mismatch",
            )
    finance_department_id = data.finance_department_id
    if finance_department_id is None and principal.role == Role.FINANCE:
        finance_department_id = principal.unit_id
    if finance_department_id is not None:
        fd = await _unit_ref(session, principal, finance_department_id, "finance_department_id")
        if fd.kind != UnitKind.FINANCE_DEPARTMENT:
            raise ValidationFailed.at(
                ["body", "finance_department_id"],
                "同级财政部门须为财政部门类型的单位",
                code="not_a_finance_department",
            )
        # a finance department acts on the units of its own region (and the regions under it)
        if fd.region_code not in await region_chain(session, data.region_code):
            raise ValidationFailed.at(
                ["body", "region_code"],
                f"地区 {data.region_code} 不在财政部门“{fd.name}”（{fd.region_code}）的辖区内",
                code="region_outside_finance_department",
            )
    if data.code is not None and await repo.unit_code_taken(session, data.code):
        raise Conflict(f"单位编码 {data.code} 已被使用", code="unit_code_taken")
    unit = OrgUnit(
        code=data.code,
        name=data.name,
        kind=data.kind,
        parent_id=parent.id if parent else None,
        finance_department_id=finance_department_id,
        region_code=data.region_code,
        status=UnitStatus.ACTIVE,
    )
    await repo.add_unit(session, unit, parent)
    created = {"name": unit.name, "kind": unit.kind.value, "parent_id": unit.parent_id}
    await _record_change(session, principal, unit, UnitChangeKind.CREATED, None, created)
    return unit


async def _manageable_unit(session: AsyncSession, principal: Principal, unit_id: int) -> OrgUnit:
    await ensure_unit_in_scope(session, principal, unit_id)
    unit = await load_unit(session, unit_id)
    if unit.status != UnitStatus.ACTIVE:
        raise Conflict("该单位已合并或撤销，不能再变更", code="unit_inactive")
    return unit


async def rename_unit(
    session: AsyncSession, principal: Principal, unit_id: int, data: UnitRename
) -> OrgUnit:
    """更名: the unit keeps its id, hence its filings; the old name stays in its history."""
    unit = await _manageable_unit(session, principal, unit_id)
    if unit.name == data.name:
        return unit
    old = unit.name
    unit.name = data.name
    unit.updated_at = datetime.now(UTC)
    await _record_change(
        session,
        principal,
        unit,
        UnitChangeKind.RENAMED,
        {"name": old},
        {"name": data.name},
        reason=data.reason,
    )
    return unit


async def merge_unit(
    session: AsyncSession, principal: Principal, unit_id: int, data: UnitMerge
) -> OrgUnit:
    """合并: the unit becomes `merged` into another; its filings stay under its own id."""
    unit = await _manageable_unit(session, principal, unit_id)
    if data.into_unit_id == unit_id:
        raise ValidationFailed.at(
            ["body", "into_unit_id"], "不能合并到本单位自身", code="merge_into_self"
        )
    target = await _unit_ref(session, principal, data.into_unit_id, "into_unit_id")
    # lock both rows (in id order) and re-read them: two crossed merges (A into B, B into A)
    # must not both succeed
    await repo.lock_units(session, [unit.id, target.id])
    if unit.status != UnitStatus.ACTIVE:
        raise Conflict("该单位已合并或撤销，不能再变更", code="unit_inactive")
    if target.status != UnitStatus.ACTIVE or target.kind != unit.kind:
        raise ValidationFailed.at(
            ["body", "into_unit_id"], "合并目标须为同类且有效的单位", code="merge_target_invalid"
        )
    unit.status = UnitStatus.MERGED
    unit.merged_into_id = target.id
    unit.updated_at = datetime.now(UTC)
    await _record_change(
        session,
        principal,
        unit,
        UnitChangeKind.MERGED,
        {"status": "active", "merged_into_id": None},
        {"status": "merged", "merged_into_id": target.id},
        reason=data.reason,
        related_unit_id=target.id,
    )
    return unit


def contacts_values(data: ContactsIn) -> dict[str, str | None]:
    union = data.union_contact
    return {
        "contact_name": data.contact.name,
        "contact_mobile": data.contact.mobile,
        "contact_landline": data.contact.landline,
        "union_contact_name": union.name if union else None,
        "union_contact_mobile": union.mobile if union else None,
        "union_contact_landline": union.landline if union else None,
    }


async def set_unit_contacts(
    session: AsyncSession, principal: Principal, unit: OrgUnit, values: dict[str, str | None]
) -> dict[str, Any]:
    """Store the unit's contacts (no re-approval); history + audit log. Returns the diff."""
    old = {f: getattr(unit, f) for f in CONTACT_FIELDS}
    changes = audit.diff(old, values)
    if not changes:
        return {}
    for name, value in values.items():
        setattr(unit, name, value)
    unit.updated_at = datetime.now(UTC)
    await _record_change(
        session,
        principal,
        unit,
        UnitChangeKind.CONTACTS,
        {k: v[0] for k, v in changes.items()},
        {k: v[1] for k, v in changes.items()},
    )
    return changes


# ---------------------------------------------------------------------------------------------
# policy


async def put_policy(
    session: AsyncSession, principal: Principal, year: int, region_code: str, data: PolicyIn
) -> Policy:
    """Set fields of one (year, region) row: ops anywhere, a finance department for its region
    and the regions under it."""
    chain = await region_chain(session, region_code)
    if principal.role == Role.FINANCE:
        me = await ensure_finance_department(session, principal)
        if me.region_code not in chain:
            raise Forbidden(
                "财政部门只能设置本地区及下辖地区的政策", code="policy_region_forbidden"
            )
    sent = data.model_dump(exclude_unset=True)
    if region_code != NATIONAL_REGION and sent.get("national_floor") is not None:
        # a region may add a soft floor, but never lower (or move) the national one
        raise ValidationFailed.at(
            ["body", "national_floor"],
            f"全国最低预留比例只能在全国政策（{NATIONAL_REGION}）中设置；"
            "本地区的要求请填写 soft_floor（原则上不低于的比例）",
            code="national_floor_is_national",
        )
    row = await repo.lock_or_create_policy_row(session, year, region_code, principal.sub)
    old = {f: getattr(row, f) for f in POLICY_FIELDS}
    for name in POLICY_FIELDS:
        if name in sent:
            setattr(row, name, sent[name])
    row.updated_by = principal.sub
    row.updated_at = datetime.now(UTC)
    await session.flush()
    await audit.record(
        session,
        principal,
        "policy.updated",
        "policy",
        f"{year}/{region_code}",
        changes=audit.diff(old, {f: getattr(row, f) for f in POLICY_FIELDS}),
    )
    return row
