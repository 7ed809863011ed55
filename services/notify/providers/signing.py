"""Request signers: Aliyun signature V3 (`ACS3-HMAC-SHA256`) and Tencent Cloud `TC3-HMAC-SHA256`.

Pure functions (no I/O, clock and nonce passed in) so that the tests can sign the very request the
official SDKs signed and compare the `Authorization` headers, and so that the emulator can verify
what it receives with the same code.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

ACS3 = "ACS3-HMAC-SHA256"
TC3 = "TC3-HMAC-SHA256"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding (unreserved `A-Z a-z 0-9 - _ . ~` kept; space → `%20`), UTF-8."""
    return quote(value, safe="~", encoding="utf-8")


def form_encode(params: Mapping[str, str]) -> str:
    """`application/x-www-form-urlencoded` body, encoded as the official SDK encodes it
    (keys sorted, UTF-8, space → `+`, `~` kept)."""
    return "&".join(
        f"{quote_plus(k, safe='~')}={quote_plus(v, safe='~')}" for k, v in sorted(params.items())
    )


# --- Aliyun ACS3-HMAC-SHA256 ----------------------------------------------------------------


def acs3_canonical_query(query: Mapping[str, str] | None) -> str:
    if not query:
        return ""
    items = sorted((percent_encode(k), percent_encode(v)) for k, v in query.items())
    return "&".join(f"{k}={v}" for k, v in items)


def acs3_canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """(canonical headers block, signed header names) over *all* headers given (the caller
    decides which ones to sign: host, content-type and every `x-acs-*` at least)."""
    merged: dict[str, list[str]] = {}
    for name, value in headers.items():
        merged.setdefault(name.lower().strip(), []).append(str(value).strip())
    names = sorted(merged)
    block = "".join(f"{n}:{','.join(sorted(merged[n]))}\n" for n in names)
    return block, ";".join(names)


def acs3_string_to_sign(
    *,
    method: str,
    path: str,
    query: Mapping[str, str] | None,
    headers: Mapping[str, str],
    hashed_payload: str,
) -> tuple[str, str]:
    """(string to sign, signed headers)."""
    canonical_headers, signed_headers = acs3_canonical_headers(headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            acs3_canonical_query(query),
            canonical_headers,
            signed_headers,
            hashed_payload,
        ]
    )
    return f"{ACS3}\n{sha256_hex(canonical_request.encode('utf-8'))}", signed_headers


def acs3_authorization(
    *,
    method: str,
    path: str,
    query: Mapping[str, str] | None,
    headers: Mapping[str, str],
    hashed_payload: str,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """The `Authorization` header of an Aliyun V3 request; `headers` are the headers to sign
    (without `Authorization`), `hashed_payload` the hex SHA-256 of the body
    (= the `x-acs-content-sha256` header)."""
    string_to_sign, signed_headers = acs3_string_to_sign(
        method=method, path=path, query=query, headers=headers, hashed_payload=hashed_payload
    )
    signature = hmac.new(
        access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return f"{ACS3} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"


def acs3_date(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_acs3_authorization(value: str) -> dict[str, str] | None:
    """`ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..` → its three fields."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ACS3:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


# --- Tencent Cloud TC3-HMAC-SHA256 ----------------------------------------------------------


def _hmac_sha256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_signature(
    *,
    secret_key: str,
    service: str,
    timestamp: int,
    method: str,
    path: str,
    query: str,
    content_type: str,
    host: str,
    payload: bytes,
) -> str:
    ct, hst = content_type.strip().lower(), host.strip().lower()
    canonical_headers = f"content-type:{ct}\nhost:{hst}\n"
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            query,
            canonical_headers,
            "content-type;host",
            sha256_hex(payload),
        ]
    )
    date = tc3_date(timestamp)
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [TC3, str(timestamp), scope, sha256_hex(canonical_request.encode("utf-8"))]
    )
    k_date = _hmac_sha256(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac_sha256(k_date, service)
    k_signing = _hmac_sha256(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    host: str,
    payload: bytes,
    content_type: str = "application/json; charset=utf-8",
    method: str = "POST",
    path: str = "/",
    query: str = "",
) -> str:
    """The `Authorization` header of a Tencent Cloud API 3.0 request (signed headers
    `content-type;host`, as the official SDK signs)."""
    signature = tc3_signature(
        secret_key=secret_key,
        service=service,
        timestamp=timestamp,
        method=method,
        path=path,
        query=query,
        content_type=content_type,
        host=host,
        payload=payload,
    )
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return (
        f"{TC3} Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
        f"Signature={signature}"
    )


def parse_tc3_authorization(value: str) -> dict[str, str] | None:
    """`TC3-HMAC-SHA256 Credential=id/date/svc/tc3_request, SignedHeaders=.., Signature=..`."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != TC3:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    credential = fields.get("Credential", "").split("/")
    if len(credential) != 4 or "Signature" not in fields:
        return None
    fields.update(
        secret_id=credential[0], date=credential[1], service=credential[2], scope_end=credential[3]
    )
    return fields
