"""Failover order with cool-downs shared by every worker (Redis keys with a TTL).

A provider whose send came back `provider_side` (5xx, network, SYSTEM_ERROR, bad credentials,
a timeout) is skipped for `SMS_FAILOVER_COOLDOWN_SECONDS`; the next one in `SMS_PROVIDERS` order
is used. When every provider is cooling down, all are tried in the configured order anyway
(better a slow provider than none).

An `unknown` outcome also cools its provider down for *other* messages, but that message stays
with its provider until a status query settles it (sending it elsewhere could duplicate it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.notify.providers.base import SendResult, SmsProvider

KEY_PREFIX = "sms:provider-cooldown:"


class Failover:
    def __init__(self, redis: Any, cooldown_seconds: float, *, prefix: str = KEY_PREFIX) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.cooldown_seconds = cooldown_seconds
        self.prefix = prefix

    async def cooling(self, names: Sequence[str]) -> set[str]:
        if not names:
            return set()
        values = await self.redis.mget([self.prefix + n for n in names])
        return {n for n, v in zip(names, values, strict=True) if v is not None}

    async def order(self, providers: Sequence[SmsProvider]) -> list[SmsProvider]:
        """Providers to try for one send, best first: those not cooling down in configured
        order, then the cooling ones (also in configured order)."""
        cooling = await self.cooling([p.name for p in providers])
        ready = [p for p in providers if p.name not in cooling]
        return ready + [p for p in providers if p.name in cooling]

    async def cool_down(self, name: str) -> None:
        ms = int(self.cooldown_seconds * 1000)
        if ms > 0:
            await self.redis.set(self.prefix + name, "1", px=ms)

    async def record(self, result: SendResult) -> None:
        """Cool the provider down after a provider-side fault; a success clears it."""
        if result.provider_side:
            await self.cool_down(result.provider)
        elif result.outcome == "sent":
            await self.redis.delete(self.prefix + result.provider)
