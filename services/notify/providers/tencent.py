"""Tencent Cloud SMS (2021-01-11): `SendSms`, `PullSmsSendStatusByPhoneNumber`, the status
callback. API 3.0 requests: `POST /` with a JSON body, signed `TC3-HMAC-SHA256`."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from services.notify.providers.aliyun import our_id, parse_beijing_time
from services.notify.providers.base import (
    Outcome,
    ProviderError,
    ReceiptFormatError,
    SendRequest,
    SendResult,
    StatusReport,
)
from services.notify.providers.errors import classify_tencent
from services.notify.providers.http import HttpConfig, http_failure, json_body, transport_failure
from services.notify.providers.signing import tc3_authorization
from shared.masking import mask_mobile

log = logging.getLogger("services.notify.providers.tencent")

VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
PULL_LIMIT = 100
PULL_LOOKBACK_SECONDS = 300  # the pull starts a little before our send time (clock skew)


def e164(mobile: str) -> str:
    mobile = mobile.strip()
    return mobile if mobile.startswith("+") else f"+86{mobile}"


def signed_request(
    config: HttpConfig,
    *,
    action: str,
    payload: dict[str, Any],
    secret_id: str,
    secret_key: str,
    region: str,
    timestamp: int | None = None,
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Host": config.host,
        "Content-Type": CONTENT_TYPE,
        "X-TC-Action": action,
        "X-TC-Version": VERSION,
        "X-TC-Timestamp": str(ts),
        "X-TC-Region": region,
    }
    headers["Authorization"] = tc3_authorization(
        secret_id=secret_id,
        secret_key=secret_key,
        service=SERVICE,
        timestamp=ts,
        host=config.host,
        payload=body,
        content_type=CONTENT_TYPE,
        path=config.path,
    )
    return headers, body


class TencentProvider:
    name = "tencent"

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        endpoint: str = "https://sms.tencentcloudapi.com",
        sign_name: str = "",
        region: str = "ap-guangzhou",
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
    ) -> None:
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.region = region
        self.http = HttpConfig(endpoint, timeout=timeout, connect_timeout=connect_timeout)

    async def _call(self, action: str, payload: dict[str, Any]) -> httpx.Response:
        headers, body = signed_request(
            self.http,
            action=action,
            payload=payload,
            secret_id=self.secret_id,
            secret_key=self._secret_key,
            region=self.region,
        )
        async with self.http.client() as client:
            return await client.post(self.http.url, headers=headers, content=body)

    def _result(self, code: str, message: str, req: SendRequest) -> SendResult:
        c = classify_tencent(code, message)
        log.warning(
            "tencent: message %s to %s: %s (%s)",
            req.message_id,
            mask_mobile(req.mobile),
            code,
            c.outcome,
        )
        return SendResult(
            outcome=c.outcome,
            provider=self.name,
            error_code=code,
            error_message=c.message,
            retry_after=c.retry_after,
            provider_side=c.provider_side,
        )

    async def send(self, req: SendRequest) -> SendResult:
        payload = {
            "PhoneNumberSet": [e164(req.mobile)],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name or req.sign_name,
            "TemplateId": req.template_code,
            "TemplateParamSet": [str(v) for v in req.params.values()],
            "SessionContext": str(req.message_id),
        }
        label = f"腾讯云 SendSms 消息{req.message_id}"
        try:
            response = await self._call("SendSms", payload)
        except httpx.HTTPError as exc:
            return transport_failure(self.name, label, exc)
        body = json_body(response)
        resp = body.get("Response") if body else None
        if not isinstance(resp, dict):
            return http_failure(self.name, label, response)
        error = resp.get("Error")
        if isinstance(error, dict):
            return self._result(str(error.get("Code") or ""), str(error.get("Message") or ""), req)
        statuses = resp.get("SendStatusSet")
        status = statuses[0] if isinstance(statuses, list) and statuses else None
        if not isinstance(status, dict):
            return http_failure(self.name, label, response)
        code = str(status.get("Code") or "")
        if code == "Ok":
            serial = str(status.get("SerialNo") or "") or None
            log.info(
                "tencent: message %s to %s accepted (SerialNo %s)",
                req.message_id,
                mask_mobile(req.mobile),
                serial,
            )
            return SendResult(outcome=Outcome.SENT, provider=self.name, provider_message_id=serial)
        return self._result(code, str(status.get("Message") or ""), req)

    async def query(
        self,
        *,
        message_id: int,
        mobile: str,
        provider_message_id: str | None,
        sent_at: datetime,
    ) -> list[StatusReport]:
        """`PullSmsSendStatusByPhoneNumber` from shortly before the send until now, matched by
        `SerialNo` or else by `SessionContext` = our id.

        Tencent lists a message here only once its delivery report exists: [] right after a
        send does not prove that nothing went out (see docs/sms-providers.md)."""
        sent = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)
        begin = int(sent.timestamp()) - PULL_LOOKBACK_SECONDS
        payload = {
            "BeginTime": begin,
            "EndTime": int(time.time()) + 60,
            "Offset": 0,
            "Limit": PULL_LIMIT,
            "PhoneNumber": e164(mobile),
            "SmsSdkAppId": self.sdk_app_id,
        }
        try:
            response = await self._call("PullSmsSendStatusByPhoneNumber", payload)
        except httpx.HTTPError as exc:
            raise ProviderError(self.name, f"PullSmsSendStatus: {type(exc).__name__}") from exc
        body = json_body(response)
        resp = body.get("Response") if body else None
        if not isinstance(resp, dict):
            raise ProviderError(self.name, f"PullSmsSendStatus: HTTP {response.status_code}")
        error = resp.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code") or "")
            raise ProviderError(self.name, f"PullSmsSendStatus: {code}", code=code)
        reports: list[StatusReport] = []
        for row in resp.get("PullSmsSendStatusSet") or []:
            if not isinstance(row, dict):
                continue
            serial = str(row.get("SerialNo") or "") or None
            session_id = our_id(row.get("SessionContext"))
            if provider_message_id:
                if serial != provider_message_id:
                    continue
            elif session_id != message_id:
                continue
            status = str(row.get("ReportStatus") or "").upper()
            delivered = {"SUCCESS": True, "FAIL": False}.get(status)
            at_ts = row.get("UserReceiveTime")
            reports.append(
                StatusReport(
                    provider=self.name,
                    provider_message_id=serial,
                    message_id=session_id,
                    delivered=delivered,
                    error_code=None if delivered else (str(row.get("Description") or "") or None),
                    at=datetime.fromtimestamp(int(at_ts), UTC)
                    if isinstance(at_ts, int | float) and at_ts > 0
                    else None,
                )
            )
        return reports

    def parse_receipts(self, payload: Any) -> list[StatusReport]:
        """The status callback: a JSON array of reports, matched by `sid` (= SerialNo)."""
        return parse_tencent_receipts(payload)


def parse_tencent_receipts(payload: Any) -> list[StatusReport]:
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise ReceiptFormatError("腾讯云回执应为 JSON 数组")
    reports: list[StatusReport] = []
    for item in payload:
        if not isinstance(item, dict):
            continue
        sid = str(item.get("sid") or "").strip() or None
        session_id = our_id(item.get("session_context"))
        if sid is None and session_id is None:
            continue
        status = str(item.get("report_status") or "").strip().upper()
        delivered = {"SUCCESS": True, "FAIL": False}.get(status)
        err = str(item.get("errmsg") or "").strip() or None
        reports.append(
            StatusReport(
                provider="tencent",
                provider_message_id=sid,
                message_id=session_id,
                delivered=delivered,
                error_code=None if delivered else err,
                at=parse_beijing_time(item.get("user_receive_time")),
            )
        )
    return reports
