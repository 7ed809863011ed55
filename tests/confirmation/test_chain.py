"""The whole chain through the HTTP API on real PostgreSQL, up to "finance confirms": units file,
the superior confirms one and returns one, the summary is refused while incomplete then
submitted, finance returns it, the department fixes and resubmits, finance confirms. Each step's
outbox rows, audit rows and filing statuses are asserted."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.confirmation.helpers import (
    audit_actions,
    body_with_mobile,
    decide,
    file,
    outbox,
    plain_mobile,
    statuses,
)
from tests.conftest import auth
from tests.filing.helpers import make_tree, save, submit

DEPT_MOBILE = "13700000001"
A_MOBILE = "13700000002"
B_MOBILE = "13700000003"


async def test_units_file_superior_decides_department_summarises_finance_reviews(
    session: AsyncSession,
    filing_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    tree = await make_tree(session)
    dept, a, b = tree.department, tree.unit, tree.sibling
    dept_h, fin_h = auth("unit", dept.id), auth("finance", tree.finance.id)
    summary_url = f"/api/v1/departments/{dept.id}/summary/2024"

    # 1. units file (the supervising unit too)
    fd = await file(filing_client, dept, DEPT_MOBILE, total="3000000")
    fa = await file(filing_client, a, A_MOBILE, total="1000000")
    fb = await file(filing_client, b, B_MOBILE, total="2000000")
    assert await statuses(session, fd, fa, fb) == ["submitted"] * 3

    # 2. the summary is refused while incomplete, naming who blocks
    view = (await confirmation_client.get(summary_url, headers=dept_h)).json()
    assert view["status"] == "not_submitted" and view["ready"] is False
    assert (view["units_total"], view["filed"], view["confirmed"]) == (3, 3, 1)
    assert [(x["unit_name"], x["reason"]) for x in view["blocking"]] == [
        ("广东省实验中学", "awaiting_confirmation"),
        ("广东省第二中学", "awaiting_confirmation"),
    ]
    refused = await confirmation_client.post(f"{summary_url}/submit", headers=dept_h)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "department_incomplete"
    assert [x["unit_id"] for x in refused.json()["blocking"]] == [a.id, b.id]

    # 3. the superior confirms A and returns B (canteen part) with a reason
    ok = await decide(confirmation_client, dept, fa, "confirm")
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "confirmed" and ok.json()["sms_queued"] is True
    back = await decide(
        confirmation_client, dept, fb, "return", reason="采购总额有误", parts=["canteen"]
    )
    assert back.status_code == 200, back.text
    assert (back.json()["canteen_status"], back.json()["union_status"]) == (
        "returned",
        "submitted",
    )
    sms = await outbox(session)
    assert set(sms) == {f"filing:{fa}:confirmed:v1", f"filing:{fb}:returned:v1"}
    assert plain_mobile(sms[f"filing:{fa}:confirmed:v1"]) == A_MOBILE
    assert sms[f"filing:{fa}:confirmed:v1"].template == "filing_confirmed"
    returned_sms = sms[f"filing:{fb}:returned:v1"]
    assert plain_mobile(returned_sms) == B_MOBILE and "采购总额有误" in returned_sms.body
    assert returned_sms.status.value == "pending"
    assert await audit_actions(session, "filing", fb) == [
        "filing.drafted",
        "filing.submitted",
        "filing.returned",
    ]

    refused = await confirmation_client.post(f"{summary_url}/submit", headers=dept_h)
    assert refused.status_code == 409
    assert [(x["unit_id"], x["reason"]) for x in refused.json()["blocking"]] == [(b.id, "returned")]

    # 4. B fixes and resubmits (version 2), the superior confirms it
    assert (await save(filing_client, b, body_with_mobile(B_MOBILE, "1800000"))).status_code == 200
    assert (await submit(filing_client, b)).status_code == 200
    assert (await decide(confirmation_client, dept, fb, "confirm")).status_code == 200
    assert f"filing:{fb}:confirmed:v2" in await outbox(session)

    # 5. the department submits: an immutable snapshot, filings → department_submitted
    sent = await confirmation_client.post(f"{summary_url}/submit", headers=dept_h)
    assert sent.status_code == 201, sent.text
    summary = sent.json()
    summary_id = summary["id"]
    assert summary["version"] == 1 and summary["status"] == "submitted"
    assert summary["finance_department_id"] == tree.finance.id
    assert summary["units_count"] == 3
    # 3,000,000 + 1,000,000 + 1,800,000 at 30%
    assert summary["totals"]["canteen_total"] == "5800000.00"
    assert summary["totals"]["reserved_amount"] == "1740000.00"
    assert [u["unit_name"] for u in summary["units"]] == [dept.name, a.name, b.name]
    assert await statuses(session, fd, fa, fb) == ["department_submitted"] * 3
    again = await confirmation_client.post(f"{summary_url}/submit", headers=dept_h)
    assert again.status_code == 409 and again.json()["code"] == "summary_already_submitted"
    assert await audit_actions(session, "department_summary", summary_id) == ["summary.submitted"]
    assert (await audit_actions(session, "filing", fa))[-1] == "filing.department_submitted"

    # 6. finance sees it, returns it with a reason: filings → finance_returned, SMS to dept
    listed = await confirmation_client.get("/api/v1/finance/2024/summaries", headers=fin_h)
    assert [s["id"] for s in listed.json()["items"]] == [summary_id]
    ret = await confirmation_client.post(
        f"/api/v1/finance/2024/summaries/{summary_id}/return",
        json={"reason": "实验中学比例需复核"},
        headers=fin_h,
    )
    assert ret.status_code == 200, ret.text
    assert ret.json()["status"] == "returned"
    assert await statuses(session, fd, fa, fb) == ["finance_returned"] * 3
    sms = await outbox(session)
    summary_sms = sms[f"summary:{summary_id}:returned:v1"]
    assert plain_mobile(summary_sms) == DEPT_MOBILE and "实验中学比例需复核" in summary_sms.body
    assert summary_sms.template == "summary_returned"

    # 7. the department returns A to its unit, A fixes and resubmits, the department confirms
    back = await decide(confirmation_client, dept, fa, "return", reason="按财政意见调整比例")
    assert back.status_code == 200, back.text
    assert await statuses(session, fd, fa, fb) == [
        "finance_returned",
        "returned",
        "finance_returned",
    ]
    refused = await confirmation_client.post(f"{summary_url}/submit", headers=dept_h)
    assert refused.status_code == 409
    assert [x["unit_id"] for x in refused.json()["blocking"]] == [a.id]
    body = body_with_mobile(A_MOBILE, "1000000", "35")
    assert (await save(filing_client, a, body)).status_code == 200
    assert (await submit(filing_client, a)).status_code == 200
    assert (await decide(confirmation_client, dept, fa, "confirm")).status_code == 200

    # 8. the department resubmits: version 2, history kept; B and its own filing need nothing new
    sent = await confirmation_client.post(f"{summary_url}/submit", headers=dept_h)
    assert sent.status_code == 201, sent.text
    assert sent.json()["id"] == summary_id and sent.json()["version"] == 2
    assert sent.json()["totals"]["reserved_amount"] == "1790000.00"  # A now 35%
    assert await statuses(session, fd, fa, fb) == ["department_submitted"] * 3
    detail = await confirmation_client.get(
        f"/api/v1/finance/2024/summaries/{summary_id}", headers=fin_h
    )
    assert [v["version"] for v in detail.json()["versions"]] == [1, 2]
    assert detail.json()["versions"][0]["snapshot"]["totals"]["reserved_amount"] == "1740000.00"
    assert [h["action"] for h in detail.json()["history"]] == [
        "submitted",
        "returned",
        "resubmitted",
    ]

    # 9. finance confirms: filings → finance_confirmed, SMS to the department
    conf = await confirmation_client.post(
        f"/api/v1/finance/2024/summaries/{summary_id}/confirm", json={"note": None}, headers=fin_h
    )
    assert conf.status_code == 200, conf.text
    assert conf.json()["status"] == "confirmed"
    assert await statuses(session, fd, fa, fb) == ["finance_confirmed"] * 3
    sms = await outbox(session)
    assert plain_mobile(sms[f"summary:{summary_id}:confirmed:v2"]) == DEPT_MOBILE
    assert set(sms) == {
        f"filing:{fa}:confirmed:v1",
        f"filing:{fb}:returned:v1",
        f"filing:{fb}:confirmed:v2",
        f"summary:{summary_id}:returned:v1",
        f"filing:{fa}:returned:v1",
        f"filing:{fa}:confirmed:v2",
        f"summary:{summary_id}:confirmed:v2",
    }
    assert await audit_actions(session, "department_summary", summary_id) == [
        "summary.submitted",
        "summary.returned",
        "summary.resubmitted",
        "summary.confirmed",
    ]
    assert await audit_actions(session, "filing", fa) == [
        "filing.drafted",
        "filing.submitted",
        "filing.confirmed",
        "filing.department_submitted",
        "filing.finance_returned",
        "filing.returned",
        "filing.draft_updated",
        "filing.resubmitted",
        "filing.confirmed",
        "filing.department_submitted",
        "filing.finance_confirmed",
    ]
    history = await filing_client.get(f"/api/v1/filings/{fb}/history", headers=dept_h)
    assert [e["to_status"] for e in history.json()][-4:] == [
        "department_submitted",
        "finance_returned",
        "department_submitted",
        "finance_confirmed",
    ]
    view = (await confirmation_client.get(summary_url, headers=dept_h)).json()
    assert view["status"] == "confirmed" and view["version"] == 2 and view["ready"] is True
