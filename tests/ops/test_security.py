"""Security basics: a finance token bound to a budget unit reads nothing, JWT key rotation
(`kid`, several verification keys), CORS origins from settings."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role, decode_token, mint_token, unit_in_scope
from shared.errors import Unauthorized
from shared.models import UnitKind
from shared.settings import Settings, get_settings
from tests.conftest import auth
from tests.factories import make_unit


async def test_a_finance_token_bound_to_a_budget_unit_reads_nothing(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    fd = await make_unit(session, "广东省财政厅", kind=UnitKind.FINANCE_DEPARTMENT)
    dept = await make_unit(session, "广东省教育厅", finance_department=fd)
    school = await make_unit(session, "某中学", parent=dept, finance_department=fd)
    await session.commit()
    misissued = Principal(sub="finance:x", role=Role.FINANCE, unit_id=dept.id)
    for target in (dept.id, school.id, fd.id):
        assert not await unit_in_scope(session, misissued, target)
    # the real finance department still sees its units
    proper = Principal(sub="finance:fd", role=Role.FINANCE, unit_id=fd.id)
    assert await unit_in_scope(session, proper, school.id)
    assert await unit_in_scope(session, proper, fd.id)
    # through the API: the subtree the token used to read answers 404
    for target in (dept.id, school.id):
        r = await filing_client.get(f"/api/v1/units/{target}", headers=auth("finance", dept.id))
        assert r.status_code == 404, r.text
        r = await filing_client.get(
            f"/api/v1/units/{dept.id}/children", headers=auth("finance", dept.id)
        )
        assert r.status_code == 404, r.text
    r = await filing_client.get("/api/v1/units/mine", headers=auth("finance", dept.id))
    assert r.status_code == 403 and r.json()["code"] == "not_a_finance_department"
    r = await filing_client.get(f"/api/v1/units/{school.id}", headers=auth("finance", fd.id))
    assert r.status_code == 200
    r = await filing_client.get("/api/v1/units/mine", headers=auth("finance", fd.id))
    assert r.status_code == 200 and r.json()["id"] == fd.id


def _rotated(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def restore_settings(monkeypatch: pytest.MonkeyPatch):
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_jwt_key_rotation_keeps_old_tokens_valid_while_listed(
    restore_settings: pytest.MonkeyPatch,
) -> None:
    old_secret = "old-secret-0123456789-0123456789-abcdef"
    new_secret = "new-secret-0123456789-0123456789-abcdef"
    _rotated(restore_settings, JWT_SECRET=old_secret, JWT_KEY_ID="2026a")
    old_token = mint_token(Role.OPS)
    assert jwt.get_unverified_header(old_token)["kid"] == "2026a"

    # rotate: a new current key, the old one still accepted
    _rotated(
        restore_settings,
        JWT_SECRET=new_secret,
        JWT_KEY_ID="2026b",
        JWT_PREVIOUS_KEYS=f"2026a={old_secret}",
    )
    new_token = mint_token(Role.OPS)
    assert jwt.get_unverified_header(new_token)["kid"] == "2026b"
    assert decode_token(old_token).role == Role.OPS
    assert decode_token(new_token).role == Role.OPS

    # the old key withdrawn: its tokens are refused
    _rotated(restore_settings, JWT_PREVIOUS_KEYS="")
    with pytest.raises(Unauthorized) as refused:
        decode_token(old_token)
    assert refused.value.code == "token_invalid"
    assert decode_token(new_token).role == Role.OPS

    # a token naming the current kid but signed with another secret is refused too
    forged = jwt.encode(
        {"sub": "x", "role": "ops", "iss": get_settings().jwt_issuer, "exp": time.time() + 60},
        "another-secret-0123456789-0123456789",
        algorithm="HS256",
        headers={"kid": "2026b"},
    )
    with pytest.raises(Unauthorized):
        decode_token(forged)


def test_malformed_previous_keys_fail_at_start(restore_settings: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="JWT_PREVIOUS_KEYS"):
        Settings(jwt_previous_keys="no-equals-sign")


async def test_cors_origins_come_from_settings(restore_settings: pytest.MonkeyPatch) -> None:
    from services.notify.app import create_app

    async def preflight(origin: str) -> httpx.Response:
        app = create_app()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.options(
                "/healthz",
                headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
            )

    r = await preflight("https://portal.example.gov.cn")
    assert "access-control-allow-origin" not in r.headers  # none configured: no CORS at all

    _rotated(restore_settings, CORS_ORIGINS="https://portal.example.gov.cn, https://b.example")
    r = await preflight("https://portal.example.gov.cn")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://portal.example.gov.cn"
    r = await preflight("https://evil.example")
    assert r.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_request_bodies_above_the_limits_get_413(
    restore_settings: pytest.MonkeyPatch,
) -> None:
    from services.payments.app import create_app

    _rotated(restore_settings, HTTP_MAX_BODY_BYTES="1000", HTTP_MAX_UPLOAD_BYTES="5000")
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    headers = auth("platform")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        big = await c.post("/api/v1/orders", content=b"{" + b" " * 2000 + b"}", headers=headers)
        assert big.status_code == 413 and big.json()["code"] == "payload_too_large"

        async def chunks():  # no Content-Length: counted as it arrives
            for _ in range(3):
                yield b" " * 600

        streamed = await c.post(
            "/api/v1/orders",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["code"] == "payload_too_large"
        upload = await c.post(
            "/api/v1/statements",
            files={"file": ("s.csv", b"x" * 6000, "text/csv")},
            headers=auth("importer"),
        )
        assert upload.status_code == 413
        small = await c.post(
            "/api/v1/statements",
            files={"file": ("s.csv", b"x" * 100, "text/csv")},
            headers=auth("importer"),
        )
        assert small.status_code != 413
