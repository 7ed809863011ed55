"""The app factory shared by the four services: error handlers, health and readiness probes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shared.db import dispose_engine, get_engine
from shared.errors import install_error_handlers, problem
from shared.masking import configure_logging
from shared.settings import get_settings

log = logging.getLogger(__name__)


def redis_client() -> aioredis.Redis:
    url = get_settings().redis_url
    if url.startswith("unix://"):
        return aioredis.Redis(unix_socket_path=url.removeprefix("unix://"))
    return aioredis.Redis.from_url(url)


async def check_ready() -> dict[str, str]:
    """Really query PostgreSQL and ping Redis; returns {component: "ok" | error}."""
    status: dict[str, str] = {}
    try:
        async with get_engine().connect() as conn:
            await conn.execute(text("SELECT 1"))
        status["postgres"] = "ok"
    except Exception as exc:
        status["postgres"] = f"error: {type(exc).__name__}"
    client = redis_client()
    try:
        await client.ping()
        status["redis"] = "ok"
    except Exception as exc:
        status["redis"] = f"error: {type(exc).__name__}"
    finally:
        await client.aclose()
    return status


def create_service_app(name: str, title: str, routers: Sequence[APIRouter] = ()) -> FastAPI:
    configure_logging(get_settings().log_level)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await dispose_engine()

    app = FastAPI(title=title, version="1.0.0", lifespan=lifespan)
    app.state.service_name = name
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @app.get("/readyz", tags=["health"], response_model=None)
    async def readyz() -> JSONResponse | dict[str, object]:
        checks = await check_ready()
        if all(v == "ok" for v in checks.values()):
            return {"status": "ready", "service": name, "checks": checks}
        return problem(
            503,
            "not_ready",
            "Service unavailable",
            "服务依赖不可用（数据库或缓存）",
            extra={"checks": checks},
        )

    for router in routers:
        app.include_router(router)
    return app
