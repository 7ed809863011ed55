"""Synthetic `generic_cn` statements for benchmarks (e.g. 1,000,000 lines)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from .profiles import GENERIC_CN

GenericRow = tuple[
    str | None,  # 交易流水号 bank_ref
    datetime | str,  # 交易时间
    str,  # 收款账号
    str | None,  # 对方户名
    str | None,  # 对方账号
    str | None,  # 对方开户行
    Decimal | str,  # 贷方发生额
    str | None,  # 摘要
    str | None,  # 交易渠道
]

HEADER = (
    "交易流水号",
    "交易时间",
    "收款账号",
    "对方户名",
    "对方账号",
    "对方开户行",
    "贷方发生额",
    "摘要",
    "交易渠道",
)
assert GENERIC_CN.locate(HEADER) is not None


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def write_bank_csv(
    path: str | os.PathLike[str], rows: Iterable[GenericRow], encoding: str = "gbk"
) -> int:
    """Write a `generic_cn` bank export (header + rows) and return the number of rows written."""
    count = 0
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow([_cell(value) for value in row])
            count += 1
    return count
