"""ASGI app of the notify service: `uvicorn --factory services.notify.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.notify.endpoints import router
from shared.web import create_service_app


def create_app() -> FastAPI:
    return create_service_app("notify", "Notify service (短信通知)", routers=[router])
