"""Money and ratios: Decimal end to end, rounded half-up to the cent in exactly one place."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")
# Digits and at most one decimal point with at most two decimals: "200000", "200000.5", "200000.50".
_AMOUNT_RE = re.compile(r"^[0-9]{1,14}(\.[0-9]{1,2})?$")


def round_cents(value: Decimal) -> Decimal:
    """The single rounding rule of the system: half-up to the cent (四舍五入到分)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def percent_of(total: Decimal, ratio_percent: Decimal) -> Decimal:
    """`total × ratio / 100`, half-up to the cent (e.g. reserved share, union expected amount)."""
    return round_cents(total * ratio_percent / Decimal(100))


def parse_amount(raw: Any) -> Decimal:
    """Strictly parse a client amount or ratio string; raises ValueError with a Chinese message."""
    # JSON numbers are refused (API.md: money and ratios are strings); Decimal comes from our own
    # rows when a response model is built.
    if not isinstance(raw, str | Decimal):
        raise ValueError('金额或比例须为数字字符串，例如 "200000.00"')
    text = str(raw)
    if not _AMOUNT_RE.fullmatch(text):
        raise ValueError("只能填写数字和一个小数点，最多两位小数，且不能为负数")
    try:
        return round_cents(Decimal(text))
    except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees a number
        raise ValueError("金额格式不正确") from exc


def format_amount(value: Decimal) -> str:
    return f"{round_cents(value):.2f}"


Money = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    PlainSerializer(format_amount, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["200000.00"]}),
]
"""Request/response field type for money and ratios: strict string in, `"0.00"` string out."""

MoneyOut = Annotated[
    Decimal,
    PlainSerializer(format_amount, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["200000.00"]}),
]
"""Response-only money field (no input parsing rules)."""
