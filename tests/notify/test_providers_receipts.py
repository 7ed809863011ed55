"""Receipt parsing: the providers' documented batch callback bodies → StatusReports."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.notify.providers import AliyunProvider, ReceiptFormatError, TencentProvider

BEIJING = ZoneInfo("Asia/Shanghai")

aliyun = AliyunProvider(access_key_id="id", access_key_secret="secret")
tencent = TencentProvider(secret_id="id", secret_key="key", sdk_app_id="1400000000")

# The documented SmsReport batch push (several reports per request, JSON array).
ALIYUN_BATCH = [
    {
        "phone_number": "1381111****",
        "send_time": "2017-01-01 00:00:00",
        "report_time": "2017-01-01 00:00:05",
        "success": True,
        "err_code": "DELIVERED",
        "err_msg": "用户接收成功",
        "sms_size": "1",
        "biz_id": "12345",
        "out_id": "67890",
    },
    {
        "phone_number": "1392222****",
        "send_time": "2017-01-01 00:00:00",
        "report_time": "2017-01-01 00:01:00",
        "success": "false",
        "err_code": "MK:0001",
        "err_msg": "用户接收失败",
        "sms_size": "2",
        "biz_id": "12346",
        "out_id": "",
    },
]

# The documented Tencent status callback.
TENCENT_BATCH = [
    {
        "user_receive_time": "2015-10-17 08:03:04",
        "nationcode": "86",
        "mobile": "13xxxxxxxxx",
        "report_status": "SUCCESS",
        "errmsg": "DELIVRD",
        "description": "用户短信送达成功",
        "sid": "2019:-7361471580445698345",
    },
    {
        "user_receive_time": "2015-10-17 08:03:09",
        "nationcode": "86",
        "mobile": "13xxxxxxxxx",
        "report_status": "FAIL",
        "errmsg": "UNDELIV",
        "description": "用户短信未送达",
        "sid": "2019:-7361471580445698346",
    },
]


def test_aliyun_batch() -> None:
    ok, bad = aliyun.parse_receipts(ALIYUN_BATCH)
    assert ok.provider == "aliyun"
    assert ok.provider_message_id == "12345"
    assert ok.message_id == 67890
    assert ok.delivered is True
    assert ok.error_code is None
    assert ok.at == datetime(2017, 1, 1, 0, 0, 5, tzinfo=BEIJING)
    assert bad.provider_message_id == "12346"
    assert bad.message_id is None  # no out_id: matched by biz_id
    assert bad.delivered is False
    assert bad.error_code == "MK:0001"


def test_tencent_batch() -> None:
    ok, bad = tencent.parse_receipts(TENCENT_BATCH)
    assert ok.provider == "tencent"
    assert ok.provider_message_id == "2019:-7361471580445698345"
    assert ok.message_id is None  # the callback carries no SessionContext: matched by sid
    assert ok.delivered is True
    assert ok.at == datetime(2015, 10, 17, 8, 3, 4, tzinfo=BEIJING)
    assert bad.delivered is False
    assert bad.error_code == "UNDELIV"


def test_duplicates_are_reported_as_they_come() -> None:
    """The same report twice gives two equal StatusReports: deduplication (one `delivered`)
    is the receipt endpoint's job, keyed by provider id."""
    reports = aliyun.parse_receipts([ALIYUN_BATCH[0], ALIYUN_BATCH[0]])
    assert reports[0] == reports[1]


def test_single_object_and_malformed_items() -> None:
    assert len(aliyun.parse_receipts(ALIYUN_BATCH[0])) == 1
    assert len(tencent.parse_receipts(TENCENT_BATCH[0])) == 1
    # items that cannot be matched to anything are skipped, the others kept
    mixed = [42, "x", {"success": True}, ALIYUN_BATCH[0]]
    assert [r.provider_message_id for r in aliyun.parse_receipts(mixed)] == ["12345"]
    assert tencent.parse_receipts([{"report_status": "SUCCESS"}]) == []
    odd = dict(TENCENT_BATCH[0], report_status="???", user_receive_time="yesterday")
    [report] = tencent.parse_receipts([odd])
    assert report.delivered is None and report.at is None


@pytest.mark.parametrize("payload", ["[]x", 17, None, "text"])
def test_not_a_batch_is_refused(payload: object) -> None:
    with pytest.raises(ReceiptFormatError):
        aliyun.parse_receipts(payload)
    with pytest.raises(ReceiptFormatError):
        tencent.parse_receipts(payload)


def test_empty_batch() -> None:
    assert aliyun.parse_receipts([]) == []
    assert tencent.parse_receipts([]) == []
