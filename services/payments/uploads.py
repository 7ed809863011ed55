"""The statement upload, read by the endpoint itself (not by FastAPI before the dependencies):
authentication is checked before a byte of the body is read, and the body is capped while it
streams (`IMPORT_MAX_UPLOAD_BYTES`, 413) instead of being spooled whole to a temporary file."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from shared.errors import DomainError, ValidationFailed
from shared.text import ensure_storable

FORM_OVERHEAD = 64 * 1024
"""Room for the multipart boundaries, part headers and the small form fields."""
_PROFILE_RE = re.compile(r"^[A-Za-z0-9_.-]*$")

UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "the bank's statement file",
                        },
                        "format": {"type": "string", "enum": ["csv", "xlsx", "mt940", "camt053"]},
                        "profile": {"type": "string", "maxLength": 60},
                    },
                }
            }
        },
    }
}


class UploadTooLarge(DomainError):
    status = 413
    code = "upload_too_large"
    title = "Upload too large"


@dataclass
class StatementUpload:
    file: UploadFile
    format: str | None
    profile: str | None

    async def close(self) -> None:
        await self.file.close()


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"上传的文件超过上限（{limit} 字节），请按日期拆分后分别导入", code="upload_too_large"
    )


async def _capped(
    stream: AsyncIterator[bytes], cap: int, limit: int
) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > cap:
            raise _too_large(limit)
        yield chunk


async def read_statement_upload(request: Request, limit: int) -> StatementUpload:
    """The multipart form (`file`, optional `format` and `profile`), the file spooled to a
    temporary file as it arrives; past `limit` bytes (declared or streamed) a 413."""
    cap = limit + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationFailed.at(["body", "file"], "请以 multipart/form-data 上传对账单文件")
    parser = MultiPartParser(
        request.headers, _capped(request.stream(), cap, limit), max_files=1, max_fields=5
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ValidationFailed.at(["body"], f"上传内容格式错误：{exc.message}") from exc
    file = form.get("file")
    if not isinstance(file, UploadFile):
        await form.close()
        raise ValidationFailed.at(["body", "file"], "缺少对账单文件（file）")
    try:
        fmt = _field(form.get("format"), "format")
        profile = _field(form.get("profile"), "profile")
        if profile is not None and (len(profile) > 60 or not _PROFILE_RE.fullmatch(profile)):
            raise ValidationFailed.at(
                ["body", "profile"], "银行格式名称只能是字母、数字、_ . -，最长 60 个字符"
            )
    except BaseException:
        await form.close()
        raise
    return StatementUpload(file=file, format=fmt, profile=profile)


def _field(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed.at(["body", name], f"{name} 应为文本字段")
    try:
        ensure_storable(value)
    except ValueError as exc:
        raise ValidationFailed.at(["body", name], str(exc)) from exc
    return value.strip() or None
