"""Self-service payment confirmation (货款确认) through the HTTP API, on real PostgreSQL: the
instant match, the hand-off with receipts, the review, resubmission, non-settlement accounts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Role
from shared.pii import decrypt_mobile
from shared.settings import get_settings
from tests.conftest import auth
from tests.factories import make_unit
from tests.payments.confirmation_helpers import (
    assert_money_conserved,
    at,
    bank_lines,
    confirm,
    handoff,
    image,
    line,
    payment,
    png_bomb,
    policy_with_cutoff,
    scenario,
    voucher_files,
)


@pytest.fixture
def voucher_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "vouchers"
    monkeypatch.setattr(get_settings(), "voucher_dir", str(root))
    return root


async def order_json(client: httpx.AsyncClient, order_no: str) -> dict:
    response = await client.get(f"/api/v1/orders/{order_no}", headers=auth(Role.OPS))
    assert response.status_code == 200, response.text
    return response.json()


async def sms_rows(session: AsyncSession) -> list[tuple[str, str, str]]:
    rows = (
        await session.execute(
            text(
                "SELECT event_key, template, mobile_ciphertext, mobile_key_id"
                " FROM sms_outbox ORDER BY id"
            )
        )
    ).all()
    await session.commit()
    # the number is stored encrypted (the `mobile` column holds its masked form)
    return [
        (r.event_key, r.template, decrypt_mobile(r.mobile_ciphertext, r.mobile_key_id))
        for r in rows
    ]


async def test_payee_accounts_are_masked_with_the_none_of_the_above_rule(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    s = await scenario(session, other_account=True)
    response = await payments_client.get(
        f"/api/v1/orders/{s.order.order_no}/payee-accounts", headers=s.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    settlement = body["accounts"][0]
    assert settlement["is_settlement"] is True
    assert settlement["account_no"] == "1001 **** * 7931"
    assert settlement["holder_name"] != "行唐县李先森农产品店" and "*" in settlement["holder_name"]
    assert [a["is_settlement"] for a in body["accounts"]] == [True, False]
    # no policy for the order's year: 以上都不是 is not offered
    assert body["none_of_the_above"] == {
        "allowed": False,
        "reason": "policy_missing",
        "cutoff": None,
    }


async def test_bare_transfer_without_code_is_confirmed_and_the_order_is_paid_at_once(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    s = await scenario(session)
    await bank_lines([line(s.settlement.account_no, "100.00", "B1")], session)
    # full-width digits, spaces and dashes in the account; 有限责任公司 for 有限公司
    response = await confirm(
        payments_client,
        s,
        [
            payment(
                "100.00",
                payer_name="广州市某某食品有限责任公司",
                payer_account_no="6222-0202 0000 1234 ５６７",
            )
        ],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "matched"
    assert [e["result"] for e in body["entries"]] == ["matched"]
    assert body["order"]["status"] == "paid"
    order = await order_json(payments_client, s.order.order_no)
    assert order["status"] == "paid" and order["paid_amount"] == "100.00"
    assert [a["source"] for a in order["allocations"]] == ["self_service"]
    assert order["timeline"][-1]["to_status"] == "paid"
    statement = await payments_client.get("/api/v1/statements/1", headers=auth(Role.OPS))
    assert (statement.json()["matched"], statement.json()["unmatched"]) == (1, 0)
    await assert_money_conserved(session)


async def test_two_payments_for_one_order(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    s = await scenario(session)
    acct = s.settlement.account_no
    await bank_lines(
        [line(acct, "60.00", "P1"), line(acct, "40.00", "P2", at="2024-04-03 09:00:00")], session
    )
    response = await confirm(
        payments_client, s, [payment("60.00"), payment("40.00", paid_on="2024-04-03")]
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "matched"
    assert [e["result"] for e in body["entries"]] == ["matched", "matched"]
    assert body["order"]["status"] == "paid"
    assert body["order"]["paid_amount"] == "100.00"
    await assert_money_conserved(session)


async def test_a_wrong_account_chosen_is_not_found_with_the_notices_advice(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    s = await scenario(session, other_account=True)
    await bank_lines([line(s.settlement.account_no, "100.00", "W1")], session)
    assert s.other_account is not None
    response = await confirm(payments_client, s, [payment("100.00")], s.other_account.id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "not_found"
    entry = body["entries"][0]
    assert entry["result"] == "not_found"
    assert "次日" in entry["advice"]
    assert body["order"]["status"] == "pending_payment"
    # outside the booking window (paid_on two weeks later) is not found either
    late = await confirm(payments_client, s, [payment("100.00", paid_on="2024-04-20")])
    assert late.json()["entries"][0]["result"] == "not_found"


async def test_two_identical_candidate_lines_are_never_guessed(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    s = await scenario(session)
    acct = s.settlement.account_no
    await bank_lines([line(acct, "100.00", "D1"), line(acct, "100.00", "D2")], session)
    response = await confirm(payments_client, s, [payment("100.00")])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "under_review"
    assert body["status_label"] == "审核中"
    assert body["entries"][0]["result"] == "ambiguous"
    assert body["order"]["status"] == "pending_payment"
    queue = await payments_client.get(
        "/api/v1/payment-confirmations?status=under_review", headers=auth(Role.OPS)
    )
    assert [c["id"] for c in queue.json()["items"]] == [body["id"]]
    tx_id = (
        await session.execute(text("SELECT id FROM bank_transactions WHERE bank_ref = 'D2'"))
    ).scalar_one()
    await session.commit()
    unnamed = await payments_client.post(
        f"/api/v1/payment-confirmations/{body['id']}/approve", json={}, headers=auth(Role.OPS)
    )
    assert unnamed.status_code == 409
    assert unnamed.json()["code"] == "bank_transaction_required"
    approved = await payments_client.post(
        f"/api/v1/payment-confirmations/{body['id']}/approve",
        json={"bank_transaction_id": tx_id, "note": "核对回单，为 D2"},
        headers=auth(Role.OPS),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "confirmed"
    assert approved.json()["order"]["status"] == "paid"
    order = await order_json(payments_client, s.order.order_no)
    assert [a["bank_transaction_id"] for a in order["allocations"]] == [tx_id]
    assert await sms_rows(session) == [
        (f"payment_confirmation:{body['id']}:confirmed:r1", "payment_confirmed", "13800000001")
    ]
    await assert_money_conserved(session)


async def test_cash_goes_to_customer_service_with_receipts_and_is_approved(
    session: AsyncSession, payments_client: httpx.AsyncClient, voucher_dir: Path
) -> None:
    s = await scenario(session)
    response = await confirm(
        payments_client, s, [payment("100.00", method="cash", payer_account_no="")]
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["entries"][0]["result"] == "handoff_required"
    assert body["status"] == "not_found"
    cid = body["id"]
    files = [
        ("回单1.jpg", image("JPEG", color=1)),
        ("回单2.png", image("PNG", color=2)),
        ("回单3.bmp", image("BMP", color=3)),
    ]
    handed = await handoff(payments_client, s, cid, files)
    assert handed.status_code == 200, handed.text
    detail = handed.json()
    assert detail["status"] == "under_review"
    assert sorted(v["content_type"] for v in detail["vouchers"]) == [
        "image/bmp",
        "image/jpeg",
        "image/png",
    ]
    assert len(voucher_files(voucher_dir)) == 3
    first = detail["vouchers"][0]
    for headers in (s.headers, auth(Role.OPS)):
        got = await payments_client.get(first["url"], headers=headers)
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/jpeg"
        assert got.content == files[0][1]
    approved = await payments_client.post(
        f"/api/v1/payment-confirmations/{cid}/approve",
        json={"bank_transaction_id": None, "note": "现金存款回单核实"},
        headers=auth(Role.OPS),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "confirmed"
    assert approved.json()["status_label"] == "货款确认成功"
    order = await order_json(payments_client, s.order.order_no)
    assert order["status"] == "paid"
    assert [(a["bank_transaction_id"], a["source"]) for a in order["allocations"]] == [
        (None, "review")
    ]
    assert [r[1] for r in await sms_rows(session)] == ["payment_confirmed"]
    # settled: approving again is a conflict
    again = await payments_client.post(
        f"/api/v1/payment-confirmations/{cid}/approve", json={}, headers=auth(Role.OPS)
    )
    assert again.status_code == 409
    await assert_money_conserved(session)


async def test_rejected_then_modified_and_resubmitted_then_approved(
    session: AsyncSession, payments_client: httpx.AsyncClient, voucher_dir: Path
) -> None:
    s = await scenario(session)
    created = await confirm(
        payments_client, s, [payment("90.00", method="cash", payer_account_no="")]
    )
    cid = created.json()["id"]
    assert (
        await handoff(payments_client, s, cid, [("a.png", image())], amount="90.00")
    ).status_code == 200
    rejected = await payments_client.post(
        f"/api/v1/payment-confirmations/{cid}/reject",
        json={"reason": "金额与回单不符"},
        headers=auth(Role.OPS),
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "failed"
    assert rejected.json()["status_label"] == "货款确认失败"
    assert rejected.json()["failure_reason"] == "金额与回单不符"
    # only a failed one can be modified; the buyer corrects the amount
    resubmitted = await payments_client.put(
        f"/api/v1/payment-confirmations/{cid}",
        json={
            "account_id": s.settlement.id,
            "payments": [payment("100.00", method="cash", payer_account_no="")],
            "remark": "金额已更正为 100 元",
        },
        headers=s.headers,
    )
    assert resubmitted.status_code == 200, resubmitted.text
    body = resubmitted.json()
    assert body["status"] == "under_review" and body["round"] == 2
    again = await payments_client.put(
        f"/api/v1/payment-confirmations/{cid}",
        json={"account_id": s.settlement.id, "payments": [payment("100.00", method="cash")]},
        headers=s.headers,
    )
    assert again.status_code == 409
    approved = await payments_client.post(
        f"/api/v1/payment-confirmations/{cid}/approve", json={}, headers=auth(Role.OPS)
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "confirmed"
    assert body["order"]["paid_amount"] == "100.00"
    history = body["history"]
    assert [(r["round"], r["decision"], r["decision_note"]) for r in history] == [
        (1, "failed", "金额与回单不符"),
        (2, "confirmed", None),
    ]
    assert [e["amount"] for e in history[0]["entries"] if e["kind"] == "declared"] == ["90.00"]
    assert len(history[0]["vouchers"]) == 1
    assert [r[:2] for r in await sms_rows(session)] == [
        (f"payment_confirmation:{cid}:failed:r1", "payment_failed"),
        (f"payment_confirmation:{cid}:confirmed:r2", "payment_confirmed"),
    ]
    await assert_money_conserved(session)


async def test_non_settlement_account_before_the_cutoff_is_handed_off_and_approved(
    session: AsyncSession, payments_client: httpx.AsyncClient, voucher_dir: Path
) -> None:
    await policy_with_cutoff(session, 2023, date(2023, 8, 3))
    s = await scenario(session, placed_at=at(2023, 7, 1))
    accounts = await payments_client.get(
        f"/api/v1/orders/{s.order.order_no}/payee-accounts", headers=s.headers
    )
    assert accounts.json()["none_of_the_above"]["allowed"] is True
    created = await confirm(payments_client, s, [payment("100.00")], None)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["none_of_the_above"] is True
    assert body["entries"][0]["result"] == "handoff_required"
    assert body["entries"][0]["reason"] == "non_settlement_account"
    handed = await handoff(
        payments_client, s, body["id"], [("r.png", image())], payer_account_no="6222020200001234567"
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["status"] == "under_review"
    approved = await payments_client.post(
        f"/api/v1/payment-confirmations/{body['id']}/approve", json={}, headers=auth(Role.OPS)
    )
    assert approved.json()["order"]["status"] == "paid"


async def test_non_settlement_account_after_the_cutoff_is_refused_with_the_advice(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    await policy_with_cutoff(session, 2024, date(2023, 8, 3))
    s = await scenario(session, placed_at=at(2024, 4, 1), code="f54yxn")
    accounts = await payments_client.get(
        f"/api/v1/orders/{s.order.order_no}/payee-accounts", headers=s.headers
    )
    assert accounts.json()["none_of_the_above"] == {
        "allowed": False,
        "reason": "placed_after_cutoff",
        "cutoff": "2023-08-03",
    }
    refused = await confirm(payments_client, s, [payment("100.00")], None)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "non_settlement_after_cutoff"
    assert "f54yxn" in problem["detail"] and "结算账户" in problem["detail"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("151 files", "too_many_files"),
        ("5 MiB + 1", "voucher_too_large"),
        ("pdf named jpg", "voucher_not_image"),
        ("png bomb", "voucher_too_large"),
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_stored(
    case: str,
    code: str,
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    voucher_dir: Path,
) -> None:
    s = await scenario(session)
    created = await confirm(
        payments_client, s, [payment("100.00", method="cash", payer_account_no="")]
    )
    cid = created.json()["id"]
    good = ("ok.png", image())
    if case == "151 files":
        files = [(f"{i}.png", image(color=i)) for i in range(151)]
    elif case == "5 MiB + 1":
        files = [good, ("big.jpg", b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024 - 2))]
    elif case == "pdf named jpg":
        files = [good, ("receipt.jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")]
    else:
        files = [good, ("bomb.png", png_bomb())]
    response = await handoff(payments_client, s, cid, files)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert voucher_files(voucher_dir) == []
    count = (await session.execute(text("SELECT count(*) FROM payment_vouchers"))).scalar_one()
    await session.commit()
    assert count == 0
    detail = await payments_client.get(f"/api/v1/payment-confirmations/{cid}", headers=s.headers)
    assert detail.json()["status"] == "not_found"


async def test_another_unit_can_read_confirm_or_download_nothing(
    session: AsyncSession, payments_client: httpx.AsyncClient, voucher_dir: Path
) -> None:
    s = await scenario(session)
    created = await confirm(
        payments_client, s, [payment("100.00", method="cash", payer_account_no="")]
    )
    cid = created.json()["id"]
    handed = await handoff(payments_client, s, cid, [("r.png", image())])
    voucher_url = handed.json()["vouchers"][0]["url"]
    # a superior of the buyer is another unit too for the confirmation itself
    stranger = await make_unit(session, "另一单位")
    await session.commit()
    other = auth(Role.UNIT, stranger.id)
    no = s.order.order_no
    calls = [
        payments_client.get(f"/api/v1/orders/{no}", headers=other),
        payments_client.get(f"/api/v1/orders/{no}/payee-accounts", headers=other),
        payments_client.post(
            f"/api/v1/orders/{no}/payment-confirmations",
            json={"account_id": s.settlement.id, "payments": [payment("100.00")]},
            headers=other,
        ),
        payments_client.post(
            f"/api/v1/orders/{no}/send-payee-sms", json={"mobile": "13900000000"}, headers=other
        ),
        payments_client.get(f"/api/v1/payment-confirmations/{cid}", headers=other),
        payments_client.get(voucher_url, headers=other),
        payments_client.put(
            f"/api/v1/payment-confirmations/{cid}",
            json={"account_id": s.settlement.id, "payments": [payment("100.00")]},
            headers=other,
        ),
        handoff(payments_client, s, cid, [("x.png", image(color=9))], headers=other),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 404, (response.request.url, response.text)
    listing = await payments_client.get("/api/v1/payment-confirmations", headers=other)
    assert listing.json()["items"] == []
    # operations may not confirm for the buyer; the platform may not read vouchers
    assert (await payments_client.get(voucher_url, headers=auth(Role.PLATFORM))).status_code == 403
    assert len(voucher_files(voucher_dir)) == 1


async def test_files_of_an_upload_whose_rows_do_not_commit_are_removed(
    session: AsyncSession, payments_client: httpx.AsyncClient, voucher_dir: Path
) -> None:
    """150 receipts stored; one more is refused after its file was put in place (the
    confirmation's limit is checked with the rows): the new file is removed again, the 150 and
    an image they share stay."""
    s = await scenario(session)
    created = await confirm(
        payments_client, s, [payment("100.00", method="cash", payer_account_no="")]
    )
    cid = created.json()["id"]
    first = [(f"{i}.png", image(color=i, size=(4, 4 + i))) for i in range(150)]
    assert (await handoff(payments_client, s, cid, first)).status_code == 200
    assert len(voucher_files(voucher_dir)) == 150
    extra = await handoff(payments_client, s, cid, [first[0], ("new.png", image(size=(9, 9)))])
    assert extra.status_code == 422
    assert extra.json()["code"] == "too_many_files"
    assert len(voucher_files(voucher_dir)) == 150
    count = (await session.execute(text("SELECT count(*) FROM payment_vouchers"))).scalar_one()
    await session.commit()
    assert count == 150


async def test_a_code_suggestion_line_is_claimed_by_the_buyer_and_its_review_case_closes(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    s = await scenario(session, code="k7m2qp")
    # one character off the order's code, same payee and amount: review `code_suggestion`
    await bank_lines([line(s.settlement.account_no, "100.00", "S1", remark="k7m2qa")], session)
    cases = await payments_client.get(
        "/api/v1/review-cases?reason=code_suggestion&status=open", headers=auth(Role.OPS)
    )
    [case] = cases.json()["items"]
    response = await confirm(payments_client, s, [payment("100.00")])
    assert response.json()["status"] == "matched", response.text
    assert response.json()["order"]["status"] == "paid"
    closed = await payments_client.get("/api/v1/review-cases", headers=auth(Role.OPS))
    assert [(c["id"], c["status"]) for c in closed.json()["items"]] == [(case["id"], "allocated")]
    late = await payments_client.post(
        f"/api/v1/review-cases/{case['id']}/resolve",
        json={"action": "allocate", "order_no": s.order.order_no, "note": "迟到的处理"},
        headers=auth(Role.OPS),
    )
    assert late.status_code == 409
    await assert_money_conserved(session)


async def test_a_payer_account_with_letters_needs_the_hand_off(
    session: AsyncSession, payments_client: httpx.AsyncClient
) -> None:
    s = await scenario(session)
    response = await confirm(
        payments_client, s, [payment("100.00", payer_account_no="GZ-ABC-000123")]
    )
    body = response.json()
    assert body["entries"][0]["result"] == "handoff_required"
    assert body["entries"][0]["reason"] == "payer_account_invalid"
    assert body["status"] == "not_found"


async def test_receipts_for_another_non_settlement_account_follow_the_cutoff(
    session: AsyncSession, payments_client: httpx.AsyncClient, voucher_dir: Path
) -> None:
    """Choosing one of the supplier's other accounts finds nothing (its credits are not the
    platform's statements); handing it off is the non-settlement case: refused after the
    cut-off, with the advice."""
    await policy_with_cutoff(session, 2024, date(2023, 8, 3))
    s = await scenario(session, other_account=True, placed_at=at(2024, 4, 1))
    assert s.other_account is not None
    created = await confirm(payments_client, s, [payment("100.00")], s.other_account.id)
    assert created.json()["status"] == "not_found"
    refused = await handoff(payments_client, s, created.json()["id"], [("r.png", image())])
    assert refused.status_code == 409
    assert refused.json()["code"] == "non_settlement_after_cutoff"
    assert voucher_files(voucher_dir) == []


async def test_bad_hand_off_fields_are_422_not_500(
    session: AsyncSession, payments_client: httpx.AsyncClient, voucher_dir: Path
) -> None:
    s = await scenario(session)
    created = await confirm(
        payments_client, s, [payment("100.00", method="cash", payer_account_no="")]
    )
    url = f"/api/v1/payment-confirmations/{created.json()['id']}/handoff"
    base = {"payer_name": "张三", "amount": "100.00", "paid_on": "2024-04-02"}
    for bad in (
        {"amount": "-5"},
        {"amount": "1.234"},
        {"paid_on": "yesterday"},
        {"remark": "x" * 301},
        {"remark": "bad\x00remark"},
        {"payer_name": ""},
    ):
        response = await payments_client.post(
            url,
            data={**base, **bad},
            files=[("files", ("../../odd.png", image()))],
            headers=s.headers,
        )
        assert response.status_code == 422, (bad, response.text)
    no_files = await payments_client.post(url, data=base, headers=s.headers)
    assert no_files.status_code == 422
    assert voucher_files(voucher_dir) == []
