"""Anomaly flags computed at submit (README "Filing flags")."""

from __future__ import annotations

from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import make_policy, make_submitted_filing, make_unit
from tests.filing.helpers import make_tree, own_body, save_and_submit, shared_other_body


async def _file_2023(session, client, unit, body, today):
    await make_policy(
        session, 2023, "000000", national_floor="10", filing_deadline=date(2023, 3, 1)
    )
    await session.commit()
    today[0] = date(2023, 2, 1)
    await save_and_submit(client, unit, body, year=2023)
    today[0] = date(2024, 2, 1)


async def test_sharp_change_from_last_year_flagged(
    session: AsyncSession, filing_client: httpx.AsyncClient, today: list[date]
) -> None:
    tree = await make_tree(session)
    await _file_2023(session, filing_client, tree.unit, own_body("1000000", "30"), today)
    response = await save_and_submit(filing_client, tree.unit, own_body("400000", "50"))
    assert response.json()["flags"] == ["sharp_change_total", "sharp_change_ratio"]


async def test_moderate_change_from_last_year_not_flagged(
    session: AsyncSession, filing_client: httpx.AsyncClient, today: list[date]
) -> None:
    tree = await make_tree(session)
    await _file_2023(session, filing_client, tree.unit, own_body("1000000", "30"), today)
    response = await save_and_submit(filing_client, tree.unit, own_body("1500000", "45"))
    assert response.json()["flags"] == []


async def test_shared_other_whose_representative_has_not_filed_flagged(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    body = shared_other_body(tree.sibling.id)
    response = await save_and_submit(filing_client, tree.unit, body)
    assert response.json()["flags"] == ["representative_not_filed"]
    assert response.json()["remark"] == "共用广东省第二中学食堂"

    representative = own_body(canteen_type="shared", shared_filled_by="self")
    await save_and_submit(filing_client, tree.sibling, representative)
    other = {**body, "contact": {"name": "钱七", "mobile": "13600000000"}, "union_contact": None}
    later = await save_and_submit(filing_client, tree.stranger, other)
    assert later.json()["flags"] == []


async def test_union_yes_with_zero_amounts_flagged(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    union = {"has_need": True, "total": "0", "ratio": "20"}
    response = await save_and_submit(filing_client, tree.unit, own_body(union=union))
    assert response.json()["flags"] == ["union_zero_amounts"]
    assert response.json()["union_expected_amount"] == "0.00"


async def test_contact_mobile_used_by_unrelated_units_flagged(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    # a unit of another department already uses the mobile as its contact
    await make_unit(session, "广州市某局", contact_mobile="13812345678")
    await session.commit()
    response = await save_and_submit(filing_client, tree.unit, own_body())
    assert response.json()["flags"] == ["shared_contact_mobile"]


async def test_contact_mobile_shared_inside_one_department_not_flagged(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await save_and_submit(filing_client, tree.sibling, own_body())
    response = await save_and_submit(filing_client, tree.unit, own_body())
    assert response.json()["flags"] == []
    stranger = await save_and_submit(filing_client, tree.stranger, own_body())
    assert stranger.json()["flags"] == ["shared_contact_mobile"]


async def test_sharp_change_compares_with_last_years_submitted_version(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await make_submitted_filing(
        session, tree.unit, 2023, canteen_total="100000", canteen_ratio="30"
    )
    await session.commit()
    response = await save_and_submit(filing_client, tree.unit, own_body("1000000", "30"))
    assert response.json()["flags"] == ["sharp_change_total"]
    assert response.json()["previous_year"]["canteen_total"] == "100000.00"
