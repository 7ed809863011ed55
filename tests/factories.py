"""Plain async factories: `await make_unit(session, ...)`. They flush; the caller commits."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import (
    CanteenType,
    Filing,
    FilingEvent,
    FilingStatus,
    FilingVersion,
    Order,
    OrderStatus,
    OrgUnit,
    Policy,
    Region,
    Supplier,
    SupplierAccount,
    UnitKind,
)

BASE_REGIONS = [
    ("000000", "全国", None, 0),
    ("440000", "广东省", "000000", 1),
    ("440100", "广州市", "440000", 2),
    ("440300", "深圳市", "440000", 2),
    ("440600", "佛山市", "440000", 2),
    ("450000", "广西壮族自治区", "000000", 1),
]

_seq = itertools.count(1)


async def ensure_base_regions(session: AsyncSession) -> None:
    for code, name, parent, level in BASE_REGIONS:
        await session.execute(
            insert(Region)
            .values(code=code, name=name, parent_code=parent, level=level)
            .on_conflict_do_nothing()
        )


async def make_unit(
    session: AsyncSession,
    name: str | None = None,
    *,
    kind: UnitKind = UnitKind.BUDGET_UNIT,
    parent: OrgUnit | None = None,
    finance_department: OrgUnit | None = None,
    region_code: str = "440000",
    contact_mobile: str | None = None,
) -> OrgUnit:
    n = next(_seq)
    unit = OrgUnit(
        code=f"T{n:08d}",
        name=name or f"测试单位{n}",
        kind=kind,
        parent_id=parent.id if parent else None,
        finance_department_id=finance_department.id if finance_department else None,
        region_code=region_code,
        contact_name="张三" if contact_mobile else None,
        contact_mobile=contact_mobile,
    )
    session.add(unit)
    await session.flush()
    unit.place_under(parent)
    await session.flush()
    return unit


async def make_policy(
    session: AsyncSession,
    year: int = 2024,
    region_code: str = "000000",
    *,
    national_floor: str | None = None,
    encouraged_ratio: str | None = None,
    soft_floor: str | None = None,
    filing_deadline: date | None = None,
    non_settlement_cutoff: date | None = None,
) -> Policy:
    policy = Policy(
        year=year,
        region_code=region_code,
        national_floor=Decimal(national_floor) if national_floor else None,
        encouraged_ratio=Decimal(encouraged_ratio) if encouraged_ratio else None,
        soft_floor=Decimal(soft_floor) if soft_floor else None,
        filing_deadline=filing_deadline,
        non_settlement_cutoff=non_settlement_cutoff,
        updated_by="test",
    )
    session.add(policy)
    await session.flush()
    return policy


async def make_policy_2024(session: AsyncSession) -> None:
    """The 2024 rows of the notice: national floor 10%, encouraged 15%, Guangdong soft floor 30%,
    filing deadline 2024-02-20, non-settlement cut-off 2023-08-03."""
    await make_policy(
        session,
        2024,
        "000000",
        national_floor="10",
        encouraged_ratio="15",
        filing_deadline=date(2024, 2, 20),
        non_settlement_cutoff=date(2023, 8, 3),
    )
    await make_policy(session, 2024, "440000", soft_floor="30")


async def make_supplier(
    session: AsyncSession,
    name: str = "测试供应商",
    *,
    settlement_account: str | None = None,
    other_accounts: tuple[str, ...] = (),
) -> tuple[Supplier, SupplierAccount]:
    supplier = Supplier(name=name)
    session.add(supplier)
    await session.flush()
    n = next(_seq)
    settlement = SupplierAccount(
        supplier_id=supplier.id,
        holder_name=name,
        account_no=settlement_account or f"350001881{n:08d}",
        bank_name="测试银行",
        is_settlement=True,
    )
    session.add(settlement)
    for acct in other_accounts:
        session.add(
            SupplierAccount(
                supplier_id=supplier.id,
                holder_name=name,
                account_no=acct,
                bank_name="测试银行",
                is_settlement=False,
            )
        )
    await session.flush()
    return supplier, settlement


async def make_order(
    session: AsyncSession,
    *,
    buyer: OrgUnit,
    supplier: Supplier,
    settlement: SupplierAccount,
    amount: str,
    payment_code: str,
    order_no: str | None = None,
    status: OrderStatus = OrderStatus.PENDING_PAYMENT,
    placed_at: datetime | None = None,
) -> Order:
    order = Order(
        order_no=order_no or f"XD{next(_seq):018d}",
        buyer_unit_id=buyer.id,
        supplier_id=supplier.id,
        settlement_account_id=settlement.id,
        amount=Decimal(amount),
        payment_code=payment_code,
        payment_code_legacy=True,
        status=status,
        placed_at=placed_at or datetime(2024, 4, 1, tzinfo=UTC),
    )
    session.add(order)
    await session.flush()
    return order


async def get_unit(session: AsyncSession, unit_id: int) -> OrgUnit:
    return (await session.execute(select(OrgUnit).where(OrgUnit.id == unit_id))).scalar_one()


async def make_submitted_filing(
    session: AsyncSession,
    unit: OrgUnit,
    year: int = 2024,
    *,
    canteen_total: str = "1000000",
    canteen_ratio: str = "30",
    union_total: str | None = "200000",
    union_ratio: str | None = "20",
    status: FilingStatus = FilingStatus.SUBMITTED,
    flags: tuple[str, ...] = (),
    contact_mobile: str = "13812345678",
) -> Filing:
    """A submitted `own`-canteen filing with its version 1 snapshot and `submitted` event, as the
    filing service would leave it (for confirmation/aggregation tests)."""
    from shared.money import format_amount, percent_of

    total, ratio = Decimal(canteen_total), Decimal(canteen_ratio)
    has_union = union_total is not None and union_ratio is not None
    u_total = Decimal(union_total) if has_union and union_total is not None else None
    u_ratio = Decimal(union_ratio) if has_union and union_ratio is not None else None
    now = datetime.now(UTC)
    filing = Filing(
        unit_id=unit.id,
        year=year,
        status=status,
        canteen_status=status,
        union_status=status,
        canteen_type=CanteenType.OWN,
        canteen_total=total,
        canteen_ratio=ratio,
        reserved_amount=percent_of(total, ratio),
        union_has_need=has_union,
        union_total=u_total,
        union_ratio=u_ratio,
        union_expected_amount=percent_of(u_total, u_ratio) if u_total and u_ratio else None,
        union_remark=None if has_union else "无工会采购需求",
        contact_name="张三",
        contact_mobile=contact_mobile,
        flags=list(flags),
        version=1,
        submitted_at=now,
        submitted_by=f"unit:{unit.id}",
    )
    session.add(filing)
    await session.flush()

    def fmt(value: Decimal | None) -> str | None:
        return None if value is None else format_amount(value)

    snapshot = {
        "canteen_type": "own",
        "shared_filled_by": None,
        "representative_unit_id": None,
        "shared_unit_ids": [],
        "contractor_name": None,
        "canteen_total": fmt(filing.canteen_total),
        "canteen_ratio": fmt(filing.canteen_ratio),
        "remark": None,
        "reserved_amount": fmt(filing.reserved_amount),
        "union_has_need": has_union,
        "union_total": fmt(u_total),
        "union_ratio": fmt(u_ratio),
        "union_remark": filing.union_remark,
        "union_expected_amount": fmt(filing.union_expected_amount),
        "contact_name": "张三",
        "contact_mobile": contact_mobile,
        "contact_landline": None,
        "union_contact_name": None,
        "union_contact_mobile": None,
        "union_contact_landline": None,
        "justification": None,
        "flags": list(flags),
        "unit_name": unit.name,
        "year": year,
    }
    session.add(
        FilingVersion(
            filing_id=filing.id,
            version_no=1,
            snapshot=snapshot,
            submitted_by=f"unit:{unit.id}",
            submitted_at=now,
        )
    )
    session.add(
        FilingEvent(
            filing_id=filing.id,
            action="submitted",
            from_status="draft",
            to_status=FilingStatus.SUBMITTED.value,
            actor_sub=f"unit:{unit.id}",
            actor_role="unit",
            actor_unit_id=unit.id,
        )
    )
    await session.flush()
    return filing
