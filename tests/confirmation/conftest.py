"""Confirmation tests: "today" is pinned (Asia/Shanghai) so filing deadlines are deterministic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from services.filing import clock


@pytest.fixture(autouse=True)
def today(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[date]]:
    """Pin today to 2024-02-01 (before the 2024 deadline); a test sets `today[0] = ...`."""
    pinned = [date(2024, 2, 1)]
    monkeypatch.setattr(clock, "today", lambda: pinned[0])
    yield pinned
