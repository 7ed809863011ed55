"""Dispatch rules, in process, with a stand-in provider (the database and Redis are real)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from services.notify import dispatch
from services.notify.providers import Outcome, StatusReport
from shared.db import unit_of_work
from shared.models import SmsAttempt, SmsOutbox, SmsStatus
from shared.pii import decrypt_mobile, mobile_hash
from shared.sms import after_commit_ids, queue_sms, wait_for_enqueues
from tests.notify.helpers import PrivateRedis, StandInProvider, queue_message

pytestmark = pytest.mark.usefixtures("broker", "fast_retries")


async def _row(message_id: int) -> SmsOutbox:
    async with unit_of_work() as session:
        row = await session.get(SmsOutbox, message_id)
        assert row is not None
        return row


async def _attempts(message_id: int) -> list[SmsAttempt]:
    async with unit_of_work() as session:
        stmt = select(SmsAttempt).where(SmsAttempt.message_id == message_id).order_by("id")
        return list((await session.execute(stmt)).scalars())


async def _make_due(message_id: int) -> None:
    async with unit_of_work() as session:
        await session.execute(
            text("UPDATE sms_outbox SET next_attempt_at = now() WHERE id = :id"),
            {"id": message_id},
        )


async def test_send_is_enqueued_only_after_the_commit(broker: PrivateRedis) -> None:
    async with unit_of_work() as session:
        new_id = await queue_sms(
            session,
            event_key="filing:1:confirmed:v1",
            template="filing_confirmed",
            mobile="13812345678",
            params={"unit_name": "测试单位", "year": 2026},
        )
        await session.flush()
        await asyncio.sleep(0.2)
        assert broker.queued_task_ids() == []  # not before the commit
    wait_for_enqueues()
    assert broker.queued_task_ids() == [new_id]
    assert after_commit_ids(session) == [new_id]  # still readable after the commit


async def test_a_rolled_back_event_enqueues_nothing(broker: PrivateRedis) -> None:
    with pytest.raises(RuntimeError):
        async with unit_of_work() as session:
            await queue_sms(
                session,
                event_key="filing:1:returned:v1",
                template="filing_returned",
                mobile="13812345678",
                params={"unit_name": "测试单位", "year": 2026, "reason": "金额有误"},
            )
            raise RuntimeError("the event failed")
    wait_for_enqueues()
    assert broker.queued_task_ids() == []


async def test_the_same_event_queues_one_message() -> None:
    first = await queue_message(event_key="filing:7:confirmed:v1")
    async with unit_of_work() as session:
        again = await queue_sms(
            session,
            event_key="filing:7:confirmed:v1",
            template="filing_confirmed",
            mobile="13812345678",
            params={"unit_name": "测试单位", "year": 2026},
        )
    assert first and again is None


async def test_mobile_is_stored_encrypted_masked_and_hashed() -> None:
    message_id = await queue_message(mobile="13812345678")
    row = await _row(message_id)
    assert row.mobile == "138****5678"
    assert row.mobile_ciphertext is not None and b"13812345678" not in row.mobile_ciphertext
    assert row.mobile_key_id == "dev1"
    assert decrypt_mobile(row.mobile_ciphertext, row.mobile_key_id) == "13812345678"
    assert row.mobile_hash == mobile_hash("+86 138 1234 5678")
    async with unit_of_work() as session:
        dump = await session.execute(text("SELECT row_to_json(o)::text FROM sms_outbox o"))
        assert "12345678" not in dump.scalar_one()


async def test_message_keeps_template_version_body_and_segments() -> None:
    short = await queue_message(event_key="a", params={"unit_name": "单位", "year": 2026})
    long_reason = "数据有误" * 30
    long = await queue_message(
        event_key="b",
        template="filing_returned",
        params={"unit_name": "单位", "year": 2026, "reason": long_reason},
    )
    row_short, row_long = await _row(short), await _row(long)
    assert row_short.template_version == 1 and row_short.segments == 1
    assert long_reason in row_long.body
    # 67 characters per part, the 【832平台】 signature the provider prepends included
    assert row_long.segments == -(-len("【832平台】" + row_long.body) // 67)
    assert not row_long.body.startswith("【")  # the provider adds the signature, not the text
    assert row_long.segments >= 3


async def test_sent_once_with_one_attempt() -> None:
    provider = StandInProvider()
    message_id = await queue_message()
    assert await dispatch.send_message(message_id, [provider]) == "sent"
    assert await dispatch.send_message(message_id, [provider]) == "not_claimed"
    row = await _row(message_id)
    assert row.status == SmsStatus.SENT and row.attempts == 1
    assert row.provider == "standin" and row.provider_message_id == "standin-1"
    assert provider.calls[0].mobile == "13812345678"
    assert provider.calls[0].message_id == message_id
    assert [a.outcome for a in await _attempts(message_id)] == ["sent"]


async def test_retry_twice_then_sent_three_attempts() -> None:
    provider = StandInProvider(script=[Outcome.RETRY, Outcome.RETRY])
    message_id = await queue_message()
    for _ in range(3):
        await _make_due(message_id)
        await dispatch.send_message(message_id, [provider])
    row = await _row(message_id)
    assert row.status == SmsStatus.SENT and row.attempts == 3
    assert [a.outcome for a in await _attempts(message_id)] == ["retry", "retry", "sent"]


async def test_permanent_error_fails_after_one_attempt() -> None:
    provider = StandInProvider(script=[Outcome.PERMANENT])
    message_id = await queue_message()
    assert await dispatch.send_message(message_id, [provider]) == "failed"
    await _make_due(message_id)
    assert await dispatch.send_message(message_id, [provider]) == "not_claimed"
    row = await _row(message_id)
    assert row.status == SmsStatus.FAILED and row.attempts == 1
    assert row.last_error_code == "E_permanent" and row.last_error == "错误 permanent"


async def test_retries_exhausted_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import get_settings

    monkeypatch.setattr(get_settings(), "sms_max_attempts", 2)
    provider = StandInProvider(script=[Outcome.RETRY] * 5)
    message_id = await queue_message()
    for _ in range(4):
        await _make_due(message_id)
        await dispatch.send_message(message_id, [provider])
    row = await _row(message_id)
    assert row.status == SmsStatus.FAILED and row.attempts == 2
    assert "重试2次" in (row.last_error or "")


async def test_wait_does_not_use_the_retry_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import get_settings

    monkeypatch.setattr(get_settings(), "sms_max_attempts", 1)
    provider = StandInProvider(script=[Outcome.WAIT, Outcome.WAIT])
    message_id = await queue_message()
    for _ in range(3):
        await _make_due(message_id)
        await dispatch.send_message(message_id, [provider])
    row = await _row(message_id)
    assert row.status == SmsStatus.SENT and row.attempts == 3


async def test_failover_to_the_second_provider_with_cooldown() -> None:
    first = StandInProvider(name="first", script=[Outcome.RETRY])
    second = StandInProvider(name="second")
    message_id = await queue_message()
    assert await dispatch.send_message(message_id, [first, second]) == "retry"
    row = await _row(message_id)
    assert row.status == SmsStatus.PENDING  # due at once on the next provider
    assert await dispatch.send_message(message_id, [first, second]) == "sent"
    other = await queue_message(event_key="other")
    assert await dispatch.send_message(other, [first, second]) == "sent"
    assert len(first.calls) == 1  # cooling down: skipped for the next message too
    assert [(await _row(i)).provider for i in (message_id, other)] == ["second", "second"]
    assert [a.provider for a in await _attempts(message_id)] == ["first", "second"]


async def test_unknown_is_queried_and_not_sent_twice() -> None:
    provider = StandInProvider(script=[Outcome.UNKNOWN])
    message_id = await queue_message()
    assert await dispatch.send_message(message_id, [provider]) == "unknown"
    assert (await _row(message_id)).status == SmsStatus.UNKNOWN
    assert await dispatch.send_message(message_id, [provider]) == "not_claimed"
    assert await dispatch.settle_message(message_id, [provider]) == "sent"
    row = await _row(message_id)
    assert row.status == SmsStatus.SENT and row.provider_message_id == "standin-1"
    assert len(provider.calls) == 1
    assert [(a.kind, a.outcome) for a in await _attempts(message_id)] == [
        ("send", "unknown"),
        ("query", "found"),
    ]


async def test_unknown_without_a_record_is_sent_again() -> None:
    provider = StandInProvider(script=[Outcome.UNKNOWN])
    message_id = await queue_message()
    await dispatch.send_message(message_id, [provider])
    provider.accepted.clear()  # the provider never got it
    assert await dispatch.settle_message(message_id, [provider]) == "resend"
    assert await dispatch.send_message(message_id, [provider]) == "sent"
    assert len(provider.calls) == 2


async def test_failing_query_keeps_unknown() -> None:
    provider = StandInProvider(script=[Outcome.UNKNOWN], query_error=True)
    message_id = await queue_message()
    await dispatch.send_message(message_id, [provider])
    assert await dispatch.settle_message(message_id, [provider]) == "query_failed"
    assert (await _row(message_id)).status == SmsStatus.UNKNOWN
    assert len(provider.calls) == 1


async def test_sending_past_its_lease_is_settled_by_the_sweep() -> None:
    """A worker died after calling the provider: the row stays `sending`; once the lease ran
    out the sweep asks the provider, which has the message: sent, no second call."""
    provider = StandInProvider()
    message_id = await queue_message()
    async with unit_of_work() as session:  # what the dead worker did: claim, attempt, call
        from services.notify import repository as repo

        claim = await repo.claim_for_send(session, message_id, 60)
        assert claim is not None
        await repo.add_attempt(session, message_id, claim.attempts, "send", provider.name)
    provider.accepted[message_id] = "standin-x"
    assert (await dispatch.sweep([provider])) == {}  # lease not over: nothing to do
    await _make_due(message_id)
    assert await dispatch.sweep([provider]) == {"settle_sent": 1}
    row = await _row(message_id)
    assert row.status == SmsStatus.SENT and row.provider_message_id == "standin-x"
    assert provider.calls == []
    assert [a.outcome for a in await _attempts(message_id)] == ["lost", "found"]


async def test_sweep_sends_due_pending_rows() -> None:
    provider = StandInProvider()
    ids = [await queue_message(event_key=f"e{i}") for i in range(3)]
    assert await dispatch.sweep([provider]) == {"sent": 3}
    assert sorted(r.message_id for r in provider.calls) == ids


async def test_concurrent_senders_send_each_row_once() -> None:
    provider = StandInProvider()
    ids = [await queue_message(event_key=f"c{i}") for i in range(30)]
    await asyncio.gather(
        *(dispatch.send_message(i, [provider]) for i in ids for _ in range(3)),
        dispatch.sweep([provider]),
    )
    assert sorted(r.message_id for r in provider.calls) == ids


async def test_receipts_duplicate_and_early_give_one_delivered() -> None:
    provider = StandInProvider()
    message_id = await queue_message()
    early = StatusReport("standin", "standin-1", None, True, "DELIVERED", None)
    async with unit_of_work() as session:  # before the send: nothing to match yet
        assert await dispatch.record_receipts(session, [early]) == 0
    await dispatch.send_message(message_id, [provider])
    row = await _row(message_id)
    assert row.status == SmsStatus.DELIVERED and row.delivered_at is not None
    async with unit_of_work() as session:
        again = [early, StatusReport("standin", "standin-1", message_id, False, "X", None)]
        assert await dispatch.record_receipts(session, again) == 0
    assert (await _row(message_id)).status == SmsStatus.DELIVERED


async def test_undelivered_receipt_then_delivered() -> None:
    provider = StandInProvider()
    message_id = await queue_message()
    await dispatch.send_message(message_id, [provider])
    async with unit_of_work() as session:
        fail = StatusReport("standin", "standin-1", message_id, False, "MK:0001", None)
        assert await dispatch.record_receipts(session, [fail]) == 1
    row = await _row(message_id)
    assert row.status == SmsStatus.UNDELIVERED and row.last_error_code == "MK:0001"


async def test_key_rotation_new_rows_use_the_first_key_old_rows_still_decrypt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import SecretStr

    from shared.settings import DEV_SMS_MOBILE_KEYS, get_settings

    old = await queue_message(event_key="k-old", mobile="13812345678")
    rotated = "k2:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=," + DEV_SMS_MOBILE_KEYS
    monkeypatch.setattr(get_settings(), "sms_mobile_keys", SecretStr(rotated))
    new = await queue_message(event_key="k-new", mobile="13912345678")
    provider = StandInProvider()
    for message_id in (old, new):
        assert await dispatch.send_message(message_id, [provider]) == "sent"
    assert [(await _row(i)).mobile_key_id for i in (old, new)] == ["dev1", "k2"]
    assert [c.mobile for c in provider.calls] == ["13812345678", "13912345678"]
