"""Issue #10, finding 4: the corporate exports of the big Chinese banks, one profile entry each.
Every fixture below is written here from the bank's export layout (no real data): preamble rows
carrying the own account, marker lines, cells padded with tabs or spaces, totals rows and
footers. Each is read as CSV (GBK), and the same rows as XLSX and old XLS."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
import xlwt
from openpyxl import Workbook

from services.payments.parsers import PROFILES, StatementParseError, open_statement
from services.payments.parsers.dedupe import dedupe_keys

ACCOUNT = "35000188110599999"

# (profile, rows of the export, expected lines: direction, amount, account, ref, remark, payer)
Expected = tuple[str, str, str, str | None, str | None, str | None]
BANKS: list[tuple[str, list[list[str]], list[Expected]]] = [
    (
        "icbc",
        [
            ["[HISTORYDETAIL]"],
            [
                "凭证号",
                "本方账号",
                "对方账号",
                "交易时间",
                "借/贷",
                "借方发生额",
                "贷方发生额",
                "对方行号",
                "摘要",
                "用途",
                "对方单位名称",
                "余额",
                "个性化信息",
            ],
            [
                "GS001",
                f"\t{ACCOUNT}",
                "6222020200001111",
                "2024-05-06 09:15:00",
                "贷",
                "",
                "\t1,200.00",
                "102",
                "转账",
                "a8k3pq",
                "某市第一中学",
                "1200.00",
                "",
            ],
            [
                "GS002",
                f"{ACCOUNT} ",
                "6222020200002222",
                "2024-05-06 10:00:00",
                "借",
                "15.00",
                "",
                "102",
                "手续费",
                "",
                "工商银行",
                "1185.00",
                "",
            ],
            ["合计", "", "", "", "", "15.00", "1,200.00", "", "", "", "", "", ""],
        ],
        [
            ("credit", "1200.00", ACCOUNT, "GS001", "转账 a8k3pq", "某市第一中学"),
            ("debit", "15.00", ACCOUNT, "GS002", "手续费", "工商银行"),
        ],
    ),
    (
        "abc",
        [
            ["账户名称：某农产品合作社"],
            [f"账号：{ACCOUNT}"],
            ["查询日期：2024-05-01 至 2024-05-31"],
            [
                "交易时间",
                "收入金额",
                "支出金额",
                "账户余额",
                "对方账号",
                "对方户名",
                "对方开户行",
                "交易用途",
                "交易摘要",
                "交易流水号",
            ],
            [
                "2024-05-06 09:15:00",
                " 300.50 ",
                "",
                "300.50",
                "6228480000001111",
                "某县卫生院",
                "农行某支行",
                "b3x7kt",
                "网银转账",
                "NH0001",
            ],
            ["合计", "300.50", "0.00", "", "", "", "", "", "", ""],
            ["制表人：系统", "", "", "", "", "", "", "", "", ""],
        ],
        [("credit", "300.50", ACCOUNT, "NH0001", "b3x7kt 网银转账", "某县卫生院")],
    ),
    (
        "boc",
        [
            ["账号", ACCOUNT, "币种", "人民币"],
            [
                "交易类型",
                "付款人开户行名",
                "付款人账号",
                "付款人名称",
                "收款人账号",
                "收款人名称",
                "交易日期",
                "交易时间",
                "交易货币",
                "交易金额",
                "交易后余额",
                "交易流水号",
                "用途",
                "摘要",
                "备注",
            ],
            [
                "来账",
                "中国银行某支行",
                "4563510000001111",
                "某区机关食堂",
                ACCOUNT,
                "某合作社",
                "20240506",
                "091500",
                "CNY",
                "888.00",
                "888.00",
                "ZH0001",
                "c5m2xx",
                "转账",
                "",
            ],
            [
                "往账",
                "中国银行某支行",
                ACCOUNT,
                "某合作社",
                "1234567",
                "某物流公司",
                "20240506",
                "100000",
                "CNY",
                "88.00",
                "800.00",
                "ZH0002",
                "运费",
                "转账",
                "",
            ],
        ],
        [
            ("credit", "888.00", ACCOUNT, "ZH0001", "c5m2xx 转账", "某区机关食堂"),
            ("debit", "88.00", ACCOUNT, "ZH0002", "运费 转账", "某合作社"),
        ],
    ),
    (
        "ccb",
        [
            [
                "账号",
                "账户名称",
                "交易时间",
                "借方发生额（支取）",
                "贷方发生额（收入）",
                "余额",
                "币种",
                "对方户名",
                "对方账号",
                "对方开户机构",
                "记账日期",
                "摘要",
                "备注",
                "账户明细编号-交易流水号",
            ],
            [
                ACCOUNT,
                "某合作社",
                "20240506 09:15:00",
                "",
                "2,000.00",
                "2000.00",
                "人民币元",
                "某大学",
                "4367420000001111",
                "建行某支行",
                "20240506",
                "货款",
                "d7n4yy",
                "JH0001-0001",
            ],
            ["合计", "", "", "0.00", "2,000.00", "", "", "", "", "", "", "", "", ""],
        ],
        [("credit", "2000.00", ACCOUNT, "JH0001-0001", "货款 d7n4yy", "某大学")],
    ),
    (
        "bocom",
        [
            [f"账号：{ACCOUNT}", "", "户名：某合作社"],
            [
                "交易日期",
                "交易时间",
                "业务摘要",
                "借方发生额",
                "贷方发生额",
                "余额",
                "对方账号",
                "对方户名",
                "对方行名",
                "附言",
                "会计流水号",
            ],
            [
                "2024-05-06",
                "09:15:00",
                "汇入",
                "",
                "50.00",
                "50.00",
                "6222600000001111",
                "某社区服务中心",
                "交行某支行",
                "e8p5zz",
                "JT0001",
            ],
        ],
        [("credit", "50.00", ACCOUNT, "JT0001", "e8p5zz 汇入", "某社区服务中心")],
    ),
    (
        "cmb",
        [
            [f"账号：{ACCOUNT}"],
            [
                "交易日",
                "交易时间",
                "起息日",
                "交易类型",
                "借方金额",
                "贷方金额",
                "余额",
                "摘要",
                "流水号",
                "业务名称",
                "用途",
                "业务参考号",
                "收/付方名称",
                "收/付方帐号",
                "收/付方开户行名",
            ],
            [
                "20240506",
                "09:15:00",
                "20240506",
                "汇入汇款",
                "",
                "66.60",
                "66.60",
                "汇入",
                "ZS0001",
                "汇兑",
                "f9q6aa",
                "REF1",
                "某街道办事处",
                "6214830000001111",
                "招商银行某支行",
            ],
        ],
        [("credit", "66.60", ACCOUNT, "ZS0001", "f9q6aa 汇入", "某街道办事处")],
    ),
    (
        "cmbc",
        [
            ["账户名称：某合作社"],
            ["账号：", ACCOUNT],
            [
                "交易时间",
                "借方发生额",
                "贷方发生额",
                "账户余额",
                "凭证号",
                "对方账号",
                "对方账户名称",
                "对方开户行",
                "摘要",
                "交易流水号",
            ],
            [
                "2024/05/06 09:15:00",
                "",
                "77.00",
                "77.00",
                "",
                "6226220000001111",
                "某检察院",
                "民生银行某支行",
                "g2r7bb",
                "MS0001",
            ],
            ["本页合计", "0.00", "77.00", "", "", "", "", "", "", ""],
        ],
        [("credit", "77.00", ACCOUNT, "MS0001", "g2r7bb", "某检察院")],
    ),
    (
        "pingan",
        [
            [
                "交易时间",
                "账号",
                "收入",
                "支出",
                "账户余额",
                "对方账号",
                "对方账户名称",
                "对方账户开户行",
                "交易流水号",
                "摘要",
                "用途",
            ],
            [
                "2024-05-06 09:15:00",
                ACCOUNT,
                "99.00",
                "",
                "99.00",
                "6230580000001111",
                "某法院",
                "平安银行某支行",
                "PA0001",
                "转账",
                "h3s8cc",
            ],
            [
                "2024-05-06 11:00:00",
                ACCOUNT,
                "",
                "9.00",
                "90.00",
                "",
                "平安银行",
                "",
                "PA0002",
                "手续费",
                "",
            ],
        ],
        [
            ("credit", "99.00", ACCOUNT, "PA0001", "h3s8cc 转账", "某法院"),
            ("debit", "9.00", ACCOUNT, "PA0002", "手续费", "平安银行"),
        ],
    ),
    (
        "spdb",
        [
            [f"账号：{ACCOUNT}   币种：人民币"],
            [
                "交易日期",
                "交易时间",
                "借方金额",
                "贷方金额",
                "余额",
                "对方账号",
                "对方户名",
                "对方行名",
                "摘要",
                "附言",
                "交易流水号",
                "凭证号",
            ],
            [
                "20240506",
                "091500",
                "",
                "123.45",
                "123.45",
                "6225210000001111",
                "某交警大队",
                "浦发银行某支行",
                "汇入",
                "j4t9dd",
                "PF0001",
                "",
            ],
        ],
        [("credit", "123.45", ACCOUNT, "PF0001", "j4t9dd 汇入", "某交警大队")],
    ),
    (
        "cib",
        [
            ["账户名称", "某合作社"],
            ["账号", ACCOUNT],
            [
                "交易日期",
                "交易时间",
                "摘要",
                "借方金额",
                "贷方金额",
                "账户余额",
                "对方账号",
                "对方户名",
                "对方行名",
                "用途",
                "交易流水号",
            ],
            [
                "2024-05-06",
                "09:15:00",
                "转账",
                "",
                "456.00",
                "456.00",
                "6229080000001111",
                "某税务局",
                "兴业银行某支行",
                "k5u2ee",
                "XY0001",
            ],
            ["合计：", "", "", "0.00", "456.00", "", "", "", "", "", ""],
        ],
        [("credit", "456.00", ACCOUNT, "XY0001", "k5u2ee 转账", "某税务局")],
    ),
    (
        "ceb",
        [
            [f"账号：{ACCOUNT}"],
            ["起止日期：20240501-20240531"],
            [
                "交易时间",
                "借方发生额",
                "贷方发生额",
                "账户余额",
                "对方账号",
                "对方名称",
                "对方开户行",
                "摘要",
                "用途",
                "交易流水号",
            ],
            [
                "2024-05-06 09:15:00",
                "",
                "789.00",
                "789.00",
                "6226660000001111",
                "某消防救援站",
                "光大银行某支行",
                "转账",
                "m6v3ff",
                "GD0001",
            ],
        ],
        [("credit", "789.00", ACCOUNT, "GD0001", "m6v3ff 转账", "某消防救援站")],
    ),
]


def as_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("gbk")


def as_xlsx(rows: list[list[str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def as_xls(rows: list[list[str]]) -> bytes:
    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("明细")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("writer", "fmt"), [(as_csv, "csv"), (as_xlsx, "xlsx"), (as_xls, "xls")])
@pytest.mark.parametrize(("profile", "rows", "expected"), BANKS, ids=[b[0] for b in BANKS])
def test_each_banks_export_is_recognised_and_read_exactly(
    profile: str, rows: list[list[str]], expected: list[Expected], writer: Any, fmt: str
) -> None:
    statement = open_statement(io.BytesIO(writer(rows)), filename=f"export.{fmt}")

    assert (statement.format, statement.profile) == (fmt, profile)
    keyed = list(dedupe_keys(statement.lines))
    got = [
        (
            line.direction,
            f"{line.amount:.2f}",
            line.account_no,
            line.bank_ref,
            line.remark,
            line.payer_name,
        )
        for line, _ in keyed
    ]
    assert got == expected
    for (line, key), want in zip(keyed, expected, strict=True):
        mark = "C" if want[0] == "credit" else "D"
        assert key == f"ref:{ACCOUNT}:{want[3]}:{mark}:{want[1]}:2024-05-06"
        assert line.amount == Decimal(want[1])
        assert line.booked_at is not None and line.booked_at.date().isoformat() == "2024-05-06"


def test_every_bank_profile_has_a_fixture_and_the_required_banks_are_there() -> None:
    banks = {p.bank for p in PROFILES.values() if p.bank}
    assert {name for name, _, _ in BANKS} == {p.name for p in PROFILES.values() if p.bank}
    assert {
        "中国工商银行",
        "中国农业银行",
        "中国银行",
        "中国建设银行",
        "交通银行",
        "招商银行",
        "中国民生银行",
        "平安银行",
        "上海浦东发展银行",
        "兴业银行",
        "中国光大银行",
    } <= banks


def test_a_preamble_profile_without_an_account_anywhere_is_refused() -> None:
    rows = [row for row in BANKS[1][1] if not row[0].startswith("账号")]  # ABC without 账号：

    with pytest.raises(StatementParseError) as error:
        list(open_statement(io.BytesIO(as_csv(rows))).lines)

    assert error.value.code == "missing_account"
    assert error.value.line_no == 1


def test_an_unknown_header_below_a_preamble_is_still_reported_on_the_first_row() -> None:
    rows = [["账号：123456789"], ["日期", "金额数目", "说明"], ["2024-05-06", "1.00", "x"]]

    with pytest.raises(StatementParseError) as error:
        open_statement(io.BytesIO(as_csv(rows)))

    assert error.value.code == "unknown_profile"
    assert "账号：123456789" in error.value.message


async def test_an_xls_export_is_imported_through_the_api(payments_client: Any) -> None:
    from shared.auth import Role
    from tests.conftest import auth

    _, rows, expected = BANKS[0]

    response = await payments_client.post(
        "/api/v1/statements",
        files={"file": ("工行明细.xls", as_xls(rows))},
        headers=auth(Role.IMPORTER),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["format"], body["profile"], body["lines_total"]) == ("xls", "icbc", len(expected))
