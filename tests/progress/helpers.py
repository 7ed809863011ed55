"""Helpers for the progress tests: a small province, orders through the payments API, payments
through the real matcher (statement lines), completions through the API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import matching
from shared.auth import Role
from shared.models import OrgUnit, UnitKind
from tests.conftest import auth
from tests.factories import make_submitted_filing, make_supplier, make_unit
from tests.payments.helpers import store_rows

ACCOUNT = "35000188110512001"
_codes = itertools.count(1)
_refs = itertools.count(1)


@dataclass
class Province:
    gd: OrgUnit  # provincial finance department
    gz: OrgUnit  # Guangzhou finance department (under gd)
    dept_a: OrgUnit  # provincial department (finance gd)
    a1: OrgUnit  # its subordinate unit
    dept_b: OrgUnit  # Guangzhou department (finance gz)
    b1: OrgUnit
    supplier_id: int


async def make_province(session: AsyncSession, *, filings: bool = True) -> Province:
    fd = UnitKind.FINANCE_DEPARTMENT
    gd = await make_unit(session, "广东省财政厅", kind=fd)
    gz = await make_unit(session, "广州市财政局", kind=fd, parent=gd, region_code="440100")
    dept_a = await make_unit(session, "省教育厅", finance_department=gd)
    a1 = await make_unit(session, "省实验中学", parent=dept_a, finance_department=gd)
    dept_b = await make_unit(session, "市公安局", finance_department=gz, region_code="440100")
    b1 = await make_unit(
        session, "市公安局分局", parent=dept_b, finance_department=gz, region_code="440100"
    )
    supplier, _ = await make_supplier(session, "帮扶供应商", settlement_account=ACCOUNT)
    if filings:
        # reserved 300000.00 (1,000,000 × 30 %), union expected 40000.00 (200,000 × 20 %)
        for unit in (dept_a, a1, dept_b, b1):
            await make_submitted_filing(session, unit, 2024)
    await session.commit()
    return Province(gd, gz, dept_a, a1, dept_b, b1, supplier.id)


def next_code() -> str:
    return f"p{next(_codes):05d}"


async def post_order(
    client: httpx.AsyncClient,
    p: Province,
    unit: OrgUnit,
    amount: str,
    *,
    channel: str | None = "unit",
    origin: str | None = None,
    placed_at: str = "2024-03-01T10:00:00+08:00",
) -> dict[str, Any]:
    code = next_code()
    body: dict[str, Any] = {
        "order_no": f"XD{code}",
        "buyer_unit_id": unit.id,
        "supplier_id": p.supplier_id,
        "amount": amount,
        "placed_at": placed_at,
        "origin_county": origin,
        "payment_code": code,
    }
    if channel is not None:
        body["purchase_channel"] = channel
    response = await client.post("/api/v1/orders", json=body, headers=auth(Role.PLATFORM))
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


async def pay(
    order: dict[str, Any], *, at: str = "2024-04-10 10:00:00", amount: str | None = None
) -> None:
    """A bank line naming the order's code, matched by the real matcher."""
    await store_rows(
        [
            {
                "ref": f"R{next(_refs):08d}",
                "account": ACCOUNT,
                "amount": amount or order["amount"],
                "remark": order["payment_code"],
                "at": at,
            }
        ]
    )
    await matching.match_pending()


async def complete(
    client: httpx.AsyncClient, order: dict[str, Any], at: str | None = "2024-05-02T09:00:00+08:00"
) -> httpx.Response:
    """`at=None`: no body, the platform's completion is now."""
    return await client.post(
        f"/api/v1/orders/{order['order_no']}/complete",
        json={"completed_at": at} if at else {},
        headers=auth(Role.PLATFORM),
    )


async def unit_view(
    client: httpx.AsyncClient,
    unit: OrgUnit,
    *,
    year: int = 2024,
    role: Role = Role.OPS,
    as_unit: int | None = None,
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/progress/{year}/units/{unit.id}", headers=auth(role, as_unit)
    )
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


async def drift(session: AsyncSession) -> dict[str, Any]:
    from services.confirmation.progress import check_drift

    report = await check_drift(session)
    await session.commit()
    return report


async def counters(session: AsyncSession) -> list[Any]:
    rows = list(
        await session.execute(
            text(
                "SELECT year, unit_id, channel, month, area_class, amount, orders "
                "FROM progress_counters WHERE orders <> 0 ORDER BY 1, 2, 3, 4, 5"
            )
        )
    )
    await session.commit()
    return rows
