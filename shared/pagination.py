"""Keyset pagination: `?limit=&cursor=` → `{"items": [...], "next_cursor": ...}` (API.md)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from shared.errors import ValidationFailed

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Cursor = Annotated[str | None, Query(description="opaque cursor from the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed.at(["query", "cursor"], "分页游标无效") from exc
    if not 0 <= value <= 2**63 - 1:  # a BIGINT id: larger numbers would fail in the database
        raise ValidationFailed.at(["query", "cursor"], "分页游标无效")
    return value
