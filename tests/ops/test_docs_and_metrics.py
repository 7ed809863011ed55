"""OpenAPI documents declare the real errors, the HTTP reference is current, `/docs` works
offline, `/metrics` serves HTTP and business metrics, and the README settings table matches the
Settings model."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import PROBLEM_JSON
from shared.settings import Settings
from tests.conftest import auth

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("filing", "confirmation", "payments", "notify")


def _client(service: str) -> httpx.AsyncClient:
    app = importlib.import_module(f"services.{service}.app").create_app()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize("service", SERVICES)
async def test_openapi_declares_problem_json_errors(service: str) -> None:
    async with _client(service) as c:
        doc = (await c.get("/openapi.json")).json()
    assert "HTTPValidationError" not in doc["components"].get("schemas", {})
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            for status in ("401", "403", "404", "409", "413", "422"):
                if status in responses:
                    assert list(responses[status]["content"]) == [PROBLEM_JSON], (path, method)
            if op.get("x-roles"):
                assert {"401", "403"} <= set(responses), (path, method)
            if "{" in path:
                assert "404" in responses, (path, method)


async def test_error_responses_match_the_declared_problem_schema(
    payments_client: httpx.AsyncClient,
) -> None:
    r = await payments_client.post("/api/v1/orders", json={"order_no": 5}, headers=auth("platform"))
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert all({"loc", "msg"} <= set(e) for e in body["errors"])


def test_http_reference_is_current() -> None:
    """`make docs` regenerates docs/http-reference.md; after changing an endpoint, run it."""
    from shared.http_reference import OUTPUT, render

    assert OUTPUT.read_text(encoding="utf-8") == render(), "run `make docs` and commit the result"


@pytest.mark.parametrize("service", SERVICES)
async def test_swagger_ui_is_served_from_the_installed_package(service: str) -> None:
    async with _client(service) as c:
        page = await c.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
        urls += re.findall(r"""url:\s*["']([^"']+)""", page.text)
        assert urls
        assert not re.search(r"https?://", page.text), "the page must not load anything external"
        for url in urls:
            asset = await c.get(url)
            assert asset.status_code == 200, url
    js = (await _client(service).get("/static/swagger-ui/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in js


async def test_metrics_http_and_business_signals(
    payments_client: httpx.AsyncClient, notify_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.factories import make_supplier

    await make_supplier(session)
    await session.commit()
    await payments_client.get("/api/v1/orders/XD1", headers=auth("ops"))
    text = (await payments_client.get("/metrics")).text
    assert re.search(
        r'http_requests_total\{method="GET",route="/api/v1/orders/\{order_no\}",'
        r'service="payments",status="404"\} [1-9]',
        text,
    ), text[:3000]
    assert "http_request_duration_seconds_bucket" in text
    for name in (
        "reserved_share_match_queue_depth 0.0",
        "reserved_share_review_oldest_open_age_seconds 0.0",
        'reserved_share_celery_queue_length{queue="matching"}',
        'reserved_share_signal_up{signal="bank_lines"} 1.0',
        'reserved_share_signal_up{signal="review_queue"} 1.0',
        'reserved_share_signal_up{signal="celery_queues"} 1.0',
    ):
        assert name in text, name
    notify = (await notify_client.get("/metrics")).text
    assert 'reserved_share_signal_up{signal="sms_outbox"} 1.0' in notify
    assert "reserved_share_sms_outbox_oldest_age_seconds 0.0" in notify
    for service in ("filing", "confirmation"):
        async with _client(service) as c:
            r = await c.get("/metrics")
        assert r.status_code == 200 and "http_requests_total" in r.text


# Every setting is documented and read: no exceptions.
SETTINGS_OWNED_ELSEWHERE: set[str] = set()
USED_ELSEWHERE: set[str] = set()


def _readme_settings() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    return names


def test_readme_settings_table_matches_the_settings_model() -> None:
    documented = _readme_settings() - SETTINGS_OWNED_ELSEWHERE
    model = {name.upper() for name in Settings.model_fields} - SETTINGS_OWNED_ELSEWHERE
    assert documented - model == set(), "documented in README but not a setting"
    assert model - documented == set(), "a setting missing from the README table"


def test_every_setting_is_read_by_something() -> None:
    sources = [
        p.read_text(encoding="utf-8")
        for root in ("shared", "services", "deploy")
        for p in (REPO / root).rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".yaml", ".yml", ".conf", ""}
        and ".venv" not in p.parts
    ]
    corpus = "\n".join(sources)
    unused = []
    for field in Settings.model_fields:
        if field.upper() in SETTINGS_OWNED_ELSEWHERE | USED_ELSEWHERE:
            continue
        uses = len(re.findall(rf"\b{field}\b", corpus))
        if uses < 2:  # the declaration itself is one
            unused.append(field.upper())
    assert unused == []


def test_a_route_s_own_error_description_is_kept() -> None:
    from fastapi import APIRouter, Depends

    from shared.auth import Role, require_roles
    from shared.web import create_service_app

    router = APIRouter()

    @router.post(
        "/api/v1/probe/{probe_id}",
        responses={409: {"description": "`probe_locked`: the probe is locked"}},
        dependencies=[Depends(require_roles(Role.OPS))],
    )
    async def probe(probe_id: int) -> dict[str, int]:
        return {"id": probe_id}

    doc = create_service_app("probe", "probe", routers=[router]).openapi()
    op = doc["paths"]["/api/v1/probe/{probe_id}"]["post"]
    assert op["x-roles"] == ["ops"]
    assert op["responses"]["409"]["description"] == "`probe_locked`: the probe is locked"
    assert PROBLEM_JSON in op["responses"]["409"]["content"]
    assert PROBLEM_JSON in op["responses"]["422"]["content"]
    assert {"401", "403", "404"} <= set(op["responses"])
