"""Free text a client sends must be storable: PostgreSQL `text` holds neither NUL characters nor
lone surrogates. Request models refuse them (422 with the field's path) instead of letting the
database fail (a 500)."""

from __future__ import annotations


def ensure_storable(value: str) -> str:
    """Return `value` unchanged, or raise ValueError (a Chinese message) if the database could
    not store it."""
    if "\x00" in value:
        raise ValueError("不能包含空字符（NUL）等不可见的控制字符")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("包含无效的字符（不完整的Unicode编码）") from exc
    return value
