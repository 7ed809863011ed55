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


def test_log_lines_are_scrubbed_of_mobiles_and_account_numbers() -> None:
    import io
    import logging

    from shared.masking import MaskingFilter, mask_all_handlers

    stream = io.StringIO()
    logger = logging.getLogger("uvicorn.access.test-masking")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        mask_all_handlers()
        assert any(isinstance(f, MaskingFilter) for f in handler.filters)
        logger.warning("contact %s paid to %s", "13812345678", "35000188110503337")
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "13812345678" not in line and "138****5678" in line
    assert "35000188110503337" not in line and "3500 **** * 3337" in line


def test_money_input_is_a_string_with_at_most_two_decimals() -> None:
    from decimal import Decimal

    import pytest as _pytest
    from pydantic import BaseModel

    from shared.money import Money

    class Body(BaseModel):
        amount: Money

    assert Body(amount="200000").model_dump(mode="json") == {"amount": "200000.00"}
    assert Body(amount="2000011.5").amount == Decimal("2000011.50")
    for bad in (200000, 1.5, "1,000", "-1", "1.234", "1e3", "１０", "", " 1", True):
        with _pytest.raises(ValueError):
            Body(amount=bad)
