"""The `log` provider: masked text in the log, always `sent`, no record to query."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from services.notify.providers import LogProvider, Outcome, SendRequest, build_providers
from shared.settings import Settings


def _req() -> SendRequest:
    return SendRequest(
        message_id=42,
        mobile="13812345678",
        template="filing_returned",
        template_code="",
        params={"unit_name": "测试单位", "year": "2026", "reason": "金额有误"},
        body="【832平台】测试单位：您单位2026年度预留份额填报已被上级预算单位退回，原因：金额有误。",
        sign_name="832平台",
    )


async def test_log_provider_writes_masked_text(caplog: pytest.LogCaptureFixture) -> None:
    provider = LogProvider()
    with caplog.at_level(logging.INFO, logger="services.notify.providers.log"):
        result = await provider.send(_req())
    assert result.outcome is Outcome.SENT
    assert result.provider == "log"
    assert result.provider_message_id
    text = caplog.text
    assert "138****5678" in text
    assert "13812345678" not in text
    assert "原因：金额有误" in text
    assert (
        await provider.query(
            message_id=42, mobile="13812345678", provider_message_id=None, sent_at=datetime.now(UTC)
        )
        == []
    )


def test_default_provider_list_is_log() -> None:
    providers = build_providers(Settings())
    assert [p.name for p in providers] == ["log"]
