"""Confirm / return: whole or one part, with the SMS in the same transaction, once per filing
version and decision (retries and Idempotency-Key replays queue nothing twice), and
`confirm-batch` deciding each filing on its own. The filing service's own endpoints share the
rules and the outbox write."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import get_sessionmaker
from shared.models import FilingStatus
from tests.confirmation.helpers import audit_actions, decide, outbox, plain_mobile, statuses
from tests.conftest import auth
from tests.factories import make_submitted_filing
from tests.filing.helpers import make_tree


async def test_a_retried_decision_queues_its_sms_once(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing = await make_submitted_filing(session, tree.unit, contact_mobile="13600000001")
    await session.commit()
    key = {"Idempotency-Key": "confirm-1"}

    first = await decide(confirmation_client, tree.department, filing.id, "confirm", headers=key)
    replay = await decide(confirmation_client, tree.department, filing.id, "confirm", headers=key)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()
    plain_retry = await decide(confirmation_client, tree.department, filing.id, "confirm")
    assert plain_retry.status_code == 409
    assert plain_retry.json()["code"] == "filing_not_submitted"
    other_body = await decide(
        confirmation_client, tree.department, filing.id, "return", reason="x", headers=key
    )
    assert other_body.status_code == 409  # another path with the same key
    assert other_body.json()["code"] == "idempotency_key_reused"

    sms = await outbox(session)
    assert list(sms) == [f"filing:{filing.id}:confirmed:v1"]
    row = sms[f"filing:{filing.id}:confirmed:v1"]
    assert plain_mobile(row) == "13600000001" and row.unit_id == tree.unit.id
    assert row.params == {"unit_name": "广东省实验中学", "year": "2024", "reason": ""}
    assert "广东省实验中学" in row.body and "2024" in row.body
    assert await audit_actions(session, "filing", filing.id) == ["filing.confirmed"]


async def test_return_of_one_part_keeps_the_other_and_tells_the_unit_why(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing = await make_submitted_filing(session, tree.unit)
    await session.commit()
    missing = await confirmation_client.post(
        f"/api/v1/confirmations/2024/filings/{filing.id}/return",
        json={"reason": "  "},
        headers=auth("unit", tree.department.id),
    )
    assert missing.status_code == 422  # a reason is required
    r = await decide(
        confirmation_client,
        tree.department,
        filing.id,
        "return",
        reason="工会比例有误",
        parts=["union"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["canteen_status"], body["union_status"]) == (
        "returned",
        "submitted",
        "returned",
    )
    sms = await outbox(session)
    assert "工会比例有误" in sms[f"filing:{filing.id}:returned:v1"].body
    detail = await confirmation_client.get(
        f"/api/v1/confirmations/2024/filings/{filing.id}", headers=auth("unit", tree.department.id)
    )
    assert detail.status_code == 200
    assert [v["version_no"] for v in detail.json()["versions"]] == [1]
    assert detail.json()["versions"][0]["snapshot"]["contact_mobile"] == "138****5678"


async def test_confirm_batch_decides_each_filing_on_its_own(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    ok = await make_submitted_filing(session, tree.unit)
    done = await make_submitted_filing(session, tree.sibling, status=FilingStatus.CONFIRMED)
    outside = await make_submitted_filing(session, tree.stranger)
    await session.commit()
    ids = (ok.id, done.id, outside.id)

    # a fourth filing is being decided by someone else meanwhile (row locked)
    busy_unit = tree.unit  # reuse the tree: a 2023 filing of the same unit is another filing
    busy = await make_submitted_filing(session, busy_unit, 2023)
    await session.commit()
    async with get_sessionmaker()() as other, other.begin():
        await other.execute(
            text("SELECT 1 FROM filings WHERE id = :id FOR UPDATE"), {"id": busy.id}
        )
        r = await confirmation_client.post(
            "/api/v1/confirmations/2024/confirm-batch",
            json={"filing_ids": [*ids, ok.id]},
            headers=auth("unit", tree.department.id),
        )
        assert r.status_code == 200, r.text
        other_year = await confirmation_client.post(
            "/api/v1/confirmations/2023/confirm-batch",
            json={"filing_ids": [busy.id]},
            headers=auth("unit", tree.department.id),
        )
    assert [(x["filing_id"], x["ok"], x["code"]) for x in r.json()["results"]] == [
        (ok.id, True, None),
        (done.id, False, "filing_not_submitted"),
        (outside.id, False, "filing_not_found"),
    ]
    assert [(x["ok"], x["code"]) for x in other_year.json()["results"]] == [
        (False, "concurrent_update")
    ]
    assert await statuses(session, *ids, busy.id) == [
        "confirmed",
        "confirmed",
        "submitted",
        "submitted",
    ]
    assert list(await outbox(session)) == [f"filing:{ok.id}:confirmed:v1"]
    empty = await confirmation_client.post(
        "/api/v1/confirmations/2024/confirm-batch",
        json={"filing_ids": []},
        headers=auth("unit", tree.department.id),
    )
    assert empty.status_code == 422


async def test_the_filing_services_own_endpoints_queue_the_same_sms(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    a = await make_submitted_filing(session, tree.unit, contact_mobile="13600000002")
    b = await make_submitted_filing(session, tree.sibling, contact_mobile="13600000003")
    await session.commit()
    superior = auth("unit", tree.department.id)
    r = await filing_client.post(f"/api/v1/filings/{a.id}/confirm", json={}, headers=superior)
    assert r.status_code == 200, r.text
    r = await filing_client.post(
        f"/api/v1/filings/{b.id}/return", json={"reason": "请补充说明"}, headers=superior
    )
    assert r.status_code == 200, r.text
    sms = await outbox(session)
    assert plain_mobile(sms[f"filing:{a.id}:confirmed:v1"]) == "13600000002"
    assert sms[f"filing:{b.id}:returned:v1"].template == "filing_returned"
    assert "请补充说明" in sms[f"filing:{b.id}:returned:v1"].body
