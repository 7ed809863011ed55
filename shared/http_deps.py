"""FastAPI dependencies shared by the services (kept apart from `shared.db`, so that command-line
tools and workers do not import FastAPI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import unit_of_work


async def _request_session() -> AsyncIterator[AsyncSession]:
    async with unit_of_work() as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a client never
# sees success for a write that failed to commit.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
