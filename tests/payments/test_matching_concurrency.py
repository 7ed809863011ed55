"""Several matchers at once (Celery workers): every line is processed exactly once and no order
is ever over-allocated, even when their batches overlap and compete for the same orders."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.payments import matching
from shared.models import OrderStatus
from shared.settings import get_settings
from tests.factories import make_order, make_supplier, make_unit
from tests.payments.helpers import store_rows

ORDERS = 5
LINES_PER_ORDER = 30  # 10.00 each against 100.00 orders: 10 fit, 20 must go to review


async def contested_orders(session: AsyncSession, client: httpx.AsyncClient) -> None:
    buyer = await make_unit(session)
    rows = []
    for k in range(ORDERS):
        account = f"3500018811059{k:04d}"
        supplier, settlement = await make_supplier(session, settlement_account=account)
        await make_order(
            session,
            buyer=buyer,
            supplier=supplier,
            settlement=settlement,
            amount="100.00",
            payment_code=f"code{k:02d}",
        )
        rows += [
            {"ref": f"R{k}-{i}", "account": account, "amount": "10", "remark": f"CODE{k:02d}"}
            for i in range(LINES_PER_ORDER)
        ]
    await session.commit()
    await store_rows(rows)


async def assert_processed_exactly_once(session: AsyncSession) -> None:
    lines = (
        await session.execute(
            text(
                """
                SELECT t.outcome,
                       (SELECT count(*) FROM payment_allocations a
                         WHERE a.bank_transaction_id = t.id) AS allocations,
                       (SELECT count(*) FROM review_cases c
                         WHERE c.bank_transaction_id = t.id) AS cases
                  FROM bank_transactions t
                """
            )
        )
    ).all()
    orders = (
        await session.execute(
            text(
                """
                SELECT o.status, o.amount, o.paid_amount,
                       (SELECT coalesce(sum(a.amount), 0) FROM payment_allocations a
                         WHERE a.order_id = o.id) AS allocated
                  FROM orders o
                """
            )
        )
    ).all()
    await session.commit()
    assert len(lines) == ORDERS * LINES_PER_ORDER
    for line in lines:
        assert line.outcome != "pending"
        assert line.allocations + line.cases == 1  # exactly one of allocation or review
    assert sum(line.allocations for line in lines) == ORDERS * 10
    for order in orders:
        assert order.paid_amount == order.allocated == order.amount == Decimal("100.00")
        assert order.status == OrderStatus.PAID


@pytest.mark.parametrize(
    "sizes",
    [
        # batches holding several lines of one order: those lines take the Python rules
        (7, 11, 5),
        # one line per batch: every bare line is decided by SQL, the matchers racing for the
        # same orders (`repository.decide_bare_lines`)
        (1, 1, 1),
    ],
)
async def test_two_matchers_on_overlapping_batches_never_double_allocate(
    session: AsyncSession, payments_client: httpx.AsyncClient, sizes: tuple[int, int, int]
) -> None:
    await contested_orders(session, payments_client)
    results = await asyncio.gather(*(matching.match_pending(batch_size=n) for n in sizes))
    assert sum(r.claimed for r in results) == ORDERS * LINES_PER_ORDER
    await assert_processed_exactly_once(session)


@pytest.mark.timeout(120)
async def test_two_matcher_threads_with_their_own_connections_never_double_allocate(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """Two OS threads, each with its own event loop and engine, like two worker processes."""
    await contested_orders(session, payments_client)
    claimed: list[int] = []

    def worker() -> None:
        async def run() -> None:
            # a private engine per thread: asyncpg connections belong to one event loop
            engine = create_async_engine(get_settings().database_url, pool_size=2)
            maker = async_sessionmaker(engine, expire_on_commit=False)
            total = 0
            try:
                while True:
                    async with maker() as s, s.begin():
                        result = await matching.match_batch(s, 9)
                    total += result.claimed
                    if result.claimed == 0:
                        break
            finally:
                await engine.dispose()
            claimed.append(total)

        asyncio.run(run())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        await asyncio.to_thread(t.join)
    assert sum(claimed) == ORDERS * LINES_PER_ORDER
    await assert_processed_exactly_once(session)
