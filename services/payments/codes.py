"""Payment identification codes (付款识别码): six characters, the last one a check character.

The alphabet leaves out the look-alikes `0`/`o` and `1`/`l`/`i`::

    23456789abcdefghjkmnpqrstuvwxyz      (31 symbols; 31 is prime)

Five random symbols (`secrets`) are followed by a check symbol chosen so that, with `v(c)` the
index of `c` in the alphabet,

    Σ_{i=1..6} i · v(c_i) ≡ 0  (mod 31)

(a weighted-sum scheme in the spirit of ISO 7064, over the prime modulus 31).

Why every single-character error and every adjacent swap is caught:

* **substitution** at position `i` of `a` by `b ≠ a` changes the sum by `i·(b − a)`. Here
  `1 ≤ i ≤ 6 < 31` and `0 < |b − a| < 31`, so neither factor is divisible by 31; since 31 is
  prime, the product is not either, and the sum is no longer ≡ 0.
* **adjacent transposition** of `a ≠ b` at positions `i, i+1` changes the sum by
  `i·b + (i+1)·a − i·a − (i+1)·b = a − b`, again non-zero modulo 31.

A typed character outside the alphabet (e.g. `0` for `o`) fails the shape check outright.
`tests/payments/test_codes.py` checks both properties exhaustively for sample codes.

Codes of orders migrated from the old system are taken as given (`legacy`): six lower-case
characters `[a-z0-9]`, no check character.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
MODULUS = len(ALPHABET)  # 31, prime
CODE_LENGTH = 6
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_INVERSE_OF_6 = pow(CODE_LENGTH, -1, MODULUS)
LEGACY_CODE_RE = re.compile(r"^[a-z0-9]{6}$")


def _weighted_sum(body: str) -> int:
    return sum((i + 1) * _VALUE[c] for i, c in enumerate(body))


def check_symbol(body: str) -> str:
    """The sixth character for a five-character `body` of alphabet symbols."""
    if len(body) != CODE_LENGTH - 1 or any(c not in _VALUE for c in body):
        raise ValueError("body must be 5 symbols of the payment-code alphabet")
    value = (-_weighted_sum(body) * _INVERSE_OF_6) % MODULUS
    return ALPHABET[value]


def is_valid(code: str) -> bool:
    """Whether `code` is a well-formed generated code (shape and check character)."""
    if len(code) != CODE_LENGTH or any(c not in _VALUE for c in code):
        return False
    return _weighted_sum(code) % MODULUS == 0


def generate() -> str:
    """A fresh random code; uniqueness among open orders is the database's job."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH - 1))
    return body + check_symbol(body)


def normalise_legacy(code: str) -> str | None:
    """A migrated order's code, lower-cased; None when it is not six characters [a-z0-9]."""
    lowered = code.strip().lower()
    return lowered if LEGACY_CODE_RE.fullmatch(lowered) else None
