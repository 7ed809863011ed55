"""Property: after any sequence of orders, payments (partial or whole, through the allocation
SQL or a bare set-based UPDATE), completions and cancellations, the counters equal a
recomputation from the orders (the nightly drift check finds nothing) and the per-unit totals
equal what a plain model of the rules expects. Plus: the drift check reports a corrupted counter
and a rebuild repairs it."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.confirmation import progress, progress_repository
from services.payments import repository, service
from services.payments.schemas import OrderIn
from shared.auth import Principal, Role
from shared.errors import Conflict
from shared.models import PairedCounty
from shared.settings import get_settings
from tests.conftest import TRUNCATE_SQL
from tests.factories import make_supplier, make_unit

PLATFORM = Principal("platform:test", Role.PLATFORM)
CHANNELS = ["unit", "contractor", "personal", "union"]
ORIGINS = [None, "罗城仫佬族自治县", "黔东南州黎平县", "广东省河源市和平县", "喀什地区"]

op = st.one_of(
    st.tuples(
        st.just("create"),
        st.integers(0, 1),  # unit
        st.sampled_from(CHANNELS),
        st.integers(1, 100_000),  # cents
        st.sampled_from(ORIGINS),
    ),
    st.tuples(st.just("pay"), st.integers(0, 9), st.booleans()),  # whole or half
    st.tuples(st.just("pay_sql"), st.integers(0, 9)),
    st.tuples(st.just("complete"), st.integers(0, 9), st.integers(1, 12)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
)


@dataclass
class Model:
    """The rules, plainly: an order counts iff paid in full and completed (never cancelled)."""

    orders: list[dict[str, Any]] = field(default_factory=list)

    def expected(self) -> dict[int, dict[str, Decimal]]:
        out: dict[int, dict[str, Decimal]] = {}
        for o in self.orders:
            if o["status"] == "paid" and o["completed"]:
                per = out.setdefault(o["unit_id"], dict.fromkeys(CHANNELS, Decimal("0")))
                per[o["channel"]] += o["amount"]
        return out


_tx = itertools.count(1)


async def _bank_line(session: AsyncSession, amount: Decimal) -> int:
    n = next(_tx)
    statement = await session.scalar(
        text(
            "INSERT INTO statements (filename, format, sha256, status, lines_total, lines_new, "
            "lines_duplicate, lines_ignored, imported_by) "
            "VALUES ('p.csv', 'csv', :h, 'imported', 1, 1, 0, 0, 'test') RETURNING id"
        ),
        {"h": f"{n:064d}"},
    )
    tx_id: int = await session.scalar(
        text(
            "INSERT INTO bank_transactions (statement_id, dedupe_key, account_no, direction, "
            "amount, currency, booked_at, outcome) VALUES (:s, :k, '1', 'credit', :a, 'CNY', "
            "'2024-03-05T02:00:00Z', 'pending') RETURNING id"
        ),
        {"s": statement, "k": f"prop-{n}", "a": amount},
    )
    return tx_id


async def _apply(session: AsyncSession, model: Model, unit_ids: list[int], step: tuple) -> None:
    kind = step[0]
    if kind == "create":
        _, unit, channel, cents, origin = step
        n = len(model.orders)
        order, _ = await service.create_order(
            session,
            PLATFORM,
            OrderIn(
                order_no=f"PROP{n}",
                buyer_unit_id=unit_ids[unit],
                supplier_id=model.supplier_id,  # type: ignore[attr-defined]
                amount=str(Decimal(cents) / 100),
                placed_at=datetime(2024, 1, 2, tzinfo=UTC),
                origin_county=origin,
                purchase_channel=channel,
            ),
        )
        model.orders.append(
            {
                "id": order.id,
                "unit_id": unit_ids[unit],
                "channel": channel,
                "amount": order.amount,
                "paid": Decimal("0"),
                "status": "pending_payment",
                "completed": False,
            }
        )
        return
    if not model.orders:
        return
    o = model.orders[step[1] % len(model.orders)]
    if kind == "pay" and o["status"] in ("pending_payment", "partially_paid"):
        outstanding = o["amount"] - o["paid"]
        amount = (
            outstanding
            if step[2] or outstanding < Decimal("0.02")
            else (outstanding / 2).quantize(Decimal("0.01"))
        )
        to = "paid" if amount == outstanding else "partially_paid"
        tx_id = await _bank_line(session, amount)
        await repository.apply_allocations(
            session,
            [
                repository.Allocation(
                    bank_transaction_id=tx_id,
                    order_id=o["id"],
                    amount=amount,
                    from_status=o["status"],
                    to_status=to,
                    paid_at=datetime(2024, 3, 5, 2, tzinfo=UTC) if to == "paid" else None,
                )
            ],
            source="review",
            actor_sub="test",
        )
        o["paid"] += amount
        o["status"] = to
    elif kind == "pay_sql" and o["status"] in ("pending_payment", "partially_paid"):
        # any other writer of `orders` (set-based, several rows at once)
        await session.execute(
            text(
                "UPDATE orders SET status = 'paid', paid_amount = amount, "
                "paid_at = '2024-08-31T17:00:00Z', updated_at = now() "
                "WHERE id = ANY(:ids) AND status IN ('pending_payment', 'partially_paid')"
            ),
            {"ids": [o["id"]]},
        )
        o["paid"], o["status"] = o["amount"], "paid"
    elif kind == "complete":
        await service.complete_order(
            session, PLATFORM, f"PROP{model.orders.index(o)}",
            datetime(2024, step[2], 15, tzinfo=UTC),
        )  # fmt: skip
        if o["status"] != "cancelled":
            o["completed"] = True
    elif kind == "cancel":
        try:
            async with session.begin_nested():
                await service.cancel_order(session, PLATFORM, f"PROP{model.orders.index(o)}", None)
            o["status"] = "cancelled"
        except Conflict:
            pass


async def _run(steps: list[tuple]) -> None:
    engine = create_async_engine(get_settings().database_url)
    try:
        maker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        async with maker() as session:
            await session.execute(text(TRUNCATE_SQL))
            session.add_all(
                [
                    PairedCounty(
                        province="广西壮族自治区", prefecture="河池市", county="罗城仫佬族自治县",
                        paired_guangdong_city="深圳市", national_key_assistance_county=True,
                    ),
                    PairedCounty(
                        province="贵州省", prefecture="黔东南州", county="黎平县",
                        paired_guangdong_city="佛山市", national_key_assistance_county=False,
                    ),
                ]
            )  # fmt: skip
            units = [await make_unit(session), await make_unit(session)]
            supplier, _ = await make_supplier(session)
            await session.commit()
            model = Model()
            model.supplier_id = supplier.id  # type: ignore[attr-defined]
            unit_ids = [u.id for u in units]
            for step in steps:
                try:
                    await _apply(session, model, unit_ids, step)
                    await session.commit()
                except Conflict:
                    await session.rollback()
            report = await progress.check_drift(session)
            assert report["drift_rows"] == 0, report
            rows = await session.execute(
                text(
                    "SELECT unit_id, unit_amount, contractor_amount, personal_amount, "
                    "union_amount FROM progress_unit_totals WHERE year = 2024"
                )
            )
            got = {r.unit_id: dict(zip(CHANNELS, r[1:], strict=True)) for r in rows if any(r[1:])}
            await session.commit()
            assert got == model.expected()
    finally:
        await engine.dispose()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(op, min_size=1, max_size=30))
def test_counters_equal_a_recomputation_after_any_sequence(steps: list[tuple]) -> None:
    asyncio.run(_run(steps))


async def test_drift_is_reported_and_a_rebuild_repairs_it(session: AsyncSession) -> None:
    from tests.factories import make_order

    unit = await make_unit(session)
    supplier, account = await make_supplier(session)
    order = await make_order(
        session, buyer=unit, supplier=supplier, settlement=account, amount="12.00",
        payment_code="dr0001",
    )  # fmt: skip
    await session.execute(
        text(
            "UPDATE orders SET status = 'paid', paid_amount = amount, "
            "paid_at = '2024-02-02T00:00:00Z', completed_at = '2024-02-03T00:00:00Z' "
            "WHERE id = :id"
        ),
        {"id": order.id},
    )
    await session.commit()
    assert (await progress.check_drift(session))["drift_rows"] == 0
    await session.execute(text("UPDATE progress_counters SET amount = amount + 1"))
    report = await progress.check_drift(session)
    assert report["counter_rows"] == 1 and report["total_rows"] == 1
    assert report["examples"][0]["expected_amount"] == "12.00"
    await progress_repository.rebuild(session)
    report = await progress.check_drift(session)
    assert report["drift_rows"] == 0
    await session.commit()


def test_the_drift_check_is_a_nightly_beat_task() -> None:
    from services.confirmation import progress_tasks
    from shared.celery_app import TASK_MODULES, celery_app

    assert progress_tasks.__name__ in TASK_MODULES

    entry = celery_app.conf.beat_schedule["progress-check-drift"]
    assert entry["task"] == "progress.check_drift"
    assert "progress.check_drift" in celery_app.tasks
