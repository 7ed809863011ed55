"""Authentication (401) and the organisation-scope check (403/404) shared by every service."""

from __future__ import annotations

import time
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import (
    CurrentPrincipal,
    Principal,
    Role,
    ensure_unit_in_scope,
    mint_token,
    require_roles,
)
from shared.http_deps import SessionDep
from shared.models import OrgUnit, UnitKind
from shared.settings import get_settings
from shared.web import create_service_app
from tests.conftest import auth
from tests.factories import make_unit

router = APIRouter()


@router.get("/api/v1/probe/units/{unit_id}")
async def probe_unit(unit_id: int, principal: CurrentPrincipal, session: SessionDep) -> dict:
    await ensure_unit_in_scope(session, principal, unit_id, hide=False)
    return {"unit_id": unit_id}


@router.get("/api/v1/probe/ops-only")
async def probe_ops(principal: Annotated[Principal, Depends(require_roles(Role.OPS))]) -> dict:
    return {"sub": principal.sub}


@pytest.fixture
async def client():
    app = create_service_app("probe", "probe", routers=[router])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


@pytest.fixture
async def tree(session: AsyncSession) -> dict[str, OrgUnit]:
    province_fd = await make_unit(session, "广东省财政厅", kind=UnitKind.FINANCE_DEPARTMENT)
    city_fd = await make_unit(
        session,
        "广州市财政局",
        kind=UnitKind.FINANCE_DEPARTMENT,
        parent=province_fd,
        region_code="440100",
    )
    dept = await make_unit(session, "广东省教育厅", finance_department=province_fd)
    school = await make_unit(session, "某中学", parent=dept, finance_department=province_fd)
    other = await make_unit(session, "广东省卫健委", finance_department=province_fd)
    city_unit = await make_unit(
        session, "广州市教育局", finance_department=city_fd, region_code="440100"
    )
    await session.commit()
    return {
        "province_fd": province_fd,
        "city_fd": city_fd,
        "dept": dept,
        "school": school,
        "other": other,
        "city_unit": city_unit,
    }


def _forged(role: str, unit_id: int) -> str:
    now = int(time.time())
    claims = {
        "sub": "x",
        "role": role,
        "unit_id": unit_id,
        "exp": now + 600,
        "iss": get_settings().jwt_issuer,
    }
    return jwt.encode(claims, "not-our-secret-not-our-secret-000000", algorithm="HS256")


async def test_missing_token_is_401_problem_json(client, tree) -> None:
    response = await client.get(f"/api/v1/probe/units/{tree['dept'].id}")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "token_missing"


async def test_expired_token_is_401(client, tree) -> None:
    token = mint_token(Role.UNIT, tree["dept"].id, ttl=-5)
    response = await client.get(
        f"/api/v1/probe/units/{tree['dept'].id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


async def test_forged_token_is_401(client, tree) -> None:
    response = await client.get(
        f"/api/v1/probe/units/{tree['dept'].id}",
        headers={"Authorization": f"Bearer {_forged('ops', tree['dept'].id)}"},
    )
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


async def test_garbage_token_is_401(client, tree) -> None:
    response = await client.get(
        f"/api/v1/probe/units/{tree['dept'].id}", headers={"Authorization": "Bearer abc.def"}
    )
    assert response.status_code == 401


async def test_unit_sees_itself_and_its_descendants(client, tree) -> None:
    headers = auth(Role.UNIT, tree["dept"].id)
    assert (
        await client.get(f"/api/v1/probe/units/{tree['dept'].id}", headers=headers)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/probe/units/{tree['school'].id}", headers=headers)
    ).status_code == 200


async def test_unit_token_outside_its_scope_is_403(client, tree) -> None:
    for target in ("other", "city_unit", "province_fd"):
        response = await client.get(
            f"/api/v1/probe/units/{tree[target].id}", headers=auth(Role.UNIT, tree["dept"].id)
        )
        assert response.status_code == 403, target
        assert response.json()["code"] == "unit_out_of_scope"


async def test_subordinate_cannot_see_its_superior(client, tree) -> None:
    response = await client.get(
        f"/api/v1/probe/units/{tree['dept'].id}", headers=auth(Role.UNIT, tree["school"].id)
    )
    assert response.status_code == 403


async def test_provincial_finance_sees_city_units_but_city_finance_not_provincial(
    client, tree
) -> None:
    province = auth(Role.FINANCE, tree["province_fd"].id)
    city = auth(Role.FINANCE, tree["city_fd"].id)
    assert (
        await client.get(f"/api/v1/probe/units/{tree['city_unit'].id}", headers=province)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/probe/units/{tree['school'].id}", headers=province)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/probe/units/{tree['city_unit'].id}", headers=city)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/probe/units/{tree['school'].id}", headers=city)
    ).status_code == 403


async def test_role_outside_the_endpoint_roles_is_403(client, tree) -> None:
    response = await client.get("/api/v1/probe/ops-only", headers=auth(Role.UNIT, tree["dept"].id))
    assert response.status_code == 403
    assert response.json()["code"] == "role_forbidden"
    ok = await client.get("/api/v1/probe/ops-only", headers=auth(Role.OPS))
    assert ok.status_code == 200


def test_mint_command_prints_a_token_the_services_accept(capsys) -> None:
    from shared.auth import _main, decode_token

    assert _main(["mint", "--role", "finance", "--unit", "7", "--ttl", "60"]) == 0
    principal = decode_token(capsys.readouterr().out.strip())
    assert principal == Principal(sub="finance:7", role=Role.FINANCE, unit_id=7)
