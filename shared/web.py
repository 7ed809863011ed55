"""The app factory shared by the four services: error handlers, health and readiness probes,
request context (request id, access log, metrics), `/metrics`, offline `/docs`, CORS, and the
OpenAPI document's roles and error responses (`shared.openapi`)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.db import dispose_engine, get_engine
from shared.errors import install_error_handlers, problem
from shared.logs import (
    ACCESS_LOGGER,
    REQUEST_ID_HEADER,
    LogContext,
    bind_context,
    configure_logging,
    new_request_id,
    reset_context,
    valid_request_id,
)
from shared.openapi import install_openapi
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


access_log = logging.getLogger(ACCESS_LOGGER)


class RequestContextMiddleware:
    """Per request: the request id (`X-Request-ID` if the client or gateway sent a sane one, else
    a new one; echoed in the response), the log context every line of the request carries, one
    access line (route template, status, duration, principal) and the HTTP metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                sent = valid_request_id(value.decode("latin-1"))
                break
        ctx = LogContext(request_id=sent or new_request_id())
        token = bind_context(ctx)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER.lower().encode(), ctx.request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            ctx.route = getattr(route, "path", None) if route is not None else None
            method = str(scope.get("method", ""))
            metrics.observe_request(self.service, method, ctx.route or "unmatched", status, seconds)
            access_log.info(
                "%s %s %s %.1fms",
                method,
                ctx.route or "unmatched",
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            reset_context(token)


class BodyLimitMiddleware:
    """413 `payload_too_large` for a request body above the limit: `HTTP_MAX_UPLOAD_BYTES` for
    multipart uploads, `HTTP_MAX_BODY_BYTES` for everything else. Checked on `Content-Length`
    before anything is read, and on the bytes actually received (chunked bodies)."""

    def __init__(self, app: ASGIApp, upload_limit: int, body_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        content_type = headers.get(b"content-type", b"").lower()
        limit = self.upload_limit if content_type.startswith(b"multipart/") else self.body_limit
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # rendered by the error handlers as 413 problem+json
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"上传内容过大（上限 {limit // 2**20} MB）" if limit >= 2**20 else "请求内容过大",
        )
        await response(scope, receive, send)


SWAGGER_STATIC = "/static/swagger-ui"


def _install_offline_docs(app: FastAPI, title: str) -> None:
    """Swagger UI from the installed `swagger-ui-bundle` package: the page loads nothing from
    outside (intranets have no CDN)."""
    import swagger_ui_bundle

    app.mount(SWAGGER_STATIC, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), "swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} — API",
            swagger_js_url=f"{SWAGGER_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_STATIC}/favicon-32x32.png",
        )


def create_service_app(name: str, title: str, routers: Sequence[APIRouter] = ()) -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, service=name)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await dispose_engine()

    app = FastAPI(title=title, version="1.0.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service_name = name
    install_error_handlers(app)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
            max_age=600,
        )
    app.add_middleware(
        BodyLimitMiddleware,
        upload_limit=settings.http_max_upload_bytes,
        body_limit=settings.http_max_body_bytes,
    )
    app.add_middleware(RequestContextMiddleware, service=name)
    install_openapi(app)
    _install_offline_docs(app, title)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(await metrics.render(name), media_type=metrics.CONTENT_TYPE)

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
