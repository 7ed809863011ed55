"""Hand-overs under concurrency and retries: two submits at once give one hand-over; a return
racing the receiver's own hand-up never leaves a returned hand-over inside a snapshot; a retried
request with the same Idempotency-Key replays the first answer."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import FilingStatus, FinanceAggregate
from tests.confirmation.finance_tree import FinanceTree, make_finance_tree, make_summary
from tests.conftest import auth
from tests.factories import make_submitted_filing

Y = 2024
SUBMIT = f"/api/v1/finance/{Y}/aggregate/submit"


async def _ready(session: AsyncSession) -> FinanceTree:
    t = await make_finance_tree(session)
    for unit in (t.education, t.school, t.school2, t.forestry, t.city_education, t.city_school):
        await make_submitted_filing(session, unit, status=FilingStatus.FINANCE_CONFIRMED)
    await session.commit()
    await make_summary(session, t.city_education, t.city, units=2)
    await make_summary(session, t.education, t.province, units=3)
    await make_summary(session, t.forestry, t.province, units=1)
    return t


async def _count(session: AsyncSession) -> int:
    n = await session.scalar(select(func.count()).select_from(FinanceAggregate))
    await session.commit()
    return int(n or 0)


async def test_two_submits_at_once_make_one_hand_over(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await _ready(session)
    city_h = auth("finance", t.city.id)
    first, second = await asyncio.gather(
        confirmation_client.post(SUBMIT, headers=city_h),
        confirmation_client.post(SUBMIT, headers=city_h),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["code"] == "aggregate_already_submitted"
    assert await _count(session) == 1


async def test_a_return_racing_the_receivers_hand_up_is_serialised(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await _ready(session)
    city = await confirmation_client.post(SUBMIT, headers=auth("finance", t.city.id))
    assert city.status_code == 201
    prov_h = auth("finance", t.province.id)
    hand_up, ret = await asyncio.gather(
        confirmation_client.post(SUBMIT, headers=prov_h),
        confirmation_client.post(
            f"/api/v1/finance/{Y}/aggregates/{city.json()['id']}/return",
            json={"reason": "请核对"},
            headers=prov_h,
        ),
    )
    if hand_up.status_code == 201:
        # the hand-up won: the city's hand-over is in its snapshot, confirmed, no longer returnable
        assert ret.status_code == 409 and ret.json()["code"] == "aggregate_not_submitted"
        regions = hand_up.json()["snapshot"]["regions"]
        assert [r["aggregate_id"] for r in regions] == [city.json()["id"]]
    else:
        # the return won: the province found its city missing
        assert ret.status_code == 200 and ret.json()["status"] == "returned"
        assert hand_up.status_code == 409 and hand_up.json()["code"] == "aggregate_incomplete"
    rows = (await session.execute(select(FinanceAggregate))).scalars().all()
    city_row = next(a for a in rows if a.finance_department_id == t.city.id)
    province_rows = [a for a in rows if a.finance_department_id == t.province.id]
    assert not (province_rows and city_row.status.value == "returned")
    await session.commit()


async def test_retried_requests_with_the_same_key_replay_the_first_answer(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await _ready(session)
    city_h = {**auth("finance", t.city.id), "Idempotency-Key": "city-2024-handover-1"}
    first = await confirmation_client.post(SUBMIT, headers=city_h)
    again = await confirmation_client.post(SUBMIT, headers=city_h)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert await _count(session) == 1
    prov_h = {**auth("finance", t.province.id), "Idempotency-Key": "return-city-1"}
    path = f"/api/v1/finance/{Y}/aggregates/{first.json()['id']}/return"
    one = await confirmation_client.post(path, json={"reason": "请核对"}, headers=prov_h)
    two = await confirmation_client.post(path, json={"reason": "请核对"}, headers=prov_h)
    assert one.status_code == two.status_code == 200
    assert two.json()["status"] == "returned"
    other = await confirmation_client.post(path, json={"reason": "别的原因"}, headers=prov_h)
    assert other.status_code == 409  # same key, different request
    assert other.json()["code"] == "idempotency_key_reused"
