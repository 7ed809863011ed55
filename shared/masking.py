"""Masking personal and banking data for logs and listings."""

from __future__ import annotations

import logging
import re


def mask_mobile(mobile: str | None) -> str | None:
    """`13812345678` → `138****5678`."""
    if not mobile:
        return mobile
    digits = mobile.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_account(account_no: str | None) -> str | None:
    """`35000188110503337` → `3500 **** * 3337` (the notice's `1001 **** * 7931` style)."""
    if not account_no:
        return account_no
    acct = account_no.strip()
    if len(acct) <= 8:
        return "*" * len(acct)
    return f"{acct[:4]} **** * {acct[-4:]}"


def mask_name(name: str | None) -> str | None:
    """Holder name partly hidden: `行唐县李先森农产品店` → `行唐县*****产品店`-style."""
    if not name:
        return name
    if len(name) <= 2:
        return name[0] + "*"
    keep = max(1, len(name) // 3)
    return name[:keep] + "*" * (len(name) - 2 * keep) + name[-keep:]


_MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ACCOUNT_RE = re.compile(r"(?<!\d)(\d{4})\d{5,}(\d{4})(?!\d)")


def scrub_mobiles(text: str) -> str:
    """Mask every mobile number in free text (SMS bodies shown to operations)."""
    return _MOBILE_RE.sub(r"\1****\2", text)


def scrub(text: str) -> str:
    """Mask every mobile number and bank-account-like digit run in free text (log lines)."""
    text = _MOBILE_RE.sub(r"\1****\2", text)
    return _ACCOUNT_RE.sub(r"\1 **** * \2", text)


class MaskingFilter(logging.Filter):
    """Logging filter that scrubs mobiles and account numbers from every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken format string is logged as is
            return True
        record.msg = scrub(message)
        record.args = None
        return True


def mask_all_handlers() -> None:
    """Add the masking filter to every handler configured so far (uvicorn's access and error
    loggers, Celery's worker loggers), so that no log line leaves unscrubbed."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(MaskingFilter())


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    mask_all_handlers()
