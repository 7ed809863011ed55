"""Schemathesis against the four OpenAPI documents (generated from the apps at collection, so
endpoints added later are covered), each served by a real uvicorn process: a bounded number of
examples per operation, derandomised; no 5xx, and every documented response matches its schema
(problem+json errors included). Each operation is called with a token of a role it admits."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from shared.auth import ROLES_WITH_UNIT, Role, mint_token
from tests.ops.helpers import uvicorn_processes

MAX_EXAMPLES = 4
SERVICES = ("filing", "confirmation", "payments", "notify")


def _schema(service: str) -> Any:
    app = importlib.import_module(f"services.{service}.app").create_app()
    return schemathesis.openapi.from_dict(app.openapi())


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    with uvicorn_processes(SERVICES) as bases:
        yield bases


def _headers(case: Any) -> dict[str, str]:
    roles = case.operation.definition.raw.get("x-roles")
    if not roles:
        return {}
    role = Role(roles[0])
    return {"Authorization": f"Bearer {mint_token(role, 1 if role in ROLES_WITH_UNIT else None)}"}


SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("service", SERVICES)
def test_api_conforms_to_its_openapi_document(service: str, servers: dict[str, str]) -> None:
    """One test per service (not per operation: the suite truncates the tables after every test),
    looping over every operation of the document."""
    schema = _schema(service)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:

        @given(case=operation.as_strategy())
        @SETTINGS
        def run(case: Any) -> None:
            response = case.call(base_url=servers[service], headers=_headers(case), timeout=30)
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
