"""The emulator itself: the official SDKs are accepted by it (it speaks the real APIs and checks
their signatures), its control endpoints, and `python -m services.notify.emulator`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.notify.emulator_fixture import (  # noqa: F401 - fixtures
    ALIYUN_KEY_ID,
    ALIYUN_KEY_SECRET,
    TENCENT_SDK_APP_ID,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    EmulatorHandle,
    emulator_fixture,
    sms_emulator_fixture,
)


def test_official_aliyun_sdk_sends_and_queries(emulator: EmulatorHandle) -> None:
    from alibabacloud_dysmsapi20170525 import models
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    from darabonba.runtime import RuntimeOptions

    host = emulator.base_url.removeprefix("http://")
    config = open_api_models.Config(
        access_key_id=ALIYUN_KEY_ID,
        access_key_secret=ALIYUN_KEY_SECRET,
        endpoint=host,
        protocol="http",
    )
    client = Client(config)
    runtime = RuntimeOptions(autoretry=False)
    response = client.send_sms_with_options(
        models.SendSmsRequest(
            phone_numbers="13800000000",
            sign_name="832平台",
            template_code="SMS_1",
            template_param=json.dumps({"order_no": "A 1~*"}),
            out_id="5",
        ),
        runtime,
    )
    assert response.body.code == "OK"
    [send] = emulator.sends()
    assert send["id"] == response.body.biz_id
    assert send["params"] == {"order_no": "A 1~*"}
    detail = client.query_send_details_with_options(
        models.QuerySendDetailsRequest(
            phone_number="13800000000",
            send_date=time.strftime("%Y%m%d", time.gmtime(time.time() + 8 * 3600)),
            page_size=10,
            current_page=1,
            biz_id=response.body.biz_id,
        ),
        runtime,
    )
    assert detail.body.code == "OK"
    assert detail.body.sms_send_detail_dtos.sms_send_detail_dto[0].out_id == "5"
    # a wrong secret is refused by the emulator's signature check
    bad = Client(
        open_api_models.Config(
            access_key_id=ALIYUN_KEY_ID, access_key_secret="nope", endpoint=host, protocol="http"
        )
    )
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        bad.send_sms_with_options(
            models.SendSmsRequest(
                phone_numbers="13800000000", sign_name="x", template_code="SMS_1"
            ),
            runtime,
        )
    assert len(emulator.sends()) == 1


def test_official_tencent_sdk_sends_and_pulls(emulator: EmulatorHandle) -> None:
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.sms.v20210111 import models, sms_client

    profile = ClientProfile(
        httpProfile=HttpProfile(
            endpoint=emulator.base_url.removeprefix("http://"), protocol="http", reqMethod="POST"
        ),
        signMethod="TC3-HMAC-SHA256",
    )
    client = sms_client.SmsClient(
        credential.Credential(TENCENT_SECRET_ID, TENCENT_SECRET_KEY), "ap-guangzhou", profile
    )
    req = models.SendSmsRequest()
    req.PhoneNumberSet = ["+8613800000000"]
    req.SmsSdkAppId = TENCENT_SDK_APP_ID
    req.SignName = "832平台"
    req.TemplateId = "1110"
    req.TemplateParamSet = ["张三", "2026"]
    req.SessionContext = "8"
    resp = client.SendSms(req)
    [status] = resp.SendStatusSet
    assert status.Code == "Ok"
    assert status.SessionContext == "8"
    emulator.wait_for(lambda: emulator.sends()[0]["status"] == "delivered")
    pull = models.PullSmsSendStatusByPhoneNumberRequest()
    pull.PhoneNumber = "+8613800000000"
    pull.SmsSdkAppId = TENCENT_SDK_APP_ID
    pull.BeginTime = int(time.time()) - 60
    pull.EndTime = int(time.time()) + 60
    pull.Offset = 0
    pull.Limit = 10
    [report] = client.PullSmsSendStatusByPhoneNumber(pull).PullSmsSendStatusSet
    assert report.SerialNo == status.SerialNo
    assert report.ReportStatus == "SUCCESS"
    assert report.SessionContext == "8"


def test_control_endpoints(emulator: EmulatorHandle) -> None:
    http = httpx.Client(base_url=emulator.base_url, trust_env=False)
    assert http.post("/_emulator/faults", json={"fail_5xx": -1}).status_code == 422
    assert http.post("/_emulator/faults", json={"provider": "sms.example"}).status_code == 422
    faults = emulator.faults(provider="tencent", throttle=2, duplicate_receipts=True)
    assert faults["tencent"]["throttle"] == 2 and faults["aliyun"]["throttle"] == 0
    both = emulator.faults(fail_5xx=1)
    assert both["aliyun"]["fail_5xx"] == 1 and both["tencent"]["fail_5xx"] == 1
    assert both["tencent"]["throttle"] == 0  # replaced, not merged
    assert http.delete("/_emulator/faults").json()["aliyun"]["fail_5xx"] == 0
    # neither provider's action header
    assert http.post("/", json={}).status_code == 400
    http.close()


async def test_faults_for_both_providers_are_separate_copies(emulator: EmulatorHandle) -> None:
    from services.notify.providers import Outcome, SendRequest

    emulator.faults(errors=["isv.AMOUNT_NOT_ENOUGH"], throttle=1)
    req = SendRequest(
        message_id=1,
        mobile="13800000000",
        template="payment_confirmed",
        template_code="SMS_1",
        params={"order_no": "A1"},
        body="【832平台】订单A1的货款确认成功。",
        sign_name="832平台",
    )
    provider = emulator.aliyun_provider()
    assert (await provider.send(req)).outcome is Outcome.RETRY  # throttled
    assert (await provider.send(req)).error_code == "isv.AMOUNT_NOT_ENOUGH"
    assert (await provider.send(req)).outcome is Outcome.SENT
    faults = emulator.current_faults()
    assert faults["aliyun"]["errors"] == [] and faults["aliyun"]["throttle"] == 0
    assert faults["tencent"]["errors"] == ["isv.AMOUNT_NOT_ENOUGH"]
    assert faults["tencent"]["throttle"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_runnable_as_a_module() -> None:
    """`python -m services.notify.emulator --port P` (what `make run` uses)."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.notify.emulator", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body: Any = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/_emulator/sends", trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert body is not None and body.status_code == 200
        assert body.json() == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)
