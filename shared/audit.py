"""Writing the audit log: one call per state change, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.models import AuditLog


async def record(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    entity_type: str,
    entity_id: int | str,
    *,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Record who (actor), when (now), what (action + changes as {field: [old, new]}), why."""
    session.add(
        AuditLog(
            actor_sub=actor.sub if actor else "system",
            actor_role=str(actor.role) if actor else "system",
            actor_unit_id=actor.unit_id if actor else None,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            changes=changes,
            reason=reason,
        )
    )
    await session.flush()


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`{field: [old, new]}` for the fields that changed (values made JSON-friendly)."""
    out: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            out[key] = [_jsonable(a), _jsonable(b)]
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
