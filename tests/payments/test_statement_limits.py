"""Issue #10, finding 7: hostile and broken uploads cost little and stop nothing else. Each bomb
kind is refused within its limit (small limits set here) with a clear 413/422, while a `/healthz`
probe keeps answering (a liveness bound of one second, generous: it answers in milliseconds);
the upload is capped while it streams and an unauthenticated body is never read."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from shared.settings import get_settings
from tests.conftest import auth
from tests.payments.helpers import bank_csv, upload

LIVENESS_BOUND = 1.0  # seconds: /healthz must answer within this while an upload is processed


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    for name, value in {
        "import_max_upload_bytes": 2 * 1024 * 1024,
        "import_max_uncompressed_bytes": 4 * 1024 * 1024,
        "import_max_rows": 1_000,
        "import_max_cell_chars": 10_000,
        "import_max_xml_elements": 50_000,
        "import_max_blank_rows": 1_000,
    }.items():
        monkeypatch.setattr(settings, name, value)


async def upload_while_probing(
    client: httpx.AsyncClient, name: str, content: Any, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, float, int]:
    """(response, slowest /healthz answer, probes answered) for an upload under probing."""
    done = asyncio.Event()
    latencies: list[float] = []

    async def probe() -> None:
        while True:  # at least once, then until the upload is answered
            started = time.perf_counter()
            answer = await client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200
            if done.is_set():
                return
            await asyncio.sleep(0.005)

    async def send() -> httpx.Response:
        try:
            return await client.post(
                "/api/v1/statements",
                files={"file": (name, content)},
                headers=auth(Role.IMPORTER) if headers is None else headers,
            )
        finally:
            done.set()

    prober = asyncio.ensure_future(probe())
    response = await send()
    await prober
    return response, max(latencies), len(latencies)


async def statuses(session: AsyncSession) -> list[str]:
    rows = (await session.execute(text("SELECT status FROM statements ORDER BY id"))).all()
    await session.commit()
    return [r[0] for r in rows]


def zipped(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in parts.items():
            archive.writestr(name, body)
    return buffer.getvalue()


SHEET = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'


def xlsx_one_huge_cell() -> bytes:
    """One inline-string cell of 20 MB of text: a few KB compressed."""
    cell = '<row r="1"><c r="A1" t="inlineStr"><is><t>' + "A" * 20_000_000 + "</t></is></c></row>"
    return zipped({"xl/worksheets/sheet1.xml": SHEET + cell + "</sheetData></worksheet>"})


def xlsx_many_shared_strings() -> bytes:
    strings = "<si><t>x</t></si>" * 30_000
    return zipped(
        {
            "xl/sharedStrings.xml": (
                '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                + strings
                + "</sst>"
            ),
            "xl/worksheets/sheet1.xml": SHEET + "</sheetData></worksheet>",
        }
    )


def xlsx_header_after_blank_rows() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.cell(row=1_000_000, column=1, value="收款账号")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsx_sparse_corner_cell() -> bytes:
    """A valid export plus one cell at XFD1048576: a dense reader would allocate 17 billion
    cells; the streaming one meets a million blank rows."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["交易流水号", "交易时间", "收款账号", "贷方发生额"])
    sheet.append(["S1", "2024-05-06 10:00:00", "35000188110503337", "1.00"])
    sheet["XFD1048576"] = "x"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def camt_unknown_elements() -> bytes:
    return (
        '<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
        "<BkToCstmrStmt><Stmt>" + "<Xx/>" * 200_000 + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


@pytest.mark.parametrize(
    ("name", "make", "status", "code"),
    [
        ("cell.xlsx", xlsx_one_huge_cell, 413, "uncompressed_too_large"),
        ("strings.xlsx", xlsx_many_shared_strings, 413, "too_many_rows"),
        ("blank.xlsx", xlsx_header_after_blank_rows, 422, "too_many_blank_rows"),
        ("sparse.xlsx", xlsx_sparse_corner_cell, 422, "too_many_blank_rows"),
        ("blank.csv", lambda: b"\n" * 1_500_000 + b"a,b\n", 422, "too_many_blank_rows"),
        ("wide.csv", lambda: b"x" * 1_500_000 + b"\n", 413, "cell_too_long"),
        ("elements.xml", camt_unknown_elements, 413, "too_many_elements"),
        ("long.mt940", lambda: b":20:T\n:25:1\n:86:" + b"x" * 1_000_000 + b"\n-\n", 413, ""),
    ],
)
async def test_each_bomb_is_refused_within_its_limit_while_healthz_answers(
    small_limits: None,
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    name: str,
    make: Any,
    status: int,
    code: str,
) -> None:
    content = make()

    response, slowest, probes = await upload_while_probing(payments_client, name, content)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == (code or "cell_too_long")
    assert response.json()["detail"]  # Chinese, for the clerk
    assert await statuses(session) == ["failed"]
    assert probes >= 1
    assert slowest < LIVENESS_BOUND, f"/healthz took {slowest:.3f}s"


async def test_too_many_rows_is_a_413_and_the_statement_failed(
    small_limits: None, session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    rows = [{"account": "35000188110503337", "amount": "1.00"} for _ in range(1_001)]

    response = await upload(payments_client, "rows.csv", bank_csv(rows))

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_many_rows"
    assert await statuses(session) == ["failed"]


async def test_a_large_valid_file_is_parsed_off_the_event_loop(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    rows = [
        {"ref": f"L{i}", "account": "35000188110503337", "amount": "1.00", "remark": "货款"}
        for i in range(30_000)
    ]

    response, slowest, probes = await upload_while_probing(
        payments_client, "large.csv", bank_csv(rows)
    )

    assert response.status_code == 201, response.text
    assert response.json()["lines_total"] == 30_000
    assert probes >= 1
    print(f"\n/healthz during a 30,000-line import: {probes} probes, slowest {slowest:.3f}s")
    assert slowest < LIVENESS_BOUND, f"/healthz took {slowest:.3f}s"


async def test_an_upload_past_the_cap_is_a_413_and_nothing_is_recorded(
    small_limits: None, session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    content = b"a,b\n" * (1024 * 1024)  # 4 MiB > 2 MiB

    declared = await upload(payments_client, "big.csv", content)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: capped while streaming
        boundary = b"--B\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\n'
        for _ in range(64):
            yield b"a,b\n" * 16_384
        yield b"\r\n--B--\r\n"

    streamed = await payments_client.post(
        "/api/v1/statements",
        content=chunks(),
        headers={**auth(Role.IMPORTER), "Content-Type": "multipart/form-data; boundary=B"},
    )

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "upload_too_large"
    assert await statuses(session) == []


async def test_authentication_is_checked_before_the_body_is_read(
    payments_client: httpx.AsyncClient,
) -> None:
    pulled = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(200):  # would be 200 MiB
            pulled += 1
            yield b"x" * (1024 * 1024)

    for headers, status in (
        ({}, 401),
        (auth(Role.OPS), 403),
    ):
        pulled = 0
        response = await payments_client.post(
            "/api/v1/statements",
            content=chunks(),
            headers={**headers, "Content-Type": "multipart/form-data; boundary=B"},
        )
        assert response.status_code == status, response.text
        assert pulled <= 1  # at most the transport's first chunk, never the body
