"""Helpers of the operability tests: a real uvicorn process on a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0, auth: tuple[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2, auth=auth)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def uvicorn_process(
    service: str, env: dict[str, str] | None = None, *, wait: bool = True
) -> Iterator[tuple[str, Path]]:
    """`uvicorn --factory services.<service>.app:create_app` on a free port, as `make run` starts
    it (uvicorn's default logging config, then ours); yields (base url, path of its output)."""
    from shared.settings import get_settings

    settings = get_settings()
    port = free_port()
    out = Path(tempfile.mkstemp(prefix=f"uvicorn-{service}-", suffix=".log")[1])
    full_env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        **(env or {}),
    }
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"services.{service}.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=full_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            if wait:
                wait_http(base + "/healthz")
            yield base, out
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    out.unlink(missing_ok=True)


@contextlib.contextmanager
def uvicorn_processes(services: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Several services at once (started together, then waited for): {service: base url}."""
    with contextlib.ExitStack() as stack:
        started = {s: stack.enter_context(uvicorn_process(s, wait=False)) for s in services}
        for base, _ in started.values():
            wait_http(base + "/healthz")
        yield {s: base for s, (base, _) in started.items()}


def read_until(path: Path, needle: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(encoding="utf-8", errors="replace")
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)
