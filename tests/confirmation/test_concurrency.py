"""Concurrency: two superiors (or two tabs) deciding the same filing at once: one wins, the other
gets 409; a summary submit racing a return of one of its filings never yields a summary that
contains a returned filing."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.filing import service as filing_service
from shared.auth import Principal, Role
from shared.db import get_sessionmaker
from shared.models import DepartmentSummary, FilingStatus
from tests.confirmation.helpers import decide, outbox, statuses
from tests.conftest import auth
from tests.factories import make_submitted_filing, make_unit
from tests.filing.helpers import Tree, make_tree


async def _wait_until_blocked_on_a_lock(session: AsyncSession) -> None:
    """Wait (bounded) until another backend of this database waits on a row lock, so that the
    test really exercises the waiting path; proceeds anyway after the bound."""
    for _ in range(200):
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        if waiting:
            return
        await asyncio.sleep(0.02)


async def test_two_superiors_deciding_the_same_filing_at_once_one_wins_the_other_gets_409(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    middle = await make_unit(session, "中间单位", parent=tree.department)
    units = [await make_unit(session, f"基层{i}", parent=middle) for i in range(4)]
    filings = [await make_submitted_filing(session, u) for u in units]
    await session.commit()
    ids = [f.id for f in filings]

    for i, fid in enumerate(ids):
        # the department and the intermediate superior; confirm against return, or twice
        second = "return" if i % 2 else "confirm"
        a, b = await asyncio.gather(
            decide(confirmation_client, tree.department, fid, "confirm"),
            decide(confirmation_client, middle, fid, second, reason="重复操作"),
        )
        codes = sorted([a.status_code, b.status_code])
        assert codes == [200, 409], (a.text, b.text)
        loser = a if a.status_code == 409 else b
        assert loser.json()["code"] in {"concurrent_update", "filing_not_submitted"}

    sms = await outbox(session)
    for fid in ids:  # exactly one decision each, one SMS each
        assert len([k for k in sms if k.startswith(f"filing:{fid}:")]) == 1


async def test_a_decision_while_another_holds_the_filing_gets_409_at_once(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing = await make_submitted_filing(session, tree.unit)
    await session.commit()
    async with get_sessionmaker()() as other, other.begin():
        await other.execute(
            text("SELECT id FROM filings WHERE id = :id FOR UPDATE"), {"id": filing.id}
        )
        r = await decide(confirmation_client, tree.department, filing.id, "confirm")
        assert r.status_code == 409 and r.json()["code"] == "concurrent_update"
    assert await statuses(session, filing.id) == ["submitted"]
    assert await outbox(session) == {}


async def _department_with_confirmed_filings(session: AsyncSession) -> tuple[Tree, list[int]]:
    tree = await make_tree(session)
    ids = [(await make_submitted_filing(session, tree.department)).id]
    for unit in (tree.unit, tree.sibling):
        ids.append((await make_submitted_filing(session, unit, status=FilingStatus.CONFIRMED)).id)
    await session.commit()
    return tree, ids


async def test_summary_submit_waits_for_a_return_in_flight_and_then_refuses(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    """A return of one filing is in flight (locked, not committed) when the department submits:
    the submit waits, sees the return, and answers 409 `department_incomplete`."""
    tree, ids = await _department_with_confirmed_filings(session)
    dept_id, unit_id = tree.department.id, tree.unit.id
    assert (await _submit(confirmation_client, dept_id)).status_code == 201  # a first summary...
    await _finance_return(confirmation_client, tree)  # ...returned: filings finance_returned
    superior = Principal(sub="unit:dept", role=Role.UNIT, unit_id=dept_id)

    async with get_sessionmaker()() as returning, returning.begin():
        filing = await filing_service.filing_for_superior(returning, superior, ids[1])
        await filing_service.return_filing(returning, superior, filing, "请修改")
        task = asyncio.create_task(_submit(confirmation_client, dept_id))
        async with get_sessionmaker()() as probe:
            await _wait_until_blocked_on_a_lock(probe)
    response = await task
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "department_incomplete"
    assert [b["unit_id"] for b in response.json()["blocking"]] == [unit_id]
    summary = (await session.execute(select(DepartmentSummary))).scalar_one()
    assert summary.version == 1 and summary.status.value == "returned"
    await session.commit()
    assert await statuses(session, *ids) == ["finance_returned", "returned", "finance_returned"]


@pytest.mark.parametrize("return_first", [False, True])
async def test_summary_submit_racing_a_return_never_contains_a_returned_filing(
    session: AsyncSession, confirmation_client: httpx.AsyncClient, return_first: bool
) -> None:
    tree, ids = await _department_with_confirmed_filings(session)
    dept_id = tree.department.id
    assert (await _submit(confirmation_client, dept_id)).status_code == 201
    await _finance_return(confirmation_client, tree)

    submitting = _submit(confirmation_client, dept_id)
    returning = decide(confirmation_client, tree.department, ids[2], "return", reason="请修改")
    if return_first:
        returned, sent = await asyncio.gather(returning, submitting)
    else:
        sent, returned = await asyncio.gather(submitting, returning)
    assert sorted([sent.status_code, returned.status_code]) in ([200, 409], [201, 409]), (
        sent.text,
        returned.text,
    )
    summary = (await session.execute(select(DepartmentSummary))).scalar_one()
    await session.commit()
    included = [u["filing_id"] for u in summary.snapshot["units"]]
    states = dict(zip(ids, await statuses(session, *ids), strict=True))
    if sent.status_code == 201:
        assert summary.version == 2 and ids[2] in included
        assert returned.json()["code"] in {"concurrent_update", "filing_not_submitted"}
        assert states[ids[2]] == "department_submitted"
    else:
        assert sent.json()["code"] in {"department_incomplete", "concurrent_update"}
        assert summary.version == 1 and states[ids[2]] == "returned"
    if summary.version == 2:  # the summary this race submitted holds no returned filing
        for fid in included:
            assert states[fid] != "returned"


async def _submit(client: httpx.AsyncClient, dept_id: int) -> httpx.Response:
    return await client.post(
        f"/api/v1/departments/{dept_id}/summary/2024/submit", headers=auth("unit", dept_id)
    )


async def _finance_return(client: httpx.AsyncClient, tree: Tree) -> None:
    finance_id = tree.finance.id
    listed = await client.get("/api/v1/finance/2024/summaries", headers=auth("finance", finance_id))
    summary_id = listed.json()["items"][0]["id"]
    r = await client.post(
        f"/api/v1/finance/2024/summaries/{summary_id}/return",
        json={"reason": "请复核"},
        headers=auth("finance", finance_id),
    )
    assert r.status_code == 200, r.text


async def test_two_finance_reviewers_at_once_one_wins(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree, ids = await _department_with_confirmed_filings(session)
    assert (await _submit(confirmation_client, tree.department.id)).status_code == 201
    fin = auth("finance", tree.finance.id)
    summary_id = (
        await confirmation_client.get("/api/v1/finance/2024/summaries", headers=fin)
    ).json()["items"][0]["id"]
    url = f"/api/v1/finance/2024/summaries/{summary_id}"
    confirmed, returned = await asyncio.gather(
        confirmation_client.post(f"{url}/confirm", json={}, headers=fin),
        confirmation_client.post(f"{url}/return", json={"reason": "复核"}, headers=fin),
    )
    assert sorted([confirmed.status_code, returned.status_code]) == [200, 409]
    loser = confirmed if confirmed.status_code == 409 else returned
    assert loser.json()["code"] in {"concurrent_update", "summary_not_submitted"}
    expected = "finance_confirmed" if confirmed.status_code == 200 else "finance_returned"
    assert await statuses(session, *ids) == [expected] * 3
    assert len([k for k in await outbox(session) if k.startswith("summary:")]) == 1
