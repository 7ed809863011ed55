"""Column mappings of Chinese bank exports (银行流水导出格式), one named profile per layout.

A profile lists, for each statement field, the header names a bank uses for it (aliases). The
profile of a file is the one whose required headers are all present in its header row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .models import StatementParseError

FIELDS = (
    "bank_ref",
    "account_no",
    "booked_at",  # date or date+time
    "booked_time",  # time of day, when the bank splits 交易日期 / 交易时间
    "value_date",
    "payer_name",
    "payer_account",
    "payer_bank",
    "credit",  # 贷方发生额: money in
    "debit",  # 借方发生额: money out
    "amount",  # signed amount, with `direction` (借贷标志) or its sign
    "direction",
    "currency",
    "remark",
    "remark_extra",  # a second remark column (附言 after 用途), joined with a space
    "channel",
)

_UNIT_SUFFIX_RE = re.compile(r"[(（](元|人民币|CNY|RMB)[)）]$", re.IGNORECASE)


def normalize_header(name: object) -> str:
    """`" 贷方发生额(元) "` → `"贷方发生额"`: blanks and a currency-unit suffix removed."""
    text = "" if name is None else str(name)
    text = re.sub(r"\s+", "", text.replace("\ufeff", ""))
    return _UNIT_SUFFIX_RE.sub("", text)


@dataclass(frozen=True)
class CsvProfile:
    """How one bank lays out its CSV/XLSX statement export."""

    name: str
    description: str
    columns: Mapping[str, tuple[str, ...]]
    """field → header aliases, first present one wins."""
    required: tuple[str, ...]
    datetime_formats: tuple[str, ...] = (
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%Y/%m/%d",
        "%Y%m%d %H:%M:%S",
        "%Y%m%d%H%M%S",
        "%Y年%m月%d日 %H:%M:%S",
        "%Y年%m月%d日",
        "%Y.%m.%d",
    )
    time_formats: tuple[str, ...] = ("%H:%M:%S", "%H%M%S", "%H:%M")
    credit_flags: frozenset[str] = field(
        default=frozenset({"贷", "贷方", "c", "cr", "crdt", "credit", "收", "收入", "来账"})
    )
    debit_flags: frozenset[str] = field(
        default=frozenset({"借", "借方", "d", "dr", "dbit", "debit", "支", "支出", "往账"})
    )
    default_currency: str = "CNY"

    def __post_init__(self) -> None:
        unknown = set(self.columns) - set(FIELDS)
        if unknown:  # pragma: no cover - a programming error in a profile definition
            raise ValueError(f"unknown fields in profile {self.name}: {sorted(unknown)}")
        has_amount = "credit" in self.required or {"amount"} <= set(self.required)
        if not has_amount or "account_no" not in self.required:  # pragma: no cover
            raise ValueError(f"profile {self.name} must require an account and an amount")

    def locate(self, header: Sequence[object]) -> dict[str, int] | None:
        """Column index per field for this header row, or None if a required header is missing."""
        positions: dict[str, int] = {}
        for index, name in enumerate(header):
            positions.setdefault(normalize_header(name), index)
        found: dict[str, int] = {}
        for field_name, aliases in self.columns.items():
            for alias in aliases:
                if alias in positions:
                    found[field_name] = positions[alias]
                    break
        if any(name not in found for name in self.required):
            return None
        return found

    def required_headers(self) -> list[str]:
        return [self.columns[name][0] for name in self.required]


GENERIC_CN = CsvProfile(
    name="generic_cn",
    description=(
        "收款方账户流水通用格式：交易流水号,交易时间,收款账号,对方户名,对方账号,对方开户行,"
        "贷方发生额,摘要,交易渠道（可选 借方发生额）"
    ),
    columns={
        "bank_ref": ("交易流水号", "流水号"),
        "booked_at": ("交易时间",),
        "account_no": ("收款账号",),
        "payer_name": ("对方户名",),
        "payer_account": ("对方账号",),
        "payer_bank": ("对方开户行",),
        "credit": ("贷方发生额",),
        "debit": ("借方发生额",),
        "currency": ("币种",),
        "remark": ("摘要",),
        "channel": ("交易渠道",),
        "value_date": ("起息日",),
    },
    required=("account_no", "booked_at", "credit"),
)

CN_DEBIT_CREDIT = CsvProfile(
    name="cn_debit_credit",
    description=(
        "对公账户明细（借贷分列）：本方账号,交易日期,交易时间,借方发生额,贷方发生额,对方户名,"
        "对方账号,对方行名,摘要,用途,流水号,起息日,币种,交易渠道"
    ),
    columns={
        "bank_ref": ("流水号", "交易流水号", "银行流水号"),
        "account_no": ("本方账号", "账号"),
        "booked_at": ("交易日期", "记账日期"),
        "booked_time": ("交易时间", "记账时间"),
        "value_date": ("起息日", "起息日期"),
        "payer_name": ("对方户名", "对方账户名称", "对方单位名称"),
        "payer_account": ("对方账号", "对方账户"),
        "payer_bank": ("对方行名", "对方开户行", "对方开户机构"),
        "debit": ("借方发生额", "支出金额"),
        "credit": ("贷方发生额", "收入金额"),
        "currency": ("币种",),
        "remark": ("摘要",),
        "remark_extra": ("用途",),
        "channel": ("交易渠道", "渠道"),
    },
    required=("account_no", "booked_at", "debit", "credit"),
)

CN_SIGNED_AMOUNT = CsvProfile(
    name="cn_signed_amount",
    description=(
        "金额加借贷标志格式：账号,交易日期,金额,借贷标志(借/贷),对方名称,对方账号,对方开户行,"
        "用途,附言,银行流水号,币种"
    ),
    columns={
        "bank_ref": ("银行流水号", "交易流水号", "流水号", "交易参考号"),
        "account_no": ("账号", "本方账号"),
        "booked_at": ("交易日期", "记账日期"),
        "booked_time": ("交易时间",),
        "value_date": ("起息日",),
        "payer_name": ("对方名称", "对方户名", "对方账户名"),
        "payer_account": ("对方账号",),
        "payer_bank": ("对方开户行", "对方行名"),
        "amount": ("金额", "交易金额", "发生额"),
        "direction": ("借贷标志", "借贷方向", "收支标志", "借贷"),
        "currency": ("币种",),
        "remark": ("用途",),
        "remark_extra": ("附言", "备注"),
        "channel": ("交易渠道",),
    },
    required=("account_no", "booked_at", "amount", "direction"),
)

PROFILES: dict[str, CsvProfile] = {
    p.name: p for p in (GENERIC_CN, CN_DEBIT_CREDIT, CN_SIGNED_AMOUNT)
}


def _known() -> str:
    return "；".join(
        f"{p.name}（必需列：{'、'.join(p.required_headers())}）" for p in PROFILES.values()
    )


def resolve_profile(
    header: Sequence[object], name: str | None
) -> tuple[CsvProfile, dict[str, int]]:
    """The profile named `name`, or the single profile matching `header`; its column indexes."""
    if name is not None:
        profile = PROFILES.get(name)
        if profile is None:
            raise StatementParseError(
                f"未知的银行格式“{name}”，已知格式：{_known()}", code="unknown_profile"
            )
        located = profile.locate(header)
        if located is None:
            raise StatementParseError(
                f"表头与银行格式“{name}”不符，缺少必需列：{'、'.join(profile.required_headers())}",
                code="header_mismatch",
            )
        return profile, located
    matches = [(p, cols) for p in PROFILES.values() if (cols := p.locate(header)) is not None]
    if len(matches) == 1:
        return matches[0]
    shown = "，".join(normalize_header(h) for h in header if normalize_header(h))
    if not matches:
        raise StatementParseError(
            f"无法识别的表头（{shown}），请指定银行格式。已知格式：{_known()}",
            code="unknown_profile",
        )
    raise StatementParseError(
        f"表头（{shown}）同时符合多种银行格式（{'、'.join(p.name for p, _ in matches)}），"
        "请指定银行格式",
        code="ambiguous_profile",
    )
