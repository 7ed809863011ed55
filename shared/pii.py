"""Mobile numbers at rest: AES-256-GCM encryption with a key id (rotation) and a keyed hash.

`SMS_MOBILE_KEYS` is `id:base64key[,id:base64key...]`: the first key encrypts, every key listed
decrypts (rotation: put the new key first, keep the old ones until the rows are re-encrypted or
purged). `SMS_MOBILE_HASH_KEY` keys the HMAC-SHA256 used for dedupe and lookup, so that the hash
of a (small) number space cannot be reversed without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.settings import get_settings

_AAD = b"sms_outbox.mobile"
_NONCE_BYTES = 12


class KeyError_(ValueError):
    """A key id unknown to this process, or a malformed key setting."""


@lru_cache
def _keys(raw: str) -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    active = ""
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key_id, _, b64 = item.partition(":")
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise KeyError_(f"SMS_MOBILE_KEYS: key {key_id!r} is not base64") from exc
        if len(key) not in (16, 24, 32) or not key_id:
            raise KeyError_(f"SMS_MOBILE_KEYS: key {key_id!r} must be 16, 24 or 32 bytes")
        keys[key_id] = key
        active = active or key_id
    if not keys:
        raise KeyError_("SMS_MOBILE_KEYS is empty")
    return active, keys


def _settings_keys() -> tuple[str, dict[str, bytes]]:
    return _keys(get_settings().sms_mobile_keys.get_secret_value())


def normalize_mobile(mobile: str) -> str:
    """`+86 138-1234-5678` → `13812345678` (digits only, mainland prefix dropped)."""
    digits = "".join(ch for ch in mobile if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def encrypt_mobile(mobile: str) -> tuple[bytes, str]:
    """(nonce + ciphertext, key id) of the normalized number."""
    key_id, keys = _settings_keys()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(keys[key_id]).encrypt(nonce, normalize_mobile(mobile).encode(), _AAD)
    return nonce + sealed, key_id


def decrypt_mobile(ciphertext: bytes, key_id: str) -> str:
    _, keys = _settings_keys()
    if key_id not in keys:
        raise KeyError_(f"SMS mobile key {key_id!r} is not configured")
    data = bytes(ciphertext)
    return AESGCM(keys[key_id]).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], _AAD).decode()


def mobile_hash(mobile: str) -> str:
    """Keyed hash (hex HMAC-SHA256) of the normalized number: equal numbers, equal hashes."""
    key = get_settings().sms_mobile_hash_key.get_secret_value().encode()
    return hmac.new(key, normalize_mobile(mobile).encode(), hashlib.sha256).hexdigest()
