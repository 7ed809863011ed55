"""Domain errors and their RFC 9457 `application/problem+json` rendering (API.md conventions).

Every error a client can cause is a `DomainError` with a stable snake_case `code`, an HTTP status,
an English `title` and a Chinese `detail` a clerk can act on. One set of handlers renders them; no
ORM exception ever decides a status, and nothing a client sends yields a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # FastAPI is imported where it is used: command-line tools (the statement
    # import, the workers) raise DomainErrors without paying for FastAPI's start-up
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.errors = list(errors) if errors else None
        self.extra = extra or {}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"

    @classmethod
    def at(
        cls, loc: Sequence[str | int], msg: str, *, code: str = "validation_failed"
    ) -> ValidationFailed:
        """One field error: `ValidationFailed.at(["body", "remark"], "备注不能超过50个字")`."""
        return cls(msg, code=code, errors=[{"loc": list(loc), "msg": msg}])


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: Sequence[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://errors.reserved-share.example/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    from fastapi.responses import JSONResponse

    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_PYDANTIC_MSG_ZH = {
    "missing": "必填项",
    "string_type": "须为字符串",
    "string_unicode": "包含无效的字符（不完整的Unicode编码）",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "bool_parsing": "须为 true 或 false",
    "bool_type": "须为 true 或 false",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "string_too_long": "长度超出限制",
    "string_too_short": "不能为空",
    "extra_forbidden": "不允许的字段",
    "json_invalid": "请求体不是合法的 JSON",
    "model_attributes_type": "须为对象",
    "dict_type": "须为对象",
    "list_type": "须为数组",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "datetime_parsing": "时间格式应为 ISO 8601",
    "datetime_type": "时间格式应为 ISO 8601",
    "uuid_parsing": "编号格式不正确",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "decimal_parsing": "须为数字",
}


def _zh_message(err: dict[str, Any]) -> str:
    if err.get("type") == "value_error":
        msg = str(err.get("msg", ""))
        return msg.removeprefix("Value error, ")
    return _PYDANTIC_MSG_ZH.get(str(err.get("type")), "格式不正确")


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": _zh_message(e)} for e in exc.errors()]


_HTTP_TITLES_ZH = {
    404: ("not_found", "Not found", "请求的资源不存在"),
    405: ("method_not_allowed", "Method not allowed", "不支持该请求方法"),
    413: ("payload_too_large", "Payload too large", "上传内容过大"),
    415: ("unsupported_media_type", "Unsupported media type", "不支持的内容类型"),
}


def install_error_handlers(app: FastAPI) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem(
            exc.status, exc.code, exc.title, exc.detail, errors=exc.errors, extra=exc.extra
        )

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "请求格式不正确"}
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        detail = f"{field}: {first['msg']}" if field else str(first["msg"])
        return problem(422, "validation_failed", "Validation failed", detail, errors=errors)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code, title, detail = _HTTP_TITLES_ZH.get(
            exc.status_code, ("http_error", "HTTP error", str(exc.detail))
        )
        return problem(exc.status_code, code, title, detail, headers=getattr(exc, "headers", None))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(
            500, "internal_error", "Internal error", "系统内部错误，请稍后重试或联系运维"
        )

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
