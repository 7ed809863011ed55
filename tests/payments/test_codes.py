"""Payment codes (付款识别码): six characters without look-alikes, the last a check character
that catches every single-character error and every adjacent swap."""

from __future__ import annotations

import pytest

from services.payments import codes

SAMPLES = ["23456", "zzzzz", "k7m2q", "abcde", "98765", "2a2a2", "xyzxy"]


def test_generated_codes_avoid_look_alikes_and_carry_a_valid_check_character() -> None:
    for _ in range(2000):
        code = codes.generate()
        assert len(code) == 6
        assert not set(code) & set("01oli")
        assert codes.is_valid(code)


@pytest.mark.parametrize("body", SAMPLES)
def test_every_single_substitution_is_detected(body: str) -> None:
    code = body + codes.check_symbol(body)
    assert codes.is_valid(code)
    for i in range(6):
        for symbol in codes.ALPHABET:
            if symbol != code[i]:
                assert not codes.is_valid(code[:i] + symbol + code[i + 1 :])


@pytest.mark.parametrize("body", SAMPLES)
def test_every_adjacent_swap_is_detected(body: str) -> None:
    code = body + codes.check_symbol(body)
    for i in range(5):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not codes.is_valid(swapped)


def test_every_single_error_of_every_generated_code_is_detected() -> None:
    for _ in range(300):
        code = codes.generate()
        for i in range(6):
            for symbol in codes.ALPHABET:
                if symbol != code[i]:
                    assert not codes.is_valid(code[:i] + symbol + code[i + 1 :])
            if i < 5 and code[i] != code[i + 1]:
                assert not codes.is_valid(code[:i] + code[i + 1] + code[i] + code[i + 2 :])


def test_legacy_codes_are_lower_cased_and_shape_checked_only() -> None:
    assert codes.normalise_legacy("F54YXN") == "f54yxn"
    assert codes.normalise_legacy("f54yx") is None
    assert codes.normalise_legacy("f54yx!") is None
