"""`python -m services.notify.emulator --port P`: run the SMS provider emulator."""

from __future__ import annotations

import argparse
import json

import uvicorn

from services.notify.emulator.app import create_app
from services.notify.emulator.state import EmulatorConfig
from shared.masking import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SMS provider emulator (Aliyun + Tencent)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8005)
    parser.add_argument("--aliyun-receipt-url", default=None, help="where to push SmsReport")
    parser.add_argument("--tencent-receipt-url", default=None, help="where to push callbacks")
    parser.add_argument(
        "--receipt-header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="header sent with every receipt push (repeatable)",
    )
    parser.add_argument(
        "--aliyun-credentials",
        default=None,
        help='JSON {"access_key_id": "secret"} accepted (default: the emulator\'s own pair)',
    )
    parser.add_argument("--tencent-credentials", default=None, help='JSON {"secret_id": "key"}')
    parser.add_argument("--no-verify", action="store_true", help="accept unsigned requests")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    config = EmulatorConfig(
        aliyun_receipt_url=args.aliyun_receipt_url,
        tencent_receipt_url=args.tencent_receipt_url,
        receipt_headers=dict(h.split(":", 1) for h in args.receipt_header),
        verify_signatures=not args.no_verify,
    )
    if args.aliyun_credentials:
        config.aliyun_credentials = json.loads(args.aliyun_credentials)
    if args.tencent_credentials:
        config.tencent_credentials = json.loads(args.tencent_credentials)
    configure_logging(args.log_level)
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        log_level=args.log_level.lower(),
        timeout_graceful_shutdown=1,  # do not wait for held (timeout-after-accept) answers
    )


if __name__ == "__main__":
    main()
