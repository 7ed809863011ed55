"""Bank statement parsers: CSV/XLSX bank exports, MT940, CAMT.053, and duplicate keys."""

from __future__ import annotations

import csv
import gc
import io
import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest
from openpyxl import Workbook

from services.payments.parsers import (
    PROFILES,
    StatementLine,
    StatementParseError,
    dedupe_key,
    dedupe_keys,
    open_statement,
)
from services.payments.parsers.generate import write_bank_csv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statements"
SHANGHAI = ZoneInfo("Asia/Shanghai")
GENERIC_HEADER = (
    "交易流水号,交易时间,收款账号,对方户名,对方账号,对方开户行,贷方发生额,摘要,交易渠道"
)


def sample_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sample_text() -> str:
    return sample_bytes("statement_bank_export.csv").decode("gbk")


def parse(data: bytes, **options: Any) -> list[StatementLine]:
    return list(open_statement(io.BytesIO(data), **options).lines)


class OneWayStream(io.RawIOBase):
    """An upload that can only be read forward (like a socket)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def generic_csv(*rows: str, header: str = GENERIC_HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


# --- CSV -----------------------------------------------------------------------------------


def test_gbk_bank_export_parses_to_eleven_lines_with_bank_fields():
    statement = open_statement(io.BytesIO(sample_bytes("statement_bank_export.csv")))
    lines = list(statement.lines)

    assert (statement.format, statement.profile) == ("csv", "generic_cn")
    assert len(lines) == 11
    assert [line.line_no for line in lines] == list(range(1, 12))
    first = lines[0]
    assert first == StatementLine(
        line_no=1,
        account_no="35000188110503337",
        bank_ref="2024040110000001",
        direction="credit",
        amount=Decimal("110.00"),
        currency="CNY",
        booked_at=datetime(2024, 4, 1, 10, 12, 33, tzinfo=SHANGHAI),
        value_date=None,
        payer_name="供销社测试A2中学",
        payer_account="44050112345678901234",
        payer_bank="中国工商银行汕头分行",
        remark="f54yxn",
        channel="online",
    )
    assert lines[2].remark == "货款ＦＡ４ＸＹ２"  # full-width kept for the matcher
    assert lines[2].channel == "counter"
    assert lines[1].channel == "treasury"
    assert lines[6].payer_account == "GZ-JM-0001A"
    assert lines[7].payer_account is None
    assert lines[7].channel == "cash"
    assert lines[7].payer_name == "现金"
    assert all(line.direction == "credit" for line in lines)
    assert lines[10].bank_ref == lines[0].bank_ref


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_utf8_with_or_without_bom_and_gb18030_read_the_same_as_gbk(encoding):
    expected = parse(sample_bytes("statement_bank_export.csv"))

    assert parse(sample_text().encode(encoding)) == expected


def test_crlf_line_endings_and_empty_lines_are_skipped():
    text = sample_text().replace("\n", "\r\n")
    data_lines = text.split("\r\n")
    with_blanks = "\r\n".join([data_lines[0], "", *data_lines[1:4], ",,,,", "", *data_lines[4:]])

    lines = parse(with_blanks.encode("gbk"))

    assert len(lines) == 11
    assert [line.line_no for line in lines] == list(range(1, 12))
    assert lines == parse(sample_bytes("statement_bank_export.csv"))


def test_undecodable_bytes_are_rejected_in_chinese():
    data = GENERIC_HEADER.encode("gbk") + b"\n\x81\x20\xff\xfe,2024-04-01 10:00:00\n"

    with pytest.raises(StatementParseError) as error:
        parse(data)

    assert "编码" in error.value.message


def test_utf8_character_across_the_sniffed_head_is_still_utf8():
    head = f"{GENERIC_HEADER}\n{valid_row('1.00', 'R1')}\n".encode()
    filler = "x" * (65536 - len(head) - 1)  # the next row's "中" straddles byte 65,536
    text = head.decode() + valid_row("2.00", "R2").replace("摘要", filler + "中") + "\n"

    lines = parse(text.encode("utf-8"))

    assert len(lines) == 2
    assert lines[1].remark == filler + "中"


DEBIT_CREDIT_EXPORT = """\
本方账号,交易日期,交易时间,借方发生额(元),贷方发生额(元),对方户名,对方账号,对方行名,摘要,用途,流水号,起息日
35000188110503337,20240401,101233,,"1,234.50",供销社测试A2中学,44050112345678901234,工行汕头分行,转账,f54yxn,HX0001,20240402
35000188110503337,2024-04-01,16:00:00,88.00,0.00,某物业公司,622200001,农行,代付,物业费,HX0002,
"""

SIGNED_AMOUNT_EXPORT = """\
账号,交易日期,金额,借贷标志,对方名称,对方账号,对方开户行,用途,附言,银行流水号,币种
35000188110509921,2024/04/01 11:02:10,4800.00,贷,某中心,36021,工行一支行,货款,K7M2QP谢谢,ZS0001,CNY
35000188110509921,2024/04/02 09:00:00,-50.00,贷,某中心,3602001,工行一支行,冲正,,ZS0002,CNY
35000188110509921,2024/04/03 09:00:00,12.00,借,银行,,,手续费,,ZS0003,CNY
"""


def test_generic_profile_is_detected_from_the_sample_header():
    assert open_statement(io.BytesIO(sample_bytes("statement_bank_export.csv"))).profile == (
        "generic_cn"
    )


def test_debit_credit_profile_reads_split_date_time_and_both_amount_columns():
    statement = open_statement(io.BytesIO(DEBIT_CREDIT_EXPORT.encode("gbk")))
    credit, debit = statement.lines

    assert statement.profile == "cn_debit_credit"
    assert credit.account_no == "35000188110503337"
    assert credit.booked_at == datetime(2024, 4, 1, 10, 12, 33, tzinfo=SHANGHAI)
    assert credit.value_date == date(2024, 4, 2)
    assert (credit.direction, credit.amount) == ("credit", Decimal("1234.50"))
    assert credit.remark == "转账 f54yxn"
    assert credit.bank_ref == "HX0001"
    assert credit.payer_bank == "工行汕头分行"
    assert (debit.direction, debit.amount) == ("debit", Decimal("88.00"))
    assert debit.booked_at == datetime(2024, 4, 1, 16, 0, tzinfo=SHANGHAI)


def test_signed_amount_profile_reads_flag_and_joins_purpose_and_postscript():
    statement = open_statement(io.BytesIO(SIGNED_AMOUNT_EXPORT.encode("utf-8-sig")))
    payment, reversal, fee = statement.lines

    assert statement.profile == "cn_signed_amount"
    assert (payment.direction, payment.amount) == ("credit", Decimal("4800.00"))
    assert payment.remark == "货款 K7M2QP谢谢"
    assert payment.booked_at == datetime(2024, 4, 1, 11, 2, 10, tzinfo=SHANGHAI)
    assert payment.payer_name == "某中心"
    assert (reversal.direction, reversal.amount) == ("debit", Decimal("50.00"))
    assert (fee.direction, fee.amount, fee.payer_account) == ("debit", Decimal("12.00"), None)


def test_profile_can_be_named_explicitly_and_must_match_the_header():
    assert parse(DEBIT_CREDIT_EXPORT.encode("utf-8"), profile="cn_debit_credit")

    with pytest.raises(StatementParseError) as mismatch:
        open_statement(io.BytesIO(DEBIT_CREDIT_EXPORT.encode("utf-8")), profile="generic_cn")
    with pytest.raises(StatementParseError) as unknown:
        open_statement(io.BytesIO(DEBIT_CREDIT_EXPORT.encode("utf-8")), profile="no_such_bank")

    assert "收款账号" in mismatch.value.message
    assert "no_such_bank" in unknown.value.message


def test_unknown_header_is_rejected_in_chinese_listing_known_profiles():
    data = "日期,金额数目,说明\n2024-04-01,10.00,x\n".encode("gbk")

    with pytest.raises(StatementParseError) as error:
        open_statement(io.BytesIO(data))

    assert "无法识别的表头" in error.value.message
    for name in PROFILES:
        assert name in error.value.message
    assert error.value.line_no is None


def test_header_matching_several_profiles_is_ambiguous():
    header = "收款账号,交易时间,贷方发生额,本方账号,交易日期,借方发生额"

    with pytest.raises(StatementParseError) as error:
        open_statement(io.BytesIO(header.encode("gbk") + b"\n"))

    assert error.value.code == "ambiguous_profile"
    assert "generic_cn" in error.value.message
    assert "cn_debit_credit" in error.value.message


def test_failed_open_leaves_a_seekable_upload_where_it_was():
    upload = io.BytesIO(b"junk" + "日期,说明\n".encode("gbk"))
    upload.seek(4)

    with pytest.raises(StatementParseError):
        open_statement(upload)

    assert upload.tell() == 4


def test_empty_file_is_rejected():
    with pytest.raises(StatementParseError, match="为空"):
        open_statement(io.BytesIO(b""))
    with pytest.raises(StatementParseError, match="表头"):
        open_statement(io.BytesIO(b"\n\n"))


def valid_row(amount: str, ref: str = "R1") -> str:
    return f"{ref},2024-04-01 10:00:00,35000188110503337,甲,1,乙行,{amount},摘要,online"


def test_bad_amount_is_rejected_with_its_line_number():
    data = generic_csv(valid_row("10.00", "R1"), valid_row("12元", "R2"))
    lines = open_statement(io.BytesIO(data)).lines

    assert next(lines).amount == Decimal("10.00")
    with pytest.raises(StatementParseError) as error:
        next(lines)

    assert error.value.line_no == 2
    assert "12元" in error.value.message
    assert str(error.value).startswith("第 2 条记录")


@pytest.mark.parametrize("amount", ["10.005", "1,234.567"])
def test_amount_with_three_decimals_is_rejected(amount):
    with pytest.raises(StatementParseError) as error:
        parse(generic_csv(valid_row(f'"{amount}"')))

    assert "两位小数" in error.value.message
    assert error.value.line_no == 1


@pytest.mark.parametrize(
    ("written", "amount"),
    [("1,234.50", "1234.50"), ("1,234,567.5", "1234567.50"), ("200000", "200000.00")],
)
def test_thousands_separators_written_by_banks_are_accepted(written, amount):
    (line,) = parse(generic_csv(valid_row(f'"{written}"')))

    assert line.amount == Decimal(amount)


@pytest.mark.parametrize("garbage", ["1,23,4.00", "12,34", "1.2.3", "abc", "1e5", "0x10", "—5"])
def test_garbage_amounts_are_rejected(garbage):
    with pytest.raises(StatementParseError):
        parse(generic_csv(valid_row(f'"{garbage}"')))


def test_zero_or_missing_credit_is_rejected():
    with pytest.raises(StatementParseError, match="为空或为零"):
        parse(generic_csv(valid_row("0.00")))
    with pytest.raises(StatementParseError, match="为空或为零"):
        parse(generic_csv(valid_row("")))


def test_debit_lines_are_returned_with_direction_debit():
    header = GENERIC_HEADER + ",借方发生额"
    data = generic_csv(
        valid_row("100.00", "R1") + ",",
        valid_row("", "R2") + ",30.00",
        header=header,
    )

    credit, debit = parse(data)

    assert (credit.direction, credit.amount) == ("credit", Decimal("100.00"))
    assert (debit.direction, debit.amount) == ("debit", Decimal("30.00"))


def test_excel_text_guards_around_long_numbers_are_removed():
    row = '="R9",2024-04-01 10:00:00,\t35000188110503337,甲,="6222000012345678",乙行,1.00,x,网银'

    (line,) = parse(generic_csv(row))

    assert line.bank_ref == "R9"
    assert line.account_no == "35000188110503337"
    assert line.payer_account == "6222000012345678"
    assert line.channel == "online"


# --- XLSX ----------------------------------------------------------------------------------


def sample_as_xlsx() -> bytes:
    """The CSV sample as a bank would export it to Excel: numbers and dates as typed cells."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([])  # a blank first row: the header is the first non-empty row
    rows = list(csv.reader(io.StringIO(sample_text())))
    sheet.append(rows[0])
    for row in rows[1:]:
        cells: list[object] = list(row)
        cells[1] = datetime.strptime(row[1], "%Y-%m-%d %H:%M:%S")
        cells[6] = float(row[6])
        cells[0] = int(row[0])
        sheet.append(cells)
        if row[0].endswith("5"):
            sheet.append([None] * len(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_export_reads_the_same_lines_as_the_csv():
    statement = open_statement(io.BytesIO(sample_as_xlsx()))

    assert (statement.format, statement.profile) == ("xlsx", "generic_cn")
    assert list(statement.lines) == parse(sample_bytes("statement_bank_export.csv"))


def test_xlsx_from_a_non_seekable_stream_is_spooled():
    statement = open_statement(OneWayStream(sample_as_xlsx()))  # type: ignore[arg-type]

    assert list(statement.lines) == parse(sample_bytes("statement_bank_export.csv"))


def test_corrupt_xlsx_is_rejected():
    with pytest.raises(StatementParseError, match="XLSX"):
        open_statement(io.BytesIO(b"PK\x03\x04 this is not really a zip"))


# --- MT940 ---------------------------------------------------------------------------------


def test_mt940_sample_gives_two_lines_with_bank_refs_payer_and_remark():
    statement = open_statement(io.BytesIO(sample_bytes("statement.mt940")))
    first, second = statement.lines

    assert (statement.format, statement.profile) == ("mt940", None)
    assert first.account_no == second.account_no == "35000188110513579"
    assert (first.bank_ref, second.bank_ref) == ("2024040210000004", "2024040310000005")
    assert first.payer_name == "深圳市某局工会委员会"
    assert first.payer_account == "755912345678901"
    assert first.remark == "r8t3wd 第一笔"
    assert second.remark == "R8T3WD 第二笔"
    assert (first.direction, first.amount) == ("credit", Decimal("20000.00"))
    assert second.amount == Decimal("16000.00")
    assert first.currency == "CNY"
    assert first.booked_at == datetime(2024, 4, 2, tzinfo=SHANGHAI)
    assert first.value_date == date(2024, 4, 2)
    assert (first.line_no, second.line_no) == (1, 2)


MT940_MIXED = """\
:20:S1
:25:CMBCCNBS/755912345678901
:28C:1/1
:60F:C240401CNY0,00
:61:2404020402D1234,56NTRFNONREF
:86:水电费 代扣 协议号
 12345
:61:2404020402RC100,00NTRFREF1//BREF2
:86:/NAME/某单位/ACCT/AB-1/REMI/冲正/退回
:62F:C240403CNY0,00
-
:20:S2
:25:35000188110503337
:28C:1/1
:60F:C240401CNY0,00
:61:2404020402C5,5NTRFNONREF//X9
:62F:C240403CNY5,50
-
"""


def test_mt940_unstructured_details_debits_reversals_and_several_statements():
    plain, reversal, other_account = parse(MT940_MIXED.encode("gb18030"))

    assert plain.account_no == reversal.account_no == "755912345678901"
    assert (plain.direction, plain.amount, plain.bank_ref) == ("debit", Decimal("1234.56"), None)
    assert plain.remark == "水电费 代扣 协议号 12345"
    assert plain.payer_name is None
    assert (reversal.direction, reversal.bank_ref) == ("debit", "BREF2")  # RC: credit reversed
    assert reversal.remark == "冲正/退回"
    assert reversal.payer_account == "AB-1"
    assert other_account.account_no == "35000188110503337"
    assert (other_account.amount, other_account.bank_ref) == (Decimal("5.50"), "X9")
    assert [line.line_no for line in (plain, reversal, other_account)] == [1, 2, 3]


def test_mt940_from_a_non_seekable_stream_ignores_a_column_profile():
    stream = OneWayStream(sample_bytes("statement.mt940"))

    statement = open_statement(stream, profile="generic_cn")  # type: ignore[arg-type]

    assert statement.profile is None
    assert len(list(statement.lines)) == 2


def test_malformed_mt940_is_rejected():
    with pytest.raises(StatementParseError, match="MT940"):
        parse(b":20:S1\n:25:1\n:61:garbage\n-\n", format="mt940")


# --- CAMT.053 ------------------------------------------------------------------------------


def test_camt053_sample_gives_two_booked_lines():
    statement = open_statement(io.BytesIO(sample_bytes("statement_camt053.xml")))
    first, second = statement.lines

    assert (statement.format, statement.profile) == ("camt053", None)
    assert (first.bank_ref, second.bank_ref) == ("2024040110000003", "2024041610000006")
    assert (first.account_no, second.account_no) == ("35000188110512345", "35000188110514680")
    assert first == StatementLine(
        line_no=1,
        account_no="35000188110512345",
        bank_ref="2024040110000003",
        direction="credit",
        amount=Decimal("19800.00"),
        currency="CNY",
        booked_at=datetime(2024, 4, 1, 14, 45, tzinfo=SHANGHAI),
        value_date=date(2024, 4, 1),
        payer_name="广东省某厅",
        payer_account="44001234567890123",
        payer_bank="中国建设银行广州分行",
        remark="货款ＦＡ４ＸＹ２",
        channel=None,
    )
    assert second.line_no == 2


def camt(entries: str, version: str = "08", account: str = "<Othr><Id>3500</Id></Othr>") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"><BkToCstmrStmt>
<GrpHdr><MsgId>M</MsgId></GrpHdr>
<Stmt><Id>S</Id><Acct><Id>{account}</Id><Ccy>CNY</Ccy></Acct>
<Bal><Amt Ccy="CNY">1.00</Amt></Bal>
{entries}
</Stmt></BkToCstmrStmt></Document>""".encode()


def entry(status: str, ref: str, amount: str = "10.00", details: str = "") -> str:
    return f"""<Ntry><Amt Ccy="CNY">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>{status}
<BookgDt><Dt>2024-04-05</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>
<NtryDtls>{details}</NtryDtls></Ntry>"""


def test_camt053_pending_entries_are_skipped():
    data = camt(
        entry("<Sts><Cd>PDNG</Cd></Sts>", "P1")
        + entry("<Sts><Cd>BOOK</Cd></Sts>", "B1")
        + entry("<Sts>PDNG</Sts>", "P2")
    )

    (line,) = parse(data)

    assert line.bank_ref == "B1"
    assert line.booked_at == datetime(2024, 4, 5, tzinfo=SHANGHAI)


def test_camt053_entry_with_several_transactions_gives_one_line_each():
    details = """
<TxDtls><Refs><AcctSvcrRef>T-A</AcctSvcrRef></Refs><Amt Ccy="CNY">60.00</Amt>
  <RltdPties><Dbtr><Pty><Nm>甲单位</Nm></Pty></Dbtr>
  <DbtrAcct><Id><IBAN>CN0012345</IBAN></Id></DbtrAcct></RltdPties>
  <RmtInf><Ustrd>r8t3</Ustrd><Ustrd>wd</Ustrd></RmtInf></TxDtls>
<TxDtls><Amt Ccy="CNY">40.00</Amt><RltdPties><Dbtr><Pty><Nm>乙单位</Nm></Pty></Dbtr></RltdPties>
  <RmtInf><Ustrd>f54yxn</Ustrd></RmtInf></TxDtls>"""
    data = camt(entry("<Sts><Cd>BOOK</Cd></Sts>", "BATCH9", "100.00", details))

    first, second = parse(data)

    assert (first.amount, first.bank_ref, first.payer_name) == (Decimal("60.00"), "T-A", "甲单位")
    assert first.payer_account == "CN0012345"
    assert first.remark == "r8t3 wd"
    assert (second.amount, second.bank_ref, second.remark) == (
        Decimal("40.00"),
        "BATCH9/2",
        "f54yxn",
    )
    assert (first.line_no, second.line_no) == (1, 2)


def test_camt053_old_version_layout_is_read_the_same_way():
    details = """<TxDtls><AmtDtls><TxAmt><Amt Ccy="CNY">10.00</Amt></TxAmt></AmtDtls>
<RltdPties><Dbtr><Nm>丙单位</Nm></Dbtr><DbtrAcct><Id><Othr><Id>9988</Id></Othr></Id></DbtrAcct>
</RltdPties><RltdAgts><DbtrAgt><FinInstnId><Nm>某银行</Nm></FinInstnId></DbtrAgt></RltdAgts>
</TxDtls>"""
    body = entry("<Sts>BOOK</Sts>", "OLD1", details=details).replace(
        "<Dt>2024-04-05</Dt>", "<DtTm>2024-04-05T08:30:00</DtTm>"
    )

    (line,) = parse(camt(body, version="02", account="<IBAN>CN9900001</IBAN>"))

    assert line.account_no == "CN9900001"
    assert (line.payer_name, line.payer_account, line.payer_bank) == ("丙单位", "9988", "某银行")
    assert line.booked_at == datetime(2024, 4, 5, 8, 30, tzinfo=SHANGHAI)
    assert line.remark is None


def test_camt053_debit_entry_and_cash_transaction_code():
    body = """<Ntry><Amt Ccy="CNY">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>CNTR</Cd><SubFmlyCd>CDPT</SubFmlyCd></Fmly></Domn></BkTxCd>
<AddtlNtryInf>手续费</AddtlNtryInf></Ntry>"""

    (line,) = parse(camt(body, version="13"))

    assert (line.direction, line.amount, line.bank_ref) == ("debit", Decimal("5.00"), None)
    assert line.channel == "cash"
    assert line.remark == "手续费"


def test_camt053_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = camt(
        entry(
            "<Sts><Cd>BOOK</Cd></Sts>",
            "X1",
            details="<TxDtls><RmtInf><Ustrd>&xxe;</Ustrd></RmtInf></TxDtls>",
        )
    ).replace(
        b"<Document",
        f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file://{secret}">]>\n<Document'.encode(),
    )

    (line,) = parse(data, format="camt053")

    assert line.remark == "&xxe;"  # kept literally, never fetched


def test_broken_camt053_xml_is_rejected():
    with pytest.raises(StatementParseError, match="XML"):
        parse(sample_bytes("statement_camt053.xml")[:-40])


# --- format detection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (lambda: sample_bytes("statement_bank_export.csv"), "csv"),
        (lambda: sample_bytes("statement.mt940"), "mt940"),
        (lambda: sample_bytes("statement_camt053.xml"), "camt053"),
        (sample_as_xlsx, "xlsx"),
        (lambda: b"\xef\xbb\xbf" + sample_bytes("statement_camt053.xml"), "camt053"),
    ],
)
def test_format_is_detected_from_the_content(data, expected):
    assert open_statement(io.BytesIO(data()), filename="upload.bin").format == expected


def test_unknown_or_unsupported_formats_are_rejected():
    with pytest.raises(StatementParseError, match="未知的文件格式"):
        open_statement(io.BytesIO(b"x"), format="pdf")
    with pytest.raises(StatementParseError, match="XLS") as broken_xls:  # .xls is read (#10)
        open_statement(io.BytesIO(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100))
    assert broken_xls.value.code == "bad_xls"
    with pytest.raises(StatementParseError, match=r"CAMT\.053"):
        open_statement(io.BytesIO(b'<?xml version="1.0"?><Document xmlns="urn:camt.054"/>'))


# --- duplicate keys ------------------------------------------------------------------------


def test_duplicate_line_in_the_csv_gets_the_same_key():
    keyed = list(dedupe_keys(parse(sample_bytes("statement_bank_export.csv"))))

    keys = [key for _, key in keyed]
    assert keys[10] == keys[0] == "ref:35000188110503337:2024040110000001:C:110.00:2024-04-01"
    assert len(set(keys)) == 10


def test_same_file_imported_twice_gives_the_same_keys():
    data = generic_csv(valid_row("5.00", ""), valid_row("5.00", ""), valid_row("6.00", "R7"))

    first = [key for _, key in dedupe_keys(parse(data))]
    second = [key for _, key in dedupe_keys(parse(data))]

    assert first == second


def test_identical_lines_without_bank_ref_are_two_transactions():
    data = generic_csv(valid_row("5.00", ""), valid_row("9.00", ""), valid_row("5.00", ""))

    keys = [key for _, key in dedupe_keys(parse(data))]

    assert keys[0].startswith("h:35000188110503337:")
    assert keys[0].endswith(":1")
    assert keys[2] == keys[0][:-1] + "2"
    assert keys[1].endswith(":1")
    assert len(set(keys)) == 3


def test_dedupe_key_ignores_occurrence_when_the_bank_gives_a_ref():
    (line,) = parse(generic_csv(valid_row("5.00", "R1")))

    assert (
        dedupe_key(line, 1) == dedupe_key(line, 7) == "ref:35000188110503337:R1:C:5.00:2024-04-01"
    )


def test_mt940_and_camt_copies_have_the_keys_of_the_csv_lines():
    csv_keys = {key for _, key in dedupe_keys(parse(sample_bytes("statement_bank_export.csv")))}
    mt940_keys = [key for _, key in dedupe_keys(parse(sample_bytes("statement.mt940")))]
    camt_keys = [key for _, key in dedupe_keys(parse(sample_bytes("statement_camt053.xml")))]

    assert mt940_keys == [
        "ref:35000188110513579:2024040210000004:C:20000.00:2024-04-02",
        "ref:35000188110513579:2024040310000005:C:16000.00:2024-04-03",
    ]
    assert camt_keys == [
        "ref:35000188110512345:2024040110000003:C:19800.00:2024-04-01",
        "ref:35000188110514680:2024041610000006:C:15000.00:2024-04-16",
    ]
    assert set(mt940_keys) <= csv_keys
    assert set(camt_keys) <= csv_keys


# --- streaming -----------------------------------------------------------------------------


def test_large_csv_is_streamed_without_growing_memory(tmp_path):
    path = tmp_path / "big.csv"
    start = datetime(2024, 4, 1, 8, 0, 0)
    total = 200_000
    rows = (
        (
            f"2024{n:012d}",
            start + timedelta(seconds=n),
            "35000188110503337",
            "供销社测试A2中学",
            "44050112345678901234",
            "中国工商银行汕头分行",
            Decimal(n % 5000) + Decimal("0.50"),
            f"货款 code{n % 997:03d} 第{n}笔",
            "online",
        )
        for n in range(total)
    )
    assert write_bank_csv(path, rows) == total
    gc.collect()
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    count = 0
    amount_sum = Decimal(0)

    with path.open("rb") as handle:
        statement = open_statement(handle)
        for count, line in enumerate(statement.lines, start=1):
            amount_sum += line.amount
            if count % 10_000 == 0:
                peak = max(peak, process.memory_info().rss)
    peak = max(peak, process.memory_info().rss)

    assert count == total
    assert amount_sum == sum(
        (Decimal(n % 5000) + Decimal("0.50") for n in range(total)), Decimal(0)
    )
    assert peak - baseline < 50 * 1024 * 1024


def test_generated_statement_reads_back_as_written(tmp_path):
    path = tmp_path / "g.csv"
    row = (
        "R1",
        datetime(2024, 4, 1, 9, 0),
        "3500",
        "甲",
        None,
        "乙行",
        Decimal("7.5"),
        "x",
        "cash",
    )

    write_bank_csv(path, itertools.repeat(row, 2))
    lines = parse(path.read_bytes())

    assert [line.amount for line in lines] == [Decimal("7.50")] * 2
    assert lines[0].payer_account is None
    assert lines[0].channel == "cash"


def test_amounts_beyond_the_database_range_are_a_parse_error_in_csv_and_xlsx() -> None:
    row = "R1,2024-04-01 10:00:00,35000188110503337,甲,6222,乙,{},f54yxn,online"
    for amount in ("123456789012345678901234567890", "1e300"):
        with pytest.raises(StatementParseError) as raised:
            parse(f"{GENERIC_HEADER}\n{row.format(amount)}\n".encode())
        assert raised.value.code == "bad_amount"
    (largest,) = parse(f"{GENERIC_HEADER}\n{row.format('99999999999999.99')}\n".encode())
    assert largest.amount == Decimal("99999999999999.99")
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(GENERIC_HEADER.split(","))
    sheet.append(["R1", "2024-04-01 10:00:00", "35000188110503337", "甲", "6222", "乙", 1e300])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with pytest.raises(StatementParseError) as raised:
        parse(buffer.getvalue())
    assert raised.value.code == "bad_amount"
