"""Helpers for the payment-confirmation tests: an order with its supplier, bank lines through the
importer and the matcher, receipt images, and the money-conservation check."""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from shared.models import Order, OrgUnit, Supplier, SupplierAccount
from tests.conftest import auth
from tests.factories import make_order, make_policy, make_supplier, make_unit
from tests.payments.helpers import settle, store_rows

PAYER = "广州市某某食品有限公司"
PAYER_ACCOUNT = "6222020200001234567"


@dataclass
class Scenario:
    buyer: OrgUnit
    supplier: Supplier
    settlement: SupplierAccount
    order: Order
    other_account: SupplierAccount | None = None

    @property
    def headers(self) -> dict[str, str]:
        return auth(Role.UNIT, self.buyer.id)


_account_seq = iter(range(10_000, 99_999))


async def scenario(
    session: AsyncSession,
    *,
    amount: str = "100.00",
    code: str | None = None,
    placed_at: datetime | None = None,
    buyer: OrgUnit | None = None,
    other_account: bool = False,
    contact_mobile: str | None = "13800000001",
) -> Scenario:
    n = next(_account_seq)
    buyer = buyer or await make_unit(session, contact_mobile=contact_mobile)
    other_no = f"62170000000{n:05d}"
    others: tuple[str, ...] = (other_no,) if other_account else ()
    supplier, settlement = await make_supplier(
        session,
        "行唐县李先森农产品店",
        settlement_account=f"1001{n:05d}000007931",
        other_accounts=others,
    )
    order = await make_order(
        session,
        buyer=buyer,
        supplier=supplier,
        settlement=settlement,
        amount=amount,
        payment_code=code or f"q{n:05d}",
        placed_at=placed_at,
    )
    other = None
    if other_account:
        row = await session.execute(
            text("SELECT id FROM supplier_accounts WHERE account_no = :a"), {"a": other_no}
        )
        other = await session.get(SupplierAccount, row.scalar_one())
    await session.commit()
    return Scenario(buyer, supplier, settlement, order, other)


async def bank_lines(rows: list[dict[str, str]], session: AsyncSession) -> None:
    """Import credit lines and let the matcher decide them (no code: `unmatched`)."""
    await store_rows(rows)
    await settle(session)


def line(account: str, amount: str, ref: str, **kw: str) -> dict[str, str]:
    return {
        "ref": ref,
        "account": account,
        "amount": amount,
        "payer_name": kw.pop("payer_name", PAYER),
        "payer_account": kw.pop("payer_account", PAYER_ACCOUNT),
        "remark": kw.pop("remark", "货款"),
        "at": kw.pop("at", "2024-04-02 10:00:00"),
        **kw,
    }


def payment(amount: str, **kw: Any) -> dict[str, Any]:
    return {
        "payer_name": kw.pop("payer_name", PAYER),
        "payer_account_no": kw.pop("payer_account_no", PAYER_ACCOUNT),
        "amount": amount,
        "paid_on": kw.pop("paid_on", "2024-04-02"),
        "method": kw.pop("method", "transfer"),
        **kw,
    }


async def confirm(
    client: httpx.AsyncClient, s: Scenario, payments: list[dict[str, Any]], account_id: Any = ...
) -> httpx.Response:
    return await client.post(
        f"/api/v1/orders/{s.order.order_no}/payment-confirmations",
        json={
            "account_id": s.settlement.id if account_id is ... else account_id,
            "payments": payments,
        },
        headers=s.headers,
    )


def image(kind: str = "PNG", size: tuple[int, int] = (8, 8), color: int = 0) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (color % 256, 10, 20)).save(out, format=kind)
    return out.getvalue()


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of width × height pixels, a few tens of kilobytes compressed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


async def handoff(
    client: httpx.AsyncClient,
    s: Scenario,
    confirmation_id: int,
    files: list[tuple[str, bytes]],
    *,
    amount: str = "100.00",
    payer_account_no: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/api/v1/payment-confirmations/{confirmation_id}/handoff",
        data={
            "payer_name": PAYER,
            "payer_account_no": payer_account_no,
            "amount": amount,
            "paid_on": "2024-04-02",
            "remark": "现金存入供应商账户，附存款回单",
        },
        files=[("files", (name, content)) for name, content in files],
        headers=headers or s.headers,
    )


async def assert_money_conserved(session: AsyncSession) -> None:
    """Each order's paid amount = Σ its allocations ≤ its amount; a line is allocated at most
    once; per statement, the amounts by outcome add up to the credits."""
    bad_orders = (
        await session.execute(
            text(
                """
                SELECT o.order_no FROM orders o
                 WHERE o.paid_amount <> (SELECT coalesce(sum(a.amount), 0)
                                           FROM payment_allocations a WHERE a.order_id = o.id)
                    OR o.paid_amount > o.amount
                """
            )
        )
    ).all()
    twice = (
        await session.execute(
            text(
                "SELECT bank_transaction_id FROM payment_allocations "
                "WHERE bank_transaction_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1"
            )
        )
    ).all()
    statements = (
        await session.execute(
            text(
                """
                SELECT s.id,
                       (SELECT coalesce(sum(amount), 0) FROM bank_transactions
                         WHERE statement_id = s.id AND direction = 'credit') AS credits,
                       (SELECT coalesce(sum(amount), 0) FROM bank_transactions
                         WHERE statement_id = s.id AND direction = 'credit'
                           AND outcome IN ('matched', 'partial', 'review', 'unmatched',
                                           'pending', 'ignored')) AS by_outcome,
                       (SELECT coalesce(sum(t.amount), 0) FROM bank_transactions t
                         WHERE t.statement_id = s.id
                           AND t.outcome IN ('matched', 'partial')) AS out,
                       (SELECT coalesce(sum(a.amount), 0) FROM payment_allocations a
                          JOIN bank_transactions t ON t.id = a.bank_transaction_id
                         WHERE t.statement_id = s.id) AS allocated
                  FROM statements s
                """
            )
        )
    ).all()
    await session.commit()
    assert bad_orders == []
    assert twice == []
    for st in statements:
        assert st.credits == st.by_outcome
        assert st.out == st.allocated  # matched/partial lines are exactly the allocated ones


def voucher_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def policy_with_cutoff(session: AsyncSession, year: int, cutoff: date) -> None:
    await make_policy(session, year, "000000", non_settlement_cutoff=cutoff)
    await session.commit()


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 2, tzinfo=UTC)
