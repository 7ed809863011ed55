"""Logs: one access line per request through a real uvicorn, plain or JSON, masked at the
formatter (records intact), request id echoed and carried into the Celery tasks."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from shared.auth import Role, mint_token
from shared.logs import JsonFormatter, LogContext, PlainFormatter, bind_context, mask_all_handlers
from shared.masking import scrub
from tests.ops.helpers import read_until, uvicorn_process


def test_masking_keeps_non_personal_numbers() -> None:
    assert scrub("Task x succeeded in 0.4096157335s: None") == (
        "Task x succeeded in 0.4096157335s: None"
    )
    assert scrub("request 1a2b13812345678ff") == "request 1a2b13812345678ff"  # inside an id
    assert scrub("手机13812345678，账号35000188110503337。") == (
        "手机138****5678，账号3500 **** * 3337。"
    )
    assert scrub("mobile=13812345678.") == "mobile=138****5678."


def test_uvicorn_access_formatter_still_works_behind_the_masking() -> None:
    """The bug on main: the filter set `record.args = None`, and uvicorn's access formatter
    (which unpacks `record.args`) raised a TypeError on every request."""
    from uvicorn.logging import AccessFormatter

    stream = io.StringIO()
    logger = logging.getLogger("uvicorn.access.test-masking")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    logger.addHandler(handler)
    logger.propagate = False
    args = ("127.0.0.1:5000", "GET", "/api/v1/x?mobile=13812345678", "1.1", 200)
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
    )
    try:
        mask_all_handlers()
        logger.handle(record)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "Logging error" not in line
    assert '"GET /api/v1/x?mobile=138****5678 HTTP/1.1" 200' in line
    assert record.args == args  # the record is untouched


def test_formatters_carry_context_and_mask() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "paid %s", ("35000188110503337",), None
    )
    token = bind_context(LogContext("rid-1", route="/r", sub="unit:5", role="unit", unit_id=5))
    try:
        plain = PlainFormatter().format(record)
        doc = json.loads(JsonFormatter().format(record))
    finally:
        bind_context(None)
        del token
    assert "paid 3500 **** * 3337" in plain and "request_id=rid-1" in plain
    assert doc["message"] == "paid 3500 **** * 3337"
    assert (doc["request_id"], doc["sub"], doc["role"], doc["unit_id"]) == (
        "rid-1",
        "unit:5",
        "unit",
        5,
    )


def test_a_real_uvicorn_prints_one_access_line_per_request_without_traceback() -> None:
    with uvicorn_process("filing") as (base, out):
        r1 = httpx.get(base + "/healthz", headers={"X-Request-ID": "first-request"})
        r2 = httpx.get(base + "/api/v1/units/mine?mobile=13812345678")
        text = read_until(out, "/api/v1/units/mine")
    assert r1.status_code == 200 and r2.status_code == 401
    assert r1.headers["x-request-id"] == "first-request"
    assert len(r2.headers["x-request-id"]) == 32  # made when not sent
    assert "Traceback" not in text and "Logging error" not in text, text
    mine = ("first-request", r2.headers["x-request-id"])
    access = [
        ln
        for ln in text.splitlines()
        if "reserved_share.access" in ln and any(m in ln for m in mine)
    ]
    assert len(access) == 2, text  # one line per request
    assert "GET /healthz 200" in access[0]
    assert "GET /api/v1/units/mine 401" in access[1]  # the route template, not the raw URL
    assert f"request_id={r2.headers['x-request-id']}" in access[1]
    assert "13812345678" not in text


def test_json_lines_with_request_id_route_status_duration_and_principal() -> None:
    token = mint_token(Role.OPS)
    rid = "req-" + uuid.uuid4().hex[:8]
    with uvicorn_process("payments", {"LOG_FORMAT": "json"}) as (base, out):
        response = httpx.get(
            base + "/api/v1/orders/XD000",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": rid},
        )
        text = read_until(out, rid)
    assert response.status_code == 404 and response.headers["x-request-id"] == rid
    docs = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert "Traceback" not in text, text
    access = [
        d for d in docs if d["logger"] == "reserved_share.access" and d.get("request_id") == rid
    ]
    assert len(access) == 1, text
    (line,) = access
    assert line["service"] == "payments" and line["request_id"] == rid
    assert line["route"] == "/api/v1/orders/{order_no}" and line["status"] == 404
    assert line["duration_ms"] >= 0 and line["role"] == "ops" and line["sub"] == "ops:dev"
    assert "unit_id" not in line


@pytest.mark.worker
def test_request_id_travels_into_the_tasks_a_request_enqueues(
    celery_worker_process: object,
) -> None:
    """Enqueue inside a request context; the worker sees the same request id."""
    from shared.tasks import ping

    rid = "rid-" + uuid.uuid4().hex[:12]
    token = bind_context(LogContext(rid))
    try:
        result = ping.apply_async(args=("x",))
    finally:
        bind_context(None)
        del token
    assert result.get(timeout=60)["request_id"] == rid
    # the worker's own log line of that task: our format, its request id, the duration intact
    log = Path(tempfile.gettempdir()) / f"celery-test-worker-{os.getpid()}.log"
    text = read_until(log, f"request_id={rid}")
    (line,) = [ln for ln in text.splitlines() if "succeeded in" in ln and rid in ln]
    assert re.search(r"succeeded in \d+\.\d+s", line), line
    assert " worker celery.app.trace " in line and "task_name=shared.ping" in line
