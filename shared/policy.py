"""Effective policy (预留比例、截止日期等政策参数) of a fiscal year for a region.

Policy is data: one `policies` row per (year, region), each field nullable. The effective value of a
field is the one of the most specific row that sets it, walking the region's parent chain
(city → province → national `000000`). Every service reads policy through this module only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import DomainError, NotFound

NATIONAL_REGION = "000000"
"""Region code of the national policy row (the root of every region chain)."""

POLICY_FIELDS = (
    "national_floor",
    "encouraged_ratio",
    "soft_floor",
    "filing_deadline",
    "non_settlement_cutoff",
)

FIELD_LABELS_ZH = {
    "national_floor": "全国最低预留比例",
    "encouraged_ratio": "鼓励预留比例",
    "soft_floor": "本地区原则上不低于的预留比例",
    "filing_deadline": "填报截止日期",
    "non_settlement_cutoff": "非结算账户凭证截止下单日期",
}


class PolicyMissing(DomainError):
    status = 404
    code = "policy_missing"
    title = "Policy missing"


@dataclass(frozen=True)
class EffectivePolicy:
    """The resolved policy; `sources[field]` is the region code whose row gave the value."""

    year: int
    region_code: str
    chain: tuple[str, ...]
    national_floor: Decimal | None = None
    encouraged_ratio: Decimal | None = None
    soft_floor: Decimal | None = None
    filing_deadline: date | None = None
    non_settlement_cutoff: date | None = None
    sources: dict[str, str | None] = field(default_factory=dict)

    def require(self, name: str) -> Any:
        """The value of `name`, or a 404 `policy_missing` naming the field."""
        value = getattr(self, name)
        if value is None:
            raise PolicyMissing(
                f"{self.year}年度未设置{FIELD_LABELS_ZH.get(name, name)}"
                f"（地区 {self.region_code}），请联系财政部门或运营人员配置政策",
                extra={"year": self.year, "region_code": self.region_code, "field": name},
            )
        return value


_CHAIN_SQL = text(
    """
    WITH RECURSIVE chain(code, parent_code, depth) AS (
        SELECT code, parent_code, 0 FROM regions WHERE code = :code
        UNION ALL
        SELECT r.code, r.parent_code, c.depth + 1
          FROM regions r JOIN chain c ON r.code = c.parent_code
         WHERE c.depth < 10
    )
    SELECT code FROM chain ORDER BY depth
    """
)


async def region_chain(session: AsyncSession, region_code: str) -> tuple[str, ...]:
    """`("440100", "440000", "000000")`: the region then its ancestors, most specific first."""
    rows = (await session.execute(_CHAIN_SQL, {"code": region_code})).scalars().all()
    if not rows:
        raise NotFound(f"地区代码 {region_code} 不存在", code="region_not_found")
    chain = tuple(str(r) for r in rows)
    if NATIONAL_REGION not in chain:
        chain = (*chain, NATIONAL_REGION)
    return chain


async def effective_policy(session: AsyncSession, year: int, region_code: str) -> EffectivePolicy:
    """Resolve the effective policy; 404 `policy_missing` when no row of the chain exists."""
    chain = await region_chain(session, region_code)
    result = await session.execute(
        text("SELECT * FROM policies WHERE year = :year AND region_code = ANY(:codes)"),
        {"year": year, "codes": list(chain)},
    )
    rows = {row.region_code: row for row in result}
    if not rows:
        raise PolicyMissing(
            f"{year}年度尚未配置预留份额政策（地区 {region_code}），无法办理该年度业务；"
            "请联系财政部门或运营人员配置政策",
            extra={"year": year, "region_code": region_code},
        )
    values: dict[str, Any] = {}
    sources: dict[str, str | None] = {}
    for name in POLICY_FIELDS:
        values[name] = None
        sources[name] = None
        for code in chain:
            row = rows.get(code)
            if row is not None and getattr(row, name) is not None:
                values[name] = getattr(row, name)
                sources[name] = code
                break
    return EffectivePolicy(
        year=year, region_code=region_code, chain=chain, sources=sources, **values
    )


_CHAINS_SQL = text(
    """
    WITH RECURSIVE chain(code, ancestor, depth) AS (
        SELECT code, code, 0 FROM regions WHERE code = ANY(:codes)
        UNION ALL
        SELECT c.code, r.parent_code, c.depth + 1
          FROM chain c JOIN regions r ON r.code = c.ancestor
         WHERE r.parent_code IS NOT NULL AND c.depth < 10
    )
    SELECT code, ancestor FROM chain ORDER BY code, depth
    """
)


async def effective_policies(
    session: AsyncSession, year: int, region_codes: list[str]
) -> dict[str, EffectivePolicy | None]:
    """`effective_policy` of many regions in two queries (lists over a province's regions); a
    region without any policy row (or unknown) maps to None instead of raising."""
    chains: dict[str, list[str]] = {}
    for code, ancestor in await session.execute(_CHAINS_SQL, {"codes": list(region_codes)}):
        chains.setdefault(str(code), []).append(str(ancestor))
    for chain in chains.values():
        if NATIONAL_REGION not in chain:
            chain.append(NATIONAL_REGION)
    wanted = sorted({c for chain in chains.values() for c in chain})
    result = await session.execute(
        text("SELECT * FROM policies WHERE year = :year AND region_code = ANY(:codes)"),
        {"year": year, "codes": wanted},
    )
    rows = {row.region_code: row for row in result}
    out: dict[str, EffectivePolicy | None] = {}
    for code in region_codes:
        found = chains.get(code)
        if found is None or not any(c in rows for c in found):
            out[code] = None
            continue
        chain = found
        values: dict[str, Any] = {}
        sources: dict[str, str | None] = {}
        for name in POLICY_FIELDS:
            values[name] = None
            sources[name] = None
            for c in chain:
                row = rows.get(c)
                if row is not None and getattr(row, name) is not None:
                    values[name] = getattr(row, name)
                    sources[name] = c
                    break
        out[code] = EffectivePolicy(
            year=year, region_code=code, chain=tuple(chain), sources=sources, **values
        )
    return out


REMINDER_FIELDS = ("reminder_days_first", "reminder_days_second")
"""Days before the filing deadline on which units with no submitted filing get an SMS reminder
(填报提醒); policy data like the rest, resolved along the same region chain."""


@dataclass(frozen=True)
class ReminderPolicy:
    year: int
    region_code: str
    filing_deadline: date | None
    days_before: tuple[int, ...]  # distinct, non-negative, largest first


async def reminder_policy(session: AsyncSession, year: int, region_code: str) -> ReminderPolicy:
    """The deadline and reminder days effective for a region (empty when none are set; no
    policy row at all → `policy_missing` like `effective_policy`)."""
    policy = await effective_policy(session, year, region_code)
    result = await session.execute(
        text(
            "SELECT region_code, reminder_days_first, reminder_days_second FROM policies "
            "WHERE year = :year AND region_code = ANY(:codes)"
        ),
        {"year": year, "codes": list(policy.chain)},
    )
    rows = {row.region_code: row for row in result}
    days: list[int] = []
    for name in REMINDER_FIELDS:
        for code in policy.chain:
            row = rows.get(code)
            value = getattr(row, name) if row is not None else None
            if value is not None:
                if value >= 0 and value not in days:
                    days.append(int(value))
                break
    return ReminderPolicy(
        year=year,
        region_code=region_code,
        filing_deadline=policy.filing_deadline,
        days_before=tuple(sorted(days, reverse=True)),
    )
