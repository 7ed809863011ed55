"""Each service answers /healthz, /readyz (real PostgreSQL + Redis) and /openapi.json."""

from __future__ import annotations

import importlib

import httpx
import pytest

SERVICES = ["filing", "confirmation", "payments", "notify"]


@pytest.mark.parametrize("service", SERVICES)
async def test_readyz_checks_postgres_and_redis(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        health = await c.get("/healthz")
        ready = await c.get("/readyz")
        spec = await c.get("/openapi.json")
    assert health.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")


async def test_unknown_path_is_problem_json(filing_client: httpx.AsyncClient) -> None:
    response = await filing_client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
