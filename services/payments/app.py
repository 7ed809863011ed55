"""ASGI app of the payments service: `uvicorn --factory services.payments.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.payments.confirmation_endpoints import router as confirmation_router
from services.payments.endpoints import router
from shared.web import create_service_app


def create_app() -> FastAPI:
    return create_service_app(
        "payments", "Payments service (识别码支付与对账)", routers=[router, confirmation_router]
    )
