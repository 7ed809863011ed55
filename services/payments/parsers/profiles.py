"""Column mappings of Chinese bank exports (银行流水导出格式), one named profile per layout.

A profile lists, for each statement field, the header names a bank uses for it (aliases). The
profile of a file is the one whose required headers are all present in its header row; a bank's
own profile (`bank` set) wins over the generic layouts its header may also satisfy.

The big banks' exports (`BANK_PROFILES`) were written from their corporate online-banking export
layouts: preamble rows above the header (账户名称：…, 账号：…, 查询日期…) that carry the own account
when no column does (`account_in_preamble`), marker lines such as `[HISTORYDETAIL]`, cells padded
with tabs or spaces, totals rows (合计) at the end — see `tabular.py` and docs/statements.md.
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

_UNIT_SUFFIX_RE = re.compile(r"[(（][^()（）]*[)）]$", re.IGNORECASE)


def normalize_header(name: object) -> str:
    """`" 贷方发生额(元) "` → `"贷方发生额"`: blanks and a parenthesised suffix (a unit such as
    `（元）`, or a gloss such as `（收入）`/`（支取）`) removed."""
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
    bank: str = ""
    """The bank whose export this is (empty for the generic layouts)."""
    account_in_preamble: bool = False
    """The own account comes from the preamble rows above the header (账号：…) when the row
    has no account column or leaves it empty."""

    def __post_init__(self) -> None:
        unknown = set(self.columns) - set(FIELDS)
        if unknown:  # pragma: no cover - a programming error in a profile definition
            raise ValueError(f"unknown fields in profile {self.name}: {sorted(unknown)}")
        has_amount = "credit" in self.required or {"amount"} <= set(self.required)
        has_account = "account_no" in self.required or self.account_in_preamble
        if not has_amount or not has_account:  # pragma: no cover
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

BANK_PROFILES = (
    CsvProfile(
        name="icbc",
        bank="中国工商银行",
        description="企业网银 历史明细：[HISTORYDETAIL] 标记行，凭证号,本方账号,对方账号,交易时间,"
        "借/贷,借方发生额,贷方发生额,对方行号,摘要,用途,对方单位名称,余额,个性化信息",
        columns={
            "bank_ref": ("凭证号",),
            "account_no": ("本方账号",),
            "payer_account": ("对方账号",),
            "booked_at": ("交易时间",),
            "debit": ("借方发生额",),
            "credit": ("贷方发生额",),
            "remark": ("摘要",),
            "remark_extra": ("用途",),
            "payer_name": ("对方单位名称",),
        },
        required=("account_no", "booked_at", "debit", "credit", "payer_name"),
    ),
    CsvProfile(
        name="abc",
        bank="中国农业银行",
        description="账户明细：表头上方 账户名称：/账号：/查询日期：，交易时间,收入金额,支出金额,"
        "账户余额,对方账号,对方户名,对方开户行,交易用途,交易摘要,交易流水号",
        columns={
            "booked_at": ("交易时间",),
            "credit": ("收入金额",),
            "debit": ("支出金额",),
            "payer_account": ("对方账号",),
            "payer_name": ("对方户名",),
            "payer_bank": ("对方开户行",),
            "remark": ("交易用途",),
            "remark_extra": ("交易摘要",),
            "bank_ref": ("交易流水号",),
        },
        required=("booked_at", "credit", "debit", "remark"),
        account_in_preamble=True,
    ),
    CsvProfile(
        name="boc",
        bank="中国银行",
        description="交易明细：表头上方 账号：，交易类型(来账/往账),付款人开户行名,付款人账号,"
        "付款人名称,收款人账号,收款人名称,交易日期,交易时间,交易货币,交易金额,交易后余额,"
        "交易流水号,用途,摘要,备注",
        columns={
            "direction": ("交易类型",),
            "payer_bank": ("付款人开户行名",),
            "payer_account": ("付款人账号",),
            "payer_name": ("付款人名称",),
            "booked_at": ("交易日期",),
            "booked_time": ("交易时间",),
            "currency": ("交易货币",),
            "amount": ("交易金额",),
            "bank_ref": ("交易流水号",),
            "remark": ("用途",),
            "remark_extra": ("摘要",),
        },
        required=("booked_at", "amount", "direction", "payer_name"),
        account_in_preamble=True,
    ),
    CsvProfile(
        name="ccb",
        bank="中国建设银行",
        description="账户明细：账号,账户名称,交易时间,借方发生额（支取）,贷方发生额（收入）,余额,币种,"
        "对方户名,对方账号,对方开户机构,记账日期,摘要,备注,账户明细编号-交易流水号",
        columns={
            "account_no": ("账号",),
            "booked_at": ("交易时间",),
            "debit": ("借方发生额",),
            "credit": ("贷方发生额",),
            "currency": ("币种",),
            "payer_name": ("对方户名",),
            "payer_account": ("对方账号",),
            "payer_bank": ("对方开户机构",),
            "remark": ("摘要",),
            "remark_extra": ("备注",),
            "bank_ref": ("账户明细编号-交易流水号",),
        },
        required=("account_no", "booked_at", "debit", "credit", "bank_ref"),
    ),
    CsvProfile(
        name="bocom",
        bank="交通银行",
        description="账户明细：表头上方 账号：，交易日期,交易时间,业务摘要,借方发生额,贷方发生额,"
        "余额,"
        "对方账号,对方户名,对方行名,附言,会计流水号",
        columns={
            "booked_at": ("交易日期",),
            "booked_time": ("交易时间",),
            "remark": ("附言",),
            "remark_extra": ("业务摘要",),
            "debit": ("借方发生额",),
            "credit": ("贷方发生额",),
            "payer_account": ("对方账号",),
            "payer_name": ("对方户名",),
            "payer_bank": ("对方行名",),
            "bank_ref": ("会计流水号",),
        },
        required=("booked_at", "debit", "credit", "remark_extra", "bank_ref"),
        account_in_preamble=True,
    ),
    CsvProfile(
        name="cmb",
        bank="招商银行",
        description="企业银行 交易查询：表头上方 账号：，交易日,交易时间,起息日,交易类型,借方金额,"
        "贷方金额,余额,摘要,流水号,业务名称,用途,业务参考号,收/付方名称,收/付方帐号,收/付方开户行名",
        columns={
            "booked_at": ("交易日",),
            "booked_time": ("交易时间",),
            "value_date": ("起息日",),
            "debit": ("借方金额",),
            "credit": ("贷方金额",),
            "remark": ("用途",),
            "remark_extra": ("摘要",),
            "bank_ref": ("流水号",),
            "payer_name": ("收/付方名称",),
            "payer_account": ("收/付方帐号", "收/付方账号"),
            "payer_bank": ("收/付方开户行名",),
        },
        required=("booked_at", "debit", "credit", "payer_name"),
        account_in_preamble=True,
    ),
    CsvProfile(
        name="cmbc",
        bank="中国民生银行",
        description="账户明细：表头上方 账号：，交易时间,借方发生额,贷方发生额,账户余额,凭证号,"
        "对方账号,对方账户名称,对方开户行,摘要,交易流水号",
        columns={
            "booked_at": ("交易时间",),
            "debit": ("借方发生额",),
            "credit": ("贷方发生额",),
            "payer_account": ("对方账号",),
            "payer_name": ("对方账户名称",),
            "payer_bank": ("对方开户行",),
            "remark": ("摘要",),
            "bank_ref": ("交易流水号",),
        },
        required=("booked_at", "debit", "credit", "payer_name"),
        account_in_preamble=True,
    ),
    CsvProfile(
        name="pingan",
        bank="平安银行",
        description="账户明细：交易时间,账号,收入,支出,账户余额,对方账号,对方账户名称,"
        "对方账户开户行,交易流水号,摘要,用途",
        columns={
            "booked_at": ("交易时间",),
            "account_no": ("账号",),
            "credit": ("收入",),
            "debit": ("支出",),
            "payer_account": ("对方账号",),
            "payer_name": ("对方账户名称",),
            "payer_bank": ("对方账户开户行",),
            "bank_ref": ("交易流水号",),
            "remark": ("用途",),
            "remark_extra": ("摘要",),
        },
        required=("booked_at", "account_no", "credit", "debit"),
    ),
    CsvProfile(
        name="spdb",
        bank="上海浦东发展银行",
        description="账户明细：表头上方 账号：，交易日期,交易时间,借方金额,贷方金额,余额,对方账号,"
        "对方户名,对方行名,摘要,附言,交易流水号,凭证号",
        columns={
            "booked_at": ("交易日期",),
            "booked_time": ("交易时间",),
            "debit": ("借方金额",),
            "credit": ("贷方金额",),
            "payer_account": ("对方账号",),
            "payer_name": ("对方户名",),
            "payer_bank": ("对方行名",),
            "remark": ("附言",),
            "remark_extra": ("摘要",),
            "bank_ref": ("交易流水号",),
        },
        required=("booked_at", "debit", "credit", "remark", "payer_name"),
        account_in_preamble=True,
    ),
    CsvProfile(
        name="cib",
        bank="兴业银行",
        description="账户明细：表头上方 账号：，交易日期,交易时间,摘要,借方金额,贷方金额,账户余额,"
        "对方账号,对方户名,对方行名,用途,交易流水号",
        columns={
            "booked_at": ("交易日期",),
            "booked_time": ("交易时间",),
            "remark": ("用途",),
            "remark_extra": ("摘要",),
            "debit": ("借方金额",),
            "credit": ("贷方金额",),
            "payer_account": ("对方账号",),
            "payer_name": ("对方户名",),
            "payer_bank": ("对方行名",),
            "bank_ref": ("交易流水号",),
        },
        required=("booked_at", "debit", "credit", "remark", "payer_name"),
        account_in_preamble=True,
    ),
    CsvProfile(
        name="ceb",
        bank="中国光大银行",
        description="账户明细：表头上方 账号：，交易时间,借方发生额,贷方发生额,账户余额,对方账号,"
        "对方名称,对方开户行,摘要,用途,交易流水号",
        columns={
            "booked_at": ("交易时间",),
            "debit": ("借方发生额",),
            "credit": ("贷方发生额",),
            "payer_account": ("对方账号",),
            "payer_name": ("对方名称",),
            "payer_bank": ("对方开户行",),
            "remark": ("用途",),
            "remark_extra": ("摘要",),
            "bank_ref": ("交易流水号",),
        },
        required=("booked_at", "debit", "credit", "payer_name"),
        account_in_preamble=True,
    ),
)

PROFILES: dict[str, CsvProfile] = {
    p.name: p for p in (GENERIC_CN, CN_DEBIT_CREDIT, CN_SIGNED_AMOUNT, *BANK_PROFILES)
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
    banks = [(p, cols) for p, cols in matches if p.bank]
    if len(banks) == 1:  # a bank's own layout wins over the generic ones it also satisfies
        return banks[0]
    if banks:
        matches = banks
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
