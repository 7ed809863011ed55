"""Issue #10, finding 6: every yuan of a file accounted for. `GET /statements/{id}` gives
`credit_total` (every credit line of the file) and `amounts` per outcome, adding up to it: on the
sample files, and as a property over random statements, re-imports and resolutions."""

from __future__ import annotations

import itertools
from decimal import Decimal

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from tests.conftest import auth
from tests.factories import make_order, make_supplier, make_unit
from tests.payments.helpers import import_fixture, load_sample_orders, settle, upload

OUTCOMES = ("matched", "partial", "review", "unmatched", "pending", "ignored")


async def statement(client: httpx.AsyncClient, statement_id: int) -> dict[str, object]:
    response = await client.get(f"/api/v1/statements/{statement_id}", headers=auth(Role.IMPORTER))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def assert_adds_up(body: dict[str, object]) -> None:
    amounts = body["amounts"]
    assert isinstance(amounts, dict)
    assert set(amounts) == set(OUTCOMES)
    assert sum(Decimal(v) for v in amounts.values()) == Decimal(str(body["credit_total"]))


async def test_sample_files_account_for_every_credit(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await load_sample_orders(session, payments_client)
    csv = await import_fixture(payments_client, "statement_bank_export.csv")
    await settle(session)
    mt940 = await import_fixture(payments_client, "statement.mt940")
    camt = await import_fixture(payments_client, "statement_camt053.xml")
    await settle(session)

    zero = dict.fromkeys(OUTCOMES, "0.00")
    csv_body = await statement(payments_client, csv["statement_id"])
    assert csv_body["credit_total"] == "97700.00"
    # the repeated first line (110.00, matched) counts twice, as in the file
    assert csv_body["amounts"] == zero | {
        "matched": "40820.00",
        "partial": "20000.00",
        "review": "21880.00",
        "unmatched": "15000.00",
    }
    mt940_body = await statement(payments_client, mt940["statement_id"])
    assert mt940_body["credit_total"] == "36000.00"
    assert mt940_body["amounts"] == zero | {"partial": "20000.00", "matched": "16000.00"}
    camt_body = await statement(payments_client, camt["statement_id"])
    assert camt_body["credit_total"] == "34800.00"
    assert camt_body["amounts"] == zero | {"matched": "19800.00", "unmatched": "15000.00"}
    for body in (csv_body, mt940_body, camt_body):
        assert_adds_up(body)


HEADER = (
    "交易流水号,交易时间,收款账号,对方户名,对方账号,对方开户行,贷方发生额,借方发生额,摘要,交易渠道"
)
_example = itertools.count(1)

line_strategy = st.tuples(
    st.sampled_from(["", "R1", "R2", "R3"]),  # bank reference (shared refs: duplicates)
    st.sampled_from(["credit", "credit", "debit"]),
    st.integers(min_value=1, max_value=5_000_00),  # cents
    st.booleans(),  # to the settlement account (else: another account, ignored)
    st.sampled_from(["code", "none", "other"]),  # remark
    st.integers(min_value=0, max_value=2),  # booking day offset
)


def build_csv(n: int, account: str, code: str, rows: list[tuple[object, ...]]) -> bytes:
    out = [HEADER]
    for ref, direction, cents, settlement, remark, day in rows:
        amount = f"{Decimal(int(str(cents))) / 100:.2f}"
        text_remark = {"code": code, "none": "货款", "other": "zz9zz9"}[str(remark)]
        out.append(
            ",".join(
                [
                    f"E{n}{ref}" if ref else "",
                    f"2024-04-0{1 + int(str(day))} 10:00:00",
                    account if settlement else f"9{account}",
                    "采购单位",
                    "6222020200001234567",
                    "中国工商银行",
                    amount if direction == "credit" else "",
                    amount if direction == "debit" else "",
                    text_remark,
                    "online",
                ]
            )
        )
    return ("\n".join(out) + "\n").encode("utf-8")


@settings(
    max_examples=12,
    derandomize=True,  # the same examples on every run (CI), no example database
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(line_strategy, min_size=1, max_size=8),
    extra=st.lists(line_strategy, max_size=4),
    overlap=st.integers(min_value=0, max_value=8),
    resolve=st.sampled_from(["reject", "allocate", "none"]),
)
async def test_amounts_add_up_over_random_statements_reimports_and_resolutions(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    first: list[tuple[object, ...]],
    extra: list[tuple[object, ...]],
    overlap: int,
    resolve: str,
) -> None:
    n = next(_example)
    account = f"77{n:015d}"
    code = f"p{n:05d}"
    buyer = await make_unit(session)
    supplier, settlement = await make_supplier(session, settlement_account=account)
    order = await make_order(
        session,
        buyer=buyer,
        supplier=supplier,
        settlement=settlement,
        amount="100.00",
        payment_code=code,
    )
    await session.commit()
    files = [
        build_csv(n, account, code, first),
        build_csv(n, account, code, first[:overlap] + extra),  # overlapping statement
        build_csv(n, account, code, first),  # the first file again
    ]
    ids = []
    for index, data in enumerate(files):
        response = await upload(payments_client, f"f{index}.csv", data)
        assert response.status_code == 201, response.text
        ids.append(response.json()["statement_id"])
        if index == 0:
            await settle(session)
    await settle(session)

    if resolve != "none":
        cases = (
            await session.execute(
                text(
                    "SELECT c.id FROM review_cases c JOIN bank_transactions t"
                    " ON t.id = c.bank_transaction_id WHERE t.account_no = :a"
                    " AND c.status = 'open'"
                ),
                {"a": account},
            )
        ).all()
        await session.commit()
        for (case_id,) in cases:
            resolution = {"action": resolve, "note": "核对"}
            if resolve == "allocate":
                resolution["order_no"] = order.order_no
            await payments_client.post(
                f"/api/v1/review-cases/{case_id}/resolve", json=resolution, headers=auth(Role.OPS)
            )

    for statement_id, rows in zip(ids, (first, first[:overlap] + extra, first), strict=True):
        body = await statement(payments_client, statement_id)
        expected = sum(
            (Decimal(int(str(r[2]))) / 100 for r in rows if r[1] == "credit"), Decimal(0)
        )
        assert Decimal(str(body["credit_total"])) == expected
        assert_adds_up(body)
