"""Request bodies and setup shared by the filing tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import OrgUnit, UnitKind
from tests.conftest import auth
from tests.factories import make_policy_2024, make_unit


@dataclass
class Tree:
    """Guangdong finance department, a supervising unit, two subordinates, an unrelated unit."""

    finance: OrgUnit
    department: OrgUnit
    unit: OrgUnit
    sibling: OrgUnit
    stranger: OrgUnit


async def make_tree(session: AsyncSession, *, policy: bool = True) -> Tree:
    if policy:
        await make_policy_2024(session)
    finance = await make_unit(session, "广东省财政厅", kind=UnitKind.FINANCE_DEPARTMENT)
    department = await make_unit(session, "广东省教育厅", finance_department=finance)
    unit = await make_unit(session, "广东省实验中学", parent=department, finance_department=finance)
    sibling = await make_unit(
        session, "广东省第二中学", parent=department, finance_department=finance
    )
    stranger = await make_unit(session, "广东省林业局", finance_department=finance)
    await session.commit()
    return Tree(finance, department, unit, sibling, stranger)


def own_body(total: str = "1000000", ratio: str = "30", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "canteen_type": "own",
        "canteen_total": total,
        "canteen_ratio": ratio,
        "remark": "",
        "union": {"has_need": True, "total": "200000", "ratio": "20", "remark": ""},
        "contact": {"name": "李四", "mobile": "13812345678", "landline": "020-83170000"},
        "union_contact": {"name": "王五", "mobile": "13912345678", "landline": ""},
    }
    body.update(overrides)
    return body


def shared_other_body(representative_id: int | None, **overrides: Any) -> dict[str, Any]:
    """A `shared`+`other` draft: no figures, the representative unit files for the canteen."""
    body = own_body(
        canteen_type="shared",
        shared_filled_by="other",
        representative_unit_id=representative_id,
        canteen_total=None,
        canteen_ratio=None,
    )
    body.update(overrides)
    return body


def no_union() -> dict[str, Any]:
    return {"has_need": False, "remark": "本单位无工会采购需求"}


async def save(
    client: httpx.AsyncClient, unit: OrgUnit, body: dict[str, Any], year: int = 2024
) -> httpx.Response:
    return await client.put(
        f"/api/v1/filings/{year}/mine", json=body, headers=auth("unit", unit.id)
    )


async def submit(
    client: httpx.AsyncClient,
    unit: OrgUnit,
    year: int = 2024,
    *,
    justification: str | None = None,
    declaration: bool = True,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/api/v1/filings/{year}/mine/submit",
        json={"declaration": declaration, "justification": justification},
        headers={**auth("unit", unit.id), **(headers or {})},
    )


async def save_and_submit(
    client: httpx.AsyncClient,
    unit: OrgUnit,
    body: dict[str, Any],
    year: int = 2024,
    justification: str | None = None,
) -> httpx.Response:
    saved = await save(client, unit, body, year)
    assert saved.status_code == 200, saved.text
    response = await submit(client, unit, year, justification=justification)
    assert response.status_code == 200, response.text
    return response


def error_locs(response: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in response.json().get("errors", [])]


def error_codes(response: httpx.Response) -> list[str]:
    return [e.get("code", response.json()["code"]) for e in response.json().get("errors", [])]
