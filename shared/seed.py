"""Reference data and a small demo organisation: `python -m shared.seed` (run by `make run`).

Idempotent: every row is keyed by a natural key (region code, unit code, (year, region), ...) and
inserted only when missing, so running it twice changes nothing. Reference data comes from the
project's own copies in `shared/data/` (paired counties, paired areas, service-centre codes).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import dispose_engine, unit_of_work
from shared.models import (
    OrgUnit,
    PairedArea,
    PairedCounty,
    Policy,
    Region,
    ServiceCentreCode,
    UnitKind,
)

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).parent / "data"
SEED_ACTOR = "seed"

REGIONS: list[tuple[str, str, str | None, int]] = [
    ("000000", "全国", None, 0),
    ("440000", "广东省", "000000", 1),
    ("450000", "广西壮族自治区", "000000", 1),
    ("520000", "贵州省", "000000", 1),
    ("540000", "西藏自治区", "000000", 1),
    ("650000", "新疆维吾尔自治区", "000000", 1),
    ("440100", "广州市", "440000", 2),
    ("440200", "韶关市", "440000", 2),
    ("440300", "深圳市", "440000", 2),
    ("440400", "珠海市", "440000", 2),
    ("440500", "汕头市", "440000", 2),
    ("440600", "佛山市", "440000", 2),
    ("440700", "江门市", "440000", 2),
    ("440800", "湛江市", "440000", 2),
    ("440900", "茂名市", "440000", 2),
    ("441200", "肇庆市", "440000", 2),
    ("441300", "惠州市", "440000", 2),
    ("441400", "梅州市", "440000", 2),
    ("441500", "汕尾市", "440000", 2),
    ("441600", "河源市", "440000", 2),
    ("441700", "阳江市", "440000", 2),
    ("441800", "清远市", "440000", 2),
    ("441900", "东莞市", "440000", 2),
    ("442000", "中山市", "440000", 2),
    ("445100", "潮州市", "440000", 2),
    ("445200", "揭阳市", "440000", 2),
    ("445300", "云浮市", "440000", 2),
]

# The 2024 policy of the notice (粤财采购〔2024〕号 notice of 2024-01-30), as data.
POLICIES_2024: list[dict[str, Any]] = [
    {
        "year": 2024,
        "region_code": "000000",
        "national_floor": Decimal("10.00"),
        "encouraged_ratio": Decimal("15.00"),
        "non_settlement_cutoff": date(2023, 8, 3),
        # SMS reminders to units that have not submitted: 7 and 1 days before the deadline
        "reminder_days_first": 7,
        "reminder_days_second": 1,
    },
    {
        "year": 2024,
        "region_code": "440000",
        "soft_floor": Decimal("30.00"),
        "filing_deadline": date(2024, 2, 20),
    },
]


@dataclass(frozen=True)
class DemoUnit:
    code: str
    name: str
    kind: UnitKind
    region_code: str
    parent: str | None = None  # code of the superior
    finance: str | None = None  # code of the finance department of its level
    contact_name: str | None = None
    contact_mobile: str | None = None


FD = UnitKind.FINANCE_DEPARTMENT
BU = UnitKind.BUDGET_UNIT

DEMO_UNITS: list[DemoUnit] = [
    DemoUnit("GD-CZT", "广东省财政厅", FD, "440000"),
    DemoUnit("GZ-CZJ", "广州市财政局", FD, "440100", parent="GD-CZT"),
    DemoUnit("SZ-CZJ", "深圳市财政局", FD, "440300", parent="GD-CZT"),
    # provincial department, three levels deep
    DemoUnit(
        "GD-JYT",
        "广东省教育厅",
        BU,
        "440000",
        finance="GD-CZT",
        contact_name="陈主任",
        contact_mobile="13800000001",
    ),
    DemoUnit(
        "GD-JYT-SYZX",
        "广东实验中学",
        BU,
        "440000",
        parent="GD-JYT",
        finance="GD-CZT",
        contact_name="李老师",
        contact_mobile="13800000002",
    ),
    DemoUnit(
        "GD-JYT-SYZX-FX",
        "广东实验中学附属天河学校",
        BU,
        "440000",
        parent="GD-JYT-SYZX",
        finance="GD-CZT",
        contact_name="王老师",
        contact_mobile="13800000003",
    ),
    DemoUnit(
        "GD-WJW",
        "广东省卫生健康委员会",
        BU,
        "440000",
        finance="GD-CZT",
        contact_name="黄科长",
        contact_mobile="13800000004",
    ),
    DemoUnit(
        "GD-WJW-RMYY",
        "广东省人民医院",
        BU,
        "440000",
        parent="GD-WJW",
        finance="GD-CZT",
        contact_name="周主任",
        contact_mobile="13800000005",
    ),
    # Guangzhou city departments
    DemoUnit(
        "GZ-JYJ",
        "广州市教育局",
        BU,
        "440100",
        finance="GZ-CZJ",
        contact_name="赵科长",
        contact_mobile="13800000006",
    ),
    DemoUnit(
        "GZ-JYJ-YZ",
        "广州市第一中学",
        BU,
        "440100",
        parent="GZ-JYJ",
        finance="GZ-CZJ",
        contact_name="孙老师",
        contact_mobile="13800000007",
    ),
    DemoUnit(
        "GZ-JYJ-YZ-ST",
        "广州市第一中学后勤服务中心",
        BU,
        "440100",
        parent="GZ-JYJ-YZ",
        finance="GZ-CZJ",
        contact_name="吴主任",
        contact_mobile="13800000008",
    ),
    # Shenzhen city department
    DemoUnit(
        "SZ-GAJ",
        "深圳市公安局",
        BU,
        "440300",
        finance="SZ-CZJ",
        contact_name="郑科长",
        contact_mobile="13800000009",
    ),
    DemoUnit(
        "SZ-GAJ-FT",
        "深圳市公安局福田分局",
        BU,
        "440300",
        parent="SZ-GAJ",
        finance="SZ-CZJ",
        contact_name="冯警官",
        contact_mobile="13800000010",
    ),
]


def _read_csv(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


async def _insert_missing(
    session: AsyncSession, model: type[Any], rows: list[dict[str, Any]], keys: list[str]
) -> int:
    if not rows:
        return 0
    stmt = insert(model).values(rows).on_conflict_do_nothing(index_elements=keys)
    result = await session.execute(stmt.returning(getattr(model, keys[0])))
    return len(result.all())


async def seed_reference_data(session: AsyncSession) -> dict[str, int]:
    added: dict[str, int] = {}
    added["regions"] = await _insert_missing(
        session,
        Region,
        [{"code": c, "name": n, "parent_code": p, "level": lv} for c, n, p, lv in REGIONS],
        ["code"],
    )
    added["paired_counties"] = await _insert_missing(
        session,
        PairedCounty,
        [
            {
                "province": r["province"],
                "prefecture": r["prefecture"],
                "county": r["county"],
                "paired_guangdong_city": r["paired_guangdong_city"],
                "national_key_assistance_county": r["national_key_assistance_county"] == "yes",
            }
            for r in _read_csv("guangdong_paired_counties.csv")
        ],
        ["province", "county"],
    )
    added["paired_areas"] = await _insert_missing(
        session, PairedArea, _read_csv("guangdong_paired_areas_other.csv"), ["province", "area"]
    )
    added["service_centre_codes"] = await _insert_missing(
        session,
        ServiceCentreCode,
        [
            {
                "served_area": r["served_area"],
                "region_code": r["region_code"],
                "note": r["note"] or None,
            }
            for r in _read_csv("guangdong_service_center_codes.csv")
        ],
        ["served_area", "region_code"],
    )
    policy_fields = dict.fromkeys(
        [
            "national_floor",
            "encouraged_ratio",
            "soft_floor",
            "filing_deadline",
            "non_settlement_cutoff",
            "reminder_days_first",
            "reminder_days_second",
        ]
    )
    added["policies"] = await _insert_missing(
        session,
        Policy,
        [{**policy_fields, **p, "updated_by": SEED_ACTOR} for p in POLICIES_2024],
        ["year", "region_code"],
    )
    return added


async def seed_demo_units(session: AsyncSession) -> int:
    """Insert the demo organisation (superiors before subordinates); existing codes are kept."""
    by_code: dict[str, OrgUnit] = {
        u.code: u
        for u in (
            await session.execute(
                select(OrgUnit).where(OrgUnit.code.in_([d.code for d in DEMO_UNITS]))
            )
        ).scalars()
    }
    added = 0
    for demo in DEMO_UNITS:
        if demo.code in by_code:
            continue
        parent = by_code[demo.parent] if demo.parent else None
        unit = OrgUnit(
            code=demo.code,
            name=demo.name,
            kind=demo.kind,
            parent_id=parent.id if parent else None,
            finance_department_id=by_code[demo.finance].id if demo.finance else None,
            region_code=demo.region_code,
            contact_name=demo.contact_name,
            contact_mobile=demo.contact_mobile,
        )
        session.add(unit)
        await session.flush()
        unit.place_under(parent)
        by_code[demo.code] = unit
        added += 1
    await session.flush()
    return added


async def seed(session: AsyncSession) -> dict[str, int]:
    added = await seed_reference_data(session)
    added["org_units"] = await seed_demo_units(session)
    return added


async def _main() -> None:
    async with unit_of_work() as session:
        added = await seed(session)
        units = (
            await session.execute(
                select(OrgUnit.id, OrgUnit.code, OrgUnit.name).order_by(OrgUnit.id)
            )
        ).all()
    await dispose_engine()
    print("seed: rows added " + ", ".join(f"{k}={v}" for k, v in added.items()), file=sys.stderr)
    print("demo units (id code name):", file=sys.stderr)
    for unit in units:
        print(f"  {unit.id:>4} {unit.code:<16} {unit.name}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(_main())
