"""One log format for every process (services, Celery worker and beat, commands).

- `LOG_FORMAT=plain` (development): one readable line per record;
  `LOG_FORMAT=json` (production): one JSON object per line.
- Every line carries the service (process) name and, inside a request or a task, the request id,
  the route and the principal (`sub`, `role`, `unit_id`: identifiers, never personal data).
- Masking happens at the formatter, on the *formatted* text: the record itself (its `msg` and
  `args`) is never touched, so third-party formatters (uvicorn's access formatter unpacks
  `record.args`) keep working, and every handler masks its own output.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.masking import scrub

ACCESS_LOGGER = "reserved_share.access"
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX_CHARS = 128


@dataclass
class LogContext:
    """What every log line of one request or task says about it. Mutable on purpose: the auth
    dependency fills in the principal, the middleware reads it back at the end of the request
    (a mutation is seen whatever context copies anyio made in between)."""

    request_id: str
    route: str | None = None
    sub: str | None = None
    role: str | None = None
    unit_id: int | None = None
    task_name: str | None = None
    task_id: str | None = None


_context: ContextVar[LogContext | None] = ContextVar("reserved_share_log_context", default=None)
_service = "reserved-share"


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """A client-sent request id is kept when it is short printable ASCII without spaces."""
    if not value or len(value) > REQUEST_ID_MAX_CHARS:
        return None
    if not all(33 <= ord(c) < 127 for c in value):
        return None
    return value


def current_context() -> LogContext | None:
    return _context.get()


def current_request_id() -> str | None:
    ctx = _context.get()
    return ctx.request_id if ctx else None


def bind_context(ctx: LogContext | None) -> Any:
    """Make `ctx` the current context; returns a token for `reset_context`."""
    return _context.set(ctx)


def reset_context(token: Any) -> None:
    _context.reset(token)


def bind_principal(sub: str, role: str, unit_id: int | None) -> None:
    ctx = _context.get()
    if ctx is not None:
        ctx.sub, ctx.role, ctx.unit_id = sub, role, unit_id


def service_name() -> str:
    return _service


_CONTEXT_FIELDS = ("request_id", "route", "sub", "role", "unit_id", "task_name", "task_id")
_EXTRA_FIELDS = ("method", "path", "status", "duration_ms")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Context and access fields of a record: explicit `extra=` first, then the current context."""
    out: dict[str, Any] = {}
    ctx = _context.get()
    for name in _CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is None and ctx is not None:
            value = getattr(ctx, name)
        if value is not None:
            out[name] = value
    for name in _EXTRA_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            out[name] = value
    return out


class PlainFormatter(logging.Formatter):
    """`2026-12-01 09:44:12,123 INFO filing reserved_share.access GET /x 200 3.1ms rid=… sub=…`,
    masked as a whole line (message, context and traceback)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(service)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        base = logging.Formatter.format(self, _with_service(record))
        fields = _fields(record)
        tail = " ".join(f"{k}={v}" for k, v in fields.items() if k not in _EXTRA_FIELDS)
        if tail:
            first, sep, rest = base.partition("\n")
            base = f"{first} [{tail}]{sep}{rest}"
        return scrub(base)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; every string value is masked (numbers are ours, not personal)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": getattr(record, "service", None) or _service,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        doc.update({k: scrub(v) if isinstance(v, str) else v for k, v in _fields(record).items()})
        if record.exc_info:
            doc["exc"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = scrub(record.exc_text)
        if record.stack_info:
            doc["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


def _with_service(record: logging.LogRecord) -> logging.LogRecord:
    if not hasattr(record, "service"):
        record.service = _service
    return record


class MaskingFormatter(logging.Formatter):
    """Wraps another handler's formatter and masks what it produced (the record is untouched)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self.inner.format(record))


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else PlainFormatter()


def _masks_output(formatter: logging.Formatter | None) -> bool:
    return isinstance(formatter, PlainFormatter | JsonFormatter | MaskingFormatter)


def mask_all_handlers() -> None:
    """Make every handler configured so far (ours, uvicorn's, Celery's, a library's) mask its
    output, by wrapping its formatter. Idempotent."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not _masks_output(handler.formatter):
                handler.setFormatter(MaskingFormatter(handler.formatter))


# uvicorn's own loggers go through the root handler (one format); its access line is replaced by
# ours (shared.web's middleware: route, status, duration, request id, principal).
_ROUTED_TO_ROOT = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "flower")


def configure_logging(
    level: str | int | None = None, *, service: str | None = None, log_format: str | None = None
) -> None:
    """Install the one root handler (stderr) of this process with the configured format."""
    global _service
    from shared.settings import get_settings

    settings = get_settings()
    if service:
        _service = service
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format or settings.log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = level or settings.log_level
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _ROUTED_TO_ROOT:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    mask_all_handlers()
