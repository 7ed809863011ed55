"""ASGI app of the confirmation service.

Run: `uvicorn --factory services.confirmation.app:create_app`.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.confirmation.progress_endpoints import router as progress_router
from shared.web import create_service_app


def create_app() -> FastAPI:
    return create_service_app(
        "confirmation", "Confirmation service (预留份额确认与汇总)", routers=[progress_router]
    )
