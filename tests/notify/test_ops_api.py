"""Operations API of the notify service, receipt endpoints, templates, reminders, purge."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, text, update

from services.notify import dispatch, reminders, service
from services.notify.providers import LogProvider, Outcome
from shared.db import unit_of_work
from shared.models import AuditLog, SmsOutbox, SmsStatus
from shared.settings import Settings, get_settings
from tests.conftest import auth
from tests.factories import make_policy, make_submitted_filing, make_unit
from tests.notify.helpers import StandInProvider, queue_message

pytestmark = pytest.mark.usefixtures("broker", "fast_retries")

OPS = auth("ops")
TOKEN = "receipt-secret"


async def _status(message_id: int) -> SmsStatus:
    async with unit_of_work() as session:
        row = await session.get(SmsOutbox, message_id)
        assert row is not None
        return row.status


async def test_messages_are_listed_masked_with_filters_and_pages(
    notify_client: httpx.AsyncClient,
) -> None:
    ids = [await queue_message(event_key=f"l{i}", mobile="13812345678") for i in range(3)]
    await dispatch.send_message(ids[0], [StandInProvider(script=[Outcome.PERMANENT])])
    page = (await notify_client.get("/api/v1/sms/messages?limit=2", headers=OPS)).json()
    assert [m["id"] for m in page["items"]] == [ids[2], ids[1]]
    assert page["items"][0]["mobile"] == "138****5678"
    rest = await notify_client.get(
        f"/api/v1/sms/messages?limit=2&cursor={page['next_cursor']}", headers=OPS
    )
    assert [m["id"] for m in rest.json()["items"]] == [ids[0]]
    failed = await notify_client.get("/api/v1/sms/messages?status=failed", headers=OPS)
    assert [m["id"] for m in failed.json()["items"]] == [ids[0]]
    assert "13812345678" not in (await notify_client.get("/api/v1/sms/messages", headers=OPS)).text


async def test_detail_has_body_and_every_attempt(notify_client: httpx.AsyncClient) -> None:
    message_id = await queue_message()
    provider = StandInProvider(script=[Outcome.RETRY])
    await dispatch.send_message(message_id, [provider])
    async with unit_of_work() as session:
        await session.execute(text("UPDATE sms_outbox SET next_attempt_at = now()"))
    await dispatch.send_message(message_id, [provider])
    detail = (await notify_client.get(f"/api/v1/sms/messages/{message_id}", headers=OPS)).json()
    assert detail["status"] == "sent" and "测试单位" in detail["body"]
    assert [(h["provider"], h["outcome"], h["error_code"]) for h in detail["history"]] == [
        ("standin", "retry", "E_retry"),
        ("standin", "sent", None),
    ]
    missing = await notify_client.get("/api/v1/sms/messages/999999", headers=OPS)
    assert missing.status_code == 404


async def test_resend_only_failed_or_undelivered_and_audited(
    notify_client: httpx.AsyncClient, broker: object
) -> None:
    message_id = await queue_message()
    provider = StandInProvider(script=[Outcome.PERMANENT])
    conflict = await notify_client.post(f"/api/v1/sms/messages/{message_id}/resend", headers=OPS)
    assert conflict.status_code == 409 and conflict.json()["code"] == "sms_not_resendable"
    await dispatch.send_message(message_id, [provider])
    resp = await notify_client.post(f"/api/v1/sms/messages/{message_id}/resend", headers=OPS)
    assert resp.status_code == 200 and resp.json()["status"] == "pending"
    assert await dispatch.send_message(message_id, [provider]) == "sent"
    async with unit_of_work() as session:
        logged = (await session.execute(select(AuditLog))).scalars().all()
    assert [(a.action, a.entity_id, a.changes) for a in logged] == [
        ("sms.resend", str(message_id), {"status": ["failed", "pending"]})
    ]


async def test_ops_role_only(notify_client: httpx.AsyncClient) -> None:
    for role in ("platform", "importer"):
        resp = await notify_client.get("/api/v1/sms/messages", headers=auth(role))
        assert resp.status_code == 403
    assert (await notify_client.get("/api/v1/sms/stats")).status_code == 401


async def test_stats_by_status_template_provider(notify_client: httpx.AsyncClient) -> None:
    a = await queue_message(event_key="s1")
    await queue_message(event_key="s2", template="payment_confirmed", params={"order_no": "X1"})
    await dispatch.send_message(a, [StandInProvider()])
    stats = (await notify_client.get("/api/v1/sms/stats", headers=OPS)).json()
    assert stats["by_status"] == {"sent": 1, "pending": 1}
    assert stats["by_template"] == {"filing_confirmed": 1, "payment_confirmed": 1}
    assert stats["by_provider"] == {"standin": 1}
    assert stats["segments_by_template"] == {"filing_confirmed": 1}


async def test_templates_are_versioned_and_messages_keep_their_version(
    notify_client: httpx.AsyncClient,
) -> None:
    listing = (await notify_client.get("/api/v1/sms/templates", headers=OPS)).json()["items"]
    names = {t["name"] for t in listing}
    assert "filing_returned" in names and "filing_reminder" in names
    old = await queue_message(event_key="t1")
    resp = await notify_client.put(
        "/api/v1/sms/templates/filing_confirmed",
        headers=OPS,
        json={
            "body": "【832平台】${unit_name}：${year}年度填报已确认。",
            "provider_codes": {"aliyun": "SMS_100", "tencent": "2001"},
        },
    )
    assert resp.status_code == 200
    assert resp.json()["version"] == 2 and resp.json()["provider_codes"]["aliyun"] == "SMS_100"
    new = await queue_message(event_key="t2")
    provider = StandInProvider(name="aliyun")
    await dispatch.send_message(new, [provider])
    assert provider.calls[0].template_code == "SMS_100"
    async with unit_of_work() as session:
        rows = {r.id: r for r in (await session.execute(select(SmsOutbox))).scalars()}
    assert rows[old].template_version == 1 and rows[new].template_version == 2
    assert rows[new].body == "【832平台】测试单位：2026年度填报已确认。"
    bad = await notify_client.put(
        "/api/v1/sms/templates/filing_confirmed", headers=OPS, json={"body": "${mobile}"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "template_unknown_param"
    unknown = await notify_client.put("/api/v1/sms/templates/nope", headers=OPS, json={"body": "x"})
    assert unknown.status_code == 404
    async with unit_of_work() as session:
        actions = (await session.execute(select(AuditLog.action))).scalars().all()
    assert actions == ["sms.template_updated"]


@pytest.fixture
def receipt_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(get_settings(), "sms_receipt_token", SecretStr(TOKEN))
    return TOKEN


async def test_receipts_need_the_token(
    notify_client: httpx.AsyncClient, receipt_token: str
) -> None:
    for url in ("/api/v1/sms/receipts/aliyun", "/api/v1/sms/receipts/aliyun?token=wrong"):
        resp = await notify_client.post(url, json=[])
        assert resp.status_code == 401 and resp.json()["code"] == "receipt_token_invalid"
    ok = await notify_client.post(f"/api/v1/sms/receipts/tencent?token={receipt_token}", json=[])
    assert ok.status_code == 200 and ok.json() == {"result": 0, "errmsg": "OK"}
    bad = await notify_client.post(
        f"/api/v1/sms/receipts/aliyun?token={receipt_token}", content=b"{not json"
    )
    assert bad.status_code == 422


async def test_aliyun_receipts_idempotent_and_early(
    notify_client: httpx.AsyncClient, receipt_token: str
) -> None:
    message_id = await queue_message()
    report = {
        "phone_number": "13812345678",
        "send_time": "2026-12-01 10:00:00",
        "report_time": "2026-12-01 10:00:05",
        "success": True,
        "err_code": "DELIVERED",
        "err_msg": "用户接收成功",
        "sms_size": "1",
        "biz_id": "900000000000000001^0",
        "out_id": str(message_id),
    }
    url = f"/api/v1/sms/receipts/aliyun?token={receipt_token}"
    for _ in range(2):  # before the send was recorded, and again
        resp = await notify_client.post(url, json=[report])
        assert resp.json() == {"code": 0, "msg": "接收成功"}
    assert await _status(message_id) == SmsStatus.DELIVERED
    assert await dispatch.send_message(message_id, [StandInProvider()]) == "not_claimed"


async def test_filing_reminders_n_and_m_days_before_once_per_day() -> None:
    deadline = date(2026, 3, 20)
    async with unit_of_work() as session:
        policy = await make_policy(session, 2026, "000000", filing_deadline=deadline)
        policy.reminder_days_first = 7
        policy.reminder_days_second = 1
        waiting = await make_unit(session, "未填报单位", contact_mobile="13700000001")
        filed = await make_unit(session, "已填报单位", contact_mobile="13700000002")
        await make_unit(session, "无联系人单位")
        await make_submitted_filing(session, filed, 2026)
    assert await reminders.queue_reminders(deadline - timedelta(days=7)) == 1
    assert await reminders.queue_reminders(deadline - timedelta(days=7)) == 0  # same day again
    assert await reminders.queue_reminders(deadline - timedelta(days=6)) == 0
    assert await reminders.queue_reminders(deadline - timedelta(days=1)) == 1
    async with unit_of_work() as session:
        rows = (await session.execute(select(SmsOutbox).order_by(SmsOutbox.id))).scalars().all()
    assert [r.event_key for r in rows] == [
        f"reminder:{waiting.id}:2026:2026-03-13",
        f"reminder:{waiting.id}:2026:2026-03-19",
    ]
    assert "2026年3月20日截止" in rows[0].body and rows[0].template == "filing_reminder"


async def test_mobiles_purged_after_retention() -> None:
    old = await queue_message(event_key="old")
    recent = await queue_message(event_key="recent")
    await dispatch.send_message(old, [LogProvider()])
    await dispatch.send_message(recent, [LogProvider()])
    async with unit_of_work() as session:
        await session.execute(
            update(SmsOutbox)
            .where(SmsOutbox.id == old)
            .values(created_at=SmsOutbox.created_at - timedelta(days=400))
        )
    assert await service.purge_old_mobiles() == 1
    async with unit_of_work() as session:
        rows = {r.id: r for r in (await session.execute(select(SmsOutbox))).scalars()}
    assert rows[old].mobile_ciphertext is None and rows[old].mobile_hash is None
    assert rows[old].purged_at is not None and "5678" not in rows[old].mobile
    assert rows[recent].mobile_ciphertext is not None


_LONE_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")  # not inside ids


def test_production_refuses_the_development_mobile_keys() -> None:
    secret = "x" * 40
    with pytest.raises(ValueError, match="SMS_MOBILE_KEYS"):
        Settings(environment="production", jwt_secret=secret)
    Settings(
        environment="production",
        jwt_secret=secret,
        sms_mobile_keys="k2:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
        sms_mobile_hash_key="y" * 40,
        flower_basic_auth="ops:" + "z" * 24,  # production refuses Flower's development login too
    )


async def test_no_mobile_number_in_log_records_of_dispatch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every record logged while queueing, sending (log provider), retrying, querying and taking
    receipts, at DEBUG on every logger, before any handler's masking filter."""
    with caplog.at_level(logging.DEBUG):
        a = await queue_message(event_key="log1", mobile="13812345678")
        await dispatch.send_message(a, [LogProvider()])
        b = await queue_message(event_key="log2", mobile="13812345678")
        await dispatch.send_message(b, [StandInProvider(script=[Outcome.UNKNOWN])])
        await dispatch.settle_message(b, [StandInProvider(query_error=True)])
    assert caplog.records
    leaked = [r.getMessage() for r in caplog.records if _LONE_MOBILE.search(r.getMessage())]
    assert leaked == []
