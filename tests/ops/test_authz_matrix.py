"""The authorisation matrix, generated from the four apps (never hand-listed): every operation of
every OpenAPI document is called with no token, an expired token, a foreign-signed token and a
token of each role. The roles an operation admits are those of its `shared.auth.require_roles`
dependencies (published as `x-roles`). A role not admitted never gets a 2xx; nothing gets a 5xx.
An endpoint added later is covered by the same test without any change here."""

from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from shared.auth import ROLES_WITH_UNIT, Role, mint_token
from shared.openapi import ROLES_EXTENSION, api_routes, route_roles
from shared.settings import get_settings

SERVICES = ("filing", "confirmation", "payments", "notify")
ABSENT_UNIT_ID = 987_654_321  # a unit id bound to the unit/finance tokens: no such row


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str  # template
    url: str  # template filled with sample values
    roles: frozenset[str] | None  # None: public

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path}"


def _sample(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "integer":
        value = max(int(schema.get("minimum", 1)), 1)
        if schema.get("exclusiveMinimum") is not None:
            value = max(value, int(schema["exclusiveMinimum"]) + 1)
        if value < 2000 and int(schema.get("minimum", 0)) >= 2000:
            value = 2024
        return str(value)
    pattern = schema.get("pattern")
    for candidate in ("1", "2024", "000000", "440000", "XD261126100000000001", "abc123", "x"):
        if pattern is None or re.fullmatch(pattern, candidate):
            return candidate
    return "x"


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return _resolve(doc["components"]["schemas"][ref.rsplit("/", 1)[1]], doc)
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            return _resolve(schema[combo][0], doc)
    return schema


def operations_of(service: str) -> list[Operation]:
    app: FastAPI = importlib.import_module(f"services.{service}.app").create_app()
    doc = app.openapi()
    declared = {
        (r.path_format, m): route_roles(r)
        for r in api_routes(app)
        if r.include_in_schema
        for m in (r.methods or ())
    }
    ops = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            url = path
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    value = _sample(_resolve(param.get("schema", {}), doc))
                    url = url.replace("{" + param["name"] + "}", value)
            roles = declared[(path, method.upper())]
            assert (operation.get(ROLES_EXTENSION) is None) == (roles is None)
            ops.append(
                Operation(
                    service,
                    method.upper(),
                    path,
                    url,
                    frozenset(str(r) for r in roles) if roles is not None else None,
                )
            )
    return ops


OPERATIONS = [op for service in SERVICES for op in operations_of(service)]


def _token(role: Role) -> str:
    return mint_token(role, ABSENT_UNIT_ID if role in ROLES_WITH_UNIT else None)


def _expired() -> str:
    return mint_token(Role.OPS, ttl=-60)


def _foreign() -> str:
    claims = {"sub": "ops:x", "role": "ops", "iss": get_settings().jwt_issuer}
    claims["exp"] = int(time.time()) + 600  # type: ignore[assignment]
    return jwt.encode(claims, "someone-else-0123456789-0123456789-abc", algorithm="HS256")


_apps: dict[str, FastAPI] = {}


async def _call(op: Operation, token: str | None) -> httpx.Response:
    app = _apps.get(op.service)
    if app is None:
        app = _apps[op.service] = importlib.import_module(f"services.{op.service}.app").create_app()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://matrix.test") as client:
        return await client.request(op.method, op.url, headers=headers)


# Provider callbacks (SMS delivery receipts, API.md "Notifications") authenticate with a shared
# secret in the query string, not a token: the only /api/ routes without roles.
MACHINE_CALLBACK = re.compile(r"^/api/v1/sms/receipts/")


def test_every_api_operation_declares_its_roles() -> None:
    public = [
        str(op)
        for op in OPERATIONS
        if op.roles is None and op.path.startswith("/api/") and not MACHINE_CALLBACK.match(op.path)
    ]
    assert public == [], "every /api/ route must check its roles with shared.auth.require_roles"
    assert any(op.service == "payments" for op in OPERATIONS)
    assert any(op.service == "filing" for op in OPERATIONS)


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
async def test_authorisation_matrix(op: Operation) -> None:
    failures: list[str] = []
    if op.roles is not None:
        for label, token, code in (
            ("no token", None, "token_missing"),
            ("expired token", _expired(), "token_expired"),
            ("foreign-signed token", _foreign(), "token_invalid"),
        ):
            r = await _call(op, token)
            if r.status_code != 401 or r.json().get("code") != code:
                failures.append(f"{label}: {r.status_code} {r.text[:200]}")
    for role in Role:
        r = await _call(op, _token(role))
        if r.status_code >= 500:
            failures.append(f"{role}: {r.status_code} {r.text[:200]}")
        elif op.roles is not None and str(role) not in op.roles:
            # normally 403 role_forbidden; a 404 of a dependency declared before the role check
            # (an unknown resource) is tolerated: what matters is that nothing succeeds
            if not 400 <= r.status_code < 500 or r.status_code == 401:
                failures.append(f"{role} (not admitted): {r.status_code} {r.text[:200]}")
        elif r.status_code == 403 and r.json().get("code") == "role_forbidden":
            failures.append(f"{role} (admitted) got role_forbidden")
    assert not failures, f"{op}: " + "; ".join(failures)
