"""Issue #10, findings 1–3: one minimal file per finding (written here, no real data), asserting
the exact lines: count, amounts, direction, account, remark and dedupe key."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.payments.parsers import StatementLine, StatementParseError, open_statement
from services.payments.parsers.dedupe import dedupe_keys

SHANGHAI = ZoneInfo("Asia/Shanghai")


def lines(data: str | bytes, **options: Any) -> list[StatementLine]:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return list(open_statement(io.BytesIO(raw), **options).lines)


def keyed(data: str | bytes) -> list[tuple[StatementLine, str]]:
    return list(dedupe_keys(lines(data)))


def summary(line: StatementLine) -> tuple[object, ...]:
    return (line.direction, line.amount, line.account_no, line.bank_ref, line.remark)


# --- 1. MT940 ------------------------------------------------------------------------------

MT940_NO_TYPE_CODE = """\
:20:T1
:25:1234567890
:28C:1/1
:60F:C240501CNY0,00
:61:2405020502C100,00//REF-A
:86:FIRST
:61:2405020502C250,50//REF-B
:86:SECOND
:61:2405030503D30,00//REF-C
:62F:C240503CNY320,50
-
"""


def test_mt940_lines_without_a_type_code_are_one_line_per_61_tag():
    got = keyed(MT940_NO_TYPE_CODE)

    assert [summary(line) for line, _ in got] == [
        ("credit", Decimal("100.00"), "1234567890", "REF-A", "FIRST"),
        ("credit", Decimal("250.50"), "1234567890", "REF-B", "SECOND"),
        ("debit", Decimal("30.00"), "1234567890", "REF-C", None),
    ]
    assert [key for _, key in got] == [
        "ref:1234567890:REF-A:C:100.00:2024-05-02",
        "ref:1234567890:REF-B:C:250.50:2024-05-02",
        "ref:1234567890:REF-C:D:30.00:2024-05-03",
    ]


def test_mt940_dot_decimal_amounts_keep_their_cents():
    data = ":20:T\n:25:1234\n:60F:C240501CNY0.00\n:61:240502C121189.65NTRFNONREF//R1\n-\n"

    (line,) = lines(data)

    assert (line.amount, line.direction, line.bank_ref) == (Decimal("121189.65"), "credit", "R1")
    assert line.booked_at == datetime(2024, 5, 2, tzinfo=SHANGHAI)


def test_mt940_german_structured_86_gives_remark_payer_name_and_account():
    data = (
        ":20:T\n:25:37040044/532013000\n:60F:C240501EUR0,00\n"
        ":61:2405020502CR42,00NTRFNONREF//B1\n"
        ":86:166?00GUTSCHRIFT?100599?20PAYMENT FOR ORDER ?21FA4XY2?30COBADEFFXXX\n"
        "?31DE89370400440532013000?32MUSTER GMBH?33 ABTEILUNG\n:62F:C240502EUR42,00\n-\n"
    )

    ((line, key),) = keyed(data)

    assert summary(line) == (
        "credit",
        Decimal("42.00"),
        "532013000",
        "B1",
        "PAYMENT FOR ORDER FA4XY2",
    )
    assert (line.payer_name, line.payer_account, line.payer_bank) == (
        "MUSTER GMBH ABTEILUNG",
        "DE89370400440532013000",
        "COBADEFFXXX",
    )
    assert line.currency == "EUR"
    assert key == "ref:532013000:B1:C:42.00:2024-05-02"


def test_mt940_statement_level_86_is_not_the_last_transactions_remark():
    data = (
        ":20:T\n:25:1234\n:60F:C240501CNY0,00\n:61:240502C10,00NTRFNONREF//R1\n:86:a8k3pq\n"
        ":62F:C240502CNY10,00\n:64:C240502CNY10,00\n:86:/SUM/1/0/10,00/0,00/ b3x7kt\n-\n"
    )

    (line,) = lines(data)

    assert summary(line) == ("credit", Decimal("10.00"), "1234", "R1", "a8k3pq")


def test_mt940_wrapped_86_lines_keep_a_separator():
    data = (
        ":20:T\n:25:1234\n:60F:C240501CNY0,00\n:61:240502C10,00NTRFNONREF//R1\n"
        ":86:PAYMENT FOR ORDER\nFA4XY2\n-\n"
    )

    (line,) = lines(data)

    assert line.remark == "PAYMENT FOR ORDER FA4XY2"


@pytest.mark.parametrize(
    ("field_25", "account"),
    [
        ("BANKCNBJ/123456", "123456"),
        ("123456/CNY", "123456"),
        ("123456EUR", "123456"),
        ("123456 EUR", "123456"),
        ("UBRTHUHB/123456789150ABCDEF002/HUF", "123456789150ABCDEF002"),
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ],
)
def test_mt940_account_is_the_csv_exports_account(field_25, account):
    data = f":20:T\n:25:{field_25}\n:60F:C240501CNY0,00\n:61:240502C10,00NTRFNONREF//R1\n-\n"

    ((line, key),) = keyed(data)

    assert line.account_no == account
    assert key == f"ref:{account}:R1:C:10.00:2024-05-02"


def test_mt940_zero_amount_six_digit_28c_and_long_customer_reference_are_read():
    data = (
        ":20:T\n:25:1234\n:28C:123456/1\n:60F:C240501CNY0,00\n"
        ":61:240502C0,00NMSCNONREF\n:86:ZERO\n"
        ":61:240502C5,00NTRFCUSTOMER-REF-LONGER-THAN-16//R2\n-\n"
    )

    zero, five = lines(data)

    assert summary(zero) == ("credit", Decimal("0.00"), "1234", None, "ZERO")
    assert summary(five) == ("credit", Decimal("5.00"), "1234", "R2", None)


def test_mt940_errors_name_no_python_objects_and_no_library_logs_transaction_text(caplog):
    caplog.set_level(logging.DEBUG)
    good = ":20:T\n:25:1234\n:60F:C240501CNY0,00\n:61:240502C10,00NTRF//R1\n:86:/NAME/张三\n-\n"
    (line,) = lines(good)
    assert line.payer_name == "张三"
    assert "张三" not in caplog.text

    with pytest.raises(StatementParseError) as raised:
        lines(":20:T\n:25:1234\n:61:240502X10,00\n-\n", format="mt940")
    assert "object at 0x" not in str(raised.value)
    assert "<" not in str(raised.value)


def test_mt940_amount_with_fractions_of_a_cent_is_refused():
    data = ":20:T\n:25:1234\n:61:240502C8,855NTRF//R1\n-\n"

    with pytest.raises(StatementParseError, match="两位小数"):
        lines(data)
    (line,) = lines(data.replace("8,855", "8,850"))
    assert line.amount == Decimal("8.85")


# --- 2. CAMT.053 ---------------------------------------------------------------------------


def camt(entries: str, ccy: str = "CNY") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>M</MsgId></GrpHdr>
<Stmt><Id>S</Id><Acct><Id><Othr><Id>6222</Id></Othr></Id><Ccy>{ccy}</Ccy></Acct>
{entries}
</Stmt></BkToCstmrStmt></Document>"""


def test_camt053_entry_without_sts_is_booked():
    data = camt(
        """<Ntry><Amt Ccy="CNY">12.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<BookgDt><Dt>2024-05-02</Dt></BookgDt><AcctSvcrRef>N1</AcctSvcrRef>
<NtryDtls><TxDtls><RmtInf><Ustrd>a8k3pq</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"""
    )

    ((line, key),) = keyed(data)

    assert summary(line) == ("credit", Decimal("12.00"), "6222", "N1", "a8k3pq")
    assert key == "ref:6222:N1:C:12.00:2024-05-02"


def test_camt053_single_detail_in_another_currency_keeps_the_booked_amount():
    data = camt(
        """<Ntry><Amt Ccy="CNY">710.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2024-05-02</Dt></BookgDt><AcctSvcrRef>FX1</AcctSvcrRef>
<NtryDtls><TxDtls><Amt Ccy="USD">100.00</Amt>
<AmtDtls><InstdAmt><Amt Ccy="USD">100.00</Amt></InstdAmt><TxAmt><Amt Ccy="USD">100.00</Amt></TxAmt>
</AmtDtls><RmtInf><Ustrd>b3x7kt</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"""
    )

    ((line, key),) = keyed(data)

    assert summary(line) == ("credit", Decimal("710.00"), "6222", "FX1", "b3x7kt")
    assert line.currency == "CNY"
    assert key == "ref:6222:FX1:C:710.00:2024-05-02"


def test_camt053_split_lines_must_add_up_else_the_entry_is_one_line():
    details = """<NtryDtls>
<TxDtls><Amt Ccy="CNY">60.00</Amt><RmtInf><Ustrd>a8k3pq</Ustrd></RmtInf></TxDtls>
<TxDtls><Amt Ccy="CNY">30.00</Amt><RmtInf><Ustrd>b3x7kt</Ustrd></RmtInf></TxDtls>
</NtryDtls>"""
    data = camt(
        f"""<Ntry><Amt Ccy="CNY">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<BookgDt><Dt>2024-05-02</Dt></BookgDt><AcctSvcrRef>E1</AcctSvcrRef>{details}</Ntry>"""
    )

    ((line, key),) = keyed(data)

    assert summary(line) == ("credit", Decimal("100.00"), "6222", "E1", "a8k3pq b3x7kt")
    assert key == "ref:6222:E1:C:100.00:2024-05-02"


@pytest.mark.parametrize(("written", "amount"), [("8.850", "8.85"), ("100.000", "100.00")])
def test_camt053_more_decimals_that_are_exact_cents_are_accepted(written, amount):
    data = camt(
        f"""<Ntry><Amt Ccy="CNY">{written}</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<BookgDt><Dt>2024-05-02</Dt></BookgDt><AcctSvcrRef>D1</AcctSvcrRef></Ntry>"""
    )

    ((line, key),) = keyed(data)

    assert (line.amount, line.direction, line.account_no) == (Decimal(amount), "credit", "6222")
    assert key == f"ref:6222:D1:C:{amount}:2024-05-02"


def test_camt053_fractions_of_a_cent_are_refused():
    data = camt(
        """<Ntry><Amt Ccy="CNY">8.855</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<BookgDt><Dt>2024-05-02</Dt></BookgDt></Ntry>"""
    )

    with pytest.raises(StatementParseError, match="两位小数"):
        lines(data)


# --- 3. dedupe keys ------------------------------------------------------------------------


def test_two_details_of_one_entry_with_the_same_reference_get_two_keys():
    details = """<NtryDtls>
<TxDtls><Refs><AcctSvcrRef>T9</AcctSvcrRef></Refs><Amt Ccy="CNY">50.00</Amt></TxDtls>
<TxDtls><Refs><AcctSvcrRef>T9</AcctSvcrRef></Refs><Amt Ccy="CNY">50.00</Amt></TxDtls>
</NtryDtls>"""
    data = camt(
        f"""<Ntry><Amt Ccy="CNY">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<BookgDt><Dt>2024-05-02</Dt></BookgDt><AcctSvcrRef>E9</AcctSvcrRef>{details}</Ntry>"""
    )

    got = keyed(data)

    assert [(line.amount, line.bank_ref) for line, _ in got] == [
        (Decimal("50.00"), "T9/1"),
        (Decimal("50.00"), "T9/2"),
    ]
    assert [key for _, key in got] == [
        "ref:6222:T9/1:C:50.00:2024-05-02",
        "ref:6222:T9/2:C:50.00:2024-05-02",
    ]


def test_a_debit_and_a_credit_with_the_same_mt940_reference_get_two_keys():
    data = (
        ":20:T\n:25:1234\n:60F:C240501CNY0,00\n:61:240502C10,00NTRFNONREF//SAME\n"
        ":61:240502D10,00NTRFNONREF//SAME\n-\n"
    )

    got = keyed(data)

    assert [(line.direction, line.amount) for line, _ in got] == [
        ("credit", Decimal("10.00")),
        ("debit", Decimal("10.00")),
    ]
    assert [key for _, key in got] == [
        "ref:1234:SAME:C:10.00:2024-05-02",
        "ref:1234:SAME:D:10.00:2024-05-02",
    ]


def test_the_same_transfer_has_the_same_key_in_csv_mt940_and_camt():
    csv_file = (
        "交易流水号,交易时间,收款账号,对方户名,对方账号,对方开户行,贷方发生额,摘要,交易渠道\n"
        "X77,2024-05-02 16:30:00,6222,甲,1,乙行,88.00,a8k3pq,online\n"
    )
    mt940_file = ":20:T\n:25:BANKCNBJ/6222/CNY\n:61:2405020502C88,00NTRFNONREF//X77\n-\n"
    camt_file = camt(
        """<Ntry><Amt Ccy="CNY">88.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<BookgDt><DtTm>2024-05-02T08:30:00Z</DtTm></BookgDt><AcctSvcrRef>X77</AcctSvcrRef></Ntry>"""
    )

    keys = {key for data in (csv_file, mt940_file, camt_file) for _, key in keyed(data)}

    assert keys == {"ref:6222:X77:C:88.00:2024-05-02"}
    assert lines(camt_file)[0].value_date is None
    assert lines(mt940_file)[0].value_date == date(2024, 5, 2)


def test_mt940_swift_envelope_and_non_standard_fields_stay_out_of_the_remark():
    data = (
        "{1:F01BANKCNBJAXXX0000000000}{2:I940BANKCNBJXXXXN}{4:\n"
        ":20:T\n:25:1234\n:60F:C240501CNY0,00\n:61:240502C10,00NTRFNONREF//R1\n:86:a8k3pq\n"
        ":NS:22 internal\n-}{5:{CHK:123456789ABC}}\n"
    )

    ((line, key),) = keyed(data)

    assert summary(line) == ("credit", Decimal("10.00"), "1234", "R1", "a8k3pq")
    assert key == "ref:1234:R1:C:10.00:2024-05-02"


def test_mt940_in_latin_1_from_a_european_bank_reads_its_umlauts():
    data = (
        ":20:T\n:25:DE89 3704 0044 0532 0130 00\n:60F:C240501EUR0,00\n"
        ":61:2405020502CR42,00NTRFNONREF//B1\n"
        ":86:166?00GUTSCHRIFT?20R\xfcckzahlung a8k3pq?32M\xfcller GmbH\n-\n"
    ).encode("latin-1")

    ((line, key),) = keyed(data)

    assert summary(line) == (
        "credit",
        Decimal("42.00"),
        "DE89370400440532013000",
        "B1",
        "R\xfcckzahlung a8k3pq",
    )
    assert line.payer_name == "M\xfcller GmbH"
    assert key == "ref:DE89370400440532013000:B1:C:42.00:2024-05-02"
