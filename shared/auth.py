"""JWT authentication, roles, and the organisation-scope check every service uses.

Development tokens: `python -m shared.auth mint --role unit --unit 7 [--ttl 3600] [--sub name]`.
"""

from __future__ import annotations

import argparse
import enum
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Forbidden, NotFound, Unauthorized
from shared.logs import bind_principal
from shared.settings import get_settings


class Role(enum.StrEnum):
    UNIT = "unit"  # a budget unit's staff; superior of its descendants
    FINANCE = "finance"  # a finance department
    OPS = "ops"  # platform operations staff
    PLATFORM = "platform"  # the trading platform (machine client)
    IMPORTER = "importer"  # the bank-statement import job


ROLES_WITH_UNIT = {Role.UNIT, Role.FINANCE}
FINANCE_DEPARTMENT_KIND = "finance_department"  # shared.models.UnitKind.FINANCE_DEPARTMENT
SUB_MAX_CHARS = 100
"""Longest token subject: actor columns (audit log, filing events, idempotency) are 100 chars."""


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    unit_id: int | None = None

    def require_unit_id(self) -> int:
        if self.unit_id is None:
            raise Forbidden("该账号未绑定单位", code="no_unit_bound")
        return self.unit_id


def mint_token(
    role: Role | str, unit_id: int | None = None, *, ttl: int | None = None, sub: str | None = None
) -> str:
    settings = get_settings()
    role = Role(role)
    if role in ROLES_WITH_UNIT and unit_id is None:
        raise ValueError(f"role {role} needs --unit")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub or (f"{role}:{unit_id}" if unit_id is not None else f"{role}:dev"),
        "role": str(role),
        "iat": now,
        "exp": now + (ttl if ttl is not None else settings.jwt_default_ttl_seconds),
        "iss": settings.jwt_issuer,
    }
    if unit_id is not None:
        claims["unit_id"] = unit_id
    return jwt.encode(
        claims,
        settings.jwt_secret.get_secret_value(),
        settings.jwt_algorithm,
        headers={"kid": settings.jwt_key_id},
    )


def _verification_key(token: str) -> str:
    """The secret named by the token's `kid` (current or a previous key still accepted); a token
    without `kid` (minted before rotation existed) is checked against the current key."""
    settings = get_settings()
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise Unauthorized("身份凭证无效", code="token_invalid") from exc
    if kid is None:
        return settings.jwt_secret.get_secret_value()
    secret = settings.verification_keys().get(str(kid))
    if secret is None:
        raise Unauthorized("身份凭证的签名密钥已停用或未知", code="token_invalid")
    return secret


def decode_token(token: str) -> Principal:
    settings = get_settings()
    key = _verification_key(token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("登录已过期，请重新登录", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("身份凭证无效", code="token_invalid") from exc
    try:
        role = Role(str(claims.get("role")))
    except ValueError as exc:
        raise Unauthorized("身份凭证中的角色无效", code="token_invalid") from exc
    unit_id = claims.get("unit_id")
    if role in ROLES_WITH_UNIT and not isinstance(unit_id, int):
        raise Unauthorized("身份凭证缺少单位信息", code="token_invalid")
    if unit_id is not None and (
        not isinstance(unit_id, int) or isinstance(unit_id, bool) or not 1 <= unit_id < 2**63
    ):  # a unit id is a bigint row id: anything else would reach the database and fail there
        raise Unauthorized("身份凭证中的单位信息无效", code="token_invalid")
    sub = str(claims["sub"])
    if not 1 <= len(sub) <= SUB_MAX_CHARS or not sub.isprintable():
        # the subject is stored as who acted (audit, history): it must fit and be plain text
        raise Unauthorized("身份凭证中的用户标识无效", code="token_invalid")
    return Principal(sub=sub, role=role, unit_id=unit_id)


_bearer = HTTPBearer(auto_error=False, description="JWT from `python -m shared.auth mint`")


async def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("请先登录：缺少 Authorization: Bearer 身份凭证", code="token_missing")
    principal = decode_token(credentials.credentials)
    bind_principal(principal.sub, str(principal.role), principal.unit_id)
    return principal


ROLES_ATTRIBUTE = "required_roles"
"""`require_roles(...)` dependencies carry their roles under this attribute, so the roles of every
route can be read from the app (OpenAPI `x-roles`, the authorisation-matrix test)."""


# any authenticated role: what a route that depends on the principal alone admits
setattr(current_principal, ROLES_ATTRIBUTE, frozenset(Role))

CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency factory: `Annotated[Principal, Depends(require_roles(Role.OPS))]`."""
    allowed = frozenset(roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden("当前账号无权执行此操作", code="role_forbidden")
        return principal

    setattr(dependency, ROLES_ATTRIBUTE, allowed)
    dependency.__name__ = "require_roles_" + "_".join(sorted(str(r) for r in allowed))
    return dependency


def declared_roles(call: object) -> frozenset[Role] | None:
    """The roles a dependency callable admits, if it was made by `require_roles`."""
    roles = getattr(call, ROLES_ATTRIBUTE, None)
    return roles if isinstance(roles, frozenset) else None


_SCOPE_SQL = text(
    """
    SELECT t.id,
           me.kind                                                      AS my_kind,
           (t.path LIKE me.path || '%')                                 AS in_tree,
           (fd.id IS NOT NULL AND fd.path LIKE me.path || '%')          AS in_finance
      FROM org_units t
      JOIN org_units me ON me.id = :me
      LEFT JOIN org_units fd ON fd.id = t.finance_department_id
     WHERE t.id = :target
    """
)


async def unit_in_scope(session: AsyncSession, principal: Principal, unit_id: int) -> bool:
    """Whether `principal` may see unit `unit_id`.

    - `unit`: itself and its descendants in the budget tree (it is their superior);
    - `finance`: itself, the finance departments under it, and every unit whose finance department
      is it or one under it (a provincial department sees its whole province);
    - `ops`: every unit. Machine roles see no unit data.

    A `finance` token bound to anything but a finance department (a mis-issued token bound to a
    budget unit) sees nothing at all, not even that unit.
    """
    if principal.role == Role.OPS:
        return True
    if principal.role not in ROLES_WITH_UNIT or principal.unit_id is None:
        return False
    if principal.role == Role.UNIT and principal.unit_id == unit_id:
        return True
    row = (await session.execute(_SCOPE_SQL, {"me": principal.unit_id, "target": unit_id})).first()
    if row is None:
        return False
    if principal.role == Role.UNIT:
        return bool(row.in_tree)
    if str(row.my_kind) != FINANCE_DEPARTMENT_KIND:
        return False
    return bool(row.in_tree or row.in_finance)


async def ensure_unit_in_scope(
    session: AsyncSession, principal: Principal, unit_id: int, *, hide: bool = True
) -> None:
    """Raise 404 (default: existence must not leak) or 403 when the unit is out of scope."""
    if not await unit_in_scope(session, principal, unit_id):
        if hide:
            raise NotFound("单位不存在或无权访问", code="unit_not_found")
        raise Forbidden("无权访问该单位的数据", code="unit_out_of_scope")


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    mint = sub.add_parser("mint", help="print a development token")
    mint.add_argument("--role", required=True, choices=[r.value for r in Role])
    mint.add_argument("--unit", type=int, default=None, help="unit id (unit and finance roles)")
    mint.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    mint.add_argument("--sub", default=None, help="subject (user name); default role:unit")
    args = parser.parse_args(argv)
    try:
        print(mint_token(args.role, args.unit, ttl=args.ttl, sub=args.sub))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
