"""What the OpenAPI documents say beyond FastAPI's defaults, derived from the routes themselves:

- `x-roles`: the roles an operation admits, read from its `shared.auth.require_roles`
  dependencies (several on one route: a role must pass all of them);
- the real error responses as `application/problem+json` (`Problem` schema) with their codes:
  401 and 403 where roles are required, 404 where the path names a resource, 409 on writes,
  413 on uploads, 422 wherever something is validated (replacing FastAPI's JSON 422).

Everything is generic, so routers added later get the same treatment without changes here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from shared.auth import Role, declared_roles
from shared.errors import PROBLEM_JSON

ROLES_EXTENSION = "x-roles"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable, `detail` is Chinese for a clerk.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "every field problem (validation): `loc` path, `msg`, optional `code`",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
}

ERROR_RESPONSES: dict[int, str] = {
    401: "Not authenticated: `token_missing`, `token_invalid`, `token_expired`.",
    403: "Authenticated but not allowed: `role_forbidden` (role not in `x-roles`), "
    "`no_unit_bound`, `unit_out_of_scope`, or a rule of the service.",
    404: "Not found, or outside the caller's organisation scope (`not_found`, `unit_not_found`, "
    "`…_not_found`).",
    409: "Conflicts with the current state (`concurrent_update`, `idempotency_key_reused`, or a "
    "lifecycle rule of the service).",
    413: "Upload too large (`payload_too_large`).",
    422: "Invalid input: `validation_failed` or a rule's code; every field problem is listed in "
    "`errors` (`loc`, `msg`).",
}


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route of the app, with the routes of included routers (FastAPI >= 0.16x
    includes routers lazily: `app.routes` holds wrappers), each with `path_format`, `methods`,
    `dependant` and `include_in_schema` as an `APIRoute` has them."""
    from fastapi import routing

    iter_contexts = getattr(routing, "iter_route_contexts", None)
    if iter_contexts is None:  # older FastAPI: included routes are plain APIRoutes
        return [r for r in app.routes if isinstance(r, APIRoute)]
    return [ctx for ctx in iter_contexts(app.routes) if isinstance(ctx.original_route, APIRoute)]


def route_roles(route: Any) -> frozenset[Role] | None:
    """Roles admitted by `route` (None: no role check at all, i.e. a public route)."""
    found: list[frozenset[Role]] = []

    def walk(dependant: Dependant) -> None:
        roles = declared_roles(dependant.call)
        if roles is not None:
            found.append(roles)
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    if not found:
        return None
    admitted = found[0]
    for roles in found[1:]:
        admitted &= roles
    return admitted


def _has_params(dependant: Dependant) -> bool:
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    if dependant.body_params or dependant.cookie_params:
        return True
    return any(_has_params(sub) for sub in dependant.dependencies)


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_RESPONSES[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _merge(declared: dict[str, Any] | None, status: int) -> dict[str, Any]:
    """The generic problem response, unless the route declared its own (`responses=` on the
    route: its description, e.g. the domain codes, is kept and the problem+json body added);
    FastAPI's default JSON 422 is replaced."""
    generic = _error_response(status)
    if declared is None or _references(declared, "HTTPValidationError"):
        return generic
    merged = dict(declared)
    merged.setdefault("description", generic["description"])
    content = merged.get("content") or {}
    if PROBLEM_JSON not in content:
        merged["content"] = {PROBLEM_JSON: generic["content"][PROBLEM_JSON]}
    return merged


def error_statuses(route: Any, roles: frozenset[Role] | None) -> list[int]:
    statuses: list[int] = []
    if roles is not None:
        statuses += [401, 403]
    if route.dependant.path_params or any(sub.path_params for sub in route.dependant.dependencies):
        statuses.append(404)
    methods = set(route.methods or ())
    if methods & WRITE_METHODS and roles is not None:
        statuses.append(409)
    if _has_params(route.dependant):
        statuses.append(422)
    return statuses


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        item = schema.get("paths", {}).get(route.path_format, {})
        roles = route_roles(route)
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            if roles is not None:
                operation[ROLES_EXTENSION] = sorted(str(r) for r in roles)
            responses = operation.setdefault("responses", {})
            statuses = error_statuses(route, roles)
            if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
                statuses.append(413)
            for status in sorted(statuses):
                responses[str(status)] = _merge(responses.get(str(status)), status)
    schemas = components["schemas"]
    if not _references(schema.get("paths", {}), "HTTPValidationError"):
        schemas.pop("HTTPValidationError", None)
        if not _references(schemas, "ValidationError"):
            schemas.pop("ValidationError", None)
    return schema


def _references(doc: object, name: str) -> bool:
    target = f"#/components/schemas/{name}"
    if isinstance(doc, dict):
        return any(v == target or _references(v, name) for v in doc.values())
    if isinstance(doc, list):
        return any(_references(v, name) for v in doc)
    return False


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` by `build_openapi` (computed once, cached like FastAPI's)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
