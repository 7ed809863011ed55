"""The statement import as a command (银行对账单导入):

    python -m services.payments.statements import FILE [--format F] [--profile P]

Prints the JSON summary (`statement_id`, `lines_total`, `lines_new`, `lines_duplicate`, ...) and
enqueues matching after each committed batch. Exit status 0 on success, 2 with a JSON summary
(`error`, `code`, and `statement_id` and the counts when a statement was recorded) when the file
cannot be read or is past a limit, and when the database failed during the import (the statement
is then marked failed on a fresh connection; see `importer`). Never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from dataclasses import asdict
from typing import BinaryIO

from services.payments.importer import (
    MatchingTrigger,
    StatementImportFailed,
    StatementImportInterrupted,
    import_statement,
    warm_matching_sender,
)
from services.payments.parsers import FORMATS
from shared.db import dispose_engine
from shared.masking import configure_logging
from shared.settings import get_settings

ACTOR = "importer:cli"


async def _run(
    stream: BinaryIO, filename: str, fmt: str | None, profile: str | None, enqueue: bool
) -> int:
    trigger = MatchingTrigger() if enqueue else None
    if enqueue:
        warm_matching_sender()
    try:
        result = await import_statement(
            stream,
            filename=filename,
            actor_sub=ACTOR,
            format=fmt,
            profile=profile,
            on_batch_committed=trigger,
        )
    except (StatementImportFailed, StatementImportInterrupted) as exc:
        print(json.dumps({"error": exc.detail, "code": exc.code, **exc.extra}, ensure_ascii=False))
        return 2
    except Exception as exc:  # the database unreachable before the statement was recorded
        summary = {"error": f"导入失败：{type(exc).__name__}", "code": "import_interrupted"}
        print(json.dumps(summary, ensure_ascii=False))
        return 2
    finally:
        if trigger is not None:
            trigger.flush()
        with contextlib.suppress(Exception):
            await dispose_engine()
    print(json.dumps(asdict(result), ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.payments.statements")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import one bank statement file")
    imp.add_argument("file")
    imp.add_argument("--format", choices=FORMATS, default=None)
    imp.add_argument("--profile", default=None, help="bank column profile (CSV/XLSX)")
    imp.add_argument(
        "--no-enqueue", action="store_true", help="do not enqueue matching (beat will)"
    )
    args = parser.parse_args(argv)
    configure_logging(get_settings().log_level)
    # the import parses the next batch in a thread while the event loop stores the current one;
    # a short GIL switch interval lets the loop answer the database promptly (default 5 ms)
    sys.setswitchinterval(0.00025)
    try:
        stream = open(args.file, "rb")  # noqa: SIM115 - closed below, after the event loop
    except OSError as exc:
        parser.error(f"cannot open {args.file}: {exc.strerror}")
    with stream:
        name = os.path.basename(args.file)
        return asyncio.run(_run(stream, name, args.format, args.profile, not args.no_enqueue))


if __name__ == "__main__":
    sys.exit(main())
