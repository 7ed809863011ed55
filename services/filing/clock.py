"""Today's date in the configured timezone (Asia/Shanghai): the filing deadline is a local date.

Tests pin "today" with `monkeypatch.setattr(clock, "today", lambda: date(2024, 2, 20))`; the
service always calls `clock.today()` through this module.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from shared.settings import get_settings


def today() -> date:
    return datetime.now(ZoneInfo(get_settings().timezone)).date()
