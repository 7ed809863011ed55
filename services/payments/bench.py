"""Matching benchmark (not a test): `python -m services.payments.bench --n N`, or
`make bench-match N=...` (which runs it against the embedded PostgreSQL and Redis).

It runs in a database of its own, `bench`, on the PostgreSQL server of DATABASE_URL (with
`make bench-match` that is the embedded server), which it **drops and creates anew at every
run** (then migrates it to head), and in a copy of it, `bench_floor`, which it drops at the end.
It refuses to run when ENVIRONMENT=production.

Steps:

1. migrate to head; truncate the payments tables; COPY N/100 suppliers with settlement accounts
   and N open orders with fresh payment codes;
2. write an N-line `generic_cn` CSV (GBK) paying each order once: 80 % of the remarks are the
   bare code, 20 % are messy (upper case inside Chinese text, full-width, split by a space);
3. **system run**: start 2 real Celery workers (`-Q matching`), run the real import command as a
   subprocess (`python -m services.payments.statements import FILE`, which enqueues matching
   after each committed batch), and wait until no line is pending; measure lines/s from the
   import's start to the last match, and the import process's peak RSS;
4. **baseline** on the same PostgreSQL: COPY the same CSV into an unlogged table, one
   INSERT ... SELECT join (remark = code, account, amount) into a scratch allocations table and
   one UPDATE of a scratch copy of the orders;
5. **ledger floor**, in a copy of the database taken before the system run (`bench_floor`,
   dropped after): the baseline's SQL on the ledger's own tables (`bank_transactions`,
   `payment_allocations`, `orders`: logged, with every index, reference check and trigger), one
   connection, no Python on the lines; what the ledger's guarantees alone cost on one core;
6. print the rates, the ratio (system / baseline; the target), the floor's own ratio, the peak
   memory and the CPU by parts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from services.payments import codes
from services.payments.parsers.generate import write_bank_csv
from shared.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
PAYMENTS_TABLES = (
    "payment_vouchers",
    "payment_confirmation_entries",
    "review_cases",
    "payment_allocations",
    "payment_confirmations",
    "order_events",
    "match_work",
    "bank_transactions",
    "statements",
    "open_payment_codes",
    "orders",
    "supplier_accounts",
    "suppliers",
)
BENCH_UNIT_CODE = "BENCH-UNIT"
WORKERS = 2
ORDERS_PER_SUPPLIER = 100
FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyz0123456789"}


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def unique_codes(n: int, rng: random.Random) -> list[str]:
    """n distinct generated codes (check character included)."""
    seen: set[str] = set()
    out: list[str] = []
    alphabet = codes.ALPHABET
    while len(out) < n:
        body = "".join(rng.choices(alphabet, k=5))
        code = body + codes.check_symbol(body)
        if code not in seen:
            seen.add(code)
            out.append(code)
    return out


def account_of(supplier_index: int) -> str:
    return f"6100{supplier_index:013d}"


def amount_of(i: int) -> Decimal:
    return Decimal(100 + (i * 37) % 99_900) + Decimal(i % 100) / 100


def messy(code: str, i: int) -> str:
    kind = i % 15
    if kind == 0:
        return f"付农产品货款{code.upper()}谢谢"
    if kind == 1:
        return "货款" + "".join(FULL_WIDTH[c] for c in code)
    return f"{code[:3]} {code[3:]}"


def bank_rows(order_codes: list[str]) -> Iterator[tuple[Any, ...]]:
    start = datetime(2024, 4, 1, 8, 0, 0)
    for i, code in enumerate(order_codes):
        remark = code if i % 5 else messy(code, i // 5)
        yield (
            f"B{i:015d}",
            start + timedelta(seconds=i),
            account_of(i // ORDERS_PER_SUPPLIER),
            f"采购单位{i % 977}",
            f"62220200{i:011d}",
            "中国工商银行广州分行",
            amount_of(i),
            remark,
            "online",
        )


async def driver(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def prepare(url: str, n: int, csv_path: Path) -> list[str]:
    rng = random.Random(832)
    engine = create_async_engine(url)
    say(f"generating {n} orders")
    order_codes = unique_codes(n, rng)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(PAYMENTS_TABLES)} RESTART IDENTITY CASCADE"))
        await conn.execute(
            text(
                "INSERT INTO regions (code, name, parent_code, level) "
                "VALUES ('000000', '全国', NULL, 0) ON CONFLICT DO NOTHING"
            )
        )
        unit_id = (
            await conn.execute(
                text("SELECT id FROM org_units WHERE code = :c"), {"c": BENCH_UNIT_CODE}
            )
        ).scalar()
        if unit_id is None:
            unit_id = (
                await conn.execute(
                    text(
                        "INSERT INTO org_units (code, name, kind, region_code, path, status) "
                        "VALUES (:c, '基准测试单位', 'budget_unit', '000000', '/', 'active') "
                        "RETURNING id"
                    ),
                    {"c": BENCH_UNIT_CODE},
                )
            ).scalar_one()
        suppliers = (n + ORDERS_PER_SUPPLIER - 1) // ORDERS_PER_SUPPLIER
        d = await driver(conn)
        await d.copy_records_to_table(
            "suppliers",
            records=((s + 1, f"供应商{s}") for s in range(suppliers)),
            columns=("id", "name"),
        )
        await d.copy_records_to_table(
            "supplier_accounts",
            records=(
                (s + 1, s + 1, f"供应商{s}", account_of(s), "中国光大银行", True)
                for s in range(suppliers)
            ),
            columns=(
                "id",
                "supplier_id",
                "holder_name",
                "account_no",
                "bank_name",
                "is_settlement",
            ),
        )
        placed = datetime(2024, 3, 1, tzinfo=UTC)
        await d.copy_records_to_table(
            "orders",
            records=(
                (
                    i + 1,
                    f"XD{i:018d}",
                    unit_id,
                    "unit",
                    i // ORDERS_PER_SUPPLIER + 1,
                    i // ORDERS_PER_SUPPLIER + 1,
                    amount_of(i),
                    Decimal(0),
                    "pending_payment",
                    code,
                    False,
                    placed,
                )
                for i, code in enumerate(order_codes)
            ),
            columns=(
                "id",
                "order_no",
                "buyer_unit_id",
                "purchase_channel",
                "supplier_id",
                "settlement_account_id",
                "amount",
                "paid_amount",
                "status",
                "payment_code",
                "payment_code_legacy",
                "placed_at",
            ),
        )
        for table in ("suppliers", "supplier_accounts", "orders"):
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            )
        await conn.execute(
            text("DROP TABLE IF EXISTS bench_orders, bench_lines, bench_allocations")
        )
        await conn.execute(
            text(
                "CREATE UNLOGGED TABLE bench_orders AS "
                "SELECT o.id, o.payment_code, sa.account_no, o.amount, o.paid_amount, "
                "o.status::text AS status FROM orders o "
                "JOIN supplier_accounts sa ON sa.id = o.settlement_account_id"
            )
        )
        await conn.execute(text("ALTER TABLE bench_orders ADD PRIMARY KEY (id)"))
        await conn.execute(text("CREATE INDEX ON bench_orders (payment_code)"))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE orders"))
        await conn.execute(text("VACUUM ANALYZE supplier_accounts"))
    await engine.dispose()
    say(f"writing {n} bank lines to {csv_path.name} (GBK, generic_cn)")
    write_bank_csv(csv_path, bank_rows(order_codes), encoding="gbk")
    return order_codes


BENCH_DATABASE = "bench"


async def bench_database_url(url: str, *, fresh: bool = False) -> str:
    """The `bench` database on the server of `url`: created if missing, or dropped and created
    anew with `fresh` (every run starts from the current migrations, not from a schema an older
    checkout left behind)."""
    target = make_url(url).set(database=BENCH_DATABASE)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            if fresh:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" (FORCE)'))
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DATABASE}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    finally:
        await admin.dispose()
    return target.render_as_string(hide_password=False)


class PeakRss:
    """Poll a process's resident set size (and its children's) every 50 ms; keep its CPU time."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.process.memory_info().rss
                rss += sum(c.memory_info().rss for c in self.process.children(recursive=True))
                cpu = self.process.cpu_times()
                self.cpu_seconds = cpu.user + cpu.system
            except psutil.Error:
                break
            self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def start_workers(env: dict[str, str], logdir: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for k in range(WORKERS):
        log = open(logdir / f"worker{k}.log", "wb")  # noqa: SIM115 - lives as long as the worker
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "shared.celery_app:celery_app",
                    "worker",
                    "-Q",
                    "matching",
                    "-c",
                    "1",
                    "-P",
                    "solo",
                    "-n",
                    f"bench{k}-{os.getpid()}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


def wait_workers_ready(count: int, timeout: float = 120.0) -> None:
    """Wait until `count` workers answer a ping: the run measures matching by long-running
    workers, not their start-up."""
    from shared.celery_app import celery_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(celery_app.control.ping(timeout=0.5) or []) >= count:
            return
    raise SystemExit(f"the {count} Celery workers did not start within {timeout:.0f} s")


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> float:
    """Stop the workers; returns the CPU seconds they used."""
    cpu = 0.0
    for w in workers:
        try:
            times = psutil.Process(w.pid).cpu_times()
            cpu += times.user + times.system
        except psutil.Error:
            pass
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()
    return cpu


async def scalar(url: str, sql: str) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def outcome_counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT outcome, count(*) FROM bank_transactions GROUP BY outcome")
            )
            return {str(r[0]): int(r[1]) for r in rows}
    finally:
        await engine.dispose()


async def wait_matched(url: str) -> None:
    """Poll until the matcher's work list is empty (a batch removes its work in the transaction
    that records its outcomes). Called after the import ended."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        while True:
            async with engine.connect() as conn:
                # min() walks the primary key from its low end: no scan of the dead rows
                # of the work list (a count(*) every 0.1 s would load the server it measures)
                first = (await conn.execute(text("SELECT min(id) FROM match_work"))).scalar_one()
            if first is None:
                return
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


def purge_matching_queue() -> None:
    from shared.celery_app import QUEUE_MATCHING, celery_app

    with celery_app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        channel.queue_purge(QUEUE_MATCHING)


def enqueue(times: int) -> None:
    from services.payments.tasks import match_pending

    for _ in range(times):
        match_pending.apply_async()


def postgres_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server of `url` (postmaster, its live processes
    and the ones that exited), when it runs on this machine; else 0."""
    try:
        data_dir = asyncio.run(scalar(url, "SHOW data_directory"))
        pid = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        t = postmaster.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in postmaster.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total
    except (OSError, ValueError, psutil.Error):
        return 0.0


def system_run(url: str, n: int, csv_path: Path, logdir: Path) -> tuple[float, int, dict[str, Any]]:
    env = {**os.environ, "DATABASE_URL": url}
    env.setdefault("PYTHONUNBUFFERED", "1")
    purge_matching_queue()
    workers = start_workers(env, logdir)
    try:
        wait_workers_ready(WORKERS)
        workers_start_cpu = sum(sum(psutil.Process(w.pid).cpu_times()[:2]) for w in workers)
        say(f"system run: {WORKERS} Celery workers ready; import command as a subprocess")
        pg_cpu_start = postgres_cpu(url)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.payments.statements", "import", str(csv_path)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        meter = PeakRss(proc.pid)
        out, err = proc.communicate()
        peak = meter.stop()
        t_import = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"import failed ({proc.returncode}): {out.decode()} {err.decode()}")
        say(f"import finished in {t_import:.1f} s: {out.decode().strip()}")
        enqueue(WORKERS)  # one drain per worker for the tail
        asyncio.run(wait_matched(url))
        elapsed = time.perf_counter() - t0
        pg_cpu = postgres_cpu(url) - pg_cpu_start
        pending = asyncio.run(
            scalar(url, "SELECT count(*) FROM bank_transactions WHERE outcome = 'pending'")
        )
        if pending:
            raise SystemExit(f"{pending} lines still pending with an empty work list")
    finally:
        workers_cpu = stop_workers(workers)
    counts = asyncio.run(outcome_counts(url))
    return (
        elapsed,
        peak,
        {
            "import_seconds": t_import,
            "import_cpu": meter.cpu_seconds,
            "workers_cpu": workers_cpu - workers_start_cpu,
            "postgres_cpu": pg_cpu,
            "outcomes": counts,
        },
    )


async def baseline(url: str, csv_path: Path) -> tuple[float, int]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE bench_orders SET paid_amount = 0"))
            await conn.execute(
                text(
                    "CREATE UNLOGGED TABLE bench_lines (bank_ref text, booked_at timestamp, "
                    "account_no text, payer_name text, payer_account text, payer_bank text, "
                    "amount numeric(16,2), remark text, channel text)"
                )
            )
            await conn.execute(
                text(
                    "CREATE UNLOGGED TABLE bench_allocations (bank_ref text, order_id bigint, "
                    "amount numeric(16,2))"
                )
            )
        async with engine.begin() as conn:
            t0 = time.perf_counter()
            d = await driver(conn)
            await d.copy_to_table(
                "bench_lines", source=str(csv_path), format="csv", header=True, encoding="GBK"
            )
            inserted = await conn.execute(
                text(
                    "INSERT INTO bench_allocations (bank_ref, order_id, amount) "
                    "SELECT l.bank_ref, o.id, l.amount FROM bench_lines l "
                    "JOIN bench_orders o ON o.payment_code = l.remark "
                    "AND o.account_no = l.account_no AND o.amount = l.amount"
                )
            )
            await conn.execute(
                text(
                    "UPDATE bench_orders o SET paid_amount = o.paid_amount + a.amount, "
                    "status = CASE WHEN o.paid_amount + a.amount = o.amount THEN 'paid' "
                    "ELSE 'partially_paid' END "
                    "FROM bench_allocations a WHERE a.order_id = o.id"
                )
            )
            elapsed = time.perf_counter() - t0
        return elapsed, int(inserted.rowcount)
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("DROP TABLE IF EXISTS bench_lines, bench_allocations, bench_orders")
            )
        await engine.dispose()


FLOOR_DATABASE = "bench_floor"

# The ledger floor: the baseline's raw SQL (COPY, one join, one update) writing the ledger's own
# tables instead of unlogged scratch ones: lines stored in `bank_transactions` with their statement
# and dedupe key, one `payment_allocations` row per matched line, the orders updated, the lines'
# outcomes recorded; WAL-logged, with every index, reference check and trigger of those tables.
# One connection, one transaction, no Python on the lines, no messy remark handled: what the
# ledger's guarantees alone cost on one core, for the same 80 % of the lines the baseline matches.
_FLOOR_STEPS = (
    "INSERT INTO statements (filename, format, sha256, status, lines_total, lines_new, "
    "lines_duplicate, lines_ignored, imported_by) "
    "VALUES ('floor.csv', 'csv', 'floor', 'imported', 0, 0, 0, 0, 'bench:floor')",
    "INSERT INTO bank_transactions (statement_id, dedupe_key, bank_ref, account_no, direction, "
    "amount, currency, booked_at, payer_name, payer_account, payer_bank, remark, channel, outcome) "
    "SELECT currval(pg_get_serial_sequence('statements', 'id')), "
    "'ref:' || account_no || ':' || bank_ref || ':C:' || amount || ':' || booked_at::date, "
    "bank_ref, account_no, 'credit', amount, 'CNY', booked_at AT TIME ZONE 'Asia/Shanghai', "
    "payer_name, payer_account, payer_bank, remark, channel, 'pending' FROM bench_lines",
    "INSERT INTO payment_allocations (bank_transaction_id, order_id, amount, source, actor_sub) "
    "SELECT t.id, o.id, t.amount, 'auto', 'system:matcher' FROM bank_transactions t "
    "JOIN orders o ON o.payment_code = t.remark "
    "AND o.status IN ('pending_payment', 'partially_paid') "
    "JOIN supplier_accounts sa ON sa.id = o.settlement_account_id "
    "AND sa.account_no = t.account_no "
    "WHERE t.outcome = 'pending' AND t.amount <= o.amount - o.paid_amount",
    "UPDATE orders o SET paid_amount = o.paid_amount + a.amount, "
    "status = CASE WHEN o.paid_amount + a.amount = o.amount THEN 'paid' "
    "ELSE 'partially_paid' END, paid_at = now(), updated_at = now() "
    "FROM payment_allocations a WHERE a.order_id = o.id",
    "UPDATE bank_transactions t SET outcome = 'matched', processed_at = now() "
    "FROM payment_allocations a WHERE a.bank_transaction_id = t.id",
)


async def copy_database(url: str, name: str) -> str:
    """A copy of the database of `url` (no one connected to it) as `name`, dropped first if it
    exists; FILE_COPY where the server has it (15 and later): a checkpoint and a file copy
    instead of WAL-logging every block of the copy."""
    source = make_url(url).database
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            version = int((await conn.execute(text("SHOW server_version_num"))).scalar_one())
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" (FORCE)'))
            strategy = " STRATEGY = FILE_COPY" if version >= 150000 else ""
            await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"{strategy}'))
    finally:
        await admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, name: str) -> None:
    """Drop the database `name` through the server of `url` (another database)."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" (FORCE)'))
    finally:
        await admin.dispose()


def backend_cpu(pid: int) -> float:
    """CPU seconds of one server backend when the server runs on this machine; else 0."""
    try:
        process = psutil.Process(pid)
        if not process.name().startswith("postgres"):
            return 0.0
        t = process.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


async def ledger_floor(url: str, csv_path: Path) -> tuple[float, float, int]:
    """The ledger floor (`_FLOOR_STEPS`) in the untouched copy of the prepared database: (seconds,
    CPU seconds of its server backend when local, allocations). It starts once no autovacuum
    worker runs (the system run leaves the `bench` database's tables to vacuum), so that it
    does not share the cores with them."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE UNLOGGED TABLE bench_lines (bank_ref text, booked_at timestamp, "
                    "account_no text, payer_name text, payer_account text, payer_bank text, "
                    "amount numeric(16,2), remark text, channel text)"
                )
            )
        async with engine.connect() as conn:
            await conn.commit()
            for _ in range(240):
                busy = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE backend_type = 'autovacuum worker'"
                        )
                    )
                ).scalar_one()
                await conn.commit()
                if not busy:
                    break
                await asyncio.sleep(0.5)
            pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            await conn.commit()
            cpu0 = backend_cpu(pid)
            t0 = time.perf_counter()
            async with conn.begin():
                # SQLAlchemy sends BEGIN with its first statement: one first, so that the COPY
                # sent to asyncpg directly is inside the transaction too
                await conn.execute(text("SELECT 1"))
                d = await driver(conn)
                await d.copy_to_table(
                    "bench_lines", source=str(csv_path), format="csv", header=True, encoding="GBK"
                )
                for step in _FLOOR_STEPS:
                    await conn.execute(text(step))
            elapsed = time.perf_counter() - t0
            cpu = backend_cpu(pid) - cpu0
            allocations = (
                await conn.execute(text("SELECT count(*) FROM payment_allocations"))
            ).scalar_one()
        return elapsed, cpu, int(allocations)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.payments.bench")
    parser.add_argument("--n", type=int, default=1_000_000, help="orders and bank lines")
    args = parser.parse_args(argv)
    settings = get_settings()
    if settings.environment == "production":
        print("refusing to run: the benchmark wipes payments data (ENVIRONMENT=production)")
        return 2
    url = asyncio.run(bench_database_url(settings.database_url, fresh=True))
    n = args.n
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        check=True,
        env={**os.environ, "DATABASE_URL": url},
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-match-"))
    floor_url = None
    try:
        csv_path = workdir / "statement.csv"
        asyncio.run(prepare(url, n, csv_path))
        size_mb = csv_path.stat().st_size / 2**20
        say(f"CSV ready: {size_mb:.1f} MB")
        floor_url = asyncio.run(copy_database(url, FLOOR_DATABASE))
        say(f"prepared database copied to {FLOOR_DATABASE} for the ledger floor")
        elapsed, peak, info = system_run(url, n, csv_path, workdir)
        say(f"system run done: {info['outcomes']}")
        base_elapsed, base_rows = asyncio.run(baseline(url, csv_path))
        say(f"baseline done: {base_rows} allocations")
        floor_elapsed, floor_cpu, floor_rows = asyncio.run(ledger_floor(floor_url, csv_path))
        say(f"ledger floor done: {floor_rows} allocations")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if floor_url is not None:
            asyncio.run(drop_database(url, FLOOR_DATABASE))
    system_rate = n / elapsed
    base_rate = n / base_elapsed
    matched = info["outcomes"].get("matched", 0)
    print()
    print(f"matching benchmark, N = {n:,} bank lines ({os.cpu_count()} cores)")
    print(
        f"  system   : {system_rate:>10,.0f} lines/s  ({elapsed:.1f} s end to end; import "
        f"{info['import_seconds']:.1f} s; {matched:,} matched)"
    )
    print(
        f"  baseline : {base_rate:>10,.0f} lines/s  ({base_elapsed:.1f} s raw SQL; "
        f"{base_rows:,} allocations)"
    )
    print(f"  ratio    : {system_rate / base_rate:.2f}  (target >= 0.5)")
    print(
        f"  floor    : {n / floor_elapsed:>10,.0f} lines/s  ({floor_elapsed:.1f} s: the baseline's "
        f"SQL on the ledger's own tables, 1 core; {floor_rows:,} allocations; "
        f"ratio {base_elapsed / floor_elapsed:.2f})"
    )
    print(f"  import peak memory: {peak / 2**20:.0f} MB  (target < 500 MB)")
    print("  CPU (per line in brackets):")
    total_cpu = 0.0
    for label, seconds in (
        ("import process", info["import_cpu"]),
        (f"{WORKERS} matcher workers", info["workers_cpu"]),
        ("PostgreSQL server", info["postgres_cpu"]),
    ):
        total_cpu += seconds
        print(f"    {label:<20} {seconds:>7.1f} s  ({seconds / n * 1e6:>6.1f} µs/line)")
    print(
        f"    {'total':<20} {total_cpu:>7.1f} s  ({total_cpu / n * 1e6:>6.1f} µs/line; "
        f"{total_cpu / elapsed:.2f} of the {os.cpu_count()} cores busy on average)"
    )
    print(
        f"    baseline (1 core)    {base_elapsed:>7.1f} s  ({base_elapsed / n * 1e6:>6.1f} µs/line)"
    )
    print(
        f"    floor (its backend)  {floor_cpu:>7.1f} s  ({floor_cpu / n * 1e6:>6.1f} µs/line; "
        f"{floor_elapsed:.1f} s on 1 core)"
    )
    print(
        "    (PostgreSQL: its server processes when local, autovacuum included; the import "
        "process: its start-up included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
