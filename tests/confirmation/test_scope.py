"""Scope: a superior never sees or decides filings outside its subtree (404), a finance
department never another region's summaries (404), a unit cannot confirm its own filing (403)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import FilingStatus, UnitKind
from tests.confirmation.helpers import decide, outbox
from tests.conftest import auth
from tests.factories import make_submitted_filing, make_unit
from tests.filing.helpers import make_tree


async def test_a_superior_never_sees_or_decides_outside_its_subtree(
    session: AsyncSession, confirmation_client: httpx.AsyncClient, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing = await make_submitted_filing(session, tree.unit)
    await session.commit()
    fid = filing.id

    for outsider in (tree.stranger, tree.sibling):  # another department; a sibling, not a superior
        pending = await confirmation_client.get(
            "/api/v1/confirmations/2024/pending", headers=auth("unit", outsider.id)
        )
        assert pending.json()["items"] == []
        detail = await confirmation_client.get(
            f"/api/v1/confirmations/2024/filings/{fid}", headers=auth("unit", outsider.id)
        )
        assert detail.status_code == 404
        assert detail.json()["code"] == "filing_not_found"
        for decision in ("confirm", "return"):
            r = await decide(confirmation_client, outsider, fid, decision, reason="不对")
            assert r.status_code == 404, r.text
        batch = await confirmation_client.post(
            "/api/v1/confirmations/2024/confirm-batch",
            json={"filing_ids": [fid]},
            headers=auth("unit", outsider.id),
        )
        assert batch.json()["results"] == [
            {
                "filing_id": fid,
                "ok": False,
                "code": "filing_not_found",
                "detail": "填报不存在或无权访问",
            }
        ]
        via_filing = await filing_client.post(
            f"/api/v1/filings/{fid}/confirm", json={}, headers=auth("unit", outsider.id)
        )
        assert via_filing.status_code == 404

    # the wrong year is not found either
    r = await confirmation_client.get(
        f"/api/v1/confirmations/2023/filings/{fid}", headers=auth("unit", tree.department.id)
    )
    assert r.status_code == 404
    assert await outbox(session) == {}


async def test_a_unit_cannot_confirm_or_return_its_own_filing(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing = await make_submitted_filing(session, tree.unit)
    await session.commit()
    for decision in ("confirm", "return"):
        r = await decide(confirmation_client, tree.unit, filing.id, decision, reason="自己退回")
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "not_superior"
    # a finance department or ops does not decide on filings (the superior does)
    r = await confirmation_client.post(
        f"/api/v1/confirmations/2024/filings/{filing.id}/confirm",
        json={},
        headers=auth("finance", tree.finance.id),
    )
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    assert await outbox(session) == {}


async def test_a_finance_department_never_sees_another_regions_summaries(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    guangxi = await make_unit(
        session, "广西壮族自治区财政厅", kind=UnitKind.FINANCE_DEPARTMENT, region_code="450000"
    )
    gx_dept = await make_unit(
        session, "广西教育厅", finance_department=guangxi, region_code="450000"
    )
    city = await make_unit(
        session,
        "广州市财政局",
        kind=UnitKind.FINANCE_DEPARTMENT,
        parent=tree.finance,
        region_code="440100",
    )
    for unit in (tree.department, tree.unit, tree.sibling, gx_dept):
        status = (
            FilingStatus.SUBMITTED
            if unit.id in (tree.department.id, gx_dept.id)
            else (FilingStatus.CONFIRMED)
        )
        await make_submitted_filing(session, unit, status=status)
    await session.commit()

    sent = await confirmation_client.post(
        f"/api/v1/departments/{tree.department.id}/summary/2024/submit",
        headers=auth("unit", tree.department.id),
    )
    assert sent.status_code == 201, sent.text
    gd_summary = sent.json()["id"]
    sent = await confirmation_client.post(
        f"/api/v1/departments/{gx_dept.id}/summary/2024/submit", headers=auth("unit", gx_dept.id)
    )
    assert sent.status_code == 201, sent.text
    gx_summary = sent.json()["id"]

    gd, gx, gz = (
        auth("finance", tree.finance.id),
        auth("finance", guangxi.id),
        auth("finance", city.id),
    )
    listed = await confirmation_client.get("/api/v1/finance/2024/summaries", headers=gd)
    assert [s["id"] for s in listed.json()["items"]] == [gd_summary]
    listed = await confirmation_client.get("/api/v1/finance/2024/summaries", headers=gz)
    assert listed.json()["items"] == []
    ops = await confirmation_client.get("/api/v1/finance/2024/summaries", headers=auth("ops"))
    assert [s["id"] for s in ops.json()["items"]] == [gd_summary, gx_summary]

    for headers in (gx, gz):
        r = await confirmation_client.get(
            f"/api/v1/finance/2024/summaries/{gd_summary}", headers=headers
        )
        assert r.status_code == 404 and r.json()["code"] == "summary_not_found"
        r = await confirmation_client.post(
            f"/api/v1/finance/2024/summaries/{gd_summary}/confirm", json={}, headers=headers
        )
        assert r.status_code == 404
        r = await confirmation_client.post(
            f"/api/v1/finance/2024/summaries/{gd_summary}/return",
            json={"reason": "x"},
            headers=headers,
        )
        assert r.status_code == 404
    r = await confirmation_client.get(
        f"/api/v1/departments/{tree.department.id}/summary/2024", headers=gx
    )
    assert r.status_code == 404
    # the department's own finance department and ops read it; a subordinate unit does not
    assert (
        await confirmation_client.get(
            f"/api/v1/departments/{tree.department.id}/summary/2024", headers=gd
        )
    ).status_code == 200
    r = await confirmation_client.get(
        f"/api/v1/departments/{tree.department.id}/summary/2024", headers=auth("unit", tree.unit.id)
    )
    assert r.status_code == 404
    # a unit of the department that is not its supervising unit cannot submit (or read) it
    r = await confirmation_client.post(
        f"/api/v1/departments/{tree.unit.id}/summary/2024/submit",
        headers=auth("unit", tree.unit.id),
    )
    assert r.status_code == 422 and r.json()["code"] == "not_a_supervising_unit"
    r = await confirmation_client.post(
        f"/api/v1/departments/{tree.department.id}/summary/2024/submit", headers=gd
    )
    assert r.status_code == 403 and r.json()["code"] == "role_forbidden"


async def test_finance_and_ops_read_a_filing_of_their_scope_with_masked_mobiles(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    guangxi = await make_unit(
        session, "广西壮族自治区财政厅", kind=UnitKind.FINANCE_DEPARTMENT, region_code="450000"
    )
    filing = await make_submitted_filing(session, tree.unit)
    await session.commit()
    url = f"/api/v1/confirmations/2024/filings/{filing.id}"
    for headers in (auth("finance", tree.finance.id), auth("ops")):
        r = await confirmation_client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["versions"][0]["snapshot"]["contact_mobile"] == "138****5678"
    own = await confirmation_client.get(url, headers=auth("unit", tree.unit.id))
    assert own.json()["versions"][0]["snapshot"]["contact_mobile"] == "13812345678"
    r = await confirmation_client.get(url, headers=auth("finance", guangxi.id))
    assert r.status_code == 404
    r = await confirmation_client.get(url, headers=auth("platform"))
    assert r.status_code == 403
