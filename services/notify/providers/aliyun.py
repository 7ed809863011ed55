"""Aliyun SMS (Dysmsapi 2017-05-25): `SendSms`, `QuerySendDetails`, the `SmsReport` batch push.

Requests are RPC-style `POST /` signed with signature V3 (`ACS3-HMAC-SHA256`); the parameters
travel as a form body (hashed into `x-acs-content-sha256`), never in the URL, so that no mobile
number ends up in an access log.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.notify.providers.base import (
    Outcome,
    ProviderError,
    ReceiptFormatError,
    SendRequest,
    SendResult,
    StatusReport,
)
from services.notify.providers.errors import BEIJING, classify_aliyun
from services.notify.providers.http import HttpConfig, http_failure, json_body, transport_failure
from services.notify.providers.signing import acs3_authorization, acs3_date, form_encode, sha256_hex
from shared.masking import mask_mobile

log = logging.getLogger("services.notify.providers.aliyun")

VERSION = "2017-05-25"
QUERY_PAGE_SIZE = 50


def parse_beijing_time(value: Any) -> datetime | None:
    """`2017-01-01 00:00:00` (Beijing local time, as Aliyun and Tencent write it) → aware."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def our_id(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def signed_request(
    config: HttpConfig,
    *,
    action: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    now: datetime | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers (with `Authorization`) and form body of one Dysmsapi call."""
    body = form_encode(params).encode("utf-8")
    hashed = sha256_hex(body)
    headers = {
        "host": config.host,
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-action": action,
        "x-acs-version": VERSION,
        "x-acs-date": acs3_date(now or datetime.now(UTC)),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": hashed,
    }
    headers["Authorization"] = acs3_authorization(
        method="POST",
        path=config.path,
        query=None,
        headers=headers,
        hashed_payload=hashed,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
    )
    headers["accept"] = "application/json"
    return headers, body


class AliyunProvider:
    name = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str = "https://dysmsapi.aliyuncs.com",
        sign_name: str = "",
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.http = HttpConfig(endpoint, timeout=timeout, connect_timeout=connect_timeout)

    async def _call(self, action: str, params: Mapping[str, str]) -> httpx.Response:
        headers, body = signed_request(
            self.http,
            action=action,
            params=params,
            access_key_id=self.access_key_id,
            access_key_secret=self._secret,
        )
        async with self.http.client() as client:
            return await client.post(self.http.url, headers=headers, content=body)

    async def send(self, req: SendRequest) -> SendResult:
        params = {
            "PhoneNumbers": req.mobile,
            "SignName": self.sign_name or req.sign_name,
            "TemplateCode": req.template_code,
            "TemplateParam": json.dumps(req.params, ensure_ascii=False, separators=(",", ":")),
            "OutId": str(req.message_id),
        }
        label = f"阿里云 SendSms 消息{req.message_id}"
        try:
            response = await self._call("SendSms", params)
        except httpx.HTTPError as exc:
            return transport_failure(self.name, label, exc)
        body = json_body(response)
        code = str(body.get("Code") or "") if body else ""
        if body is None or not code:
            return http_failure(self.name, label, response)
        if code == "OK" and response.is_success:
            biz_id = str(body.get("BizId") or "") or None
            log.info(
                "aliyun: message %s to %s accepted (BizId %s)",
                req.message_id,
                mask_mobile(req.mobile),
                biz_id,
            )
            return SendResult(outcome=Outcome.SENT, provider=self.name, provider_message_id=biz_id)
        message = str(body.get("Message") or "")
        c = classify_aliyun(code, message)
        log.warning(
            "aliyun: message %s to %s: %s (%s)",
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

    async def query(
        self,
        *,
        message_id: int,
        mobile: str,
        provider_message_id: str | None,
        sent_at: datetime,
    ) -> list[StatusReport]:
        """`QuerySendDetails` for the send date (and the next one, when the send was just
        before midnight); without a BizId, the rows are matched by `OutId` = our id."""
        now = datetime.now(BEIJING)
        sent = sent_at.astimezone(BEIJING) if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)
        days = {sent.astimezone(BEIJING).date()}
        later = (sent + timedelta(minutes=10)).astimezone(BEIJING)
        if later <= now:
            days.add(later.date())
        reports: list[StatusReport] = []
        for day in sorted(days):
            page = 1
            while True:
                params = {
                    "PhoneNumber": mobile,
                    "SendDate": day.strftime("%Y%m%d"),
                    "PageSize": str(QUERY_PAGE_SIZE),
                    "CurrentPage": str(page),
                }
                if provider_message_id:
                    params["BizId"] = provider_message_id
                try:
                    response = await self._call("QuerySendDetails", params)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                    raise ProviderError(self.name, f"QuerySendDetails: {kind}") from exc
                body = json_body(response)
                if body is None or body.get("Code") != "OK":
                    code = str(body.get("Code")) if body else f"HTTP {response.status_code}"
                    raise ProviderError(self.name, f"QuerySendDetails: {code}", code=code)
                rows = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
                for row in rows:
                    if not isinstance(row, dict):
                        continue
                    out_id = our_id(row.get("OutId"))
                    if not provider_message_id and out_id != message_id:
                        continue
                    reports.append(self._query_report(row, provider_message_id, out_id))
                total = int(body.get("TotalCount") or 0)
                if page * QUERY_PAGE_SIZE >= total or not rows:
                    break
                page += 1
        return reports

    def _query_report(
        self, row: dict[str, Any], provider_message_id: str | None, out_id: int | None
    ) -> StatusReport:
        status = int(row.get("SendStatus") or 1)
        delivered = {3: True, 2: False}.get(status)
        err = str(row.get("ErrCode") or "") or None
        return StatusReport(
            provider=self.name,
            provider_message_id=provider_message_id,
            message_id=out_id,
            delivered=delivered,
            error_code=err if delivered is False else None,
            at=parse_beijing_time(row.get("ReceiveDate"))
            or parse_beijing_time(row.get("SendDate")),
        )

    def parse_receipts(self, payload: Any) -> list[StatusReport]:
        """The `SmsReport` HTTP batch push: a JSON array of reports (a single object is read as
        a batch of one). Items without `biz_id` and `out_id` are skipped."""
        return parse_aliyun_receipts(payload)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes"}


def parse_aliyun_receipts(payload: Any) -> list[StatusReport]:
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise ReceiptFormatError("阿里云回执应为 JSON 数组")
    reports: list[StatusReport] = []
    for item in payload:
        if not isinstance(item, dict):
            continue
        biz_id = str(item.get("biz_id") or "").strip() or None
        out_id = our_id(item.get("out_id"))
        if biz_id is None and out_id is None:
            continue
        delivered = _truthy(item.get("success"))
        err = str(item.get("err_code") or "").strip() or None
        reports.append(
            StatusReport(
                provider="aliyun",
                provider_message_id=biz_id,
                message_id=out_id,
                delivered=delivered,
                error_code=None if delivered else err,
                at=parse_beijing_time(item.get("report_time"))
                or parse_beijing_time(item.get("send_time")),
            )
        )
    return reports
