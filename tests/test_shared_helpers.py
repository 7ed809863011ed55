"""Shared helpers every service relies on: money parsing, text storability, log masking."""

from __future__ import annotations

import pytest

from shared.text import ensure_storable


def test_log_lines_are_scrubbed_of_mobiles_and_account_numbers() -> None:
    import io
    import logging

    from shared.logs import MaskingFormatter
    from shared.masking import mask_all_handlers

    stream = io.StringIO()
    logger = logging.getLogger("uvicorn.access.test-masking")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        mask_all_handlers()
        assert isinstance(handler.formatter, MaskingFormatter)
        logger.warning("contact %s paid to %s", "13812345678", "35000188110503337")
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "13812345678" not in line and "138****5678" in line
    assert "35000188110503337" not in line and "3500 **** * 3337" in line


def test_money_input_is_a_string_with_at_most_two_decimals() -> None:
    from decimal import Decimal

    import pytest as _pytest
    from pydantic import BaseModel

    from shared.money import Money

    class Body(BaseModel):
        amount: Money

    assert Body(amount="200000").model_dump(mode="json") == {"amount": "200000.00"}
    assert Body(amount="2000011.5").amount == Decimal("2000011.50")
    for bad in (200000, 1.5, "1,000", "-1", "1.234", "1e3", "１０", "", " 1", True):
        with _pytest.raises(ValueError):
            Body(amount=bad)


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"])
def test_text_the_database_cannot_store_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ensure_storable(text)


def test_ordinary_chinese_text_is_stored_as_given() -> None:
    assert ensure_storable("共用广东省教育厅食堂") == "共用广东省教育厅食堂"
