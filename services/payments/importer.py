"""Statement import (对账单导入): stream a file into `bank_transactions`, batch by batch.

The file is never held in memory: the parser yields lines lazily, and every `import_batch_size`
lines are COPYed into a temporary table and inserted with one `INSERT ... ON CONFLICT
(dedupe_key) DO NOTHING`, in a transaction of their own. So a line counts once whether it comes
twice in one file, in two overlapping statements, or in the same file imported twice; the
difference between lines read and lines inserted is reported as duplicates.

Each committed batch is handed to the matcher (Celery `payments.match_pending`, only after the
commit), so matching runs while the rest of the file is still being read.

A parse error midway (a broken row): the lines of the batches before it, and the valid lines of
its own batch before the broken row, stay stored (they are real bank credits and get matched);
the statement is marked `failed` with the parser's message, and the caller gets a 422 (413 for a
file past a limit: `Limits`, from the `IMPORT_MAX_*` settings). The bank's corrected file can then
be imported again: its lines that were already stored are counted as duplicates thanks to the
dedupe keys, the rest are added.

A batch that loses a deadlock or a serialization failure (another import of overlapping lines)
is run again (`BATCH_ATTEMPTS`). Any other database failure midway marks the statement `failed`
on a fresh connection (retried while the database comes back) and raises
`StatementImportInterrupted` (503); `fail_stale_imports` is the
sweep for importers that died outright. Hashing, opening and parsing run in threads; enqueueing
the matcher runs in a background thread (`enqueue_matching_nowait`), never in the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from services.payments import repository
from services.payments.parsers import (
    LIMIT_CODES,
    Limits,
    ParsedStatement,
    StatementLine,
    StatementParseError,
    dedupe_keys,
    detect_format,
    open_statement,
    within_limits,
)
from services.payments.parsers.models import line_record
from shared.db import sqlstate, unit_of_work
from shared.errors import DomainError
from shared.models.payments import Statement, StatementFormat
from shared.settings import get_settings

log = logging.getLogger(__name__)

STATUS_IMPORTING = "importing"
STATUS_IMPORTED = "imported"
STATUS_FAILED = "failed"


class StatementImportFailed(DomainError):
    """The file could not be read (entirely or from some row on); the statement is `failed`."""

    status = 422
    code = "statement_unreadable"
    title = "Statement could not be imported"


class StatementTooLarge(StatementImportFailed):
    """The file is past one of the import limits (rows, cell length, XML elements, XLSX
    uncompressed size); the statement is `failed`."""

    status = 413
    code = "statement_too_large"
    title = "Statement too large"


class StatementImportInterrupted(DomainError):
    """Not the file's fault: the database (or a bug) interrupted the import. The statement is
    marked `failed` (on a fresh connection, retried while the database comes back); the lines
    of committed batches stay stored, and importing the file again adds only the rest."""

    status = 503
    code = "import_interrupted"
    title = "Statement import interrupted"


def import_failure(error: StatementParseError, extra: dict[str, Any]) -> StatementImportFailed:
    cls = StatementTooLarge if error.code in LIMIT_CODES else StatementImportFailed
    return cls(str(error), code=error.code, extra=extra)


def limits_from_settings() -> Limits:
    settings = get_settings()
    return Limits(
        rows=settings.import_max_rows,
        cell_chars=settings.import_max_cell_chars,
        xml_elements=settings.import_max_xml_elements,
        uncompressed_bytes=settings.import_max_uncompressed_bytes,
        blank_rows=settings.import_max_blank_rows,
    )


@dataclass
class ImportResult:
    statement_id: int
    format: str
    profile: str | None
    status: str
    lines_total: int = 0
    lines_new: int = 0
    lines_duplicate: int = 0
    lines_ignored: int = 0


Record = tuple[Any, ...]


def _take(
    lines: Iterator[tuple[StatementLine, str]], n: int
) -> tuple[list[Record], StatementParseError | None]:
    """Up to `n` records; a parse error ends the batch and is returned with what came before."""
    out: list[Record] = []
    try:
        for line, key in lines:
            out.append(line_record(line, key))
            if len(out) >= n:
                break
    except StatementParseError as exc:
        return out, exc
    return out, None


def _take_table(
    tables: Iterator[tuple[Any, StatementParseError | None]],
) -> tuple[Any, StatementParseError | None]:
    """The next Arrow table of the native path (empty at the end), with its parse error."""
    try:
        return next(tables)
    except StopIteration:
        return (), None


def _credit(records: Any) -> Decimal:
    """The sum of the batch's credits (records or an Arrow table)."""
    if isinstance(records, list):
        return sum((r[5] for r in records if r[4] == "credit"), Decimal(0))
    import pyarrow.compute as pc

    total = pc.sum(pc.filter(records["amount"], pc.equal(records["direction"], "credit")))
    return Decimal(0) if total.as_py() is None else Decimal(total.as_py())


def file_sha256(stream: BinaryIO) -> str:
    """Hash a seekable stream in 1 MiB chunks and rewind it."""
    digest = hashlib.sha256()
    start = stream.tell()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    stream.seek(start)
    return digest.hexdigest()


def _guess_format(stream: BinaryIO, requested: str | None, filename: str | None) -> str:
    if requested in {f.value for f in StatementFormat}:
        return str(requested)
    try:
        start = stream.tell()
        head = stream.read(4096)
        stream.seek(start)
        return detect_format(head, filename)
    except (OSError, StatementParseError):
        return StatementFormat.CSV


async def _add_failed_statement(
    *, filename: str, fmt: str, profile: str | None, sha256: str, actor_sub: str, error: Exception
) -> int:
    """A statement that could not even be opened, recorded as failed; returns its id."""
    async with unit_of_work() as session:
        statement = await repository.add_statement(
            session,
            Statement(
                filename=filename,
                format=StatementFormat(fmt),
                profile=profile[:60] if profile else None,  # an unknown name, maybe long (CLI)
                sha256=sha256,
                status=STATUS_FAILED,
                imported_by=actor_sub,
                error=str(error),
                finished_at=datetime.now(UTC),
            ),
        )
        return statement.id


async def _mark_failed(statement_id: int, message: str) -> None:
    async with unit_of_work() as session:
        await repository.update_statement(
            session,
            statement_id,
            status=STATUS_FAILED,
            error=message,
            finished_at=datetime.now(UTC),
        )


MARK_FAILED_ATTEMPTS = 20


async def mark_failed_fresh(statement_id: int, message: str, *, attempts: int = 0) -> bool:
    """Mark a statement failed after a database failure: on a connection of its own (never the
    pool's, whose connections may all be dead after a restart), retried with back-off while the
    database comes back (about a minute). False when it never came back: the lease sweep
    (`fail_stale_imports`) then fails the statement later."""
    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(get_settings().database_url, poolclass=NullPool)
    delay = 0.2
    try:
        for _ in range(attempts or MARK_FAILED_ATTEMPTS):
            try:
                async with engine.begin() as conn:
                    await conn.execute(
                        update(Statement)
                        .where(Statement.id == statement_id, Statement.status == STATUS_IMPORTING)
                        .values(status=STATUS_FAILED, error=message, finished_at=datetime.now(UTC))
                    )
                return True
            except Exception:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return False
    finally:
        await engine.dispose()


async def fail_stale_imports(lease_seconds: float | None = None) -> list[int]:
    """The sweep: statements `importing` whose last committed batch is older than the lease
    (`IMPORT_LEASE_SECONDS`) are failed (their importer died)."""
    lease = get_settings().import_lease_seconds if lease_seconds is None else lease_seconds
    async with unit_of_work() as session:
        ids = await repository.fail_stale_imports(session, lease)
    if ids:
        log.warning("failed %s statement(s) stuck in importing past the lease: %s", len(ids), ids)
    return ids


# A batch's transaction can lose a deadlock against another import of overlapping lines (each
# waits for a dedupe key the other has inserted but not committed; PostgreSQL aborts one of
# them) or a serialization failure: nothing of the batch was kept, so it is run again, with the
# same lines, rather than failing the whole import with a 503.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
BATCH_ATTEMPTS = 3


def transient_database_error(exc: BaseException) -> bool:
    """True for a deadlock or serialization failure (raised by asyncpg itself in the direct COPY,
    or wrapped by SQLAlchemy)."""
    return sqlstate(exc) in TRANSIENT_SQLSTATES


async def _store_batch(statement_id: int, records: Any, *, direct: bool) -> repository.StoredBatch:
    """Store one batch and add it to the statement's counts, in one transaction; run again
    (up to `BATCH_ATTEMPTS` times) after a deadlock or serialization failure."""
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            async with unit_of_work() as session:
                stored = await repository.store_statement_lines(
                    session, statement_id, records, direct=direct
                )
                await repository.add_statement_counts(
                    session,
                    statement_id,
                    total=len(records),
                    new=stored.new,
                    ignored=stored.ignored,
                    credit=_credit(records),
                )
            return stored
        except Exception as exc:
            if attempt == BATCH_ATTEMPTS or not transient_database_error(exc):
                raise
            log.warning(
                "statement %s: batch rolled back (%s), attempt %s of %s",
                statement_id,
                type(exc).__name__,
                attempt + 1,
                BATCH_ATTEMPTS,
            )
            await asyncio.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


async def import_statement(
    stream: BinaryIO,
    *,
    filename: str,
    actor_sub: str,
    format: str | None = None,
    profile: str | None = None,
    on_batch_committed: Callable[[int], None] | None = None,
    batch_size: int | None = None,
) -> ImportResult:
    """Import one statement file (seekable binary stream). Raises `StatementImportFailed` (422)
    after recording the statement as failed when the file cannot be read."""
    size = batch_size or get_settings().import_batch_size
    native = get_settings().import_native
    filename = filename[:300]
    limits = limits_from_settings()

    def open_file() -> tuple[str, ParsedStatement]:  # file work and headers: off the event loop
        digest = file_sha256(stream)
        return digest, open_statement(
            stream, format=format, profile=profile, filename=filename, limits=limits, native=native
        )

    try:
        sha256, parsed = await asyncio.to_thread(open_file)
    except StatementParseError as exc:
        fmt = await asyncio.to_thread(_guess_format, stream, format, filename)
        sid = await _add_failed_statement(
            filename=filename,
            fmt=fmt,
            profile=profile,
            sha256=await asyncio.to_thread(file_sha256, stream),
            actor_sub=actor_sub,
            error=exc,
        )
        raise import_failure(exc, {"statement_id": sid}) from exc

    async with unit_of_work() as session:
        statement = await repository.add_statement(
            session,
            Statement(
                filename=filename,
                format=StatementFormat(parsed.format),
                profile=parsed.profile,
                sha256=sha256,
                status=STATUS_IMPORTING,
                imported_by=actor_sub,
            ),
        )
    result = ImportResult(
        statement_id=statement.id,
        format=parsed.format,
        profile=parsed.profile,
        status=STATUS_IMPORTING,
    )
    take: Callable[[], tuple[Any, StatementParseError | None]]
    if parsed.batches is not None:  # the native CSV path: Arrow tables (parsers/native.py)
        tables = parsed.batches(size)
        take = functools.partial(_take_table, tables)
    else:
        lines = dedupe_keys(within_limits(parsed.lines))
        take = functools.partial(_take, lines, size)
    error: StatementParseError | None = None
    # native batches are COPYed straight into the ledger until one meets a stored line (a file
    # imported again, an overlapping statement): from then on, INSERT ... ON CONFLICT
    direct = parsed.batches is not None
    # the next batch is parsed (in a thread) while the current one is stored: parsing and the
    # database work overlap instead of alternating
    parsing = asyncio.ensure_future(asyncio.to_thread(take))
    try:
        while error is None:
            records, error = await parsing
            if error is None and len(records):
                parsing = asyncio.ensure_future(asyncio.to_thread(take))
            if not len(records):
                break
            stored = await _store_batch(result.statement_id, records, direct=direct)
            new, ignored = stored.new, stored.ignored
            direct = direct and not stored.conflict
            result.lines_total += len(records)
            result.lines_new += new
            result.lines_duplicate += len(records) - new
            result.lines_ignored += ignored
            if on_batch_committed is not None and new > ignored:
                on_batch_committed(result.statement_id)
        if error is not None:
            await _mark_failed(result.statement_id, str(error))
        else:
            async with unit_of_work() as session:
                await repository.update_statement(
                    session,
                    result.statement_id,
                    status=STATUS_IMPORTED,
                    finished_at=datetime.now(UTC),
                )
    except Exception as exc:
        # not the file's fault (database, bug): the statement must not stay `importing` forever;
        # the failed connection cannot say so, a fresh one (retried) does
        # the exception's text may quote line data (payer names, accounts): only its type
        log.error("statement %s: import interrupted (%s)", result.statement_id, type(exc).__name__)
        if not parsing.done():  # a database error while the next batch was being parsed
            with contextlib.suppress(BaseException):
                await parsing
        message = str(error) if error is not None else "导入中断（系统错误），请稍后重新导入"
        await mark_failed_fresh(result.statement_id, message)
        raise StatementImportInterrupted(
            "导入中断（数据库或系统错误），已保存的流水保留；请稍后重新导入同一文件",
            extra=_summary(result),
        ) from exc
    if error is not None:
        raise import_failure(error, _summary(result))
    result.status = STATUS_IMPORTED
    log.info(
        "statement %s imported: %s lines, %s new, %s duplicate, %s ignored",
        result.statement_id,
        result.lines_total,
        result.lines_new,
        result.lines_duplicate,
        result.lines_ignored,
    )
    return result


def _summary(result: ImportResult) -> dict[str, Any]:
    return {
        "statement_id": result.statement_id,
        "lines_total": result.lines_total,
        "lines_new": result.lines_new,
        "lines_duplicate": result.lines_duplicate,
    }


_enqueue_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enqueue-matching")
_enqueue_lock = threading.Lock()
_enqueue_queued = False


def enqueue_matching_nowait() -> None:
    """Enqueue `payments.match_pending` from a background thread and return at once: with the
    broker down, the send retries for many seconds, and neither the event loop nor the import
    may wait for it. One send running and one queued are enough (the task drains every pending
    line); the beat safety net covers a send that fails."""
    global _enqueue_queued
    with _enqueue_lock:
        if _enqueue_queued:
            return
        _enqueue_queued = True
    _enqueue_executor.submit(_send_matching)


def warm_matching_sender() -> None:
    """Load the sender (the task module: Celery and kombu, ~0.7 s of CPU) in its thread now,
    while the file is hashed, opened and parsed and the matchers have nothing to do yet, rather
    than when the first batch is committed and every core is busy."""
    _enqueue_executor.submit(_load_sender)


def _load_sender() -> None:
    import services.payments.tasks  # noqa: F401


def _send_matching() -> None:
    global _enqueue_queued
    from services.payments.tasks import enqueue_matching

    with _enqueue_lock:
        _enqueue_queued = False
    enqueue_matching()


class MatchingTrigger:
    """Enqueue `payments.match_pending` after committed batches, at most once per `interval`
    seconds (the task drains every pending line), plus once more at the end (`flush`)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self._last = 0.0
        self._owed = False

    def __call__(self, _statement_id: int) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last >= self.interval:
            self._send()
            self._last = now
        else:
            self._owed = True

    def flush(self) -> None:
        if self._owed or self._last == 0.0:
            self._send()

    def _send(self) -> None:
        self._owed = False
        enqueue_matching_nowait()
