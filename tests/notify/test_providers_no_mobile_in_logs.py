"""No mobile number in any log line written while the providers and the emulator work: sends
that succeed, fail permanently, time out and cannot connect, queries, receipts (DEBUG level, every
logger, httpx included)."""

from __future__ import annotations

import logging
import re
import socket
from datetime import UTC, datetime

import pytest

from services.notify.providers import LogProvider, ProviderError, SendRequest, SmsProvider
from tests.notify.emulator_fixture import (  # noqa: F401 - fixtures
    EmulatorHandle,
    emulator_fixture,
    sms_emulator_fixture,
)

MOBILE = "13912345678"
# a mainland mobile standing alone (not a digit run inside an id or a uuid)
RAW_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


def _request(message_id: int) -> SendRequest:
    return SendRequest(
        message_id=message_id,
        mobile=MOBILE,
        template="payee_account",
        template_code="SMS_2",
        params={"order_no": "A1", "amount": "100.00"},
        body=f"【832平台】订单A1应付100.00元，联系电话{MOBILE}。",
        sign_name="832平台",
    )


async def test_no_mobile_number_in_any_log_line(
    emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.configure(
        aliyun_receipt_url=emulator.sink_url("aliyun"),
        tencent_receipt_url=emulator.sink_url("tencent"),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    caplog.set_level(logging.DEBUG)
    providers: list[SmsProvider] = [
        emulator.aliyun_provider(timeout=0.5),
        emulator.tencent_provider(timeout=0.5),
    ]
    await LogProvider().send(_request(1))
    for provider in providers:
        name = provider.name
        emulator.faults(provider=name, errors=["X.Permanent"], timeout_after_accept=1)
        await provider.send(_request(2))  # permanent error
        await provider.send(_request(3))  # accepted, answer held: unknown
        await provider.send(_request(4))  # sent
        await provider.query(
            message_id=3, mobile=MOBILE, provider_message_id=None, sent_at=datetime.now(UTC)
        )
    for provider in (
        emulator.aliyun_provider(endpoint=f"http://127.0.0.1:{closed}"),
        emulator.tencent_provider(endpoint=f"http://127.0.0.1:{closed}"),
    ):
        await provider.send(_request(5))
        with pytest.raises(ProviderError):
            await provider.query(
                message_id=5, mobile=MOBILE, provider_message_id=None, sent_at=datetime.now(UTC)
            )
    emulator.wait_for(lambda: len(emulator.sink()) >= 2)
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert any("139****5678" in r.getMessage() for r in caplog.records)
    leaks = [r.getMessage() for r in caplog.records if RAW_MOBILE.search(r.getMessage())]
    assert leaks == []
