"""Aggregating up the finance tree: the live aggregate, hand-overs city → province → platform,
returns and resubmits, immutable snapshots, and scope (another region is a 404)."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import AuditLog, FilingStatus, FinanceAggregate, UnitStatus
from tests.confirmation.finance_tree import FinanceTree, make_finance_tree, make_summary
from tests.conftest import auth
from tests.factories import make_submitted_filing, make_unit

Y = 2024


async def _file_everything(session: AsyncSession, t: FinanceTree) -> None:
    for unit in (t.education, t.school, t.forestry, t.city_education, t.city_school):
        await make_submitted_filing(session, unit, status=FilingStatus.CONFIRMED)
    await make_submitted_filing(session, t.school2, flags=("below_soft_floor",), canteen_ratio="20")
    await session.commit()


async def _audit(session: AsyncSession, entity_id: int) -> list[tuple[str, str | None]]:
    rows = await session.execute(
        select(AuditLog.action, AuditLog.reason)
        .where(AuditLog.entity_type == "finance_aggregate", AuditLog.entity_id == str(entity_id))
        .order_by(AuditLog.id)
    )
    return [(r.action, r.reason) for r in rows]


async def test_live_aggregate_shows_departments_regions_and_what_is_missing(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await _file_everything(session, t)

    r = await confirmation_client.get(
        f"/api/v1/finance/{Y}/aggregate", headers=auth("finance", t.province.id)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recipient"] == "platform"
    assert body["status"] == "not_submitted"
    assert body["ready"] is False
    # the whole province: 4 units at the province's level + 2 in Guangzhou
    assert body["totals"]["units"] == 6
    assert body["totals"]["filed"] == 6
    assert body["totals"]["confirmed"] == 5
    assert body["totals"]["flagged"] == 1
    # 5 × 300000.00 + 1000000 × 20% = 1,700,000.00
    assert body["totals"]["reserved_amount"] == "1700000.00"
    depts = {d["department_name"]: d for d in body["departments"]}
    assert set(depts) == {"广东省教育厅", "广东省林业局"}
    assert depts["广东省教育厅"]["units"] == 3
    assert depts["广东省教育厅"]["confirmed"] == 2
    assert depts["广东省教育厅"]["summary_status"] == "not_submitted"
    regions = [
        (g["finance_department_name"], g["units"], g["aggregate_status"]) for g in body["regions"]
    ]
    assert regions == [("广州市财政局", 2, "not_submitted")]
    assert {(m["kind"], m["name"]) for m in body["missing"]} == {
        ("department_summary", "广东省教育厅"),
        ("department_summary", "广东省林业局"),
        ("lower_aggregate", "广州市财政局"),
    }

    city = await confirmation_client.get(
        f"/api/v1/finance/{Y}/aggregate", headers=auth("finance", t.city.id)
    )
    assert city.json()["recipient"] == "finance_department"
    assert city.json()["totals"]["units"] == 2
    assert city.json()["regions"] == []


async def test_city_hands_up_province_returns_city_resubmits_province_hands_to_platform(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await _file_everything(session, t)
    city_h, prov_h = auth("finance", t.city.id), auth("finance", t.province.id)
    submit = f"/api/v1/finance/{Y}/aggregate/submit"

    r = await confirmation_client.post(submit, headers=city_h)
    assert r.status_code == 409
    assert r.json()["code"] == "aggregate_incomplete"
    assert r.json()["missing"] == [
        {
            "kind": "department_summary",
            "unit_id": t.city_education.id,
            "name": "广州市教育局",
            "status": "not_submitted",
        }
    ]
    assert "广州市教育局" in r.json()["detail"]

    await make_summary(session, t.city_education, t.city, units=2, reserved="600000.00")
    r = await confirmation_client.post(submit, headers=city_h)
    assert r.status_code == 201, r.text
    city_v1 = r.json()
    assert city_v1["recipient"] == "finance_department"
    assert city_v1["parent_finance_department_id"] == t.province.id
    assert (city_v1["version"], city_v1["status"]) == (1, "submitted")
    assert city_v1["units"] == 2
    assert city_v1["reserved_amount"] == "600000.00"
    assert city_v1["snapshot"]["departments"][0]["department_name"] == "广州市教育局"

    again = await confirmation_client.post(submit, headers=city_h)
    assert again.status_code == 409
    assert again.json()["code"] == "aggregate_already_submitted"

    # the city cannot decide its own hand-over; another province cannot see it
    own = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregates/{city_v1['id']}/confirm", json={}, headers=city_h
    )
    assert own.status_code == 404
    stranger = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregates/{city_v1['id']}/return",
        json={"reason": "x"},
        headers=auth("finance", t.other_province.id),
    )
    assert stranger.status_code == 404

    no_reason = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregates/{city_v1['id']}/return", json={}, headers=prov_h
    )
    assert no_reason.status_code == 422
    returned = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregates/{city_v1['id']}/return",
        json={"reason": "广州市教育局数据需核实"},
        headers=prov_h,
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned"
    assert returned.json()["decision_reason"] == "广州市教育局数据需核实"

    view = (await confirmation_client.get(f"/api/v1/finance/{Y}/aggregate", headers=prov_h)).json()
    assert view["regions"][0]["aggregate_status"] == "returned"

    r = await confirmation_client.post(submit, headers=city_h)
    assert r.status_code == 201
    city_v2 = r.json()
    assert (city_v2["version"], city_v2["status"]) == (2, "submitted")
    history = (
        await confirmation_client.get(f"/api/v1/finance/{Y}/aggregate", headers=city_h)
    ).json()["history"]
    assert [(h["version"], h["status"]) for h in history] == [(1, "returned"), (2, "submitted")]

    # the province: its own departments still block
    r = await confirmation_client.post(submit, headers=prov_h)
    assert r.status_code == 409
    assert {m["name"] for m in r.json()["missing"]} == {"广东省教育厅", "广东省林业局"}
    await make_summary(session, t.education, t.province, units=3, reserved="800000.00")
    await make_summary(
        session,
        t.forestry,
        t.province,
        units=1,
        reserved="300000.00",
    )
    r = await confirmation_client.post(submit, headers=prov_h)
    assert r.status_code == 201, r.text
    prov = r.json()
    assert prov["recipient"] == "platform"
    assert prov["parent_finance_department_id"] is None
    assert prov["units"] == 6
    assert prov["reserved_amount"] == "1700000.00"
    assert [g["aggregate_version"] for g in prov["snapshot"]["regions"]] == [2]

    # handing up took the city's version 2 with it
    city_now = await confirmation_client.get(
        f"/api/v1/finance/{Y}/aggregates/{city_v2['id']}", headers=city_h
    )
    assert city_now.json()["status"] == "confirmed"
    late_return = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregates/{city_v2['id']}/return",
        json={"reason": "太迟"},
        headers=prov_h,
    )
    assert late_return.status_code == 409
    assert late_return.json()["code"] == "aggregate_not_submitted"

    # the platform reads it; ops confirms it
    listed = await confirmation_client.get(
        f"/api/v1/platform/aggregates/{Y}", headers=auth("platform")
    )
    assert listed.status_code == 200
    assert [(a["id"], a["status"]) for a in listed.json()["items"]] == [(prov["id"], "submitted")]
    assert (
        await confirmation_client.get(
            f"/api/v1/platform/aggregates/{Y}", headers=auth("finance", t.province.id)
        )
    ).status_code == 403
    ok = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregates/{prov['id']}/confirm",
        json={"note": "已接收"},
        headers=auth("ops"),
    )
    assert ok.status_code == 200
    assert ok.json()["status"] == "confirmed"

    # immutable snapshots: the rows kept their figures; every step is in the audit log
    rows = (
        (await session.execute(select(FinanceAggregate).order_by(FinanceAggregate.id)))
        .scalars()
        .all()
    )
    assert [(a.finance_department_id, a.version, a.status.value) for a in rows] == [
        (t.city.id, 1, "returned"),
        (t.city.id, 2, "confirmed"),
        (t.province.id, 1, "confirmed"),
    ]
    assert await _audit(session, city_v1["id"]) == [
        ("aggregate.submitted", None),
        ("aggregate.returned", "广州市教育局数据需核实"),
    ]
    assert await _audit(session, city_v2["id"]) == [
        ("aggregate.submitted", None),
        ("aggregate.confirmed", "随上级汇总上报确认"),
    ]
    assert await _audit(session, prov["id"]) == [
        ("aggregate.submitted", None),
        ("aggregate.confirmed", "已接收"),
    ]


async def test_finance_never_sees_another_region(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    other = auth("finance", t.other_province.id)
    for path in (
        f"/api/v1/finance/{Y}/aggregate?finance_department_id={t.province.id}",
        f"/api/v1/finance/{Y}/checks?kind=not_filed&finance_department_id={t.city.id}",
        f"/api/v1/finance/{Y}/filings?department_id={t.education.id}",
        f"/api/v1/finance/{Y}/export.xlsx?finance_department_id={t.province.id}",
        f"/api/v1/departments/{t.education.id}/summary/{Y}/export.xlsx",
    ):
        r = await confirmation_client.get(path, headers=other)
        assert r.status_code == 404, (path, r.text)
    # a city never sees its parent's region
    r = await confirmation_client.get(
        f"/api/v1/finance/{Y}/aggregate?finance_department_id={t.province.id}",
        headers=auth("finance", t.city.id),
    )
    assert r.status_code == 404
    # a unit is no finance department; ops must name one
    assert (
        await confirmation_client.get(
            f"/api/v1/finance/{Y}/aggregate", headers=auth("unit", t.education.id)
        )
    ).status_code == 403
    assert (
        await confirmation_client.get(f"/api/v1/finance/{Y}/aggregate", headers=auth("ops"))
    ).status_code == 422
    assert (
        await confirmation_client.get(
            f"/api/v1/finance/{Y}/aggregate?finance_department_id={t.province.id}",
            headers=auth("ops"),
        )
    ).status_code == 200
    # a finance token bound to a budget unit is refused
    assert (
        await confirmation_client.get(
            f"/api/v1/finance/{Y}/aggregate", headers=auth("finance", t.education.id)
        )
    ).status_code == 403
    assert (
        await confirmation_client.post(f"/api/v1/finance/{Y}/aggregate/submit", headers=auth("ops"))
    ).status_code == 403


async def test_a_closed_city_with_a_returned_hand_over_is_left_out(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await _file_everything(session, t)
    await make_summary(session, t.city_education, t.city, units=2)
    await make_summary(session, t.education, t.province, units=3)
    await make_summary(session, t.forestry, t.province, units=1)
    city = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregate/submit", headers=auth("finance", t.city.id)
    )
    prov_h = auth("finance", t.province.id)
    r = await confirmation_client.post(
        f"/api/v1/finance/{Y}/aggregates/{city.json()['id']}/return",
        json={"reason": "撤并前退回"},
        headers=prov_h,
    )
    assert r.status_code == 200
    t.city.status = UnitStatus.REVOKED  # the city's finance department is closed (撤销)
    session.add(t.city)
    await session.commit()
    r = await confirmation_client.post(f"/api/v1/finance/{Y}/aggregate/submit", headers=prov_h)
    assert r.status_code == 201, r.text
    assert r.json()["snapshot"]["regions"] == []
    assert r.json()["units"] == 4


async def test_departments_hung_under_a_finance_department_are_counted_by_subtree(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    """A supervising unit whose parent is its finance department (not a root of the tree): the
    aggregate falls back to one range probe per department and counts the same."""
    t = await make_finance_tree(session)
    hung = await make_unit(
        session, "广东省水利厅", parent=t.province, finance_department=t.province
    )
    sub = await make_unit(session, "广东省水利厅下属站", parent=hung, finance_department=t.province)
    await make_submitted_filing(session, hung, status=FilingStatus.CONFIRMED)
    await make_submitted_filing(session, sub, flags=("union_zero_amounts",))
    await session.commit()
    body = (
        await confirmation_client.get(
            f"/api/v1/finance/{Y}/aggregate", headers=auth("finance", t.province.id)
        )
    ).json()
    depts = {d["department_name"]: d for d in body["departments"]}
    assert set(depts) == {"广东省教育厅", "广东省林业局", "广东省水利厅"}
    water = depts["广东省水利厅"]
    assert (water["units"], water["filed"], water["confirmed"], water["flagged"]) == (2, 2, 1, 1)
    assert water["reserved_amount"] == "600000.00"
    assert depts["广东省教育厅"]["units"] == 3
    assert body["totals"]["units"] == 8
    missing = {m["name"] for m in body["missing"]}
    assert "广东省水利厅" in missing
