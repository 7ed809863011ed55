"""Failover order with cool-downs in real Redis: aliyun failing provider-side → tencent next."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from services.notify.providers import Outcome, SendRequest, SendResult, SmsProvider
from services.notify.providers.failover import Failover
from shared.settings import get_settings
from tests.notify.emulator_fixture import (  # noqa: F401 - fixtures
    EmulatorHandle,
    emulator_fixture,
    sms_emulator_fixture,
)


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(get_settings().redis_url)
    yield client
    await client.aclose()


def _request(message_id: int) -> SendRequest:
    return SendRequest(
        message_id=message_id,
        mobile="13800000000",
        template="payment_confirmed",
        template_code="SMS_1",
        params={"order_no": "A1"},
        body="【832平台】订单A1的货款确认成功。",
        sign_name="832平台",
    )


async def test_provider_side_failure_moves_to_the_next_provider(
    emulator: EmulatorHandle, redis: aioredis.Redis
) -> None:
    failover = Failover(redis, cooldown_seconds=60, prefix=f"test:{uuid.uuid4().hex}:")
    providers: list[SmsProvider] = [emulator.aliyun_provider(), emulator.tencent_provider()]
    emulator.faults(provider="aliyun", fail_5xx=5)

    first = (await failover.order(providers))[0]
    result = await first.send(_request(1))
    assert result.provider == "aliyun" and result.outcome is Outcome.RETRY
    await failover.record(result)

    # the next attempt (any worker: the cool-down is in Redis) goes to tencent
    order = await failover.order(providers)
    assert [p.name for p in order] == ["tencent", "aliyun"]
    second = await order[0].send(_request(1))
    assert second.outcome is Outcome.SENT
    await failover.record(second)
    assert [s["provider"] for s in emulator.sends()] == ["tencent"]

    # permanent errors are about the message, not the provider: no cool-down
    emulator.faults(provider="tencent", errors=["FailedOperation.PhoneNumberInBlacklist"])
    third = await order[0].send(_request(2))
    assert third.outcome is Outcome.PERMANENT
    await failover.record(third)
    assert await failover.cooling(["aliyun", "tencent"]) == {"aliyun"}

    # every provider cooling: all are still tried, in configured order
    await failover.cool_down("tencent")
    assert [p.name for p in await failover.order(providers)] == ["aliyun", "tencent"]


async def test_cool_down_expires(redis: aioredis.Redis) -> None:
    failover = Failover(redis, cooldown_seconds=0.05, prefix=f"test:{uuid.uuid4().hex}:")
    await failover.cool_down("aliyun")
    assert await failover.cooling(["aliyun"]) == {"aliyun"}
    ttl = await redis.pttl(failover.prefix + "aliyun")
    assert 0 < ttl <= 50
    await failover.record(SendResult(outcome=Outcome.SENT, provider="aliyun"))
    assert await failover.cooling(["aliyun"]) == set()
