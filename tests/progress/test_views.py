"""Unit and finance views: scope (404 outside), grouping, sorting, pagination, totals, the units
furthest behind, the Excel export with the same rows, the projection."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.confirmation.progress import project
from shared.auth import Role
from tests.conftest import auth
from tests.progress.helpers import Province, complete, drift, make_province, pay, post_order


async def _buy(client: httpx.AsyncClient, p: Province, unit, amount: str) -> None:
    order = await post_order(client, p, unit, amount)
    await pay(order)
    await complete(client, order)


async def test_scope_of_the_unit_view(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    p = await make_province(session)

    async def status(role: Role, me: int | None, unit_id: int) -> int:
        response = await confirmation_client.get(
            f"/api/v1/progress/2024/units/{unit_id}", headers=auth(role, me)
        )
        return response.status_code

    assert await status(Role.UNIT, p.a1.id, p.a1.id) == 200  # itself
    assert await status(Role.UNIT, p.dept_a.id, p.a1.id) == 200  # a descendant
    assert await status(Role.UNIT, p.a1.id, p.dept_a.id) == 404  # not its superior
    assert await status(Role.UNIT, p.dept_b.id, p.a1.id) == 404  # another department
    assert await status(Role.FINANCE, p.gd.id, p.b1.id) == 200  # the province sees its region
    assert await status(Role.FINANCE, p.gz.id, p.b1.id) == 200
    assert await status(Role.FINANCE, p.gz.id, p.a1.id) == 404  # not Guangzhou's
    assert await status(Role.OPS, None, p.a1.id) == 200
    assert await status(Role.OPS, None, 999999) == 404
    assert await status(Role.PLATFORM, None, p.a1.id) == 403
    bad_year = await confirmation_client.get(
        f"/api/v1/progress/12/units/{p.a1.id}", headers=auth(Role.OPS)
    )
    assert bad_year.status_code == 422


async def test_scope_of_the_finance_view(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    p = await make_province(session)

    async def status(role: Role, me: int | None, fd: int) -> int:
        response = await confirmation_client.get(
            f"/api/v1/progress/2024/finance/{fd}", headers=auth(role, me)
        )
        return response.status_code

    assert await status(Role.FINANCE, p.gd.id, p.gd.id) == 200
    assert await status(Role.FINANCE, p.gd.id, p.gz.id) == 200  # a department under it
    assert await status(Role.FINANCE, p.gz.id, p.gd.id) == 404  # not its superior
    assert await status(Role.OPS, None, p.gz.id) == 200
    assert await status(Role.OPS, None, p.a1.id) == 404  # a budget unit is no finance dept
    assert await status(Role.OPS, None, 999999) == 404
    assert await status(Role.UNIT, p.dept_a.id, p.gd.id) == 403
    export = await confirmation_client.get(
        f"/api/v1/progress/2024/finance/{p.gd.id}/export.xlsx", headers=auth(Role.FINANCE, p.gz.id)
    )
    assert export.status_code == 404


async def test_finance_views_group_sort_paginate_total_and_export(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    p = await make_province(session)
    # reserved 300000.00 each: a1 30 %, dept_a 10 %, b1 50 %, dept_b 0 %
    await _buy(payments_client, p, p.a1, "90000.00")
    await _buy(payments_client, p, p.dept_a, "30000.00")
    await _buy(payments_client, p, p.b1, "150000.00")
    headers = auth(Role.FINANCE, p.gd.id)
    url = f"/api/v1/progress/2024/finance/{p.gd.id}"

    first = await confirmation_client.get(url, params={"limit": 3}, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["name"] for r in body["items"]] == ["市公安局", "省教育厅", "省实验中学"]
    assert [r["canteen_completion_pct"] for r in body["items"]] == ["0.00", "10.00", "30.00"]
    assert body["totals"]["units_count"] == 4
    assert body["totals"]["reserved_amount"] == "1200000.00"
    assert body["totals"]["canteen_purchased"] == "270000.00"
    assert body["totals"]["canteen_completion_pct"] == "22.50"
    assert [r["name"] for r in body["behind"]][:2] == ["市公安局", "省教育厅"]
    second = await confirmation_client.get(
        url, params={"limit": 3, "cursor": body["next_cursor"]}, headers=headers
    )
    assert [r["name"] for r in second.json()["items"]] == ["市公安局分局"]
    assert second.json()["next_cursor"] is None

    desc = await confirmation_client.get(
        url, params={"sort": "canteen_purchased", "order": "desc"}, headers=headers
    )
    assert [r["canteen_purchased"] for r in desc.json()["items"]] == [
        "150000.00", "90000.00", "30000.00", "0.00",
    ]  # fmt: skip

    by_department = await confirmation_client.get(
        url, params={"group_by": "department", "order": "desc"}, headers=headers
    )
    rows = by_department.json()["items"]
    assert [(r["key"], r["name"], r["units_count"]) for r in rows] == [
        (str(p.dept_b.id), "市公安局", 2),
        (str(p.dept_a.id), "省教育厅", 2),
    ]
    assert [r["canteen_completion_pct"] for r in rows] == ["25.00", "20.00"]

    by_region = await confirmation_client.get(url, params={"group_by": "region"}, headers=headers)
    assert [(r["key"], r["name"], r["canteen_purchased"]) for r in by_region.json()["items"]] == [
        ("440000", "广东省", "120000.00"),
        ("440100", "广州市", "150000.00"),
    ]

    # a unit moved to another region: the group sums follow (org changes rebuild them)
    await session.execute(
        text("UPDATE org_units SET region_code = '440100' WHERE id = :id"), {"id": p.a1.id}
    )
    await session.commit()
    by_region = await confirmation_client.get(url, params={"group_by": "region"}, headers=headers)
    assert [(r["key"], r["canteen_purchased"]) for r in by_region.json()["items"]] == [
        ("440000", "30000.00"),
        ("440100", "240000.00"),
    ]
    assert (await drift(session))["drift_rows"] == 0

    # Guangzhou sees only its own units
    gz = await confirmation_client.get(
        f"/api/v1/progress/2024/finance/{p.gz.id}", headers=auth(Role.FINANCE, p.gz.id)
    )
    assert {r["name"] for r in gz.json()["items"]} == {"市公安局", "市公安局分局"}

    export = await confirmation_client.get(
        f"{url}/export.xlsx", params={"group_by": "department", "order": "desc"}, headers=headers
    )
    assert export.status_code == 200
    assert export.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][:6] == ("编号", "名称", "单位数", "预留份额", "食堂已采购", "完成率(%)")
    assert [(v[1], v[4]) for v in values[2:4]] == [("市公安局", 150000), ("省教育厅", 120000)]
    assert values[4][0] == "合计" and values[4][4] == 270000


def test_projection_from_the_pace_and_from_last_years_shape() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    june_end = datetime(2024, 6, 30, 12, tzinfo=tz)  # day 182 of 366
    monthly = {m: Decimal("100.00") for m in range(1, 7)}
    amount, method = project(2024, june_end, monthly, {})
    assert method == "ytd_pace"
    assert amount == Decimal("1206.59")  # 600 / (182 / 366)
    # last year: everything bought in December → half-year share 0 → pace fallback
    assert project(2024, june_end, monthly, {12: Decimal("10")})[1] == "ytd_pace"
    # last year: a quarter of the year's purchases by the end of June → ×4
    shape = {6: Decimal("25"), 12: Decimal("75")}
    assert project(2024, june_end, monthly, shape) == (Decimal("2400.00"), "last_year_shape")
    assert project(2023, june_end, monthly, {}) == (Decimal("600.00"), "actual")
    assert project(2025, june_end, {}, {}) == (Decimal("0.00"), "not_started")


async def test_unit_view_shape(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    p = await make_province(session)
    await _buy(payments_client, p, p.a1, "1000.00")
    response = await confirmation_client.get(
        f"/api/v1/progress/2024/units/{p.a1.id}", headers=auth(Role.UNIT, p.a1.id)
    )
    body = response.json()
    assert [m["month"] for m in body["monthly"]] == list(range(1, 13))
    assert body["monthly"][4]["amount"] == "1000.00"
    assert body["monthly"][4]["last_year_amount"] is None  # no 2023 purchases
    assert body["projection"] == {
        "year_end_amount": "1000.00",  # 2024 is over
        "on_track": False,
        "method": "actual",
    }
    assert body["as_of"]


async def test_a_year_without_purchases_reads_as_zero_for_every_grouping(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    """Found against `make run`: a finance department whose region has no counted order in the
    year answered 500 when grouped by department or region (an empty sum of units)."""
    p = await make_province(session)
    for group_by in ("department", "region", "unit"):
        url = f"/api/v1/progress/2031/finance/{p.gd.id}?group_by={group_by}"
        response = await confirmation_client.get(url, headers=auth(Role.FINANCE, p.gd.id))
        assert response.status_code == 200, (group_by, response.text)
        body = response.json()
        assert body["items"] == []
        assert body["totals"]["units_count"] == 0
        export = await confirmation_client.get(
            f"/api/v1/progress/2031/finance/{p.gd.id}/export.xlsx?group_by={group_by}",
            headers=auth(Role.FINANCE, p.gd.id),
        )
        assert export.status_code == 200
        assert load_workbook(io.BytesIO(export.content)).worksheets
