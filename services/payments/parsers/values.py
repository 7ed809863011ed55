"""Cell-level conversions shared by every format: amounts, timestamps, text, channels."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from shared.money import round_cents

from .models import StatementParseError

SHANGHAI = ZoneInfo("Asia/Shanghai")
"""Statements without a UTC offset are in China Standard Time."""

# Plain digits or comma-grouped thousands ("1,234.50"), at most two decimals, optional sign.
_AMOUNT_RE = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2})?")
_TOO_MANY_DECIMALS_RE = re.compile(r"[+-]?[\d,]+\.\d{3,}")
_EXCEL_TEXT_RE = re.compile(r'^="(.*)"$')
_WS = " \t\r\n"
AMOUNT_DIGITS = 14
"""Digits before the decimal point of NUMERIC(16,2)."""

CHANNELS = {
    "online": "online",
    "网银": "online",
    "网上银行": "online",
    "企业网银": "online",
    "个人网银": "online",
    "手机银行": "online",
    "银企直连": "online",
    "counter": "counter",
    "柜面": "counter",
    "柜台": "counter",
    "cash": "cash",
    "现金": "cash",
    "现金存入": "cash",
    "atm": "cash",
    "treasury": "treasury",
    "国库": "treasury",
    "国库集中支付": "treasury",
    "财政零余额": "treasury",
}
"""Bank channel names (交易渠道) → the matcher's vocabulary; other values are kept as given."""


def clean_text(value: object) -> str | None:
    """A cell as text: surrounding blanks removed, Excel text guards (`="0123"`, `'0123`, a
    leading tab) undone, numbers without a spurious `.0`; empty → None. Inner text is raw."""
    if value is None:
        return None
    if type(value) is str:  # the CSV fast path
        text = value.strip(_WS)
        if not text:
            return None
        if text[0] not in "='":
            return text
    elif isinstance(value, bool):
        return str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    else:
        text = str(value)
    text = text.strip(_WS)
    match = _EXCEL_TEXT_RE.match(text)
    if match:
        text = match.group(1).strip(_WS)
    if text.startswith("'"):
        text = text[1:].strip(_WS)
    return text or None


def parse_amount(value: object, *, line_no: int | None, label: str = "金额") -> Decimal | None:
    """A statement amount: `1234.5`, `1,234.50`, `-20.00` (sign kept), numbers from XLSX cells.

    Empty → None. More than two decimals or anything that is not a number → StatementParseError.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise StatementParseError(f"{label}“{value}”不是数字", line_no=line_no, code="bad_amount")
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        text = clean_text(value)
        if text is None or text in ("-", "—", "--"):
            return None
        if _TOO_MANY_DECIMALS_RE.fullmatch(text):
            raise StatementParseError(
                f"{label}“{text}”超过两位小数", line_no=line_no, code="bad_amount"
            )
        if not _AMOUNT_RE.fullmatch(text):
            raise StatementParseError(
                f"{label}“{text}”不是有效的金额（只能是数字、千分位逗号和最多两位小数）",
                line_no=line_no,
                code="bad_amount",
            )
        amount = Decimal(text.replace(",", ""))
    try:
        exponent = amount.as_tuple().exponent
    except InvalidOperation:  # pragma: no cover - Decimal(int|str) is always finite here
        exponent = 0
    if not amount.is_finite() or (isinstance(exponent, int) and exponent < -2):
        raise StatementParseError(
            f"{label}“{value}”超过两位小数或不是有限数字", line_no=line_no, code="bad_amount"
        )
    if amount and amount.adjusted() >= AMOUNT_DIGITS:  # NUMERIC(16,2); rounding would overflow
        raise StatementParseError(
            f"{label}“{value}”超出系统允许的范围", line_no=line_no, code="bad_amount"
        )
    return round_cents(amount)


def aware(moment: datetime) -> datetime:
    """Naive timestamps are Beijing time."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def _parse_datetime_text(text: str, formats: tuple[str, ...]) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def parse_moment(
    date_value: object,
    time_value: object,
    *,
    formats: tuple[str, ...],
    time_formats: tuple[str, ...],
    line_no: int | None,
) -> datetime | None:
    """Booking time from a date-or-datetime cell plus an optional time-only cell."""
    if date_value is None or date_value == "":
        return None
    if isinstance(date_value, datetime):
        moment = date_value
    elif isinstance(date_value, date):
        moment = datetime.combine(date_value, time())
    else:
        text = clean_text(date_value)
        if text is None:
            return None
        parsed = _parse_datetime_text(text, formats)
        if parsed is None:
            raise StatementParseError(f"交易时间“{text}”无法识别", line_no=line_no, code="bad_date")
        moment = parsed
    clock = parse_clock(time_value, time_formats=time_formats, line_no=line_no)
    if isinstance(clock, datetime):
        moment = clock
    elif clock is not None and moment.time() == time():
        moment = datetime.combine(moment.date(), clock)
    return aware(moment)


def parse_clock(
    value: object, *, time_formats: tuple[str, ...], line_no: int | None
) -> time | datetime | None:
    """A time-only cell (`10:12:33`, `101233`); a full timestamp there is returned as such."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime | time):
        return value
    text = clean_text(value)
    if text is None:
        return None
    for fmt in time_formats:
        try:
            return datetime.strptime(text, fmt).time()
        except ValueError:
            continue
    parsed = _parse_datetime_text(text, ())
    if parsed is None:
        raise StatementParseError(f"交易时间“{text}”无法识别", line_no=line_no, code="bad_date")
    return parsed


def parse_day(value: object, *, formats: tuple[str, ...], line_no: int | None) -> date | None:
    """A value date (起息日)."""
    moment = parse_moment(value, None, formats=formats, time_formats=(), line_no=line_no)
    return None if moment is None else moment.date()


def normalize_channel(value: str | None) -> str | None:
    if value is None:
        return None
    return CHANNELS.get(value.lower(), value)
