"""`log` provider: writes the masked text to the log, always succeeds (default for `make run`)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from services.notify.providers.base import Outcome, SendRequest, SendResult, StatusReport
from shared.masking import mask_mobile, scrub

log = logging.getLogger("services.notify.providers.log")


class LogProvider:
    """Nothing leaves the process: the message is logged (mobile masked) and reported `SENT`.

    It keeps no record, so `query` answers [] and receipts never come; the dispatcher treats a
    `sent` log message as final.
    """

    name = "log"

    async def send(self, req: SendRequest) -> SendResult:
        msg_id = f"log-{uuid.uuid4().hex}"
        log.info(
            "SMS %s to %s (%s, message %s): 【%s】%s",
            msg_id,
            mask_mobile(req.mobile),
            req.template,
            req.message_id,
            req.sign_name,
            scrub(req.body),
        )
        return SendResult(outcome=Outcome.SENT, provider=self.name, provider_message_id=msg_id)

    async def query(
        self,
        *,
        message_id: int,
        mobile: str,
        provider_message_id: str | None,
        sent_at: datetime,
    ) -> list[StatusReport]:
        return []

    def parse_receipts(self, payload: Any) -> list[StatusReport]:
        return []
