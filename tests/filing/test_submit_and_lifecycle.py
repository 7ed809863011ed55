"""SPEC.md §2 submission rules (floors, declaration, deadline) and the filing lifecycle."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.filing import service
from services.filing.app import create_app
from shared.auth import Principal, Role
from shared.db import get_sessionmaker
from shared.models import AuditLog, FilingVersion, UnitKind
from tests.conftest import auth
from tests.factories import make_policy, make_unit
from tests.filing.helpers import make_tree, own_body, save, save_and_submit, submit


async def test_ratio_below_national_floor_rejected(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(ratio="9.99"))
    assert response.status_code == 422
    assert response.json()["code"] == "ratio_below_national_floor"
    assert response.json()["errors"][0]["loc"] == ["body", "canteen_ratio"]
    assert "10.00%" in response.json()["detail"]


async def test_ratio_below_soft_floor_accepted_only_with_justification_and_flagged(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)  # Guangdong 2024: soft floor 30%
    assert (await save(filing_client, tree.unit, own_body(ratio="25.00"))).status_code == 200
    refused = await submit(filing_client, tree.unit)
    assert refused.status_code == 422
    assert refused.json()["code"] == "justification_required"
    assert refused.json()["errors"][0]["loc"] == ["body", "justification"]
    assert "30.00%" in refused.json()["detail"]
    blank = await submit(filing_client, tree.unit, justification="   ")
    assert blank.json()["code"] == "justification_required"

    accepted = await submit(
        filing_client, tree.unit, justification="本单位食堂规模较小，已与上级沟通"
    )
    assert accepted.status_code == 200, accepted.text
    filing = accepted.json()
    assert filing["status"] == "submitted"
    assert filing["status_label"] == "待上级预算单位确认"
    assert filing["flags"] == ["below_soft_floor"]
    assert filing["justification"] == "本单位食堂规模较小，已与上级沟通"
    assert filing["flag_details"][0]["detail"]


async def test_ratio_at_soft_floor_needs_no_justification(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save_and_submit(filing_client, tree.unit, own_body(ratio="30"))
    assert response.json()["flags"] == []
    assert response.json()["justification"] is None


async def test_soft_floor_is_regional(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    guangxi = tree.stranger
    guangxi.region_code = "450000"  # no soft floor: only the national 10% applies
    await session.commit()
    response = await save_and_submit(filing_client, guangxi, own_body(ratio="12"))
    assert response.json()["flags"] == []


async def test_declaration_must_be_true_to_submit(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await save(filing_client, tree.unit, own_body())
    response = await submit(filing_client, tree.unit, declaration=False)
    assert response.status_code == 422
    assert response.json()["code"] == "declaration_required"
    assert "真实有效" in response.json()["detail"]
    response = await filing_client.post(
        "/api/v1/filings/2024/mine/submit", json={}, headers=auth("unit", tree.unit.id)
    )
    assert response.json()["code"] == "declaration_required"
    response = await filing_client.post(
        "/api/v1/filings/2024/mine/submit",
        json={"declaration": "true"},
        headers=auth("unit", tree.unit.id),
    )
    assert response.status_code == 422


async def test_submit_without_draft_is_404(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await submit(filing_client, tree.unit)
    assert response.status_code == 404
    assert response.json()["code"] == "filing_not_found"


async def test_deadline_is_inclusive_and_late_submission_refused(
    session: AsyncSession, filing_client: httpx.AsyncClient, today: list[date]
) -> None:
    tree = await make_tree(session)
    await save(filing_client, tree.unit, own_body())
    await save(filing_client, tree.sibling, own_body())
    today[0] = date(2024, 2, 21)
    late = await submit(filing_client, tree.unit)
    assert late.status_code == 409
    assert late.json()["code"] == "filing_deadline_passed"
    assert "2024-02-20" in late.json()["detail"] and "补报" in late.json()["detail"]
    today[0] = date(2024, 2, 20)
    assert (await submit(filing_client, tree.sibling)).status_code == 200


async def test_deadline_follows_the_region_policy(
    session: AsyncSession, filing_client: httpx.AsyncClient, today: list[date]
) -> None:
    tree = await make_tree(session)
    await make_policy(session, 2024, "440100", filing_deadline=date(2024, 3, 1))
    tree.unit.region_code = "440100"  # Guangzhou extended its deadline
    await session.commit()
    today[0] = date(2024, 2, 25)
    response = await save_and_submit(filing_client, tree.unit, own_body())
    assert response.json()["status"] == "submitted"
    await save(filing_client, tree.sibling, own_body())
    assert (await submit(filing_client, tree.sibling)).json()["code"] == "filing_deadline_passed"


async def test_finance_department_reopens_a_late_unit(
    session: AsyncSession, filing_client: httpx.AsyncClient, today: list[date]
) -> None:
    tree = await make_tree(session)
    await save(filing_client, tree.unit, own_body())
    today[0] = date(2024, 3, 1)
    late = await submit(filing_client, tree.unit)
    assert late.status_code == 409 and late.json()["code"] == "filing_deadline_passed"
    reopen = await filing_client.post(
        f"/api/v1/filings/2024/units/{tree.unit.id}/reopen",
        json={"open_until": "2024-03-05", "reason": "单位合并后补报"},
        headers=auth("finance", tree.finance.id),
    )
    assert reopen.status_code == 201, reopen.text
    denied = await filing_client.post(
        f"/api/v1/filings/2024/units/{tree.unit.id}/reopen",
        json={"open_until": "2024-03-05", "reason": "x"},
        headers=auth("unit", tree.department.id),
    )
    assert denied.status_code == 403
    shenzhen = await make_unit(
        session, "深圳市财政局", kind=UnitKind.FINANCE_DEPARTMENT, region_code="440300"
    )
    await session.commit()
    elsewhere = await filing_client.post(
        f"/api/v1/filings/2024/units/{tree.unit.id}/reopen",
        json={"open_until": "2024-03-05", "reason": "x"},
        headers=auth("finance", shenzhen.id),
    )
    assert elsewhere.status_code == 404  # not its unit: existence does not leak
    assert (await submit(filing_client, tree.unit)).status_code == 200
    today[0] = date(2024, 3, 6)
    await save(filing_client, tree.sibling, own_body())
    sibling = await submit(filing_client, tree.sibling)  # the reopening was for one unit only
    assert sibling.json()["code"] == "filing_deadline_passed"


async def test_editing_a_submitted_filing_refused(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await save_and_submit(filing_client, tree.unit, own_body())
    response = await save(filing_client, tree.unit, own_body(total="5"))
    assert response.status_code == 409
    assert response.json()["code"] == "filing_locked"
    assert "退回" in response.json()["detail"]
    again = await submit(filing_client, tree.unit)
    assert again.status_code == 409
    assert again.json()["code"] == "filing_already_submitted"
    mine = await filing_client.get("/api/v1/filings/2024/mine", headers=auth("unit", tree.unit.id))
    assert mine.json()["canteen_total"] == "1000000.00"


async def test_modify_after_return_records_a_new_version(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    first = await save_and_submit(filing_client, tree.unit, own_body("1000000", "30"))
    filing_id = first.json()["id"]
    returned = await filing_client.post(
        f"/api/v1/filings/{filing_id}/return",
        json={"reason": "采购总额与上年差异较大，请核实"},
        headers=auth("unit", tree.department.id),
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned"
    assert returned.json()["canteen_status"] == "returned"
    assert returned.json()["union_status"] == "returned"

    modified = await save(filing_client, tree.unit, own_body("800000", "35"))
    assert modified.status_code == 200, modified.text
    view = modified.json()
    assert view["status"] == "returned"
    assert view["reserved_amount"] == "280000.00"
    # the modify view shows the currently filed figures next to the new ones
    assert view["filed"]["canteen_total"] == "1000000.00"
    assert view["filed"]["reserved_amount"] == "300000.00"
    assert view["filed"]["version"] == 1

    resubmitted = await submit(filing_client, tree.unit)
    assert resubmitted.status_code == 200, resubmitted.text
    assert resubmitted.json()["version"] == 2
    assert resubmitted.json()["filed"]["canteen_total"] == "800000.00"

    versions = await filing_client.get(
        "/api/v1/filings/2024/mine/versions", headers=auth("unit", tree.unit.id)
    )
    snapshots = [v["snapshot"] for v in versions.json()]
    assert [s["canteen_total"] for s in snapshots] == ["1000000.00", "800000.00"]
    count = await session.scalar(select(func.count()).select_from(FilingVersion))
    assert count == 2


async def test_modify_view_shows_last_year(
    session: AsyncSession, filing_client: httpx.AsyncClient, today: list[date]
) -> None:
    tree = await make_tree(session)
    await make_policy(
        session, 2023, "000000", national_floor="10", filing_deadline=date(2023, 3, 1)
    )
    await session.commit()
    today[0] = date(2023, 2, 1)
    await save_and_submit(filing_client, tree.unit, own_body("900000", "30"), year=2023)
    today[0] = date(2024, 2, 1)
    response = await save(filing_client, tree.unit, own_body("1000000", "30"))
    previous = response.json()["previous_year"]
    assert previous["year"] == 2023
    assert previous["canteen_total"] == "900000.00"
    assert previous["canteen_ratio"] == "30.00"
    assert previous["reserved_amount"] == "270000.00"
    assert previous["union_expected_amount"] == "40000.00"


async def test_return_of_one_part_keeps_the_other_locked(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    returned = await filing_client.post(
        f"/api/v1/filings/{filing_id}/return",
        json={"reason": "工会采购比例请核实", "parts": ["union"]},
        headers=auth("unit", tree.department.id),
    )
    assert returned.json()["canteen_status"] == "submitted"
    assert returned.json()["union_status"] == "returned"
    union = {"has_need": True, "total": "200000", "ratio": "25"}
    locked = await save(filing_client, tree.unit, own_body(total="1", union=union))
    assert locked.status_code == 409
    assert locked.json()["code"] == "part_locked"
    ok = await save(filing_client, tree.unit, own_body(union=union))
    assert ok.status_code == 200, ok.text
    resubmitted = (await submit(filing_client, tree.unit)).json()
    assert resubmitted["canteen_status"] == "submitted"
    assert resubmitted["union_status"] == "submitted"
    assert resubmitted["union_expected_amount"] == "50000.00"


async def test_only_the_superior_returns_or_confirms(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    body = {"reason": "x"}
    own = await filing_client.post(
        f"/api/v1/filings/{filing_id}/return", json=body, headers=auth("unit", tree.unit.id)
    )
    assert own.status_code == 403
    assert own.json()["code"] == "not_superior"
    sibling = await filing_client.post(
        f"/api/v1/filings/{filing_id}/return", json=body, headers=auth("unit", tree.sibling.id)
    )
    assert sibling.status_code == 404
    confirmed = await filing_client.post(
        f"/api/v1/filings/{filing_id}/confirm", json={}, headers=auth("unit", tree.department.id)
    )
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["canteen_status"] == confirmed.json()["union_status"] == "confirmed"
    late_return = await filing_client.post(
        f"/api/v1/filings/{filing_id}/return", json=body, headers=auth("unit", tree.department.id)
    )
    assert late_return.status_code == 409
    assert (await save(filing_client, tree.unit, own_body())).status_code == 409


async def test_return_needs_a_reason(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    response = await filing_client.post(
        f"/api/v1/filings/{filing_id}/return",
        json={"reason": "  "},
        headers=auth("unit", tree.department.id),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "reason"]


async def test_history_lists_every_transition_with_who_when_what_why(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    await filing_client.post(
        f"/api/v1/filings/{filing_id}/return",
        json={"reason": "请核实"},
        headers=auth("unit", tree.department.id, sub="superior-clerk"),
    )
    await save(filing_client, tree.unit, own_body(total="900000"))
    await submit(filing_client, tree.unit)
    history = await filing_client.get(
        "/api/v1/filings/2024/mine/history", headers=auth("unit", tree.unit.id)
    )
    events = history.json()
    assert [(e["action"], e["from_status"], e["to_status"]) for e in events] == [
        ("drafted", None, "draft"),
        ("submitted", "draft", "submitted"),
        ("returned", "submitted", "returned"),
        ("draft_updated", "returned", "returned"),
        ("resubmitted", "returned", "submitted"),
    ]
    returned = events[2]
    assert returned["actor_sub"] == "superior-clerk"
    assert returned["actor_unit_id"] == tree.department.id
    assert returned["reason"] == "请核实"
    assert events[3]["changes"]["canteen_total"] == ["1000000.00", "900000.00"]
    assert events[4]["changes"]["canteen_total"] == ["1000000.00", "900000.00"]
    assert all(e["at"] for e in events)
    # the superior reads the same history by filing id
    by_id = await filing_client.get(
        f"/api/v1/filings/{filing_id}/history", headers=auth("unit", tree.department.id)
    )
    assert len(by_id.json()) == 5
    audited = await session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.entity_type == "filing")
    )
    assert audited == 5


async def test_two_concurrent_submits_exactly_one_wins(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await save(filing_client, tree.unit, own_body())
    # a second client (its own connection and database session per request), both at once
    app = create_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://filing-2.test"
    ) as other_client:
        results = await asyncio.gather(
            submit(filing_client, tree.unit), submit(other_client, tree.unit)
        )
    assert sorted(r.status_code for r in results) == [200, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["code"] in {"concurrent_update", "filing_already_submitted"}
    count = await session.scalar(select(func.count()).select_from(FilingVersion))
    assert count == 1


async def test_concurrent_submit_loser_gets_concurrent_update(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    """While one transaction holds the filing, a second submit is refused at once with 409."""
    tree = await make_tree(session)
    filing_id = (await save(filing_client, tree.unit, own_body())).json()["id"]
    async with get_sessionmaker()() as holder, holder.begin():
        from services.filing import repository

        await repository.lock_filing(holder, filing_id)
        response = await submit(filing_client, tree.unit)
    assert response.status_code == 409
    assert response.json()["code"] == "concurrent_update"
    assert (await submit(filing_client, tree.unit)).status_code == 200


async def test_idempotency_key_replays_the_first_submit(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await save(filing_client, tree.unit, own_body())
    key = {"Idempotency-Key": "submit-2024-a"}
    first = await submit(filing_client, tree.unit, headers=key)
    second = await submit(filing_client, tree.unit, headers=key)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    different = await submit(filing_client, tree.unit, headers=key, justification="不同的请求")
    assert different.status_code == 409
    assert different.json()["code"] == "idempotency_key_reused"
    count = await session.scalar(select(func.count()).select_from(FilingVersion))
    assert count == 1


async def test_another_units_filing_is_not_visible(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    for outsider in (tree.sibling, tree.stranger):
        response = await filing_client.get(
            f"/api/v1/filings/{filing_id}", headers=auth("unit", outsider.id)
        )
        assert response.status_code == 404
        history = await filing_client.get(
            f"/api/v1/filings/{filing_id}/history", headers=auth("unit", outsider.id)
        )
        assert history.status_code == 404
    assert (await filing_client.get(f"/api/v1/filings/{filing_id}")).status_code == 401
    # the unit itself, its superior and its finance department see it; others see masked mobiles
    own = await filing_client.get(
        f"/api/v1/filings/{filing_id}", headers=auth("unit", tree.unit.id)
    )
    assert own.json()["contact"]["mobile"] == "13812345678"
    superior = await filing_client.get(
        f"/api/v1/filings/{filing_id}", headers=auth("unit", tree.department.id)
    )
    assert superior.json()["contact"]["mobile"] == "138****5678"
    finance = await filing_client.get(
        f"/api/v1/filings/{filing_id}", headers=auth("finance", tree.finance.id)
    )
    assert finance.status_code == 200


async def test_service_functions_drive_the_lifecycle(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    """The confirmation service reuses `return_filing` / `confirm_filing` directly."""
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    superior = Principal(sub="superior", role=Role.UNIT, unit_id=tree.department.id)
    async with get_sessionmaker()() as s, s.begin():
        filing = await service.filing_for_superior(s, superior, filing_id)
        await service.return_filing(s, superior, filing, "请补充说明")
    assert (await save(filing_client, tree.unit, own_body(ratio="40"))).status_code == 200
    assert (await submit(filing_client, tree.unit)).status_code == 200
    async with get_sessionmaker()() as s, s.begin():
        filing = await service.filing_for_superior(s, superior, filing_id)
        await service.confirm_filing(s, superior, filing)
    mine = await filing_client.get("/api/v1/filings/2024/mine", headers=auth("unit", tree.unit.id))
    assert mine.json()["status"] == "confirmed"
    assert mine.json()["reserved_amount"] == "400000.00"


async def test_concurrent_first_drafts_never_fail_with_a_server_error(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    results = await asyncio.gather(*(save(filing_client, tree.unit, own_body()) for _ in range(4)))
    codes = sorted(r.status_code for r in results)
    assert codes[0] == 200 and set(codes) <= {200, 409}, [r.text for r in results]
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] == "concurrent_update"


async def test_concurrent_submits_with_one_idempotency_key_both_get_the_answer(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await save(filing_client, tree.unit, own_body())
    key = {"Idempotency-Key": "retry-1"}
    first, second = await asyncio.gather(
        submit(filing_client, tree.unit, headers=key), submit(filing_client, tree.unit, headers=key)
    )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()


async def test_history_records_which_parts_were_returned_as_old_and_new(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    superior = auth("unit", tree.department.id)
    await filing_client.post(
        f"/api/v1/filings/{filing_id}/return",
        json={"reason": "工会采购比例请核实", "parts": ["union"]},
        headers=superior,
    )
    await save(
        filing_client, tree.unit, own_body(union={"has_need": True, "total": "1", "ratio": "20"})
    )
    await submit(filing_client, tree.unit)
    await filing_client.post(f"/api/v1/filings/{filing_id}/confirm", json={}, headers=superior)
    history = await filing_client.get(f"/api/v1/filings/{filing_id}/history", headers=superior)
    events = {e["action"]: e for e in history.json()}
    assert events["returned"]["changes"] == {
        "status": ["submitted", "returned"],
        "union_status": ["submitted", "returned"],
    }
    assert events["returned"]["reason"] == "工会采购比例请核实"
    assert events["confirmed"]["changes"] == {
        "status": ["submitted", "confirmed"],
        "canteen_status": ["submitted", "confirmed"],
        "union_status": ["submitted", "confirmed"],
    }
