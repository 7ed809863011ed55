"""Aggregation benchmark (not a test): `python -m services.confirmation.bench --units N`, or
`make bench-aggregate UNITS=...` (which runs it against the embedded PostgreSQL and Redis).

It runs in a database of its own, `bench_agg`, on the PostgreSQL server of DATABASE_URL, which it
**drops and creates anew at every run** (then migrates it to head). It refuses to run when
ENVIRONMENT=production.

The province (default 60,000 budget units, all filed): the provincial finance department with 40
departments (one of 5,000 units, for the department-summary read) holding half of the units, and
21 city finance departments with 5 departments each holding the other half; units nest up to
three levels. About 8 % of the filings carry `below_soft_floor` (20 % with a justification), 3 %
another flag; 90 % are confirmed by their superior. Every department has a confirmed summary.
Everything is written with COPY, then ANALYZEd.

It prints p50/p95 (in-process HTTP through the real app, ASGI transport, one request at a time)
of `GET /finance/{year}/aggregate` (the province), `GET /finance/{year}/checks?kind=
below_soft_floor` (first page), `GET /departments/{id}/summary/{year}` (the 5,000-unit
department, when the department-summary endpoint is present), and the time and the process's
peak RSS of `GET /finance/{year}/export.xlsx` (the province). Targets: p95 < 300 ms for the
three reads, export < 15 s and < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parents[2]
BENCH_DATABASE = "bench_agg"
YEAR = 2024
PROVINCE_DEPARTMENTS = 40
CITIES = 21
DEPARTMENTS_PER_CITY = 5
BIG_DEPARTMENT_UNITS = 5_000
CITY_CODES = tuple(f"44{n:02d}00" for n in (*range(1, 10), *range(12, 21), 51, 52, 53))
"""The 21 prefecture-level cities of Guangdong (GB/T 2260)."""
RUNS = 30


def say(msg: str) -> None:
    print(f"[bench-aggregate {time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def bench_database_url(url: str) -> str:
    """`bench_agg` on the server of `url`, dropped and created anew (current migrations only)."""
    target = make_url(url).set(database=BENCH_DATABASE)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    finally:
        await admin.dispose()
    return target.render_as_string(hide_password=False)


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def build(units: int, seed: int = 832) -> dict[str, Any]:
    """Rows of org_units, filings, filing_versions and department_summaries (ids explicit)."""
    rng = random.Random(seed)
    now = datetime(2024, 2, 10, 9, 0, tzinfo=UTC)
    org: list[tuple[Any, ...]] = []
    filings: list[tuple[Any, ...]] = []
    versions: list[tuple[Any, ...]] = []
    summaries: list[tuple[Any, ...]] = []
    next_id = 1

    def add_unit(
        name: str, kind: str, parent: tuple[int, str] | None, fd: int | None, region: str
    ) -> tuple[int, str]:
        nonlocal next_id
        uid = next_id
        next_id += 1
        path = f"{parent[1] if parent else '/'}{uid}/"
        mobile = f"13{uid % 10}{uid:08d}"[:11]
        org.append(
            (
                uid,
                f"B{uid:08d}",
                name,
                kind,
                parent[0] if parent else None,
                fd,
                region,
                path,
                "active",
                "联系人",
                mobile,
                now,
                now,
            )
        )
        return uid, path

    province = add_unit("广东省财政厅", "finance_department", None, None, "440000")
    cities = [
        add_unit(f"城市{i + 1}财政局", "finance_department", province, None, code)
        for i, code in enumerate(CITY_CODES)
    ]
    # departments: (finance department id, region, units in it)
    half = units // 2
    rest = max(half - BIG_DEPARTMENT_UNITS, PROVINCE_DEPARTMENTS - 1)
    prov_sizes = [BIG_DEPARTMENT_UNITS, *_split(rest, PROVINCE_DEPARTMENTS - 1)]
    plan = [(province[0], "440000", n) for n in prov_sizes]
    city_sizes = _split(units - sum(prov_sizes), CITIES * DEPARTMENTS_PER_CITY)
    for ci, city in enumerate(cities):
        for d in range(DEPARTMENTS_PER_CITY):
            plan.append((city[0], CITY_CODES[ci], city_sizes[ci * DEPARTMENTS_PER_CITY + d]))
    department_totals: list[tuple[Any, ...]] = []
    big_department = 0
    for di, (fd, region, size) in enumerate(plan):
        root = add_unit(f"部门{di + 1}", "budget_unit", None, fd, region)
        if di == 0:
            big_department = root[0]
        members = [root]
        subs: list[tuple[int, str]] = []
        for k in range(max(size - 1, 0)):
            parent = root if (k % 10 == 0 or not subs) else subs[rng.randrange(len(subs))]
            member = add_unit(f"部门{di + 1}下属单位{k + 1}", "budget_unit", parent, fd, region)
            members.append(member)
            if parent == root and len(subs) < 200:
                subs.append(member)
        sums = [Decimal(0)] * 4
        flagged = 0
        for uid, _ in members:
            total = Decimal(rng.randrange(100_000, 5_000_000))
            flags: list[str] = []
            roll = rng.random()
            if roll < 0.08:
                ratio = Decimal(20)
                flags.append("below_soft_floor")
            else:
                ratio = Decimal(rng.choice((30, 32, 35, 40)))
                if roll < 0.11:
                    flags.append(rng.choice(("sharp_change_total", "shared_contact_mobile")))
            reserved = (total * ratio / 100).quantize(Decimal("0.01"))
            union_total = Decimal(rng.randrange(10_000, 500_000))
            union_expected = (union_total * 20 / 100).quantize(Decimal("0.01"))
            status = "confirmed" if rng.random() < 0.9 else "submitted"
            filings.append(
                (
                    uid,
                    uid,
                    YEAR,
                    status,
                    status,
                    status,
                    "own",
                    total,
                    ratio,
                    reserved,
                    "",
                    True,
                    union_total,
                    Decimal(20),
                    union_expected,
                    "联系人",
                    f"13{uid % 10}{uid:08d}"[:11],
                    "低于30%的情况说明" if flags[:1] == ["below_soft_floor"] else None,
                    flags,
                    1,
                    1,
                    now,
                    f"unit:{uid}",
                    now,
                    now,
                )
            )
            versions.append(
                (
                    uid,
                    uid,
                    1,
                    json.dumps(
                        {
                            "canteen_type": "own",
                            "canteen_total": f"{total:.2f}",
                            "canteen_ratio": f"{ratio:.2f}",
                            "reserved_amount": f"{reserved:.2f}",
                            "flags": flags,
                        }
                    ),
                    f"unit:{uid}",
                    now,
                )
            )
            sums[0] += total
            sums[1] += reserved
            sums[2] += union_total
            sums[3] += union_expected
            flagged += bool(flags)
        department_totals.append((root[0], fd, len(members), *sums, flagged))
    for i, (dept, fd, n, total, reserved, utotal, uexp, flagged) in enumerate(department_totals):
        summaries.append(
            (
                i + 1,
                YEAR,
                dept,
                fd,
                "confirmed",
                n,
                total,
                reserved,
                utotal,
                uexp,
                flagged,
                json.dumps({"units": n}),
                f"unit:{dept}",
                now,
                1,
            )
        )
    return {
        "org": org,
        "filings": filings,
        "versions": versions,
        "summaries": summaries,
        "province": province[0],
        "big_department": big_department,
    }


async def load(url: str, data: dict[str, Any]) -> None:
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO regions (code, name, parent_code, level) VALUES
              ('000000', '全国', NULL, 0), ('440000', '广东省', '000000', 1)
            """
        )
        await conn.executemany(
            "INSERT INTO regions (code, name, parent_code, level) VALUES ($1, $2, '440000', 2)",
            [(c, f"城市{c}") for c in CITY_CODES],
        )
        await conn.execute(
            """
            INSERT INTO policies (year, region_code, national_floor, encouraged_ratio,
                                  soft_floor, filing_deadline, non_settlement_cutoff, updated_by)
            VALUES ($1, '000000', 10, 15, NULL, $2, $3, 'bench'),
                   ($1, '440000', NULL, NULL, 30, NULL, NULL, 'bench')
            """,
            YEAR,
            date(2024, 2, 20),
            date(2023, 8, 3),
        )
        await conn.copy_records_to_table(
            "org_units",
            records=data["org"],
            columns=[
                "id",
                "code",
                "name",
                "kind",
                "parent_id",
                "finance_department_id",
                "region_code",
                "path",
                "status",
                "contact_name",
                "contact_mobile",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "filings",
            records=data["filings"],
            columns=[
                "id",
                "unit_id",
                "year",
                "status",
                "canteen_status",
                "union_status",
                "canteen_type",
                "canteen_total",
                "canteen_ratio",
                "reserved_amount",
                "remark",
                "union_has_need",
                "union_total",
                "union_ratio",
                "union_expected_amount",
                "contact_name",
                "contact_mobile",
                "justification",
                "flags",
                "version",
                "lock_version",
                "submitted_at",
                "submitted_by",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "filing_versions",
            records=data["versions"],
            columns=["id", "filing_id", "version_no", "snapshot", "submitted_by", "submitted_at"],
        )
        await conn.copy_records_to_table(
            "department_summaries",
            records=data["summaries"],
            columns=[
                "id",
                "year",
                "department_unit_id",
                "finance_department_id",
                "status",
                "units_count",
                "canteen_total",
                "reserved_amount",
                "union_total",
                "union_expected_amount",
                "flagged_count",
                "snapshot",
                "submitted_by",
                "submitted_at",
                "version",
            ],
        )
        for table in ("org_units", "filings", "filing_versions", "department_summaries"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
            await conn.execute(f"ANALYZE {table}")
        await conn.execute("ANALYZE regions")
        await conn.execute("ANALYZE policies")
    finally:
        await conn.close()


class PeakRss:
    """Poll this process's resident set size every 20 ms."""

    def __init__(self) -> None:
        self.process = psutil.Process(os.getpid())
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(data: dict[str, Any], runs: int) -> list[str]:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)

    from services.confirmation.app import create_app
    from shared.auth import mint_token

    app = create_app()
    province = {"Authorization": f"Bearer {mint_token('finance', data['province'])}"}
    big = data["big_department"]
    department = {"Authorization": f"Bearer {mint_token('unit', big)}"}
    lines: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def timed(label: str, path: str, headers: dict[str, str]) -> None:
            first = await client.get(path, headers=headers)
            if first.status_code in (404, 405) and first.json().get("code") == "not_found":
                lines.append(f"  {label:<34}: endpoint not present on this branch (skipped)")
                return
            if first.status_code != 200:
                raise SystemExit(f"{path}: {first.status_code} {first.text[:300]}")
            await client.get(path, headers=headers)
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                r = await client.get(path, headers=headers)
                samples.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
            lines.append(
                f"  {label:<34}: p50 {statistics.median(samples):7.1f} ms   "
                f"p95 {_pct(samples, 0.95):7.1f} ms   (target p95 < 300 ms, {runs} runs)"
            )

        await timed("GET aggregate (province)", f"/api/v1/finance/{YEAR}/aggregate", province)
        await timed(
            "GET checks?kind=below_soft_floor",
            f"/api/v1/finance/{YEAR}/checks?kind=below_soft_floor",
            province,
        )
        await timed(
            f"GET department summary ({BIG_DEPARTMENT_UNITS:,} u.)",
            f"/api/v1/departments/{big}/summary/{YEAR}",
            department,
        )
        rss = PeakRss()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        r = await client.get(f"/api/v1/finance/{YEAR}/export.xlsx", headers=province)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        peak = rss.stop()
        assert r.status_code == 200, r.text[:300]
        grown = (peak - rss.start) / 2**20
        lines.append(
            f"  {'export.xlsx (province)':<34}: {elapsed:7.1f} s     "
            f"(CPU {cpu:.1f} s in this process) {len(r.content) / 2**20:.1f} MB file; "
            f"peak RSS {peak / 2**20:.0f} MB "
            f"(+{grown:.0f} MB during the export, response body included) "
            "(target < 15 s, < 300 MB)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.confirmation.bench")
    parser.add_argument("--units", type=int, default=60_000, help="budget units (all filed)")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed requests per read")
    args = parser.parse_args(argv)
    if args.units < BIG_DEPARTMENT_UNITS + PROVINCE_DEPARTMENTS + CITIES * DEPARTMENTS_PER_CITY:
        parser.error(f"--units must be at least {BIG_DEPARTMENT_UNITS + 200}")
    from shared.settings import get_settings

    settings = get_settings()
    if settings.environment == "production":
        print("refusing to run: the benchmark drops its database (ENVIRONMENT=production)")
        return 2
    url = asyncio.run(bench_database_url(settings.database_url))
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        check=True,
        env={**os.environ, "DATABASE_URL": url},
    )
    say(f"generating {args.units:,} units")
    data = build(args.units)
    t0 = time.perf_counter()
    asyncio.run(load(url, data))
    say(
        f"loaded {len(data['org']):,} units and {len(data['filings']):,} filings by COPY in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    del data["filings"], data["versions"], data["org"]
    lines = asyncio.run(measure(data, args.runs))
    print()
    print(
        f"aggregation benchmark: {args.units:,} budget units, {PROVINCE_DEPARTMENTS} provincial "
        f"departments, {CITIES} city finance departments ({os.cpu_count()} cores)"
    )
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
