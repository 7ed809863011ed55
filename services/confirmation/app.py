"""ASGI app of the confirmation service.

Run: `uvicorn --factory services.confirmation.app:create_app`.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.confirmation.endpoints import (
    confirmations_router,
    reviews_router,
    summaries_router,
)
from services.confirmation.finance_endpoints import (
    department_export_router,
    finance_router,
    platform_router,
)
from services.confirmation.progress_endpoints import router as progress_router
from shared.web import create_service_app


def create_app() -> FastAPI:
    return create_service_app(
        "confirmation",
        "Confirmation service (预留份额确认与汇总)",
        routers=[
            confirmations_router,
            summaries_router,
            reviews_router,
            finance_router,
            platform_router,
            department_export_router,
            progress_router,
        ],
    )
