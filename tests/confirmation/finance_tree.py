"""A two-level finance tree for the finance-side tests (checks, aggregates, exports).

广东省财政厅 (province, region 440000)
├── 广东省教育厅 (department) ── 广东省实验中学, 广东省第二中学
├── 广东省林业局 (department, alone)
└── 广州市财政局 (city finance department, 440100)
    └── 广州市教育局 (department) ── 广州市第一中学
广西壮族自治区财政厅 (another province, 450000) ── 广西教育厅 (department)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import DepartmentSummary, OrgUnit, SummaryStatus, UnitKind
from tests.factories import make_policy_2024, make_unit

FD = UnitKind.FINANCE_DEPARTMENT


@dataclass
class FinanceTree:
    province: OrgUnit
    education: OrgUnit
    school: OrgUnit
    school2: OrgUnit
    forestry: OrgUnit
    city: OrgUnit
    city_education: OrgUnit
    city_school: OrgUnit
    other_province: OrgUnit
    other_department: OrgUnit


async def make_finance_tree(session: AsyncSession) -> FinanceTree:
    await make_policy_2024(session)
    province = await make_unit(session, "广东省财政厅", kind=FD, region_code="440000")
    education = await make_unit(session, "广东省教育厅", finance_department=province)
    school = await make_unit(
        session, "广东省实验中学", parent=education, finance_department=province
    )
    school2 = await make_unit(
        session, "广东省第二中学", parent=education, finance_department=province
    )
    forestry = await make_unit(session, "广东省林业局", finance_department=province)
    city = await make_unit(session, "广州市财政局", kind=FD, parent=province, region_code="440100")
    city_education = await make_unit(
        session, "广州市教育局", finance_department=city, region_code="440100"
    )
    city_school = await make_unit(
        session,
        "广州市第一中学",
        parent=city_education,
        finance_department=city,
        region_code="440100",
    )
    other_province = await make_unit(session, "广西壮族自治区财政厅", kind=FD, region_code="450000")
    other_department = await make_unit(
        session, "广西教育厅", finance_department=other_province, region_code="450000"
    )
    await session.commit()
    return FinanceTree(
        province,
        education,
        school,
        school2,
        forestry,
        city,
        city_education,
        city_school,
        other_province,
        other_department,
    )


async def make_summary(
    session: AsyncSession,
    department: OrgUnit,
    finance: OrgUnit,
    *,
    status: SummaryStatus = SummaryStatus.CONFIRMED,
    units: int = 1,
    reserved: str = "300000.00",
    year: int = 2024,
) -> DepartmentSummary:
    """A department summary as the department-summary flow leaves it (figures as submitted)."""
    summary = DepartmentSummary(
        year=year,
        department_unit_id=department.id,
        finance_department_id=finance.id,
        status=status,
        units_count=units,
        canteen_total=Decimal("1000000.00") * units,
        reserved_amount=Decimal(reserved),
        union_total=Decimal("200000.00") * units,
        union_expected_amount=Decimal("40000.00") * units,
        flagged_count=0,
        snapshot={"units": []},
        submitted_by=f"unit:{department.id}",
        submitted_at=datetime.now(UTC),
    )
    session.add(summary)
    await session.flush()
    await session.commit()
    return summary
