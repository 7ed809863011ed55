"""Our signers against the official SDKs (dev-only dependencies): the same request signed by
both gives the same `Authorization` header.

The SDKs are stopped at their transport (nothing leaves the process): we take the request they
built and signed, sign it again with our code, and compare; and the reverse, our request signed
by the SDK's own signing function.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notify.providers import aliyun, tencent
from services.notify.providers.http import HttpConfig
from services.notify.providers.signing import (
    acs3_authorization,
    form_encode,
    parse_acs3_authorization,
    parse_tc3_authorization,
    tc3_authorization,
)

AK_ID, AK_SECRET = "LTAI5tTestAccessKeyId", "TestAccessKeySecret0123456789abcdef"
TC_ID, TC_KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3TestOnly", "Gu5t9xGARNpq86cd98joQYCN3TestOnly"
PARAMS = {
    "PhoneNumbers": "13800000000",
    "SignName": "832平台",
    "TemplateCode": "SMS_123456789",
    "TemplateParam": '{"unit_name":"某县 财政局","reason":"金额~有误*（见附件）"}',
    "OutId": "42",
}


class _Stop(Exception):
    pass


def _aliyun_sdk_request(monkeypatch: pytest.MonkeyPatch, *, form_body: bool) -> Any:
    from alibabacloud_dysmsapi20170525 import models
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
    from darabonba.core import DaraCore
    from darabonba.runtime import RuntimeOptions

    captured: dict[str, Any] = {}

    def capture(request: Any, *args: Any, **kwargs: Any) -> Any:
        captured["request"] = request
        raise _Stop()

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(capture))
    config = open_api_models.Config(
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        endpoint="dysmsapi.aliyuncs.com",
    )
    client = Client(config)
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps our stop in its own exception
        if form_body:
            params = Params(
                action="SendSms",
                version="2017-05-25",
                protocol="HTTPS",
                pathname="/",
                method="POST",
                auth_type="AK",
                style="RPC",
                req_body_type="formData",
                body_type="json",
            )
            client.call_api(params, OpenApiRequest(body=dict(PARAMS)), RuntimeOptions())
        else:
            request = models.SendSmsRequest(
                phone_numbers=PARAMS["PhoneNumbers"],
                sign_name=PARAMS["SignName"],
                template_code=PARAMS["TemplateCode"],
                template_param=PARAMS["TemplateParam"],
                out_id=PARAMS["OutId"],
            )
            client.send_sms_with_options(request, RuntimeOptions())
    return captured["request"]


def test_acs3_signs_the_sdk_request_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """SendSms as the SDK sends it (parameters in the query string)."""
    req = _aliyun_sdk_request(monkeypatch, form_body=False)
    headers = {k: v for k, v in req.headers.items() if k != "Authorization"}
    ours = acs3_authorization(
        method=req.method,
        path=req.pathname,
        query=req.query,
        headers=headers,
        hashed_payload=req.headers["x-acs-content-sha256"],
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
    )
    assert ours == req.headers["Authorization"]
    assert parse_acs3_authorization(ours) is not None


def test_acs3_form_body_matches_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parameters in a form body (what our provider sends): same body bytes, same hash, same
    Authorization as the SDK's."""
    req = _aliyun_sdk_request(monkeypatch, form_body=True)
    body = form_encode(PARAMS)
    assert body == req.body
    hashed = hashlib.sha256(body.encode()).hexdigest()
    assert hashed == req.headers["x-acs-content-sha256"]
    headers = {k: v for k, v in req.headers.items() if k != "Authorization"}
    ours = acs3_authorization(
        method="POST",
        path="/",
        query=req.query,
        headers=headers,
        hashed_payload=hashed,
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
    )
    assert ours == req.headers["Authorization"]


def test_our_aliyun_request_signed_by_the_sdk_signer() -> None:
    """The request our provider builds, signed by the SDK's `get_authorization`."""
    from alibabacloud_tea_openapi.utils import Utils
    from darabonba.request import DaraRequest

    config = HttpConfig("http://127.0.0.1:18400", timeout=5, connect_timeout=1)
    headers, body = aliyun.signed_request(
        config,
        action="SendSms",
        params=PARAMS,
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        now=datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        nonce="3156853299f313e23d1673dc12e1703d",
    )
    sdk_request = DaraRequest()
    sdk_request.method = "POST"
    sdk_request.pathname = "/"
    sdk_request.query = {}
    sdk_request.headers = {k: v for k, v in headers.items() if k not in {"Authorization", "accept"}}
    expected = Utils.get_authorization(
        sdk_request,
        "ACS3-HMAC-SHA256",
        hashlib.sha256(body).hexdigest(),
        AK_ID,
        AK_SECRET,
    )
    assert headers["Authorization"] == expected
    assert headers["x-acs-date"] == "2026-03-01T08:30:00Z"
    fields = parse_acs3_authorization(expected)
    assert fields is not None
    assert fields["SignedHeaders"] == (
        "content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;"
        "x-acs-signature-nonce;x-acs-version"
    )


def _tencent_sdk_request() -> Any:
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.sms.v20210111 import models, sms_client

    profile = ClientProfile(
        httpProfile=HttpProfile(endpoint="sms.tencentcloudapi.com", reqMethod="POST"),
        signMethod="TC3-HMAC-SHA256",
    )
    client = sms_client.SmsClient(credential.Credential(TC_ID, TC_KEY), "ap-guangzhou", profile)
    captured: dict[str, Any] = {}

    def capture(req: Any) -> Any:
        captured["request"] = req
        raise _Stop()

    client.request.send_request = capture
    request = models.SendSmsRequest()
    request.PhoneNumberSet = ["+8613800000000"]
    request.SmsSdkAppId = "1400006666"
    request.SignName = "832平台"
    request.TemplateId = "1110"
    request.TemplateParamSet = ["某县 财政局", "金额有误"]
    request.SessionContext = "42"
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps our stop in its own exception
        client.SendSms(request)
    return captured["request"]


def test_tc3_signs_the_sdk_request_the_same_way() -> None:
    req = _tencent_sdk_request()
    payload = req.data.encode() if isinstance(req.data, str) else req.data
    ours = tc3_authorization(
        secret_id=TC_ID,
        secret_key=TC_KEY,
        service="sms",
        timestamp=int(req.header["X-TC-Timestamp"]),
        host=req.header["Host"],
        payload=payload,
        content_type=req.header["Content-Type"],
        method=req.method,
        path=req.uri,
    )
    assert ours == req.header["Authorization"]


def test_our_tencent_request_matches_the_sdk_signature() -> None:
    """Our provider's request (charset in the content type, compact JSON), signed by the SDK's
    own TC3 routine over the same canonical request."""
    from tencentcloud.common.sign import Sign

    config = HttpConfig("https://sms.tencentcloudapi.com", timeout=5, connect_timeout=1)
    payload = {"PhoneNumberSet": ["+8613800000000"], "SmsSdkAppId": "1400006666"}
    headers, body = tencent.signed_request(
        config,
        action="SendSms",
        payload=payload,
        secret_id=TC_ID,
        secret_key=TC_KEY,
        region="ap-guangzhou",
        timestamp=1_772_353_800,
    )
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{headers['Content-Type']}\nhost:sms.tencentcloudapi.com\n",
            "content-type;host",
            hashlib.sha256(body).hexdigest(),
        ]
    )
    date = datetime.fromtimestamp(1_772_353_800, UTC).strftime("%Y-%m-%d")
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            "1772353800",
            f"{date}/sms/tc3_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    signature = Sign.sign_tc3(TC_KEY, date, "sms", string_to_sign)
    assert headers["Authorization"] == (
        f"TC3-HMAC-SHA256 Credential={TC_ID}/{date}/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )
    fields = parse_tc3_authorization(headers["Authorization"])
    assert fields is not None and fields["secret_id"] == TC_ID and fields["service"] == "sms"
