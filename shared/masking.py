"""Masking personal and banking data for logs and listings."""

from __future__ import annotations

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


# A digit run counts as a mobile or an account number only when it stands alone: not inside a
# longer run of digits or letters (ids, hashes), and not a decimal's part (`succeeded in
# 0.4096157335s` is a duration, not an account).
_ALONE_BEFORE = r"(?<![0-9A-Za-z.])"
_ALONE_AFTER = r"(?![0-9A-Za-z]|\.[0-9])"
_MOBILE_RE = re.compile(_ALONE_BEFORE + r"(1[3-9]\d)\d{4}(\d{4})" + _ALONE_AFTER)
_ACCOUNT_RE = re.compile(_ALONE_BEFORE + r"(\d{4})\d{5,}(\d{4})" + _ALONE_AFTER)


def scrub_mobiles(text: str) -> str:
    """Mask every mobile number in free text (SMS bodies shown to operations)."""
    return _MOBILE_RE.sub(r"\1****\2", text)


def scrub(text: str) -> str:
    """Mask every mobile number and bank-account-like digit run in free text (log lines)."""
    text = _MOBILE_RE.sub(r"\1****\2", text)
    return _ACCOUNT_RE.sub(r"\1 **** * \2", text)


def mask_all_handlers() -> None:
    """Make every configured handler mask its output (see `shared.logs`)."""
    from shared.logs import mask_all_handlers as _mask_all

    _mask_all()


def configure_logging(level: str = "INFO", *, service: str | None = None) -> None:
    """The process's one log handler, plain or JSON, masked (see `shared.logs`)."""
    from shared.logs import configure_logging as _configure

    _configure(level, service=service)
