"""Start Flower (the Celery monitor) with basic auth from the settings.

`python -m shared.flower [--port 5555] [--address 127.0.0.1]`. The credentials
(`FLOWER_BASIC_AUTH`, "user:password"; a development default, none in production) are handed to
Flower through its own environment variable, not the command line (no password in `ps`). With
basic auth on, both the page and the HTTP API answer to those credentials, so operations can
use the API without `FLOWER_UNAUTHENTICATED_API`.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared.settings import get_settings


def flower_command(port: int, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "shared.celery_app:celery_app",
        "flower",
        f"--port={port}",
        f"--address={address}",
    ]


def flower_env() -> dict[str, str]:
    env = dict(os.environ)
    env["FLOWER_BASIC_AUTH"] = get_settings().flower_basic_auth.get_secret_value()
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.flower")
    parser.add_argument("--port", type=int, default=5555)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    command = flower_command(args.port, args.address)
    os.execve(command[0], command, flower_env())
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
