"""Checks and rankings (异常填报 / 未填报) over a finance department's whole scope, and the finance
filing list: every kind of API.md, the flags computed at submit reused as they are."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import CanteenType, FilingStatus
from tests.confirmation.finance_tree import FinanceTree, make_finance_tree
from tests.conftest import auth
from tests.factories import make_submitted_filing

Y = 2024


async def _filings(session: AsyncSession, t: FinanceTree) -> None:
    """education: confirmed, flagged below the soft floor at submit (20%);
    school: submitted, shared mobile flag; forestry: not filed; school2: a `none` canteen whose
    remark is not 无食堂 (legacy data), confirmed; city_school: 8% (below today's national floor);
    city_education: not filed."""
    await make_submitted_filing(
        session,
        t.education,
        canteen_ratio="20",
        status=FilingStatus.CONFIRMED,
        flags=("below_soft_floor",),
    )
    await make_submitted_filing(
        session, t.school, flags=("shared_contact_mobile",), contact_mobile="13900001111"
    )
    f = await make_submitted_filing(session, t.school2, status=FilingStatus.CONFIRMED)
    f.canteen_type = CanteenType.NONE
    f.canteen_total = f.canteen_ratio = f.reserved_amount = None
    f.remark = "无饭堂"
    await make_submitted_filing(session, t.city_school, canteen_ratio="8")
    await make_submitted_filing(session, t.other_department, flags=("below_soft_floor",))
    await session.commit()


async def _check(client: httpx.AsyncClient, kind: str, unit_id: int, **params: str) -> dict:
    r = await client.get(
        f"/api/v1/finance/{Y}/checks",
        params={"kind": kind, **params},
        headers=auth("finance", unit_id),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_every_check_kind_over_the_whole_province(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await _filings(session, t)
    c, p = confirmation_client, t.province.id

    def names(body: dict) -> list[str]:
        return [i["unit_name"] for i in body["items"]]

    not_filed = await _check(c, "not_filed", p)
    assert names(not_filed) == ["广东省林业局", "广州市教育局"]
    assert not_filed["total"] == 2
    first = not_filed["items"][0]
    # today is pinned to 2024-02-01; the deadline is 2024-02-20
    assert (first["deadline"], first["days_left"], first["close_to_deadline"]) == (
        "2024-02-20",
        19,
        False,
    )

    soft = await _check(c, "below_soft_floor", p)
    assert names(soft) == ["广东省教育厅"]  # the flag of the submit, not Guangxi's
    assert soft["items"][0]["canteen_ratio"] == "20.00"
    assert soft["items"][0]["threshold"] == "30.00"

    national = await _check(c, "below_national_floor", p)
    assert names(national) == ["广州市第一中学"]
    assert national["items"][0]["threshold"] == "10.00"

    flagged = await _check(c, "flagged", p)
    assert names(flagged) == ["广东省教育厅", "广东省实验中学"]
    only_mobile = await _check(c, "flagged", p, flag="shared_contact_mobile")
    assert names(only_mobile) == ["广东省实验中学"]

    shared = await _check(c, "shared_contact", p)
    assert names(shared) == ["广东省实验中学"]
    assert shared["items"][0]["contact_mobile"] == "139****1111"

    not_confirmed = await _check(c, "not_confirmed", p)
    assert names(not_confirmed) == ["广东省实验中学", "广州市第一中学"]

    remark = await _check(c, "no_canteen_remark", p)
    assert names(remark) == ["广东省第二中学"]
    assert remark["items"][0]["remark"] == "无饭堂"

    # the city sees only its own region
    assert names(await _check(c, "not_filed", t.city.id)) == ["广州市教育局"]
    assert names(await _check(c, "below_soft_floor", t.city.id)) == []


async def test_not_filed_close_to_the_deadline(
    session: AsyncSession, confirmation_client: httpx.AsyncClient, today: list[date]
) -> None:
    t = await make_finance_tree(session)
    today[0] = date(2024, 2, 17)
    body = await _check(confirmation_client, "not_filed", t.city.id)
    assert [(i["unit_name"], i["days_left"], i["close_to_deadline"]) for i in body["items"]] == [
        ("广州市教育局", 3, True),
        ("广州市第一中学", 3, True),
    ]
    today[0] = date(2024, 2, 21)
    body = await _check(confirmation_client, "not_filed", t.city.id)
    assert body["items"][0]["days_left"] == -1
    assert body["items"][0]["close_to_deadline"] is False


async def test_checks_paginate_and_refuse_bad_input(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    c = confirmation_client
    first = await _check(c, "not_filed", t.province.id, limit="4")
    assert len(first["items"]) == 4
    assert first["total"] == 6
    rest = await _check(c, "not_filed", t.province.id, limit="4", cursor=first["next_cursor"])
    assert len(rest["items"]) == 2
    assert rest["next_cursor"] is None
    ids = [i["unit_id"] for i in first["items"] + rest["items"]]
    assert ids == sorted(set(ids))

    for params in ({"kind": "everything"}, {}, {"kind": "flagged", "flag": "x"}):
        r = await c.get(
            f"/api/v1/finance/{Y}/checks", params=params, headers=auth("finance", t.province.id)
        )
        assert r.status_code == 422, params
        assert r.json()["code"] == "validation_failed"
    r = await c.get(
        f"/api/v1/finance/{Y}/checks?kind=not_filed", headers=auth("unit", t.education.id)
    )
    assert r.status_code == 403
    r = await c.get(f"/api/v1/finance/{Y}/checks?kind=not_filed", headers=auth("ops"))
    assert r.status_code == 200
    assert r.json()["total"] == 7  # every province


async def test_finance_filings_by_status_flag_and_department(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await _filings(session, t)
    h = auth("finance", t.province.id)

    async def listing(**params: str) -> list[str]:
        r = await confirmation_client.get(f"/api/v1/finance/{Y}/filings", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [i["unit_name"] for i in r.json()["items"]]

    assert await listing() == ["广东省教育厅", "广东省实验中学", "广东省第二中学", "广州市第一中学"]
    assert await listing(status="confirmed") == ["广东省教育厅", "广东省第二中学"]
    assert await listing(flag="below_soft_floor") == ["广东省教育厅"]
    assert await listing(department_id=str(t.education.id)) == [
        "广东省教育厅",
        "广东省实验中学",
        "广东省第二中学",
    ]
    assert await listing(department_id=str(t.city_education.id)) == ["广州市第一中学"]
    r = await confirmation_client.get(
        f"/api/v1/finance/{Y}/filings?department_id={t.other_department.id}", headers=h
    )
    assert r.status_code == 404
    r = await confirmation_client.get(f"/api/v1/finance/{Y}/filings?status=nonsense", headers=h)
    assert r.status_code == 422
    # the city's list holds only its region; amounts are strings with two decimals
    r = await confirmation_client.get(
        f"/api/v1/finance/{Y}/filings", headers=auth("finance", t.city.id)
    )
    items = r.json()["items"]
    assert [(i["unit_name"], i["reserved_amount"]) for i in items] == [
        ("广州市第一中学", str(Decimal("80000.00")))
    ]


async def test_every_check_answers_for_a_year_without_policy(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await make_submitted_filing(session, t.school, year=2030, canteen_ratio="5")
    await session.commit()
    for kind in (
        "not_filed",
        "below_national_floor",
        "below_soft_floor",
        "flagged",
        "not_confirmed",
        "no_canteen_remark",
        "shared_contact",
    ):
        r = await confirmation_client.get(
            f"/api/v1/finance/2030/checks?kind={kind}", headers=auth("finance", t.province.id)
        )
        assert r.status_code == 200, (kind, r.text)
        if kind == "not_filed":
            assert r.json()["total"] == 5
            assert r.json()["items"][0]["deadline"] is None  # no policy, no deadline
        if kind == "below_national_floor":
            assert r.json()["items"] == []  # no floor to be below
