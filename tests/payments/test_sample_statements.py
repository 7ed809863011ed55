"""The contract of the sample kit: importing the three sample statements (and the CSV a second
time) after loading orders.json gives exactly the outcomes of expected_outcomes.txt."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import httpx
from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from tests.conftest import auth
from tests.payments.helpers import (
    FIXTURES,
    import_fixture,
    line_outcomes,
    load_sample_orders,
    settle,
    upload,
)

EXPECTED_LINES = {
    "2024040110000001": ("matched", None, "XD231204112700000006"),
    "2024040110000002": ("matched", None, "XD240305093000000102"),
    "2024040110000003": ("matched", None, "XD240311150500000217"),
    "2024040210000004": ("partial", None, "XD240402101000000333"),
    "2024040310000005": ("matched", None, "XD240402101000000333"),
    "2024041610000006": ("unmatched", "no_code", None),
    "2024042110000007": ("review", "payer_account_invalid", None),
    "2024042910000008": ("review", "cash_deposit", "XD240428160000000666"),
    "2024042910000009": ("review", "code_suggestion", "XD240420140000000555"),
    "2024050110000010": ("review", "order_already_paid", "XD240305093000000102"),
}

FINAL_STATES = {
    "XD231204112700000006": ("paid", "110.00"),
    "XD240305093000000102": ("paid", "4800.00"),
    "XD240311150500000217": ("paid", "19800.00"),
    "XD240402101000000333": ("paid", "36000.00"),
    "XD240415083000000444": ("pending_payment", "0.00"),
    "XD240420140000000555": ("pending_payment", "0.00"),
    "XD240428160000000666": ("pending_payment", "0.00"),
}


async def test_sample_statements_give_the_expected_outcomes(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await load_sample_orders(session, payments_client)

    csv = await import_fixture(payments_client, "statement_bank_export.csv")
    await settle(session)
    mt940 = await import_fixture(payments_client, "statement.mt940")
    camt = await import_fixture(payments_client, "statement_camt053.xml")
    csv_again = await import_fixture(payments_client, "statement_bank_export.csv")
    await settle(session)

    # the last CSV line repeats the first one: counted once
    assert (csv["lines_total"], csv["lines_new"], csv["lines_duplicate"]) == (11, 10, 1)
    assert csv["format"] == "csv"
    # every MT940/CAMT line is a copy of a CSV line
    assert (mt940["lines_total"], mt940["lines_new"], mt940["lines_duplicate"]) == (2, 0, 2)
    assert (camt["lines_total"], camt["lines_new"], camt["lines_duplicate"]) == (2, 0, 2)
    assert (csv_again["lines_new"], csv_again["lines_duplicate"]) == (0, 11)

    assert await line_outcomes(session) == EXPECTED_LINES

    for order_no, (status, paid) in FINAL_STATES.items():
        response = await payments_client.get(f"/api/v1/orders/{order_no}", headers=auth(Role.OPS))
        order = response.json()
        assert (order["status"], order["paid_amount"]) == (status, paid), order_no

    # the two-part payment: 20000.00 (partially paid) then 36000.00 (paid)
    order = (
        await payments_client.get("/api/v1/orders/XD240402101000000333", headers=auth(Role.OPS))
    ).json()
    payments = [e for e in order["timeline"] if e["action"] == "payment_allocated"]
    assert [(e["to_status"], e["amount"]) for e in payments] == [
        ("partially_paid", "20000.00"),
        ("paid", "16000.00"),
    ]
    assert [a["amount"] for a in order["allocations"]] == ["20000.00", "16000.00"]
    assert sum(Decimal(a["amount"]) for a in order["allocations"]) == Decimal("36000.00")

    statement = await payments_client.get(
        f"/api/v1/statements/{csv['statement_id']}", headers=auth(Role.IMPORTER)
    )
    counts = statement.json()
    assert {k: counts[k] for k in ("matched", "partial", "review", "unmatched", "pending")} == {
        "matched": 4,
        "partial": 1,
        "review": 4,
        "unmatched": 1,
        "pending": 0,
    }


async def test_an_xlsx_export_with_the_same_profile_gives_the_same_outcomes(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """The bank's export saved as XLSX: same lines, same outcomes; the CSV afterwards adds none."""
    text = (FIXTURES / "statement_bank_export.csv").read_bytes().decode("gbk")
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in csv.reader(io.StringIO(text)):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)

    await load_sample_orders(session, payments_client)
    xlsx = await upload(payments_client, "流水.xlsx", buffer.getvalue())
    assert xlsx.status_code == 201, xlsx.text
    assert (xlsx.json()["format"], xlsx.json()["lines_new"]) == ("xlsx", 10)
    await settle(session)
    csv_after = await import_fixture(payments_client, "statement_bank_export.csv")
    assert (csv_after["lines_new"], csv_after["lines_duplicate"]) == (0, 11)
    assert await line_outcomes(session) == EXPECTED_LINES
