"""ASGI app of the filing service: `uvicorn --factory services.filing.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.filing.endpoints import filings_router, policies_router, units_router
from services.filing.unit_search import unit_search_router
from shared.web import create_service_app


def create_app() -> FastAPI:
    return create_service_app(
        "filing",
        "Filing service (预留份额填报)",
        routers=[unit_search_router, units_router, policies_router, filings_router],
    )
