"""Flower runs with basic auth from the settings: page and API answer to the credentials."""

from __future__ import annotations

import subprocess

import httpx

from shared.flower import flower_command, flower_env
from shared.settings import DEV_FLOWER_BASIC_AUTH, get_settings
from tests.ops.helpers import REPO, free_port, wait_http


def test_flower_page_and_api_answer_to_the_documented_credentials() -> None:
    assert get_settings().flower_basic_auth.get_secret_value() == DEV_FLOWER_BASIC_AUTH
    user, _, password = DEV_FLOWER_BASIC_AUTH.partition(":")
    port = free_port()
    proc = subprocess.Popen(
        flower_command(port, "127.0.0.1"),
        cwd=REPO,
        env=flower_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthcheck", timeout=60)
        assert httpx.get(base + "/api/tasks", timeout=10).status_code == 401
        assert httpx.get(base + "/", timeout=10).status_code == 401
        wrong = httpx.get(base + "/api/tasks", auth=(user, "wrong"), timeout=10)
        assert wrong.status_code == 401
        api = httpx.get(base + "/api/tasks", auth=(user, password), timeout=30)
        assert api.status_code == 200, api.text
        assert isinstance(api.json(), dict)
        page = httpx.get(base + "/", auth=(user, password), timeout=10)
        assert page.status_code == 200 and "Flower" in page.text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
