"""Statement import: idempotent (file twice, overlapping statements, a line twice in one file),
classification of lines that are not ours, failures, and the command-line import."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.importer import StatementImportFailed, import_statement
from shared.auth import Role
from shared.settings import get_settings
from tests.conftest import auth
from tests.factories import make_supplier
from tests.payments.helpers import (
    FIXTURES,
    bank_csv,
    import_rows,
    importing_statement,
    outcome_of,
    upload,
)

ACCOUNT = "35000188110599001"


async def settlement_account(session: AsyncSession) -> None:
    await make_supplier(session, settlement_account=ACCOUNT, other_accounts=("62220000000001",))
    await session.commit()


async def count_lines(session: AsyncSession) -> int:
    n = (await session.execute(text("SELECT count(*) FROM bank_transactions"))).scalar_one()
    await session.commit()
    return int(n)


async def test_the_same_file_twice_counts_once(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await settlement_account(session)
    rows = [{"ref": f"R{i}", "account": ACCOUNT, "amount": "10", "remark": "x"} for i in range(5)]
    first = await import_rows(payments_client, rows)
    second = await import_rows(payments_client, rows)
    assert (first["lines_total"], first["lines_new"], first["lines_duplicate"]) == (5, 5, 0)
    assert (second["lines_total"], second["lines_new"], second["lines_duplicate"]) == (5, 0, 5)
    assert await count_lines(session) == 5


async def test_overlapping_statements_store_the_shared_lines_once(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await settlement_account(session)
    rows = [{"ref": f"R{i}", "account": ACCOUNT, "amount": "10"} for i in range(6)]
    await import_rows(payments_client, rows[:4])
    second = await import_rows(payments_client, rows[2:])
    assert (second["lines_new"], second["lines_duplicate"]) == (2, 2)
    assert await count_lines(session) == 6


async def test_lines_without_bank_reference_are_kept_apart_by_occurrence(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """Two identical reference-less lines in one file are two payments; the file again adds
    nothing."""
    await settlement_account(session)
    line = {
        "ref": "",
        "account": ACCOUNT,
        "amount": "10",
        "remark": "货款",
        "at": "2024-04-01 09:00:00",
    }
    first = await import_rows(payments_client, [line, line])
    again = await import_rows(payments_client, [line, line])
    assert (first["lines_new"], first["lines_duplicate"]) == (2, 0)
    assert (again["lines_new"], again["lines_duplicate"]) == (0, 2)


async def test_credits_to_unknown_or_non_settlement_accounts_are_recorded_as_ignored(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await settlement_account(session)
    body = await import_rows(
        payments_client,
        [
            {"ref": "MINE", "account": ACCOUNT, "amount": "10"},
            {"ref": "OTHER", "account": "62220000000001", "amount": "10", "remark": "fa4xy2"},
            {"ref": "UNKNOWN", "account": "99999999999", "amount": "10"},
        ],
    )
    assert (body["lines_new"], body["lines_ignored"]) == (3, 2)
    assert (await outcome_of(session, "MINE"))[0] != "ignored"  # pending, or matched by now
    assert await outcome_of(session, "OTHER") == ("ignored", "not_settlement_account")
    assert await outcome_of(session, "UNKNOWN") == ("ignored", "not_settlement_account")


async def test_a_broken_row_fails_the_statement_keeps_earlier_lines_and_reimport_is_safe(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await settlement_account(session)
    good = [{"ref": f"R{i}", "account": ACCOUNT, "amount": "10"} for i in range(3)]
    broken = [*good[:2], {"ref": "BAD", "account": ACCOUNT, "amount": "十元"}, good[2]]
    response = await upload(payments_client, "broken.csv", bank_csv(broken))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"]  # the parser's Chinese message
    status = await payments_client.get(
        f"/api/v1/statements/{problem['statement_id']}", headers=auth(Role.IMPORTER)
    )
    assert status.json()["status"] == "failed"
    assert await count_lines(session) == 2

    fixed = await import_rows(payments_client, good)
    assert (fixed["lines_new"], fixed["lines_duplicate"]) == (1, 2)


async def test_an_unreadable_file_is_a_422_and_a_failed_statement(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    response = await upload(payments_client, "empty.csv", b"")
    assert response.status_code == 422
    statement_id = response.json()["statement_id"]
    status = await payments_client.get(f"/api/v1/statements/{statement_id}", headers=auth(Role.OPS))
    assert status.json()["status"] == "failed"


async def test_only_the_importer_may_upload_statements(payments_client: httpx.AsyncClient) -> None:
    response = await payments_client.post(
        "/api/v1/statements",
        files={"file": ("a.csv", b"x")},
        headers=auth(Role.PLATFORM),
    )
    assert response.status_code == 403


async def test_the_import_command_imports_a_file(session: AsyncSession) -> None:
    await settlement_account(session)
    env = {
        **os.environ,
        "DATABASE_URL": get_settings().database_url,
        "REDIS_URL": get_settings().redis_url,
    }
    for _ in range(2):
        result = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "services.payments.statements",
                "import",
                str(FIXTURES / "statement_bank_export.csv"),
                "--no-enqueue",
            ],
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert summary["format"] == "csv" and summary["profile"] == "generic_cn"
    assert (summary["lines_total"], summary["lines_new"], summary["lines_duplicate"]) == (11, 0, 11)


async def test_amounts_out_of_range_fail_the_statement(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await settlement_account(session)
    huge = await upload(
        payments_client,
        "huge.csv",
        bank_csv([{"ref": "BIG", "account": ACCOUNT, "amount": "1000000000000000"}]),
    )
    assert huge.status_code == 422
    assert huge.json()["code"] == "bad_amount"
    assert await count_lines(session) == 0


async def test_a_file_with_a_nul_character_fails_the_statement_with_a_422(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await settlement_account(session)
    content = bank_csv([{"ref": "N1", "account": ACCOUNT, "amount": "10", "remark": "a\x00b"}])
    response = await upload(payments_client, "nul.csv", content)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "nul_character"
    status = await payments_client.get(
        f"/api/v1/statements/{response.json()['statement_id']}", headers=auth(Role.IMPORTER)
    )
    assert status.json()["status"] == "failed"
    assert await count_lines(session) == 0


async def test_booking_times_outside_plausible_years_fail_the_statement(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await settlement_account(session)
    for ref, at in (("Y1", "0001-01-01 00:00:00"), ("Y2", "3000-01-01T00:00:00+08:00")):
        rows = [{"ref": ref, "account": ACCOUNT, "amount": "10", "at": at}]
        response = await upload(payments_client, "years.csv", bank_csv(rows))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "bad_datetime"
    assert await count_lines(session) == 0


async def test_a_profile_name_with_odd_characters_is_a_422(
    payments_client: httpx.AsyncClient,
) -> None:
    for profile in ("a\x00b", "中文", "generic cn"):
        response = await upload(payments_client, "p.csv", b"x,y\n1,2\n", profile=profile)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "profile"]


async def test_an_unknown_long_profile_name_fails_the_statement_cleanly(
    session: AsyncSession,
) -> None:
    """The command takes any --profile: an unknown 100-character name is recorded, not a crash."""
    with pytest.raises(StatementImportFailed) as raised:
        await import_statement(
            io.BytesIO(bank_csv([{"account": ACCOUNT, "amount": "10"}])),
            filename="p.csv",
            actor_sub="importer:cli",
            profile="p" * 100,
        )
    assert raised.value.code == "unknown_profile"
    status = (
        await session.execute(
            text("SELECT status FROM statements WHERE id = :id"),
            {"id": raised.value.extra["statement_id"]},
        )
    ).scalar_one()
    await session.commit()
    assert status == "failed"


async def test_text_with_backslashes_tabs_and_line_breaks_is_stored_exactly(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    """Lines travel to the database as COPY text: its escape characters must arrive intact."""
    await settlement_account(session)
    remark = "货款\\N \\\\ a\tb\r\nc \\t 完"
    await import_rows(
        payments_client,
        [
            {
                "ref": "R1",
                "account": ACCOUNT,
                "amount": "12.30",
                "remark": remark,
                "payer_name": "\\N",
                "at": "2024-04-01 23:59:58",
            },
            {"ref": "R2", "account": ACCOUNT, "amount": "5", "remark": ""},
        ],
    )
    rows = (
        await session.execute(
            text(
                "SELECT bank_ref, remark, payer_name, amount, booked_at FROM bank_transactions "
                "ORDER BY bank_ref"
            )
        )
    ).all()
    await session.commit()
    assert [(r.bank_ref, r.remark, r.payer_name, str(r.amount)) for r in rows] == [
        ("R1", remark, "\\N", "12.30"),
        ("R2", None, "采购单位", "5.00"),
    ]
    assert rows[0].booked_at.isoformat() == "2024-04-01T15:59:58+00:00"


async def _wait_for_a_lock_wait(session: AsyncSession) -> None:
    for _ in range(400):
        waiting = (
            await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        ).scalar_one()
        await session.commit()
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the import never waited for the other transaction's line")


@pytest.mark.parametrize("native", [True, False], ids=["direct-copy", "insert"])
async def test_a_batch_that_loses_a_deadlock_to_another_import_is_run_again(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """Two imports of the same lines in different orders, at once: each waits for a dedupe key
    the other has inserted and not committed, and PostgreSQL aborts one of the two batches. That
    batch is run again instead of failing the import (503): the import completes, the other's
    lines count as duplicates, and no line is stored twice. Both import paths: the direct COPY
    (the error comes from asyncpg) and the INSERT (wrapped by SQLAlchemy)."""
    from services.payments import repository
    from services.payments.parsers import dedupe_keys, open_statement
    from services.payments.parsers.models import line_record
    from shared.db import get_sessionmaker

    monkeypatch.setattr(get_settings(), "import_native", native)
    await settlement_account(session)
    rows = [{"ref": f"D{i}", "account": ACCOUNT, "amount": "10", "remark": "x"} for i in range(4)]
    data = bank_csv(rows)
    parsed = open_statement(io.BytesIO(data), filename="d.csv")
    records = [line_record(line, key) for line, key in dedupe_keys(parsed.lines)]
    async with get_sessionmaker()() as other:
        # the other import: the file's second line first, in a transaction left open
        other_id = await importing_statement(other, "other.csv")
        await repository.store_statement_lines(other, other_id, [records[1]])
        importing = asyncio.create_task(
            import_statement(io.BytesIO(data), filename="d.csv", actor_sub="importer:test")
        )
        await _wait_for_a_lock_wait(session)  # the import has stored line 1, waits for line 2
        # its deadlock check then comes first, by this much: the import is the one aborted
        await asyncio.sleep(0.5)
        # then the file's first line, which the import holds: a deadlock
        await repository.store_statement_lines(other, other_id, [records[0]])
        await other.commit()
    result = await importing
    assert (result.status, result.lines_total, result.lines_new, result.lines_duplicate) == (
        "imported",
        4,
        2,
        2,
    )
    stored = (
        await session.execute(
            text(
                "SELECT s.status, s.lines_total, s.lines_new, s.lines_duplicate, "
                "(SELECT count(*) FROM bank_transactions t WHERE t.statement_id = s.id) "
                "FROM statements s WHERE s.id = :id"
            ),
            {"id": result.statement_id},
        )
    ).one()
    await session.commit()
    assert tuple(stored) == ("imported", 4, 2, 2, 2)
    assert await count_lines(session) == 4
