"""Helpers for the payments tests: sample orders, imports through the API, line outcomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from shared.models import Order
from tests.conftest import auth
from tests.factories import make_order, make_supplier, make_unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statements"


async def open_order(session: AsyncSession, *, account: str, code: str, amount: str) -> Order:
    """An open order (new buyer, new supplier whose settlement account is `account`)."""
    buyer = await make_unit(session)
    supplier, settlement = await make_supplier(session, settlement_account=account)
    return await make_order(
        session,
        buyer=buyer,
        supplier=supplier,
        settlement=settlement,
        amount=amount,
        payment_code=code,
    )


async def load_sample_orders(session: AsyncSession, client: httpx.AsyncClient) -> dict[str, Any]:
    """Units, suppliers (settlement account each) and the orders of orders.json, through the
    API with their legacy payment codes. Returns {order_no: order JSON}."""
    data = json.loads((FIXTURES / "orders.json").read_text(encoding="utf-8"))
    units = {}
    for row in data["orders"]:
        if row["buyer_unit"] not in units:
            units[row["buyer_unit"]] = await make_unit(session, row["buyer_unit"])
    await session.commit()
    orders = {}
    for row in data["orders"]:
        supplier = await client.post(
            "/api/v1/suppliers",
            json={
                "name": row["supplier"],
                "accounts": [
                    {
                        "holder_name": row["supplier"],
                        "account_no": row["settlement_account"],
                        "bank_name": "中国光大银行",
                        "is_settlement": True,
                    }
                ],
            },
            headers=auth(Role.PLATFORM),
        )
        assert supplier.status_code == 201, supplier.text
        order = await client.post(
            "/api/v1/orders",
            json={
                "order_no": row["order_no"],
                "buyer_unit_id": units[row["buyer_unit"]].id,
                "supplier_id": supplier.json()["id"],
                "amount": row["amount"],
                "placed_at": row["created_at"],
                "region_code": None,
                "origin_county": None,
                "payment_code": row["payment_code"],
            },
            headers=auth(Role.PLATFORM),
        )
        assert order.status_code == 201, order.text
        orders[row["order_no"]] = order.json()
    return orders


async def upload(
    client: httpx.AsyncClient, name: str, content: bytes, **form: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/statements",
        files={"file": (name, content)},
        data=form,
        headers=auth(Role.IMPORTER),
    )


async def import_fixture(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await upload(client, name, (FIXTURES / name).read_bytes())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def line_outcomes(session: AsyncSession) -> dict[str, tuple[str, str | None, str | None]]:
    """{bank_ref: (outcome, review reason or line reason, order_no named or suggested)}."""
    rows = await session.execute(
        text(
            """
            SELECT t.bank_ref, t.outcome, t.reason,
                   coalesce(oa.order_no, os.order_no, oc.order_no) AS order_no
              FROM bank_transactions t
              LEFT JOIN payment_allocations a ON a.bank_transaction_id = t.id
              LEFT JOIN orders oa ON oa.id = a.order_id
              LEFT JOIN review_cases c ON c.bank_transaction_id = t.id
              LEFT JOIN orders os ON os.id = c.suggested_order_id
              LEFT JOIN orders oc ON oc.id = c.order_id
            """
        )
    )
    await session.commit()
    return {r.bank_ref: (r.outcome, r.reason, r.order_no) for r in rows}


def bank_csv(rows: list[dict[str, str]]) -> bytes:
    """A `generic_cn` CSV (UTF-8) of credit lines; each row gives `account`, `amount` and
    optionally `ref`, `remark`, `payer_account`, `payer_name`, `channel`, `at`."""
    from services.payments.parsers.generate import HEADER

    out = [",".join(HEADER)]
    for i, row in enumerate(rows, start=1):
        cells = [
            row.get("ref", f"T{i:08d}"),
            row.get("at", f"2024-04-01 10:{i // 60 % 60:02d}:{i % 60:02d}"),
            row["account"],
            row.get("payer_name", "采购单位"),
            row.get("payer_account", "6222020200001234567"),
            row.get("payer_bank", "中国工商银行"),
            row["amount"],
            row.get("remark", ""),
            row.get("channel", "online"),
        ]
        out.append(",".join(f'"{c}"' for c in cells))
    return ("\n".join(out) + "\n").encode("utf-8")


async def import_rows(
    client: httpx.AsyncClient, rows: list[dict[str, str]], name: str = "lines.csv"
) -> dict[str, Any]:
    response = await upload(client, name, bank_csv(rows))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def outcome_of(session: AsyncSession, ref: str) -> tuple[str, str | None]:
    row = (
        await session.execute(
            text("SELECT outcome, reason FROM bank_transactions WHERE bank_ref = :r"), {"r": ref}
        )
    ).one()
    await session.commit()
    return row.outcome, row.reason


async def store_rows(rows: list[dict[str, str]]) -> None:
    """Import through the importer itself, without enqueuing matching (no worker involved)."""
    import io

    from services.payments.importer import import_statement

    await import_statement(io.BytesIO(bank_csv(rows)), filename="lines.csv", actor_sub="test")


async def settle(session: AsyncSession) -> None:
    """Match every pending line in this process; lines a live Celery worker (the end-to-end test's)
    holds are waited for (`FOR UPDATE` without SKIP LOCKED blocks until its batch commits)."""
    from services.payments import matching

    while True:
        await matching.match_pending()
        await session.execute(text("SELECT id FROM match_work FOR UPDATE"))
        still = (
            await session.execute(
                text("SELECT id FROM bank_transactions WHERE outcome = 'pending'")
            )
        ).all()
        await session.commit()
        if not still:
            return


async def importing_statement(session: AsyncSession, filename: str = "direct.csv") -> int:
    """A `generic_cn` CSV statement being imported (in the session's transaction, not committed):
    what an import in progress has written before its first batch; returns its id."""
    from services.payments import repository
    from shared.models.payments import Statement, StatementFormat

    statement = await repository.add_statement(
        session,
        Statement(
            filename=filename,
            format=StatementFormat.CSV,
            profile="generic_cn",
            sha256="0" * 64,
            status="importing",
            imported_by="importer:test",
        ),
    )
    return statement.id
