"""The superior's list (预留份额信息确认): this year against last year, flags, pages."""

from __future__ import annotations

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import get_engine
from shared.models import FilingStatus
from tests.conftest import auth
from tests.factories import make_submitted_filing, make_unit
from tests.filing.helpers import make_tree


async def test_pending_shows_this_year_against_last_year_with_change_and_flags(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await make_submitted_filing(
        session,
        tree.unit,
        2023,
        canteen_total="800000",
        canteen_ratio="25",
        status=FilingStatus.FINANCE_CONFIRMED,
    )
    filing = await make_submitted_filing(
        session,
        tree.unit,
        2024,
        canteen_total="1000000",
        canteen_ratio="30",
        flags=("sharp_change_total",),
    )
    await make_submitted_filing(session, tree.sibling, 2024, canteen_total="500000")
    await make_submitted_filing(session, tree.stranger, 2024)
    await session.commit()

    r = await confirmation_client.get(
        "/api/v1/confirmations/2024/pending", headers=auth("unit", tree.department.id)
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["unit_name"] for i in items] == ["广东省实验中学", "广东省第二中学"]
    first = items[0]
    assert first["filing_id"] == filing.id
    assert first["status"] == "submitted"
    assert first["current"]["canteen_total"] == "1000000.00"
    assert first["current"]["reserved_amount"] == "300000.00"
    assert first["current"]["union"] == {
        "has_need": True,
        "total": "200000.00",
        "ratio": "20.00",
        "expected_amount": "40000.00",
    }
    assert first["previous_year"]["canteen_total"] == "800000.00"
    assert first["previous_year"]["reserved_amount"] == "200000.00"
    # (1,000,000 − 800,000) / 800,000 = 25%; 30 − 25 = 5 points; (300,000 − 200,000) / 200,000
    assert first["change"] == {
        "canteen_total_pct": "25.00",
        "canteen_ratio_points": "5.00",
        "reserved_amount_pct": "50.00",
    }
    assert first["flags"] == ["sharp_change_total"]
    assert items[1]["previous_year"] is None
    assert items[1]["change"] == {
        "canteen_total_pct": None,
        "canteen_ratio_points": None,
        "reserved_amount_pct": None,
    }

    flagged = await confirmation_client.get(
        "/api/v1/confirmations/2024/pending?flag=sharp_change_total",
        headers=auth("unit", tree.department.id),
    )
    assert [i["filing_id"] for i in flagged.json()["items"]] == [filing.id]
    bad = await confirmation_client.get(
        "/api/v1/confirmations/2024/pending?flag=nonsense", headers=auth("unit", tree.department.id)
    )
    assert bad.status_code == 422

    # a unit without descendants sees nothing; its own filing is not "pending" for itself
    leaf = await confirmation_client.get(
        "/api/v1/confirmations/2024/pending", headers=auth("unit", tree.unit.id)
    )
    assert leaf.json() == {"items": [], "next_cursor": None}
    finance = await confirmation_client.get(
        "/api/v1/confirmations/2024/pending", headers=auth("finance", tree.finance.id)
    )
    assert finance.status_code == 403


async def test_pending_pages_with_one_query_per_page(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    middle = await make_unit(session, "中层单位", parent=tree.department)
    units = [await make_unit(session, f"下属{i}", parent=middle) for i in range(7)]
    for u in units:
        await make_submitted_filing(session, u, 2023)
        await make_submitted_filing(session, u, 2024)
    await session.commit()

    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        if "filings" in statement:
            statements.append(statement)

    sync_engine = get_engine().sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            url = "/api/v1/confirmations/2024/pending?limit=3"
            if cursor:
                url += f"&cursor={cursor}"
            r = await confirmation_client.get(url, headers=auth("unit", tree.department.id))
            assert r.status_code == 200, r.text
            pages += 1
            seen += [i["unit_id"] for i in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert seen == [u.id for u in units]
    assert pages == 3
    assert len(statements) == pages  # one query per page, not one per unit
    # the intermediate superior sees the same filings
    mid = await confirmation_client.get(
        "/api/v1/confirmations/2024/pending", headers=auth("unit", middle.id)
    )
    assert len(mid.json()["items"]) == 7
