"""`make seed` loads reference data, the 2024 policy and a demo organisation, idempotently."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import unit_of_work
from shared.models import Base, OrgUnit, PairedCounty, Policy
from shared.seed import seed


async def _row_counts(session: AsyncSession) -> dict[str, int]:
    counts = {}
    for table in Base.metadata.sorted_tables:
        counts[table.name] = (
            await session.execute(text(f'SELECT count(*) FROM "{table.name}"'))
        ).scalar_one()
    return counts


async def test_seed_twice_gives_the_same_row_counts() -> None:
    async with unit_of_work() as session:
        await seed(session)
    async with unit_of_work() as session:
        first = await _row_counts(session)
    async with unit_of_work() as session:
        added = await seed(session)
    async with unit_of_work() as session:
        second = await _row_counts(session)

    assert first == second
    assert all(n == 0 for n in added.values())
    assert first["org_units"] == 13 and first["paired_counties"] == 99


async def test_seed_loads_the_2024_policy_and_the_named_key_counties(session: AsyncSession) -> None:
    async with unit_of_work() as s:
        await seed(s)
    policies = {p.region_code: p for p in (await session.execute(select(Policy))).scalars()}
    assert policies["000000"].national_floor == Decimal("10.00")
    assert policies["000000"].encouraged_ratio == Decimal("15.00")
    assert policies["000000"].non_settlement_cutoff == date(2023, 8, 3)
    assert policies["440000"].soft_floor == Decimal("30.00")
    assert policies["440000"].filing_deadline == date(2024, 2, 20)
    key_counties = await session.scalar(
        select(func.count()).where(PairedCounty.national_key_assistance_county.is_(True))
    )
    # The notice names 40 key counties but lists 36: Guizhou's last 4 were still to be decided
    # (还有 4 个县待贵州省定); the data marks exactly the named ones.
    assert key_counties == 36


async def test_seeded_departments_nest_three_levels_under_their_finance_department(
    session: AsyncSession,
) -> None:
    async with unit_of_work() as s:
        await seed(s)
    units = {u.code: u for u in (await session.execute(select(OrgUnit))).scalars()}
    leaf, middle, top = units["GD-JYT-SYZX-FX"], units["GD-JYT-SYZX"], units["GD-JYT"]
    assert leaf.parent_id == middle.id and middle.parent_id == top.id and top.parent_id is None
    assert leaf.path == f"/{top.id}/{middle.id}/{leaf.id}/"
    assert {u.finance_department_id for u in (leaf, middle, top)} == {units["GD-CZT"].id}
    assert units["GZ-CZJ"].parent_id == units["GD-CZT"].id
