"""The payments ledger's references: checked once per statement on the bulk paths (statement
lines, allocations) and never left dangling, because ledger rows are never deleted."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Order
from tests.payments.helpers import open_order, store_rows

ACCOUNT = "35000188110599001"


@pytest.fixture
async def order(session: AsyncSession) -> Order:
    created = await open_order(session, account=ACCOUNT, code="fa4xy2", amount="100")
    await session.commit()
    return created


async def line_id(session: AsyncSession) -> int:
    await store_rows([{"ref": "R1", "account": ACCOUNT, "amount": "100", "remark": "x"}])
    tx_id = (await session.execute(text("SELECT id FROM bank_transactions"))).scalar_one()
    await session.commit()
    return int(tx_id)


async def rejected(session: AsyncSession, sql: str, **params: object) -> str:
    with pytest.raises(IntegrityError) as caught:
        await session.execute(text(sql), params)
    await session.rollback()
    return str(caught.value.orig)


async def test_an_allocation_to_an_unknown_order_or_line_is_refused(
    session: AsyncSession, order: Order
) -> None:
    order_id = order.id
    tx_id = await line_id(session)
    insert = (
        "INSERT INTO payment_allocations (bank_transaction_id, order_id, amount, source, "
        "actor_sub) VALUES (:tx, :o, 1, 'review', 'test')"
    )
    message = await rejected(session, insert, tx=tx_id, o=order_id + 1000)
    assert "fk_payment_allocations_order_id_orders" in message
    message = await rejected(session, insert, tx=tx_id + 1000, o=order_id)
    assert "fk_payment_allocations_bank_transaction_id_bank_transactions" in message
    message = await rejected(
        session,
        "INSERT INTO payment_allocations (confirmation_id, order_id, amount, source, actor_sub) "
        "VALUES (999999, :o, 1, 'self_service', 'test')",
        o=order_id,
    )
    assert "fk_payment_allocations_confirmation_id_payment_confirmations" in message
    count = (await session.execute(text("SELECT count(*) FROM payment_allocations"))).scalar_one()
    assert count == 0


async def test_a_statement_line_of_an_unknown_statement_is_refused(
    session: AsyncSession, order: Order
) -> None:
    tx_id = await line_id(session)
    message = await rejected(
        session,
        "UPDATE bank_transactions SET statement_id = statement_id + 1000 WHERE id = :t",
        t=tx_id,
    )
    assert "fk_bank_transactions_statement_id_statements" in message


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "DELETE FROM statements",
        "DELETE FROM bank_transactions",
        "UPDATE orders SET id = id + 1000",
        "UPDATE bank_transactions SET id = id + 1000",
    ],
)
async def test_ledger_rows_are_never_deleted_nor_renumbered(
    session: AsyncSession, order: Order, sql: str
) -> None:
    await line_id(session)
    message = await rejected(session, sql)
    assert "never deleted" in message
    orders = (await session.execute(text("SELECT count(*) FROM orders"))).scalar_one()
    lines = (await session.execute(text("SELECT count(*) FROM bank_transactions"))).scalar_one()
    assert (orders, lines) == (1, 1)


async def test_reference_checks_probe_the_parents_by_index_whatever_the_statistics(
    session: AsyncSession,
) -> None:
    """PL/pgSQL plans each trigger query once per session, possibly while a table looks empty (a
    fresh or truncated table): the plan must not be allowed to scan a big table per new row."""
    rows = (
        await session.execute(
            text(
                "SELECT proname, proconfig FROM pg_proc WHERE proname LIKE "
                "'%\\_check\\_references' OR proname = 'orders_open_code_update' ORDER BY proname"
            )
        )
    ).all()
    await session.commit()
    assert [r.proname for r in rows] == [
        "bank_transactions_check_references",
        "orders_open_code_update",
        "payment_allocations_check_references",
    ]
    for row in rows:
        assert {"enable_seqscan=off", "enable_hashjoin=off", "enable_mergejoin=off"} <= set(
            row.proconfig
        )
