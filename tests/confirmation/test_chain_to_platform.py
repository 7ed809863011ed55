"""The chain's upper half through the HTTP API on real PostgreSQL: units of a province and of one
of its cities file, superiors confirm, departments summarise, each finance department confirms
its summaries, the city hands its region up (refused while a summary awaits), the province hands
the province to the platform (refused while its own summaries await), ops confirms receipt.
Filing statuses, outbox rows, audit rows and the aggregates' statuses are asserted."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.confirmation.finance_tree import make_finance_tree
from tests.confirmation.helpers import audit_actions, decide, file, outbox, statuses
from tests.conftest import auth

Y = 2024


async def test_city_hands_up_then_province_hands_to_the_platform(
    session: AsyncSession,
    filing_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    t = await make_finance_tree(session)
    c = confirmation_client
    prov_h, city_h = auth("finance", t.province.id), auth("finance", t.city.id)

    # 1. every unit files; each superior confirms its subordinates
    totals = {
        t.education: "3000000",
        t.school: "1000000",
        t.school2: "2000000",
        t.forestry: "500000",
        t.city_education: "1500000",
        t.city_school: "800000",
    }
    filings = {
        u: await file(filing_client, u, f"1370000{i:04d}", total=total)
        for i, (u, total) in enumerate(totals.items())
    }
    for superior, unit in (
        (t.education, t.school),
        (t.education, t.school2),
        (t.city_education, t.city_school),
    ):
        r = await decide(c, superior, filings[unit], "confirm")
        assert r.status_code == 200, r.text

    # 2. the three departments submit their summaries to the finance department of their level
    summary_ids = {}
    for dept in (t.education, t.forestry, t.city_education):
        r = await c.post(
            f"/api/v1/departments/{dept.id}/summary/{Y}/submit", headers=auth("unit", dept.id)
        )
        assert r.status_code == 201, r.text
        summary_ids[dept] = r.json()["id"]
    assert set(await statuses(session, *filings.values())) == {"department_submitted"}

    # 3. the city cannot hand up while its department's summary awaits its own review
    refused = await c.post(f"/api/v1/finance/{Y}/aggregate/submit", headers=city_h)
    assert refused.status_code == 409
    assert refused.json()["code"] == "aggregate_incomplete"
    assert [(m["name"], m["status"]) for m in refused.json()["missing"]] == [
        ("广州市教育局", "submitted")
    ]
    r = await c.post(
        f"/api/v1/finance/{Y}/summaries/{summary_ids[t.city_education]}/confirm",
        json={"note": None},
        headers=city_h,
    )
    assert r.status_code == 200, r.text

    # 4. the city hands its region up to the province
    city_up = await c.post(f"/api/v1/finance/{Y}/aggregate/submit", headers=city_h)
    assert city_up.status_code == 201, city_up.text
    city_agg = city_up.json()
    assert (city_agg["recipient"], city_agg["parent_finance_department_id"]) == (
        "finance_department",
        t.province.id,
    )
    # 1,500,000 + 800,000 at 30%
    assert (city_agg["units"], city_agg["reserved_amount"]) == (2, "690000.00")
    view = (await c.get(f"/api/v1/finance/{Y}/aggregate", headers=prov_h)).json()
    assert [(g["finance_department_name"], g["aggregate_status"]) for g in view["regions"]] == [
        ("广州市财政局", "submitted")
    ]

    # 5. the province: refused while its own departments' summaries await, then hands over
    refused = await c.post(f"/api/v1/finance/{Y}/aggregate/submit", headers=prov_h)
    assert refused.status_code == 409
    assert {m["name"] for m in refused.json()["missing"]} == {"广东省教育厅", "广东省林业局"}
    for dept in (t.education, t.forestry):
        r = await c.post(
            f"/api/v1/finance/{Y}/summaries/{summary_ids[dept]}/confirm",
            json={"note": "审核通过"},
            headers=prov_h,
        )
        assert r.status_code == 200, r.text
    prov_up = await c.post(f"/api/v1/finance/{Y}/aggregate/submit", headers=prov_h)
    assert prov_up.status_code == 201, prov_up.text
    prov_agg = prov_up.json()
    assert prov_agg["recipient"] == "platform"
    assert prov_agg["units"] == 6
    expected = sum(Decimal(v) for v in totals.values()) * Decimal("0.3")
    assert Decimal(prov_agg["reserved_amount"]) == expected
    assert [d["department_name"] for d in prov_agg["snapshot"]["departments"]] == [
        "广东省教育厅",
        "广东省林业局",
    ]
    assert prov_agg["snapshot"]["regions"][0]["aggregate_id"] == city_agg["id"]

    # 6. the platform reads the hand-over; ops confirms its receipt
    listed = (await c.get(f"/api/v1/platform/aggregates/{Y}", headers=auth("platform"))).json()
    assert [(a["id"], a["status"], a["units"]) for a in listed["items"]] == [
        (prov_agg["id"], "submitted", 6)
    ]
    r = await c.post(
        f"/api/v1/finance/{Y}/aggregates/{prov_agg['id']}/confirm",
        json={"note": "平台已接收"},
        headers=auth("ops"),
    )
    assert r.status_code == 200 and r.json()["status"] == "confirmed"

    # statuses, outbox and audit of the whole upper half
    assert set(await statuses(session, *filings.values())) == {"finance_confirmed"}
    view = (await c.get(f"/api/v1/finance/{Y}/aggregate", headers=prov_h)).json()
    assert (view["status"], view["ready"]) == ("confirmed", True)
    assert view["regions"][0]["aggregate_status"] == "confirmed"
    assert {d["summary_status"] for d in view["departments"]} == {"confirmed"}
    sms = await outbox(session)
    for unit in (t.school, t.school2, t.city_school):
        assert f"filing:{filings[unit]}:confirmed:v1" in sms
    assert not [k for k in sms if k.startswith("aggregate")]  # hand-overs send no SMS
    assert await audit_actions(session, "finance_aggregate", city_agg["id"]) == [
        "aggregate.submitted",
        "aggregate.confirmed",
    ]
    assert await audit_actions(session, "finance_aggregate", prov_agg["id"]) == [
        "aggregate.submitted",
        "aggregate.confirmed",
    ]
    for dept, sid in summary_ids.items():
        assert await audit_actions(session, "department_summary", sid) == [
            "summary.submitted",
            "summary.confirmed",
        ], dept.name
