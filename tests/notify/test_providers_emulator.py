"""The aliyun and tencent providers against the emulator, over real HTTP on loopback: one test
per outcome class (sent, retry, wait, permanent, unknown), status queries and receipts."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notify.providers import (
    Outcome,
    ProviderError,
    SendRequest,
    SmsProvider,
    build_providers,
)
from shared.settings import Settings
from tests.notify.emulator_fixture import (  # noqa: F401 - fixtures
    EmulatorHandle,
    emulator_fixture,
    sms_emulator_fixture,
)

MOBILE = "13800000000"
PROVIDERS = ["aliyun", "tencent"]


def provider_for(emu: EmulatorHandle, name: str, **kwargs: Any) -> SmsProvider:
    return emu.aliyun_provider(**kwargs) if name == "aliyun" else emu.tencent_provider(**kwargs)


def request(message_id: int = 42, mobile: str = MOBILE) -> SendRequest:
    return SendRequest(
        message_id=message_id,
        mobile=mobile,
        template="filing_returned",
        template_code="SMS_465890123",
        params={"unit_name": "某县财政局", "year": "2026", "reason": "金额有误"},
        body="【832平台】某县财政局：您单位2026年度预留份额填报已被上级预算单位退回，原因：金额有误。",
        sign_name="832平台",
    )


@pytest.mark.parametrize("name", PROVIDERS)
async def test_send_accepted(emulator: EmulatorHandle, name: str) -> None:
    provider = provider_for(emulator, name)
    result = await provider.send(request())
    assert result.outcome is Outcome.SENT
    assert result.provider == name
    [send] = emulator.sends(provider=name)
    assert result.provider_message_id == send["id"]
    assert send["message_id"] == "42"  # OutId / SessionContext
    assert send["mobile"] == MOBILE
    assert send["sign_name"] == "832平台"
    if name == "aliyun":
        assert send["params"] == {"unit_name": "某县财政局", "year": "2026", "reason": "金额有误"}
    else:  # Tencent parameters are positional
        assert send["params"] == ["某县财政局", "2026", "金额有误"]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_5xx_twice_then_ok(emulator: EmulatorHandle, name: str) -> None:
    emulator.faults(provider=name, fail_5xx=2)
    provider = provider_for(emulator, name)
    outcomes = []
    for _ in range(3):
        result = await provider.send(request())
        outcomes.append(result.outcome)
        if result.outcome is Outcome.RETRY:
            assert result.provider_side  # → failover cool-down
            assert result.error_message
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.SENT]
    assert len(emulator.sends(provider=name)) == 1


@pytest.mark.parametrize(
    ("name", "code"), [("aliyun", "Throttling.User"), ("tencent", "RequestLimitExceeded")]
)
async def test_throttling_retries(emulator: EmulatorHandle, name: str, code: str) -> None:
    emulator.faults(provider=name, throttle=1)
    result = await provider_for(emulator, name).send(request())
    assert result.outcome is Outcome.RETRY
    assert result.error_code == code
    assert not result.provider_side
    assert result.retry_after and result.retry_after > 0
    assert emulator.sends() == []


LIMIT_CASES = {
    "aliyun": [
        ("minute", "isv.BUSINESS_LIMIT_CONTROL", 60),
        ("hour", "isv.BUSINESS_LIMIT_CONTROL", 3600),
    ],
    "tencent": [
        ("minute", "LimitExceeded.PhoneNumberThirtySecondLimit", 30),
        ("hour", "LimitExceeded.PhoneNumberOneHourLimit", 3600),
    ],
}


@pytest.mark.parametrize("name", PROVIDERS)
async def test_per_number_limit_waits(emulator: EmulatorHandle, name: str) -> None:
    provider = provider_for(emulator, name)
    for window, code, wait in LIMIT_CASES[name]:
        emulator.faults(provider=name, number_limit=1, number_limit_window=window)
        result = await provider.send(request())
        assert result.outcome is Outcome.WAIT
        assert result.error_code == code
        assert result.retry_after == wait
        assert not result.provider_side
    emulator.faults(provider=name, number_limit=1, number_limit_window="day")
    result = await provider.send(request())
    assert result.outcome is Outcome.WAIT
    assert result.retry_after is not None and 0 < result.retry_after <= 86400
    assert emulator.sends() == []


async def test_real_aliyun_window_one_per_minute(emulator: EmulatorHandle) -> None:
    emulator.faults(provider="aliyun", enforce_number_limits=True)
    provider = emulator.aliyun_provider()
    assert (await provider.send(request(1))).outcome is Outcome.SENT
    second = await provider.send(request(2))
    assert second.outcome is Outcome.WAIT
    assert second.retry_after == 60
    assert (await provider.send(request(3, mobile="13900000000"))).outcome is Outcome.SENT


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("aliyun", "isv.MOBILE_NUMBER_ILLEGAL"),
        ("tencent", "InvalidParameterValue.IncorrectPhoneNumber"),
    ],
)
async def test_invalid_number_is_permanent(emulator: EmulatorHandle, name: str, code: str) -> None:
    provider = provider_for(emulator, name)
    emulator.faults(provider=name, invalid_numbers=["13811112222"])
    for mobile in ("13811112222", "1234"):
        result = await provider.send(request(mobile=mobile))
        assert result.outcome is Outcome.PERMANENT
        assert result.error_code == code
        assert result.error_message and "手机号" in result.error_message
    assert emulator.sends() == []


PERMANENT_CASES = {
    "aliyun": [
        ("isv.SMS_TEMPLATE_ILLEGAL", "模板"),
        ("isv.SMS_SIGNATURE_ILLEGAL", "签名"),
        ("isv.TEMPLATE_MISSING_PARAMETERS", "参数"),
        ("isv.AMOUNT_NOT_ENOUGH", "余额"),
        ("isv.BLACK_KEY_CONTROL_LIMIT", "黑名单"),
    ],
    "tencent": [
        ("FailedOperation.TemplateIncorrectOrUnapproved", "模板"),
        ("FailedOperation.SignatureIncorrectOrUnapproved", "签名"),
        ("FailedOperation.InsufficientBalanceInSmsPackage", "余量"),
        ("FailedOperation.PhoneNumberInBlacklist", "免打扰"),
        ("MissingParameter", "缺少参数"),
    ],
}


@pytest.mark.parametrize("name", PROVIDERS)
async def test_permanent_errors_fail_at_once(emulator: EmulatorHandle, name: str) -> None:
    provider = provider_for(emulator, name)
    for code, words in PERMANENT_CASES[name]:
        emulator.faults(provider=name, errors=[code])
        result = await provider.send(request())
        assert result.outcome is Outcome.PERMANENT, code
        assert result.error_code == code
        assert result.error_message and words in result.error_message
        assert not result.provider_side
    assert emulator.sends() == []


@pytest.mark.parametrize(
    ("name", "code"), [("aliyun", "isp.SYSTEM_ERROR"), ("tencent", "InternalError.Timeout")]
)
async def test_provider_side_error_codes_retry(
    emulator: EmulatorHandle, name: str, code: str
) -> None:
    emulator.faults(provider=name, errors=[code])
    result = await provider_for(emulator, name).send(request())
    assert result.outcome is Outcome.RETRY
    assert result.provider_side


@pytest.mark.parametrize("name", PROVIDERS)
async def test_timeout_after_accept_is_unknown_and_the_query_finds_it(
    emulator: EmulatorHandle,
    name: str,
) -> None:
    emulator.faults(provider=name, timeout_after_accept=1, hold_seconds=3, receipt_delay=0)
    provider = provider_for(emulator, name, timeout=0.5)
    sent_at = datetime.now(UTC)
    result = await provider.send(request(77))
    assert result.outcome is Outcome.UNKNOWN
    assert result.provider_message_id is None
    [send] = emulator.sends(provider=name)
    assert send["held"] is True
    if name == "tencent":  # Tencent lists a send once its delivery report exists
        emulator.wait_for(lambda: emulator.sends(provider=name)[0]["status"] != "waiting")
    reports = await provider.query(
        message_id=77, mobile=MOBILE, provider_message_id=None, sent_at=sent_at
    )
    assert [r.message_id for r in reports] == [77]
    assert reports[0].provider == name
    if name == "tencent":
        assert reports[0].provider_message_id == send["id"]
        assert reports[0].delivered is True
    # no second send happened
    assert len(emulator.sends(provider=name)) == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_query_without_record_is_empty(emulator: EmulatorHandle, name: str) -> None:
    provider = provider_for(emulator, name)
    reports = await provider.query(
        message_id=5, mobile=MOBILE, provider_message_id=None, sent_at=datetime.now(UTC)
    )
    assert reports == []


async def test_aliyun_query_by_bizid_reports_the_status(emulator: EmulatorHandle) -> None:
    emulator.faults(provider="aliyun", receipts="manual")
    provider = emulator.aliyun_provider()
    result = await provider.send(request(9))
    kwargs: dict[str, Any] = {
        "message_id": 9,
        "mobile": MOBILE,
        "provider_message_id": result.provider_message_id,
        "sent_at": datetime.now(UTC),
    }
    [waiting] = await provider.query(**kwargs)
    assert waiting.delivered is None
    assert waiting.message_id == 9
    assert waiting.provider_message_id == result.provider_message_id
    emulator.deliver(provider="aliyun")
    emulator.wait_for(lambda: emulator.sends()[0]["status"] == "delivered")
    [done] = await provider.query(**kwargs)
    assert done.delivered is True
    assert done.at is not None


@pytest.mark.parametrize("name", PROVIDERS)
async def test_query_failure_raises(emulator: EmulatorHandle, name: str) -> None:
    emulator.faults(provider=name, fail_query=1)
    with pytest.raises(ProviderError):
        await provider_for(emulator, name).query(
            message_id=1, mobile=MOBILE, provider_message_id=None, sent_at=datetime.now(UTC)
        )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("name", PROVIDERS)
async def test_connect_error_retries_provider_side(emulator: EmulatorHandle, name: str) -> None:
    provider = provider_for(emulator, name, endpoint=f"http://127.0.0.1:{_closed_port()}")
    result = await provider.send(request())
    assert result.outcome is Outcome.RETRY
    assert result.provider_side
    with pytest.raises(ProviderError):
        await provider.query(
            message_id=1, mobile=MOBILE, provider_message_id=None, sent_at=datetime.now(UTC)
        )


@pytest.mark.parametrize(
    ("name", "kwargs", "code"),
    [
        ("aliyun", {"access_key_secret": "wrong"}, "SignatureDoesNotMatch"),
        ("aliyun", {"access_key_id": "unknown"}, "InvalidAccessKeyId.NotFound"),
        ("tencent", {"secret_key": "wrong"}, "AuthFailure.SignatureFailure"),
        ("tencent", {"secret_id": "unknown"}, "AuthFailure.SecretIdNotFound"),
    ],
)
async def test_bad_credentials_are_provider_side(
    emulator: EmulatorHandle,
    name: str,
    kwargs: dict[str, str],
    code: str,
) -> None:
    """The emulator checks signatures; a misconfigured provider fails over to the next one."""
    result = await provider_for(emulator, name, **kwargs).send(request())
    assert result.outcome is Outcome.RETRY
    assert result.error_code == code
    assert result.provider_side
    assert emulator.sends() == []


@pytest.mark.parametrize("name", PROVIDERS)
async def test_receipts_pushed_in_batch_format_parse_back(
    emulator: EmulatorHandle,
    name: str,
) -> None:
    emulator.configure(**{f"{name}_receipt_url": emulator.sink_url(name)})
    emulator.faults(provider=name, undelivered_numbers=["13900000000"])
    provider = provider_for(emulator, name)
    ok = await provider.send(request(1))
    bad = await provider.send(request(2, mobile="13900000000"))
    batches = emulator.wait_for(
        lambda: (b := emulator.sink(name)) and sum(len(x) for x in b) >= 2 and b
    )
    assert all(isinstance(batch, list) for batch in batches)
    reports = [r for batch in batches for r in provider.parse_receipts(batch)]
    by_id = {r.provider_message_id: r for r in reports}
    assert by_id[ok.provider_message_id].delivered is True
    assert by_id[bad.provider_message_id].delivered is False
    assert by_id[bad.provider_message_id].error_code
    if name == "aliyun":
        assert by_id[ok.provider_message_id].message_id == 1  # out_id
    assert all(r.at is not None for r in reports)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_early_and_duplicate_receipts(emulator: EmulatorHandle, name: str) -> None:
    emulator.configure(**{f"{name}_receipt_url": emulator.sink_url(name)})
    emulator.faults(provider=name, early_receipts=True, duplicate_receipts=True)
    provider = provider_for(emulator, name)
    result = await provider.send(request(3))
    # the receipt was pushed before the send call was answered
    first = emulator.sink(name)
    assert first and provider.parse_receipts(first[0])[0].provider_message_id == (
        result.provider_message_id
    )
    batches = emulator.wait_for(lambda: len(emulator.sink(name)) >= 2 and emulator.sink(name))
    ids = [r.provider_message_id for b in batches for r in provider.parse_receipts(b)]
    assert ids == [result.provider_message_id] * 2


async def test_out_of_order_receipts(emulator: EmulatorHandle) -> None:
    emulator.configure(aliyun_receipt_url=emulator.sink_url("aliyun"))
    emulator.faults(provider="aliyun", out_of_order_receipts=True, receipts="manual")
    provider = emulator.aliyun_provider()
    results = [await provider.send(request(i, mobile=f"1390000000{i}")) for i in range(3)]
    emulator.deliver(provider="aliyun")
    [batch] = emulator.wait_for(lambda: emulator.sink("aliyun"))
    order = [r.message_id for r in provider.parse_receipts(batch)]
    assert order == [2, 1, 0]
    assert {r.provider_message_id for r in results} == {
        r.provider_message_id for r in provider.parse_receipts(batch)
    }


async def test_receipt_push_retried_when_our_endpoint_fails(emulator: EmulatorHandle) -> None:
    emulator.configure(aliyun_receipt_url=f"http://127.0.0.1:{_closed_port()}/sms/receipts/aliyun")
    await emulator.aliyun_provider().send(request())
    pushes = emulator.wait_for(
        lambda: (p := emulator.receipts()) and len(p[0]["attempts"]) == 4 and p, timeout=15
    )
    assert all(a["status"] is None for a in pushes[0]["attempts"])


async def test_build_providers_from_settings_point_at_emulator(
    emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in emulator.settings_env("tencent, aliyun ,log").items():
        monkeypatch.setenv(key, value)
    providers = build_providers(Settings())
    assert [p.name for p in providers] == ["tencent", "aliyun", "log"]
    for provider in providers:
        assert (await provider.send(request())).outcome is Outcome.SENT
    assert sorted(s["provider"] for s in emulator.sends()) == ["aliyun", "tencent"]


def test_build_providers_refuses_missing_credentials() -> None:
    with pytest.raises(ValueError, match="SMS_ALIYUN_ACCESS_KEY_ID"):
        build_providers(Settings(sms_providers="aliyun"))
    with pytest.raises(ValueError, match="unknown SMS provider"):
        build_providers(Settings(sms_providers="carrier-pigeon"))
