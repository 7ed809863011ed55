"""Department summary (本部门及下属单位确认汇总): completeness by name, totals, flagged count;
merged units do not block; the submitted summary is an immutable snapshot (a later rename does
not change it; the renamed unit keeps its filing)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import FilingStatus
from tests.confirmation.helpers import decide, outbox, statuses
from tests.conftest import auth
from tests.factories import make_submitted_filing, make_unit
from tests.filing.helpers import Tree, make_tree, own_body, save, submit


async def test_merged_units_do_not_block_and_the_snapshot_keeps_names_as_submitted(
    session: AsyncSession,
    confirmation_client: httpx.AsyncClient,
    filing_client: httpx.AsyncClient,
) -> None:
    tree = await make_tree(session)
    own = await make_submitted_filing(session, tree.department, canteen_total="100000")
    unit = await make_submitted_filing(
        session,
        tree.unit,
        canteen_total="200000",
        canteen_ratio="20",
        status=FilingStatus.CONFIRMED,
        flags=("below_soft_floor",),
    )
    grandchild = await make_unit(session, "实验中学分校", parent=tree.unit)
    waiting = await make_submitted_filing(session, grandchild, union_total=None, union_ratio=None)
    await session.commit()
    dept_h, fin_h = auth("unit", tree.department.id), auth("finance", tree.finance.id)
    url = f"/api/v1/departments/{tree.department.id}/summary/2024"

    view = (await confirmation_client.get(url, headers=dept_h)).json()
    assert (view["units_total"], view["filed"], view["confirmed"]) == (4, 3, 2)
    assert [(b["unit_name"], b["reason"]) for b in view["blocking"]] == [
        ("广东省第二中学", "not_filed"),
        ("实验中学分校", "awaiting_confirmation"),
    ]
    # totals of what a submit would send (the confirmed filings, the department's own submitted)
    assert view["totals"] == {
        "canteen_total": "300000.00",
        "reserved_amount": "70000.00",
        "union_total": "400000.00",
        "union_expected_amount": "80000.00",
    }
    assert view["flagged_count"] == 1

    # the sibling is merged into the unit (no filing: no longer blocks); the grandchild confirmed
    merged = await filing_client.post(
        f"/api/v1/units/{tree.sibling.id}/merge",
        json={"into_unit_id": tree.unit.id, "reason": "机构改革合并"},
        headers=fin_h,
    )
    assert merged.status_code == 200, merged.text
    confirmed = await confirmation_client.post(
        f"/api/v1/confirmations/2024/filings/{waiting.id}/confirm",
        json={},
        headers=auth("unit", tree.unit.id),  # its direct superior
    )
    assert confirmed.status_code == 200, confirmed.text
    view = (await confirmation_client.get(url, headers=dept_h)).json()
    assert view["ready"] is True and view["blocking"] == []
    assert (view["units_total"], view["filed"], view["confirmed"]) == (3, 3, 3)

    sent = await confirmation_client.post(f"{url}/submit", headers=dept_h)
    assert sent.status_code == 201, sent.text
    summary_id = sent.json()["id"]
    assert [u["unit_name"] for u in sent.json()["units"]] == [
        "广东省教育厅",
        "广东省实验中学",
        "实验中学分校",
    ]
    assert await statuses(session, own.id, unit.id, waiting.id) == ["department_submitted"] * 3

    # a rename afterwards: same id, the unit keeps its filing; the snapshot keeps the old name
    renamed = await filing_client.patch(
        f"/api/v1/units/{tree.unit.id}",
        json={"name": "广东实验中学", "reason": "更名"},
        headers=fin_h,
    )
    assert renamed.status_code == 200, renamed.text
    detail = await confirmation_client.get(
        f"/api/v1/finance/2024/summaries/{summary_id}", headers=fin_h
    )
    assert detail.json()["units"][1]["unit_name"] == "广东省实验中学"
    assert detail.json()["versions"][0]["snapshot"]["units"][1]["unit_id"] == tree.unit.id
    view = (await confirmation_client.get(url, headers=dept_h)).json()
    assert view["status"] == "submitted" and view["ready"] is True
    assert view["history"][0]["action"] == "submitted"


async def test_a_department_without_a_finance_department_cannot_submit(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    orphan = await make_unit(session, "无财政部门的单位")
    await make_submitted_filing(session, orphan)
    await session.commit()
    r = await confirmation_client.post(
        f"/api/v1/departments/{orphan.id}/summary/2024/submit", headers=auth("unit", orphan.id)
    )
    assert r.status_code == 409 and r.json()["code"] == "no_finance_department"
    # nothing filed at all: incomplete, the supervising unit itself blocks
    r = await confirmation_client.post(
        f"/api/v1/departments/{tree.stranger.id}/summary/2024/submit",
        headers=auth("unit", tree.stranger.id),
    )
    assert r.status_code == 409 and r.json()["code"] == "department_incomplete"
    assert r.json()["blocking"][0]["reason"] == "not_filed"


async def test_after_a_finance_return_the_department_fixes_its_own_filing_too(
    session: AsyncSession,
    confirmation_client: httpx.AsyncClient,
    filing_client: httpx.AsyncClient,
) -> None:
    tree = await make_tree(session)
    own = await make_submitted_filing(session, tree.department)
    child = await make_submitted_filing(session, tree.unit, status=FilingStatus.CONFIRMED)
    sibling = await make_submitted_filing(session, tree.sibling, status=FilingStatus.CONFIRMED)
    await session.commit()
    dept_h, fin_h = auth("unit", tree.department.id), auth("finance", tree.finance.id)
    url = f"/api/v1/departments/{tree.department.id}/summary/2024"
    # before any finance return, nobody returns the supervising unit's own filing
    r = await decide(confirmation_client, tree.department, own.id, "return", reason="自查")
    assert r.status_code == 403 and r.json()["code"] == "not_superior"

    summary_id = (await confirmation_client.post(f"{url}/submit", headers=dept_h)).json()["id"]
    r = await confirmation_client.post(
        f"/api/v1/finance/2024/summaries/{summary_id}/return",
        json={"reason": "主管部门本级数据有误"},
        headers=fin_h,
    )
    assert r.status_code == 200, r.text
    # a child unit cannot send its own filing back; the department can send back its own
    r = await decide(confirmation_client, tree.unit, child.id, "return", reason="自查")
    assert r.status_code == 403
    r = await decide(confirmation_client, tree.department, own.id, "return", reason="本级更正")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "returned"
    assert f"filing:{own.id}:returned:v1" in await outbox(session)

    assert (await save(filing_client, tree.department, own_body("1500000"))).status_code == 200
    assert (await submit(filing_client, tree.department)).status_code == 200
    sent = await confirmation_client.post(f"{url}/submit", headers=dept_h)
    assert sent.status_code == 201, sent.text
    assert sent.json()["version"] == 2
    assert sent.json()["units"][0]["canteen_total"] == "1500000.00"
    assert await statuses(session, own.id, child.id, sibling.id) == ["department_submitted"] * 3


async def test_a_retried_summary_submit_or_review_replays_its_first_answer(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await make_submitted_filing(session, tree.department)
    await make_submitted_filing(session, tree.unit, status=FilingStatus.CONFIRMED)
    await make_submitted_filing(session, tree.sibling, status=FilingStatus.CONFIRMED)
    await session.commit()
    url = f"/api/v1/departments/{tree.department.id}/summary/2024/submit"
    headers = {**auth("unit", tree.department.id), "Idempotency-Key": "summary-2024-1"}
    first = await confirmation_client.post(url, headers=headers)
    again = await confirmation_client.post(url, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()

    fin = {**auth("finance", tree.finance.id), "Idempotency-Key": "review-1"}
    review_url = f"/api/v1/finance/2024/summaries/{first.json()['id']}/return"
    r1 = await confirmation_client.post(review_url, json={"reason": "复核"}, headers=fin)
    r2 = await confirmation_client.post(review_url, json={"reason": "复核"}, headers=fin)
    assert r1.status_code == r2.status_code == 200 and r1.json() == r2.json()
    r3 = await confirmation_client.post(
        review_url, json={"reason": "复核"}, headers=fin_plain(tree)
    )
    assert r3.status_code == 409 and r3.json()["code"] == "summary_not_submitted"
    detail = await confirmation_client.get(
        f"/api/v1/finance/2024/summaries/{first.json()['id']}", headers=fin_plain(tree)
    )
    assert [h["action"] for h in detail.json()["history"]] == ["submitted", "returned"]
    assert [k for k in await outbox(session) if k.startswith("summary:")] == [
        f"summary:{first.json()['id']}:returned:v1"
    ]


def fin_plain(tree: Tree) -> dict[str, str]:
    return auth("finance", tree.finance.id)
