"""`GET /api/v1/units` (filing service): a finance department finds the units of its region by
name, kind and finance department; scope-checked; paginated."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.confirmation.finance_tree import make_finance_tree
from tests.conftest import auth


async def _names(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    r = await client.get("/api/v1/units", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [u["name"] for u in r.json()["items"]]


async def test_finance_lists_and_searches_its_units(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    prov = auth("finance", t.province.id)
    assert await _names(
        filing_client, prov, finance_department_id=str(t.province.id), kind="budget_unit"
    ) == ["广东省教育厅", "广东省实验中学", "广东省第二中学", "广东省林业局"]
    assert await _names(filing_client, prov, q="中学") == [
        "广东省实验中学",
        "广东省第二中学",
        "广州市第一中学",
    ]
    assert await _names(filing_client, prov, kind="finance_department") == [
        "广东省财政厅",
        "广州市财政局",
    ]
    assert await _names(filing_client, prov, q="%") == []  # a literal, not a wildcard
    city = auth("finance", t.city.id)
    assert await _names(filing_client, city, q="中学") == ["广州市第一中学"]
    r = await filing_client.get(
        f"/api/v1/units?finance_department_id={t.province.id}", headers=city
    )
    assert r.status_code == 404
    r = await filing_client.get(
        f"/api/v1/units?finance_department_id={t.other_province.id}", headers=prov
    )
    assert r.status_code == 404
    # a unit searches its own subtree; ops everything, page by page
    assert await _names(filing_client, auth("unit", t.education.id), q="中学") == [
        "广东省实验中学",
        "广东省第二中学",
    ]
    first = await filing_client.get("/api/v1/units?limit=6", headers=auth("ops"))
    assert len(first.json()["items"]) == 6
    rest = await filing_client.get(
        f"/api/v1/units?limit=6&cursor={first.json()['next_cursor']}", headers=auth("ops")
    )
    assert len(rest.json()["items"]) == 4
    assert rest.json()["next_cursor"] is None
    # mobiles are masked for anyone but the unit itself
    assert all(
        u["contact"]["mobile"] is None or "*" in u["contact"]["mobile"]
        for u in first.json()["items"]
    )
    assert (await filing_client.get("/api/v1/units", headers=auth("platform"))).status_code == 403
