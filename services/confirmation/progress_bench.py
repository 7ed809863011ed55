"""Progress benchmark (not a test): `python -m services.confirmation.progress_bench`, or
`make bench-progress` (UNITS=60000 ORDERS=10000000 COMPLETIONS=100000 by default).

It runs in a database of its own, `bench_progress`, on the PostgreSQL server of DATABASE_URL,
**dropped and created anew at every run**, then migrated to head. Refuses ENVIRONMENT=production.

1. COPY a province: 1 provincial and 20 city finance departments, UNITS budget units in
   departments of 100 (a supervising unit and 99 subordinates), one submitted filing each;
2. COPY ORDERS paid and completed orders spread over the year and the units (all channels,
   a tenth from priority areas), with the counting trigger off, then build the counters with the
   nightly recomputation (timed) and run the drift check (timed, must find nothing);
3. reads through the confirmation app (ASGI, auth and serialisation included): p50/p95 of a
   unit view, the province grouped by department, and grouped by unit (first page by
   completion);
4. COMPLETIONS completions through the real path (`services.payments.service.complete_order`,
   one transaction each: lock, update, timeline event, audit) with the counters' trigger, and
   as many with the trigger disabled, in alternating blocks; the drift check at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

REPO = Path(__file__).resolve().parents[2]
BENCH_DATABASE = "bench_progress"
YEAR = 2025
UNITS_PER_DEPARTMENT = 100
CITY_FDS = 20
CHUNK = 250_000
ORIGINS = [  # a tenth from priority areas
    "罗城仫佬族自治县", "黔东南州黎平县", "新疆喀什地区疏附县", "西藏林芝市巴宜区",
    "广西壮族自治区百色市田阳县", *[f"广东省某市县{i}" for i in range(45)],
]  # fmt: skip
CHANNELS = ["unit"] * 6 + ["contractor"] * 2 + ["personal", "union"]


def say(msg: str) -> None:
    print(f"[bench-progress {time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def fresh_database(url: str) -> str:
    target = make_url(url).set(database=BENCH_DATABASE)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    finally:
        await admin.dispose()
    return target.render_as_string(hide_password=False)


async def driver(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    return raw.driver_connection


def reserved_of(unit_index: int) -> Decimal:
    return Decimal(50_000 + (unit_index * 7919) % 1_950_000)


async def load(url: str, units: int, orders: int, completions: int) -> dict[str, Any]:
    from shared.seed import seed_reference_data

    engine = create_async_engine(url)
    timings: dict[str, Any] = {}
    async with engine.begin() as conn:
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(bind=conn) as session:
            await seed_reference_data(session)
            await session.flush()
        cities = [
            r[0]
            for r in await conn.execute(
                text("SELECT code FROM regions WHERE parent_code = '440000' ORDER BY code")
            )
        ][:CITY_FDS]
        d = await driver(conn)
        now = datetime.now(UTC)
        fds = [(1, "GD-CZT", "广东省财政厅", None, "440000", "/1/")] + [
            (i + 2, f"FD-{code}", f"市财政局{code}", 1, code, f"/1/{i + 2}/")
            for i, code in enumerate(cities)
        ]
        await d.copy_records_to_table(
            "org_units",
            records=[(*f, "finance_department", None, "active", now) for f in fds],
            columns=("id", "code", "name", "parent_id", "region_code", "path", "kind",
                     "finance_department_id", "status", "updated_at"),
        )  # fmt: skip
        first = len(fds) + 1

        def unit_rows() -> Iterator[tuple[Any, ...]]:
            for i in range(units):
                uid = first + i
                dept = i // UNITS_PER_DEPARTMENT
                top = first + dept * UNITS_PER_DEPARTMENT
                fd = fds[dept % len(fds)]
                parent = None if uid == top else top
                path = f"/{uid}/" if parent is None else f"/{top}/{uid}/"
                yield (uid, f"U{uid:07d}", f"单位{uid}", parent, fd[4], path, "budget_unit",
                       fd[0], "active", now)  # fmt: skip

        await d.copy_records_to_table(
            "org_units",
            records=unit_rows(),
            columns=("id", "code", "name", "parent_id", "region_code", "path", "kind",
                     "finance_department_id", "status", "updated_at"),
        )  # fmt: skip
        await d.copy_records_to_table(
            "filings",
            records=(
                (first + i, first + i, YEAR, "submitted", "submitted", "submitted", "own", [],
                 1, 1, reserved_of(i), now, now)
                for i in range(units)
            ),
            columns=("id", "unit_id", "year", "status", "canteen_status", "union_status",
                     "canteen_type", "flags", "version", "lock_version", "reserved_amount",
                     "submitted_at", "updated_at"),
        )  # fmt: skip
        await d.copy_records_to_table(
            "filing_versions",
            records=(
                (first + i, first + i, 1,
                 json.dumps({"reserved_amount": f"{reserved_of(i):.2f}",
                             "union_expected_amount": f"{reserved_of(i) / 5:.2f}"}),
                 "bench", now)
                for i in range(units)
            ),
            columns=("id", "filing_id", "version_no", "snapshot", "submitted_by",
                     "submitted_at"),
        )  # fmt: skip
        await d.copy_records_to_table(
            "suppliers", records=[(s + 1, f"供应商{s}") for s in range(100)], columns=("id", "name")
        )
        await d.copy_records_to_table(
            "supplier_accounts",
            records=[
                (s + 1, s + 1, f"供应商{s}", f"6100{s:013d}", "银行", True) for s in range(100)
            ],
            columns=("id", "supplier_id", "holder_name", "account_no", "bank_name",
                     "is_settlement"),
        )  # fmt: skip

    columns = ("id", "order_no", "buyer_unit_id", "purchase_channel", "supplier_id",
               "settlement_account_id", "amount", "paid_amount", "status", "payment_code",
               "payment_code_legacy", "placed_at", "origin_county", "paid_at", "completed_at",
               "updated_at")  # fmt: skip
    t0 = time.perf_counter()
    total = orders + 2 * completions
    for lo in range(0, total, CHUNK):
        hi = min(lo + CHUNK, total)
        async with engine.begin() as conn:
            # bulk load: no per-row foreign-key checks, no triggers (the counters are then built
            # by the nightly recomputation, timed below)
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            d = await driver(conn)
            await d.copy_to_table(
                "orders",
                source=order_lines(lo, hi, units, orders, first, now),
                columns=columns,
                format="text",
            )
        if (lo // CHUNK) % 8 == 0:
            say(f"  orders {hi:,}/{total:,}")
    timings["copy_orders_s"] = time.perf_counter() - t0
    async with engine.begin() as conn:
        await conn.execute(text("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))"))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    timings["first_unit"] = first
    return timings


HOURS = [
    (datetime(YEAR, 1, 1, tzinfo=UTC) - timedelta(hours=8) + timedelta(hours=h)).isoformat()
    for h in range(365 * 24 - 2)
]


async def order_lines(
    lo: int, hi: int, units: int, orders: int, first: int, now: datetime
) -> AsyncIterator[bytes]:
    """Text-format COPY lines of orders lo..hi-1: the first `orders` are paid and completed,
    spread over the year and the units (amounts around reserved / orders per unit, ×0.2–×1.8);
    the others are paid and not yet completed (the completion phase)."""
    per_unit = max(orders // units, 1)
    reserved_cents = [int(reserved_of(u)) * 100 for u in range(units)]
    stamp = now.isoformat()
    batch: list[str] = []
    for i in range(lo, hi):
        u = (i * 7) % units
        cents = max(reserved_cents[u] // per_unit * (20 + (i * 37) % 160) // 100, 100)
        amount = f"{cents // 100}.{cents % 100:02d}"
        h = 48 + (i * 104_729) % (len(HOURS) - 50)
        completed = HOURS[h + 1] if i < orders else "\\N"
        batch.append(
            f"{i + 1}\tB{i:014d}\t{first + u}\t{CHANNELS[i % len(CHANNELS)]}\t{i % 100 + 1}\t"
            f"{i % 100 + 1}\t{amount}\t{amount}\tpaid\t{i % 999_999:06d}\tf\t{HOURS[h - 48]}\t"
            f"{ORIGINS[i % len(ORIGINS)]}\t{HOURS[h]}\t{completed}\t{stamp}\n"
        )
        if len(batch) == 10_000:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


async def timed(label: str, action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = await action()
    elapsed = time.perf_counter() - t0
    say(f"{label}: {elapsed:.1f} s")
    return elapsed, result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def reads(first: int, units: int, n: int) -> dict[str, tuple[float, float]]:
    from services.confirmation.app import create_app
    from shared.auth import Role, mint_token

    app = create_app()
    headers = {"Authorization": f"Bearer {mint_token(Role.OPS)}"}
    headers_fd = {"Authorization": f"Bearer {mint_token(Role.FINANCE, 1)}"}
    out: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as client:
        cases: dict[str, Callable[[int], Awaitable[httpx.Response]]] = {
            "unit view": lambda i: client.get(
                f"/api/v1/progress/{YEAR}/units/{first + (i * 7919) % units}", headers=headers
            ),
            "province by department": lambda i: client.get(
                f"/api/v1/progress/{YEAR}/finance/1",
                params={"group_by": "department", "sort": "completion_pct"},
                headers=headers_fd,
            ),
            "province by unit, page 1": lambda i: client.get(
                f"/api/v1/progress/{YEAR}/finance/1",
                params={"group_by": "unit", "sort": "completion_pct", "limit": 50},
                headers=headers_fd,
            ),
        }
        for label, call in cases.items():
            for i in range(3):  # warm-up
                assert (await call(i)).status_code == 200
            samples = []
            for i in range(n):
                t0 = time.perf_counter()
                response = await call(i)
                samples.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.text
            out[label] = (statistics.median(samples), pct(samples, 0.95))
            say(f"{label}: p50 {out[label][0]:.1f} ms, p95 {out[label][1]:.1f} ms")
    return out


async def completions(orders: int, count: int, block: int, workers: int) -> dict[str, float]:
    """`count` completions with the counters' trigger and `count` without, alternating blocks;
    `workers` concurrent clients, one transaction per completion."""
    from services.payments import service
    from shared.auth import Principal, Role
    from shared.db import get_engine, unit_of_work

    platform = Principal("platform:bench", Role.PLATFORM)
    spent = {"with": 0.0, "without": 0.0}
    done = {"with": 0, "without": 0}
    next_no = orders
    moment = datetime(YEAR, 12, 20, tzinfo=UTC)

    async def worker(numbers: list[int]) -> None:
        for no in numbers:
            async with unit_of_work() as session:
                await service.complete_order(session, platform, f"B{no:014d}", moment)

    while done["with"] < count or done["without"] < count:
        for mode in ("with", "without"):
            n = min(block, count - done[mode])
            if n <= 0:
                continue
            async with get_engine().begin() as conn:
                action = "ENABLE" if mode == "with" else "DISABLE"
                await conn.execute(
                    text(f"ALTER TABLE orders {action} TRIGGER orders_progress_update")
                )
            numbers = list(range(next_no, next_no + n))
            next_no += n
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(numbers[w::workers]) for w in range(workers)))
            spent[mode] += time.perf_counter() - t0
            done[mode] += n
        say(f"  completions: {done['with']:,} with counters, {done['without']:,} without")
    async with get_engine().begin() as conn:
        await conn.execute(text("ALTER TABLE orders ENABLE TRIGGER orders_progress_update"))
    return spent


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from services.confirmation import progress, progress_repository
    from shared.db import dispose_engine, unit_of_work

    results: dict[str, Any] = {}
    if args.reuse:  # the data of a previous run that stopped after loading
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            results["first_unit"] = await conn.scalar(
                text("SELECT min(id) FROM org_units WHERE kind = 'budget_unit'")
            )
        await engine.dispose()
        results["copy_orders_s"] = float("nan")
    else:
        say(f"loading {args.units:,} units and {args.orders:,} orders")
        results.update(await load(url, args.units, args.orders, args.completions))

    async def rebuild() -> None:
        async with unit_of_work() as session:
            await progress_repository.rebuild(session)

    async def drift() -> dict[str, Any]:
        async with unit_of_work() as session:
            return await progress.check_drift(session)

    if args.only_reads:
        results["reads"] = await reads(results["first_unit"], args.units, args.reads)
        await dispose_engine()
        return results
    results["rebuild_s"], _ = await timed("counters recomputed from the orders", rebuild)
    results["drift_s"], report = await timed("drift check", drift)
    results["drift_after_load"] = report["drift_rows"]
    results["reads"] = await reads(results["first_unit"], args.units, args.reads)
    spent = await completions(args.orders, args.completions, args.block, args.workers)
    results["completions"] = spent
    # the completions made without the trigger are missing from the counters: the drift check
    # must see exactly those, and a rebuild must repair them
    _, report = await timed("drift check after the completions", drift)
    results["drift_rows_seen_after_untracked_completions"] = report["counter_rows"]
    async with unit_of_work() as session:
        results["counter_rows"] = await session.scalar(
            text("SELECT count(*) FROM progress_counters")
        )
    await dispose_engine()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.confirmation.progress_bench")
    parser.add_argument("--units", type=int, default=60_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--completions", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200, help="requests per read case")
    parser.add_argument("--block", type=int, default=5_000, help="completions per block")
    parser.add_argument("--workers", type=int, default=4, help="concurrent completion clients")
    parser.add_argument(
        "--only-reads", action="store_true", help="with --reuse: only the read latencies"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the loaded bench_progress database of a run that stopped after loading",
    )
    args = parser.parse_args(argv)
    from shared.settings import get_settings

    settings = get_settings()
    if settings.environment == "production":
        print("refusing to run: the benchmark drops its database (ENVIRONMENT=production)")
        return 2
    if args.reuse:
        bench_url = make_url(settings.database_url).set(database=BENCH_DATABASE)
        url = bench_url.render_as_string(hide_password=False)
    else:
        url = asyncio.run(fresh_database(settings.database_url))
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO,
            check=True,
            env={**os.environ, "DATABASE_URL": url},
        )
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    r = asyncio.run(run(url, args))
    if args.only_reads:
        for label, (p50, p95) in r["reads"].items():
            print(f"  {label:<28}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (target p95 < 100 ms)")
        return 0
    c = r["completions"]
    print()
    print(
        f"progress benchmark: {args.units:,} units, {args.orders:,} paid+completed orders, "
        f"{r['counter_rows']:,} counter rows ({os.cpu_count()} cores)"
    )
    print(f"  COPY of the orders          : {r['copy_orders_s']:.0f} s")
    print(f"  recomputation (rebuild)     : {r['rebuild_s']:.1f} s")
    print(f"  drift check (nightly)       : {r['drift_s']:.1f} s, drift {r['drift_after_load']}")
    for label, (p50, p95) in r["reads"].items():
        print(f"  {label:<28}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (target p95 < 100 ms)")
    per_with = c["with"] / args.completions * 1000
    per_without = c["without"] / args.completions * 1000
    print(
        f"  {args.completions:,} completions (real path, {args.workers} clients): "
        f"with counters {c['with']:.1f} s "
        f"({per_with:.2f} ms each), without {c['without']:.1f} s ({per_without:.2f} ms each): "
        f"+{(c['with'] / c['without'] - 1) * 100:.1f} % (target < 20 %)"
    )
    print(
        "  drift check after the untracked completions: "
        f"{r['drift_rows_seen_after_untracked_completions']} counter rows (expected > 0: the "
        "completions made without the trigger)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
