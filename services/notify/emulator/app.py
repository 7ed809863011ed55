"""ASGI app speaking Aliyun Dysmsapi (`SendSms`, `QuerySendDetails`) and Tencent Cloud SMS
(`SendSms`, `PullSmsSendStatusByPhoneNumber`) on `POST /`, told apart by their `x-acs-action` /
`X-TC-Action` headers, with signature checks, receipt callbacks pushed in each provider's batch
format, and switchable faults. Control endpoints live under `/_emulator/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from services.notify.emulator.state import (
    PROVIDERS,
    ConfigUpdate,
    EmulatorConfig,
    Faults,
    FaultsUpdate,
    Provider,
    Send,
    State,
    new_biz_id,
    new_serial_no,
)
from services.notify.providers.errors import BEIJING
from services.notify.providers.signing import (
    acs3_authorization,
    parse_acs3_authorization,
    parse_tc3_authorization,
    sha256_hex,
    tc3_signature,
)
from shared.masking import mask_mobile

log = logging.getLogger("services.notify.emulator")

MAINLAND = re.compile(r"^1[3-9]\d{9}$")
ALIYUN_WINDOWS = {
    "minute": "触发分钟级流控Permits:1",
    "hour": "触发小时级流控Permits:5",
    "day": "触发天级流控Permits:10",
}
TENCENT_WINDOWS = {
    "minute": "LimitExceeded.PhoneNumberThirtySecondLimit",
    "hour": "LimitExceeded.PhoneNumberOneHourLimit",
    "day": "LimitExceeded.PhoneNumberDailyLimit",
}
# Real per-number windows when `enforce_number_limits` is on: (window, seconds, max sends)
LIMITS: dict[Provider, list[tuple[str, float, int]]] = {
    "aliyun": [("minute", 60, 1), ("hour", 3600, 5), ("day", 86400, 10)],
    "tencent": [("minute", 30, 1), ("hour", 3600, 5), ("day", 86400, 10)],
}
TENCENT_PER_NUMBER = (
    "LimitExceeded.PhoneNumber",
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.InsufficientBalanceInSmsPackage",
)


def _beijing(ts: datetime) -> str:
    return ts.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.state = State(config=config or EmulatorConfig())
        self._queues: dict[Provider, asyncio.Queue[Send]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client: httpx.AsyncClient | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=5.0, trust_env=False)
        for provider in PROVIDERS:
            self._queues[provider] = asyncio.Queue()
            self._spawn(self._pusher(provider))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- receipts ----------------------------------------------------------------------------

    def _settle(self, send: Send) -> None:
        if send.status == "waiting":
            undelivered = send.mobile in self.state.faults[send.provider].undelivered_numbers
            send.status = "undelivered" if undelivered else "delivered"
            send.report_at = datetime.now(UTC)

    def schedule_receipt(self, send: Send) -> None:
        faults = self.state.faults[send.provider]
        if faults.receipts != "auto":
            return

        async def later() -> None:
            await asyncio.sleep(faults.receipt_delay)
            if send.generation == self.state.generation:  # not from before a reset
                self.enqueue_receipt(send)

        self._spawn(later())

    def enqueue_receipt(self, send: Send) -> None:
        self._settle(send)
        queue = self._queues[send.provider]
        queue.put_nowait(send)
        if self.state.faults[send.provider].duplicate_receipts:
            queue.put_nowait(send)

    async def _pusher(self, provider: Provider) -> None:
        queue = self._queues[provider]
        while True:
            first = await queue.get()
            await asyncio.sleep(self.state.config.batch_window)
            batch = [first]
            while not queue.empty():
                batch.append(queue.get_nowait())
            batch = [s for s in batch if s.generation == self.state.generation]
            try:
                self._dispatch_batch(provider, batch)
            except Exception:  # pragma: no cover - keep pushing later batches
                log.exception("emulator: %s receipt batch failed", provider)

    def _dispatch_batch(self, provider: Provider, batch: list[Send]) -> None:
        faults = self.state.faults[provider]
        # a duplicate goes into a second batch, like a provider's re-push
        seen: set[str] = set()
        first: list[Send] = []
        again: list[Send] = []
        for s in batch:
            (again if s.id in seen else first).append(s)
            seen.add(s.id)
        for part in (first, again):
            if part:
                if faults.out_of_order_receipts:
                    part = sorted(part, key=lambda s: s.at, reverse=True)
                self._spawn(self.push(provider, part))

    def receipt_item(self, send: Send) -> dict[str, Any]:
        ok = send.status == "delivered"
        at = send.report_at or datetime.now(UTC)
        if send.provider == "aliyun":
            return {
                "phone_number": send.mobile,
                "send_time": _beijing(send.at),
                "report_time": _beijing(at),
                "success": ok,
                "err_code": "DELIVERED" if ok else "UNDELIV",
                "err_msg": "用户接收成功" if ok else "用户接收失败",
                "sms_size": "1",
                "biz_id": send.id,
                "out_id": send.message_id or "",
            }
        return {
            "user_receive_time": _beijing(at),
            "nationcode": "86",
            "mobile": send.mobile,
            "report_status": "SUCCESS" if ok else "FAIL",
            "errmsg": "DELIVRD" if ok else "UNDELIV",
            "description": "用户短信送达成功" if ok else "用户短信未送达",
            "sid": send.id,
        }

    async def push(self, provider: Provider, sends: list[Send]) -> None:
        """POST one batch to the configured URL; on a non-200 answer or a timeout, push again
        after the configured delays (Aliyun: 1, 5, 10 minutes; shortened here)."""
        url = getattr(self.state.config, f"{provider}_receipt_url")
        items = [self.receipt_item(s) for s in sends]
        record: dict[str, Any] = {"provider": provider, "items": items, "attempts": []}
        self.state.pushes.append(record)
        if not url or self._client is None:
            record["attempts"].append({"status": None, "error": "no receipt url"})
            return
        delays = [0.0, *self.state.config.receipt_retry_delays]
        for delay in delays:
            await asyncio.sleep(delay)
            try:
                resp = await self._client.post(
                    url, json=items, headers=self.state.config.receipt_headers
                )
                record["attempts"].append({"status": resp.status_code})
                if resp.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                record["attempts"].append({"status": None, "error": type(exc).__name__})

    # --- per-number limits -------------------------------------------------------------------

    def over_limit(self, provider: Provider, mobile: str) -> str | None:
        now = datetime.now(UTC)
        times = [s.at for s in self.state.sends if s.provider == provider and s.mobile == mobile]
        for window, seconds, permits in LIMITS[provider]:
            since = now - timedelta(seconds=seconds)
            if sum(1 for t in times if t > since) >= permits:
                return window
        return None

    def record(self, send: Send) -> None:
        self.state.sends.append(send)
        log.info(
            "emulator: %s accepted %s for %s", send.provider, send.id, mask_mobile(send.mobile)
        )


# --- request verification ------------------------------------------------------------------


def _aliyun_error(status: int, code: str, message: str) -> JSONResponse:
    body = {"Code": code, "Message": message, "RequestId": _request_id()}
    return JSONResponse(body, status_code=status)


def verify_aliyun(
    emu: Emulator, request: Request, body: bytes, query: dict[str, str]
) -> JSONResponse | None:
    if not emu.state.config.verify_signatures:
        return None
    fields = parse_acs3_authorization(request.headers.get("authorization", ""))
    if fields is None:
        return _aliyun_error(400, "IncompleteSignature", "The request signature is incomplete.")
    secret = emu.state.config.aliyun_credentials.get(fields["Credential"])
    if secret is None:
        return _aliyun_error(
            404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        )
    hashed = sha256_hex(body)
    if request.headers.get("x-acs-content-sha256", "") != hashed:
        return _aliyun_error(400, "SignatureDoesNotMatch", "x-acs-content-sha256 mismatch.")
    signed = {n: request.headers.get(n, "") for n in fields["SignedHeaders"].split(";")}
    if not {"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce"} <= signed.keys():
        return _aliyun_error(400, "IncompleteSignature", "Required headers are not signed.")
    expected = acs3_authorization(
        method=request.method,
        path=request.url.path,
        query=query,
        headers=signed,
        hashed_payload=hashed,
        access_key_id=fields["Credential"],
        access_key_secret=secret,
    )
    if not hmac.compare_digest(expected, request.headers.get("authorization", "").strip()):
        return _aliyun_error(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        )
    return None


def _tencent(body: dict[str, Any]) -> JSONResponse:
    body.setdefault("RequestId", str(uuid.uuid4()))
    return JSONResponse({"Response": body})


def _tencent_error(code: str, message: str) -> JSONResponse:
    return _tencent({"Error": {"Code": code, "Message": message}})


def verify_tencent(emu: Emulator, request: Request, body: bytes) -> JSONResponse | None:
    if not emu.state.config.verify_signatures:
        return None
    auth = request.headers.get("authorization", "")
    fields = parse_tc3_authorization(auth)
    if fields is None:
        return _tencent_error("AuthFailure.InvalidAuthorization", "Authorization 格式错误")
    secret = emu.state.config.tencent_credentials.get(fields["secret_id"])
    if secret is None:
        return _tencent_error("AuthFailure.SecretIdNotFound", "SecretId 不存在")
    try:
        ts = int(request.headers.get("x-tc-timestamp", ""))
    except ValueError:
        return _tencent_error("AuthFailure.InvalidAuthorization", "X-TC-Timestamp 缺失")
    if abs(time.time() - ts) > 300:
        return _tencent_error("AuthFailure.SignatureExpire", "签名过期")
    expected = tc3_signature(
        secret_key=secret,
        service=fields["service"],
        timestamp=ts,
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        content_type=request.headers.get("content-type", ""),
        host=request.headers.get("host", ""),
        payload=body,
    )
    if not hmac.compare_digest(expected, fields["Signature"]):
        return _tencent_error("AuthFailure.SignatureFailure", "签名验证失败")
    return None


# --- Aliyun actions ------------------------------------------------------------------------


async def aliyun_send(emu: Emulator, params: dict[str, str]) -> Response:
    faults = emu.state.faults["aliyun"]
    if faults.fail_5xx:
        faults.fail_5xx -= 1
        return _aliyun_error(
            faults.status_5xx,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        )
    if faults.throttle:
        faults.throttle -= 1
        return _aliyun_error(400, "Throttling.User", "Request was denied due to user flow control.")
    if faults.errors:
        code = faults.errors.pop(0)
        status = 400 if code.startswith("Throttling") else 200
        if code.startswith(("InternalError", "ServiceUnavailable")):
            status = 503 if code.startswith("ServiceUnavailable") else 500
        return _aliyun_error(status, code, f"emulated {code}")
    mobiles = [m.strip() for m in params.get("PhoneNumbers", "").split(",") if m.strip()]
    if not mobiles or any(not MAINLAND.match(m) or m in faults.invalid_numbers for m in mobiles):
        return _aliyun_error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    if not params.get("SignName"):
        return _aliyun_error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
    if not params.get("TemplateCode"):
        return _aliyun_error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
    try:
        template_params = json.loads(params.get("TemplateParam") or "{}")
    except ValueError:
        return _aliyun_error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    if faults.number_limit:
        faults.number_limit -= 1
        message = ALIYUN_WINDOWS[faults.number_limit_window]
        return _aliyun_error(200, "isv.BUSINESS_LIMIT_CONTROL", message)
    if faults.enforce_number_limits:
        for m in mobiles:
            window = emu.over_limit("aliyun", m)
            if window:
                return _aliyun_error(200, "isv.BUSINESS_LIMIT_CONTROL", ALIYUN_WINDOWS[window])
    biz_id = new_biz_id()
    hold = faults.timeout_after_accept > 0
    if hold:
        faults.timeout_after_accept -= 1
    sends = [
        Send(
            provider="aliyun",
            id=biz_id,
            message_id=params.get("OutId") or None,
            mobile=m,
            sign_name=params["SignName"],
            template_code=params["TemplateCode"],
            params=template_params,
            at=datetime.now(UTC),
            held=hold,
            generation=emu.state.generation,
        )
        for m in mobiles
    ]
    for s in sends:
        emu.record(s)
    await _after_accept(emu, faults, sends)
    if hold:
        await asyncio.sleep(faults.hold_seconds)
    return JSONResponse(
        {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": _request_id()}
    )


async def _after_accept(emu: Emulator, faults: Faults, sends: list[Send]) -> None:
    if faults.early_receipts:
        for s in sends:
            emu._settle(s)
        provider = sends[0].provider
        await emu.push(provider, sends)
        if faults.duplicate_receipts:
            emu._spawn(emu.push(provider, sends))
        return
    for s in sends:
        emu.schedule_receipt(s)


def aliyun_query(emu: Emulator, params: dict[str, str]) -> Response:
    faults = emu.state.faults["aliyun"]
    if faults.fail_query:
        faults.fail_query -= 1
        return _aliyun_error(500, "InternalError", "emulated query failure")
    mobile = params.get("PhoneNumber", "")
    send_date = params.get("SendDate", "")
    if not MAINLAND.match(mobile):
        return _aliyun_error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    if not re.fullmatch(r"\d{8}", send_date):
        return _aliyun_error(200, "isv.INVALID_PARAMETERS", "SendDate 格式错误")
    try:
        page_size = max(1, min(50, int(params.get("PageSize") or 10)))
        page = max(1, int(params.get("CurrentPage") or 1))
    except ValueError:
        return _aliyun_error(200, "isv.INVALID_PARAMETERS", "分页参数错误")
    biz_id = params.get("BizId")
    rows = [
        s
        for s in emu.state.sends
        if s.provider == "aliyun"
        and s.mobile == mobile
        and s.at.astimezone(BEIJING).strftime("%Y%m%d") == send_date
        and (not biz_id or s.id == biz_id)
    ]
    chunk = rows[(page - 1) * page_size : page * page_size]
    dtos = [
        {
            "PhoneNum": s.mobile,
            "SendStatus": {"waiting": 1, "undelivered": 2, "delivered": 3}[s.status],
            "ErrCode": {"waiting": "", "undelivered": "UNDELIV", "delivered": "DELIVERED"}[
                s.status
            ],
            "TemplateCode": s.template_code,
            "Content": f"【{s.sign_name}】{json.dumps(s.params, ensure_ascii=False)}",
            "SendDate": _beijing(s.at),
            "ReceiveDate": _beijing(s.report_at) if s.report_at else "",
            "OutId": s.message_id or "",
        }
        for s in chunk
    ]
    return JSONResponse(
        {
            "Code": "OK",
            "Message": "OK",
            "RequestId": _request_id(),
            "TotalCount": len(rows),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
        }
    )


# --- Tencent actions -----------------------------------------------------------------------


def _mainland(number: str) -> str | None:
    n = str(number).strip()
    for prefix in ("+86", "0086", "86"):
        if n.startswith(prefix) and len(n) == len(prefix) + 11:
            n = n[len(prefix) :]
            break
    return n if MAINLAND.match(n) else None


async def tencent_send(emu: Emulator, payload: dict[str, Any]) -> Response:
    faults = emu.state.faults["tencent"]
    if faults.fail_5xx:
        faults.fail_5xx -= 1
        return PlainTextResponse("upstream error", status_code=faults.status_5xx)
    if faults.throttle:
        faults.throttle -= 1
        return _tencent_error("RequestLimitExceeded", "请求的次数超过了频率限制")
    numbers = payload.get("PhoneNumberSet")
    if not isinstance(numbers, list) or not numbers:
        return _tencent_error("MissingParameter.EmptyPhoneNumberSet", "传入的号码列表为空")
    for key in ("SmsSdkAppId", "TemplateId"):
        if not payload.get(key):
            return _tencent_error("MissingParameter", f"缺少参数 {key}")
    forced = faults.errors.pop(0) if faults.errors else None
    if forced and not forced.startswith(TENCENT_PER_NUMBER):
        return _tencent_error(forced, f"emulated {forced}")
    if not payload.get("SignName"):
        return _tencent_error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批")
    limit_code: str | None = None
    if faults.number_limit:
        faults.number_limit -= 1
        limit_code = TENCENT_WINDOWS[faults.number_limit_window]
    hold = faults.timeout_after_accept > 0
    if hold:
        faults.timeout_after_accept -= 1
    statuses: list[dict[str, Any]] = []
    accepted: list[Send] = []
    params = payload.get("TemplateParamSet") or []
    for raw in numbers:
        mobile = _mainland(str(raw))
        code = forced or limit_code
        if code is None and (mobile is None or mobile in faults.invalid_numbers):
            code = "InvalidParameterValue.IncorrectPhoneNumber"
        if code is None and faults.enforce_number_limits and mobile:
            window = emu.over_limit("tencent", mobile)
            code = TENCENT_WINDOWS[window] if window else None
        if code is not None:
            statuses.append(
                {
                    "SerialNo": "",
                    "PhoneNumber": str(raw),
                    "Fee": 0,
                    "SessionContext": payload.get("SessionContext", ""),
                    "Code": code,
                    "Message": f"emulated {code}",
                    "IsoCode": "CN",
                }
            )
            continue
        assert mobile is not None
        send = Send(
            provider="tencent",
            id=new_serial_no(),
            message_id=str(payload.get("SessionContext") or "") or None,
            mobile=mobile,
            sign_name=str(payload.get("SignName")),
            template_code=str(payload.get("TemplateId")),
            params=params,
            at=datetime.now(UTC),
            held=hold,
            generation=emu.state.generation,
        )
        emu.record(send)
        accepted.append(send)
        statuses.append(
            {
                "SerialNo": send.id,
                "PhoneNumber": f"+86{mobile}",
                "Fee": 1,
                "SessionContext": payload.get("SessionContext", ""),
                "Code": "Ok",
                "Message": "send success",
                "IsoCode": "CN",
            }
        )
    if accepted:
        await _after_accept(emu, faults, accepted)
    if hold and accepted:
        await asyncio.sleep(faults.hold_seconds)
    return _tencent({"SendStatusSet": statuses})


def tencent_pull(emu: Emulator, payload: dict[str, Any]) -> Response:
    faults = emu.state.faults["tencent"]
    if faults.fail_query:
        faults.fail_query -= 1
        return PlainTextResponse("upstream error", status_code=500)
    mobile = _mainland(str(payload.get("PhoneNumber") or ""))
    if mobile is None:
        return _tencent_error("InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误")
    try:
        begin = int(payload.get("BeginTime") or 0)
        end = int(payload.get("EndTime") or time.time())
        limit = max(1, min(100, int(payload.get("Limit") or 100)))
    except (TypeError, ValueError):
        return _tencent_error("InvalidParameterValue.BeginTimeVerifyFail", "时间参数错误")
    rows = [
        s
        for s in emu.state.sends
        if s.provider == "tencent"
        and s.mobile == mobile
        and s.status != "waiting"  # only reports are listed
        and begin <= s.at.timestamp() <= end
    ][:limit]
    return _tencent(
        {
            "PullSmsSendStatusSet": [
                {
                    "UserReceiveTime": int((s.report_at or s.at).timestamp()),
                    "CountryCode": "86",
                    "SubscriberNumber": s.mobile,
                    "PhoneNumber": f"+86{s.mobile}",
                    "SerialNo": s.id,
                    "ReportStatus": "SUCCESS" if s.status == "delivered" else "FAIL",
                    "Description": "DELIVRD" if s.status == "delivered" else "UNDELIV",
                    "SessionContext": s.message_id or "",
                }
                for s in rows
            ]
        }
    )


# --- the app -------------------------------------------------------------------------------


def create_app(config: EmulatorConfig | None = None) -> FastAPI:
    emu = Emulator(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await emu.start()
        yield
        await emu.stop()

    app = FastAPI(title="SMS provider emulator (Aliyun + Tencent)", lifespan=lifespan)
    app.state.emulator = emu

    @app.post("/", include_in_schema=False)
    async def provider_api(request: Request) -> Response:
        body = await request.body()
        st = emu.state
        if "x-acs-action" in request.headers:
            action = request.headers["x-acs-action"]
            query = dict(request.query_params)
            params = dict(query)
            if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            _log_request(st, "aliyun", action, request, body)
            denied = verify_aliyun(emu, request, body, query)
            if denied is not None:
                return denied
            if request.headers.get("x-acs-version") != "2017-05-25":
                return _aliyun_error(
                    400, "InvalidVersion", "Specified parameter Version is not valid."
                )
            if action == "SendSms":
                return await aliyun_send(emu, params)
            if action == "QuerySendDetails":
                return aliyun_query(emu, params)
            return _aliyun_error(404, "InvalidAction.NotFound", f"{action} is not supported.")
        if "x-tc-action" in request.headers:
            action = request.headers["x-tc-action"]
            _log_request(st, "tencent", action, request, body)
            denied = verify_tencent(emu, request, body)
            if denied is not None:
                return denied
            if request.headers.get("x-tc-version") != "2021-01-11":
                return _tencent_error("InvalidParameterValue", "Version 不支持")
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                return _tencent_error("FailedOperation.JsonParseFail", "解析请求包体时候失败")
            if not isinstance(payload, dict):
                return _tencent_error("FailedOperation.JsonParseFail", "解析请求包体时候失败")
            if action == "SendSms":
                return await tencent_send(emu, payload)
            if action == "PullSmsSendStatusByPhoneNumber":
                return tencent_pull(emu, payload)
            return _tencent_error("InvalidAction", f"接口 {action} 不存在")
        return JSONResponse({"error": "neither x-acs-action nor X-TC-Action"}, status_code=400)

    @app.get("/_emulator/sends")
    async def sends(provider: str | None = None, mobile: str | None = None) -> list[dict[str, Any]]:
        return [
            s.to_dict()
            for s in emu.state.sends
            if (provider is None or s.provider == provider)
            and (mobile is None or s.mobile == mobile)
        ]

    @app.get("/_emulator/requests")
    async def requests() -> dict[str, Any]:
        return {"counts": emu.state.request_counts, "recent": list(emu.state.requests)}

    @app.get("/_emulator/receipts")
    async def receipts() -> list[dict[str, Any]]:
        return emu.state.pushes

    @app.get("/_emulator/faults")
    async def get_faults() -> dict[str, Any]:
        return {p: f.model_dump() for p, f in emu.state.faults.items()}

    @app.post("/_emulator/faults")
    async def set_faults(update: FaultsUpdate) -> dict[str, Any]:
        for p in [update.provider] if update.provider else list(PROVIDERS):
            # a fresh copy per provider: the counters and the `errors` queue are not shared
            emu.state.faults[p] = Faults(**update.model_dump(exclude={"provider"}))
        return {p: f.model_dump() for p, f in emu.state.faults.items()}

    @app.delete("/_emulator/faults")
    async def clear_faults() -> dict[str, Any]:
        emu.state.faults = {p: Faults() for p in PROVIDERS}
        return {p: f.model_dump() for p, f in emu.state.faults.items()}

    @app.post("/_emulator/config")
    async def set_config(update: ConfigUpdate) -> dict[str, Any]:
        for key, value in update.model_dump(exclude_unset=True).items():
            setattr(emu.state.config, key, value)
        return emu.state.config.model_dump(exclude={"aliyun_credentials", "tencent_credentials"})

    @app.post("/_emulator/deliver")
    async def deliver(payload: dict[str, Any] | None = None) -> dict[str, int]:
        """Push the receipts of waiting sends now (all, or `{"provider": .., "ids": [..]}`)."""
        payload = payload or {}
        ids = set(payload.get("ids") or [])
        provider = payload.get("provider")
        chosen = [
            s
            for s in emu.state.sends
            if s.status == "waiting"
            and (provider is None or s.provider == provider)
            and (not ids or s.id in ids)
        ]
        for s in chosen:
            emu.enqueue_receipt(s)
        return {"queued": len(chosen)}

    @app.post("/_emulator/sink")
    async def sink_receive(request: Request, provider: str = "") -> Response:
        """A receipt receiver for demos and tests (point a receipt URL here): keeps the bodies
        and answers as our endpoint should (Aliyun `{"code": 0}`, Tencent `{"result": 0}`)."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"code": 1, "msg": "bad json"}, status_code=400)
        emu.state.sink.append({"provider": provider, "body": body})
        if provider == "tencent":
            return JSONResponse({"result": 0, "errmsg": "OK"})
        return JSONResponse({"code": 0, "msg": "接收成功"})

    @app.get("/_emulator/sink")
    async def sink_list() -> list[dict[str, Any]]:
        return emu.state.sink

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, bool]:
        emu.state.reset()
        return {"ok": True}

    return app


def _log_request(st: State, provider: str, action: str, request: Request, body: bytes) -> None:
    key = f"{provider}.{action}"
    st.request_counts[key] = st.request_counts.get(key, 0) + 1
    st.requests.append(
        {
            "provider": provider,
            "action": action,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items()},
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "at": datetime.now(UTC).isoformat(),
        }
    )
