"""Matching by payment code (识别码): remark normalisation, allocation, and every review reason."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import matching
from shared.models import Order, OrderStatus
from tests.factories import make_order, make_supplier, make_unit
from tests.payments.helpers import open_order, outcome_of, store_rows

ACCOUNT = "35000188110599001"
OTHER_SETTLEMENT = "35000188110599002"


@pytest.fixture
async def order(session: AsyncSession) -> Order:
    """An open order of 1000.00 with code `fa4xy2`, payable to ACCOUNT; another supplier owns
    the settlement account OTHER_SETTLEMENT."""
    created = await open_order(session, account=ACCOUNT, code="fa4xy2", amount="1000.00")
    await make_supplier(session, "另一供应商", settlement_account=OTHER_SETTLEMENT)
    await session.commit()
    return created


async def run(client: httpx.AsyncClient, rows: list[dict[str, str]]) -> None:
    await store_rows(rows)
    await matching.match_pending()


async def reload(session: AsyncSession, order: Order) -> Order:
    await session.refresh(order)
    await session.commit()
    return order


async def review_case(session: AsyncSession, ref: str) -> tuple[str, int | None, int | None]:
    row = (
        await session.execute(
            text(
                "SELECT c.reason, c.order_id, c.suggested_order_id FROM review_cases c "
                "JOIN bank_transactions t ON t.id = c.bank_transaction_id WHERE t.bank_ref = :r"
            ),
            {"r": ref},
        )
    ).one()
    await session.commit()
    return row.reason, row.order_id, row.suggested_order_id


@pytest.mark.parametrize(
    "remark",
    [
        "fa4xy2",
        "FA4XY2",
        "货款ＦＡ４ＸＹ２谢谢",
        "付款 fa4 xy2",
        "f-5-4",  # too short: not a code (checked below as unmatched)
    ],
)
def test_remark_normalisation_finds_the_code(remark: str) -> None:
    found = matching.code_candidates(remark)
    if remark == "f-5-4":
        assert found == []
    else:
        assert found == ["fa4xy2"]


def test_separators_between_every_code_character_are_accepted() -> None:
    assert matching.code_candidates("f-5-4-y-x-n") == ["f54yxn"]
    assert matching.code_candidates("Ｆ５４ ＹＸＮ 货款") == ["f54yxn"]
    assert matching.code_candidates("f54  yxn") == []  # two separators break the code
    assert matching.code_candidates("账号35000188110599001") == []


def test_one_character_away_means_one_substitution_or_one_adjacent_swap() -> None:
    assert matching.one_character_away("b3x7kf", "b3x7kt")
    assert matching.one_character_away("3bx7kt", "b3x7kt")
    assert not matching.one_character_away("b3x7kt", "b3x7kt")
    assert not matching.one_character_away("x3b7kt", "b3x7kt")  # swap of non-neighbours
    assert not matching.one_character_away("b3x7ff", "b3x7kt")


async def test_exact_code_to_the_settlement_account_pays_the_order(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [{"ref": "R1", "account": ACCOUNT, "amount": "1000.00", "remark": "货款ＦＡ４ＸＹ２"}],
    )
    assert await outcome_of(session, "R1") == ("matched", None)
    order = await reload(session, order)
    assert (order.status, order.paid_amount) == (OrderStatus.PAID, 1000)


async def test_partial_payments_accumulate_until_the_order_is_paid(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [{"ref": "R1", "account": ACCOUNT, "amount": "400", "remark": "fa4xy2 第一笔"}],
    )
    order = await reload(session, order)
    assert (order.status, order.paid_amount) == (OrderStatus.PARTIALLY_PAID, 400)
    await run(
        payments_client,
        [{"ref": "R2", "account": ACCOUNT, "amount": "600", "remark": "FA4XY2 第二笔"}],
    )
    assert await outcome_of(session, "R1") == ("partial", None)
    assert await outcome_of(session, "R2") == ("matched", None)
    order = await reload(session, order)
    assert (order.status, order.paid_amount) == (OrderStatus.PAID, 1000)


async def test_overpayment_goes_to_review_without_consuming_the_outstanding_amount(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [
            {"ref": "R1", "account": ACCOUNT, "amount": "1500", "remark": "fa4xy2"},
            {"ref": "R2", "account": ACCOUNT, "amount": "1000", "remark": "fa4xy2"},
        ],
    )
    assert await outcome_of(session, "R1") == ("review", "overpayment")
    assert (await review_case(session, "R1"))[1] == order.id
    assert await outcome_of(session, "R2") == ("matched", None)


async def test_code_of_an_order_paid_earlier_in_the_same_batch_goes_to_review(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [
            {"ref": "R1", "account": ACCOUNT, "amount": "1000", "remark": "fa4xy2"},
            {"ref": "R2", "account": ACCOUNT, "amount": "10", "remark": "fa4xy2 补差"},
        ],
    )
    assert await outcome_of(session, "R2") == ("review", "order_already_paid")


async def test_code_of_a_cancelled_order_goes_to_review(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    order.status = OrderStatus.CANCELLED
    await session.commit()
    await run(
        payments_client, [{"ref": "R1", "account": ACCOUNT, "amount": "1000", "remark": "fa4xy2"}]
    )
    assert await outcome_of(session, "R1") == ("review", "order_cancelled")


async def test_payment_to_another_settlement_account_goes_to_review(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [{"ref": "R1", "account": OTHER_SETTLEMENT, "amount": "1000", "remark": "fa4xy2"}],
    )
    assert await outcome_of(session, "R1") == ("review", "payee_not_settlement_account")
    order = await reload(session, order)
    assert order.status == OrderStatus.PENDING_PAYMENT


async def test_two_different_codes_in_one_remark_go_to_review(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    buyer = await make_unit(session)
    supplier, settlement = await make_supplier(session, settlement_account="35000188110599003")
    await make_order(
        session,
        buyer=buyer,
        supplier=supplier,
        settlement=settlement,
        amount="50",
        payment_code="k7m2qp",
    )
    await session.commit()
    await run(
        payments_client,
        [{"ref": "R1", "account": ACCOUNT, "amount": "1000", "remark": "fa4xy2 k7m2qp"}],
    )
    assert await outcome_of(session, "R1") == ("review", "multiple_codes")


async def test_cash_deposit_goes_to_review_even_with_a_code(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [
            {
                "ref": "R1",
                "account": ACCOUNT,
                "amount": "1000",
                "remark": "现金存入 fa4xy2",
                "payer_account": "",
                "payer_name": "现金",
                "channel": "cash",
            },
            {
                "ref": "R2",
                "account": ACCOUNT,
                "amount": "1000",
                "remark": "现金 fa4xy2",
                "payer_account": "",
                "channel": "",
            },
        ],
    )
    assert await outcome_of(session, "R1") == ("review", "cash_deposit")
    assert await outcome_of(session, "R2") == ("review", "cash_deposit")
    assert (await review_case(session, "R1"))[1] == order.id


async def test_payer_account_with_letters_or_symbols_goes_to_review(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [
            {
                "ref": "R1",
                "account": ACCOUNT,
                "amount": "1000",
                "remark": "fa4xy2",
                "payer_account": "GZ-JM-0001A",
            }
        ],
    )
    assert await outcome_of(session, "R1") == ("review", "payer_account_invalid")


async def test_one_character_away_from_an_open_code_is_a_suggestion_never_applied(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [
            {"ref": "R1", "account": ACCOUNT, "amount": "1000", "remark": "fa4xy3"},  # typo
            {"ref": "R2", "account": ACCOUNT, "amount": "1000", "remark": "af4xy2"},  # swap
            {"ref": "R3", "account": ACCOUNT, "amount": "999", "remark": "fa4xy3"},  # amount
        ],
    )
    assert await outcome_of(session, "R1") == ("review", "code_suggestion")
    assert await review_case(session, "R1") == ("code_suggestion", None, order.id)
    assert await outcome_of(session, "R2") == ("review", "code_suggestion")
    assert await outcome_of(session, "R3") == ("unmatched", "no_known_code")
    order = await reload(session, order)
    assert order.status == OrderStatus.PENDING_PAYMENT


async def test_no_code_or_only_unknown_words_is_unmatched_for_self_service(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    await run(
        payments_client,
        [
            {"ref": "R1", "account": ACCOUNT, "amount": "1000", "remark": "货款"},
            {"ref": "R2", "account": ACCOUNT, "amount": "1000", "remark": "thanks 货款"},
        ],
    )
    assert await outcome_of(session, "R1") == ("unmatched", "no_code")
    assert await outcome_of(session, "R2") == ("unmatched", "no_known_code")
    count = (await session.execute(text("SELECT count(*) FROM review_cases"))).scalar_one()
    await session.commit()
    assert count == 0


async def test_bare_codes_are_settled_like_any_other_line(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    """Bare remarks (just the code) take the SQL path; the result is the rules' result: partial,
    then matched with the order paid at the booking time of the line that completed it."""
    await run(
        payments_client,
        [{"ref": "R1", "account": ACCOUNT, "amount": "300", "remark": "FA4XY2"}],
    )
    assert await outcome_of(session, "R1") == ("partial", None)
    await run(
        payments_client,
        [
            {
                "ref": "R2",
                "account": ACCOUNT,
                "amount": "700",
                "remark": "fa4xy2",
                "at": "2024-04-02 09:30:00",
            }
        ],
    )
    assert await outcome_of(session, "R2") == ("matched", None)
    order = await reload(session, order)
    assert (order.status, order.paid_amount) == (OrderStatus.PAID, 1000)
    assert order.paid_at is not None and order.paid_at.isoformat() == "2024-04-02T01:30:00+00:00"
    rows = (
        await session.execute(
            text(
                "SELECT t.bank_ref, a.amount, a.source, a.actor_sub FROM payment_allocations a "
                "JOIN bank_transactions t ON t.id = a.bank_transaction_id ORDER BY t.bank_ref"
            )
        )
    ).all()
    await session.commit()
    assert [tuple(r) for r in rows] == [
        ("R1", 300, "auto", "system:matcher"),
        ("R2", 700, "auto", "system:matcher"),
    ]


async def test_a_bare_code_waits_for_an_earlier_line_of_its_batch_naming_the_same_order(
    session: AsyncSession, order: Order, payments_client: httpx.AsyncClient
) -> None:
    """Booking order decides, whichever path a line takes: the messy remark booked first pays
    600, so the bare line booked after it no longer fits (overpayment), not the other way round."""
    await run(
        payments_client,
        [
            {
                "ref": "R1",
                "account": ACCOUNT,
                "amount": "600",
                "remark": "付款 FA4XY2",
                "at": "2024-04-01 10:00:00",
            },
            {
                "ref": "R2",
                "account": ACCOUNT,
                "amount": "600",
                "remark": "fa4xy2",
                "at": "2024-04-01 10:05:00",
            },
        ],
    )
    assert await outcome_of(session, "R1") == ("partial", None)
    assert await outcome_of(session, "R2") == ("review", "overpayment")
    order = await reload(session, order)
    assert (order.status, order.paid_amount) == (OrderStatus.PARTIALLY_PAID, 600)
