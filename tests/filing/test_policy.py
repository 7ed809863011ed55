"""Policy is data keyed by (year, region): set by ops or a finance department, per field."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import UnitKind
from shared.policy import effective_policy
from tests.conftest import auth
from tests.factories import make_policy, make_policy_2024, make_unit
from tests.filing.helpers import make_tree, own_body, save


async def test_effective_policy_takes_the_most_specific_row_per_field(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    await make_policy_2024(session)
    await make_policy(session, 2024, "440100", filing_deadline=date(2024, 3, 1))
    await session.commit()
    response = await filing_client.get("/api/v1/policies/2024/440100", headers=auth("ops"))
    assert response.status_code == 200, response.text
    policy = response.json()
    assert policy["national_floor"] == "10.00"
    assert policy["encouraged_ratio"] == "15.00"
    assert policy["soft_floor"] == "30.00"
    assert policy["filing_deadline"] == "2024-03-01"
    assert policy["non_settlement_cutoff"] == "2023-08-03"
    assert policy["chain"] == ["440100", "440000", "000000"]
    assert policy["sources"] == {
        "national_floor": "000000",
        "encouraged_ratio": "000000",
        "soft_floor": "440000",
        "filing_deadline": "440100",
        "non_settlement_cutoff": "000000",
    }
    guangxi = (await filing_client.get("/api/v1/policies/2024/450000", headers=auth("ops"))).json()
    assert guangxi["soft_floor"] is None and guangxi["sources"]["soft_floor"] is None


async def test_year_without_policy_is_a_clear_4xx(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    await make_policy_2024(session)
    await session.commit()
    response = await filing_client.get("/api/v1/policies/2025/440000", headers=auth("ops"))
    assert response.status_code == 404
    assert response.json()["code"] == "policy_missing"
    assert "2025" in response.json()["detail"]
    unknown = await filing_client.get("/api/v1/policies/2024/123456", headers=auth("ops"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "region_not_found"
    bad = await filing_client.get("/api/v1/policies/2024/44", headers=auth("ops"))
    assert bad.status_code == 422


async def test_ops_sets_any_year_and_region(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    body = {
        "national_floor": "12",
        "encouraged_ratio": "16.5",
        "filing_deadline": "2025-02-28",
        "non_settlement_cutoff": "2024-08-01",
    }
    response = await filing_client.put(
        "/api/v1/policies/2025/000000", json=body, headers=auth("ops")
    )
    assert response.status_code == 200, response.text
    assert response.json()["national_floor"] == "12.00"
    province = await filing_client.put(
        "/api/v1/policies/2025/440000", json={"soft_floor": "28"}, headers=auth("ops")
    )
    assert province.status_code == 200
    effective = await effective_policy(session, 2025, "440100")
    assert effective.national_floor is not None and str(effective.national_floor) == "12.00"
    assert str(effective.soft_floor) == "28.00"
    assert effective.filing_deadline == date(2025, 2, 28)


async def test_put_policy_keeps_fields_not_sent_and_clears_nulls(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    headers = auth("ops")
    await filing_client.put(
        "/api/v1/policies/2025/440000",
        json={"soft_floor": "30", "encouraged_ratio": "20"},
        headers=headers,
    )
    await filing_client.put(
        "/api/v1/policies/2025/440000", json={"encouraged_ratio": None}, headers=headers
    )
    row = (await filing_client.get("/api/v1/policies/2025/440000", headers=headers)).json()
    assert row["soft_floor"] == "30.00"
    assert row["encouraged_ratio"] is None


async def test_finance_department_sets_policy_for_its_own_region_only(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    guangdong = await make_unit(
        session, "广东省财政厅", kind=UnitKind.FINANCE_DEPARTMENT, region_code="440000"
    )
    unit = await make_unit(session)
    await session.commit()
    headers = auth("finance", guangdong.id)
    own = await filing_client.put(
        "/api/v1/policies/2025/440000", json={"soft_floor": "30"}, headers=headers
    )
    assert own.status_code == 200
    city = await filing_client.put(
        "/api/v1/policies/2025/440100", json={"filing_deadline": "2025-03-01"}, headers=headers
    )
    assert city.status_code == 200
    for region in ("000000", "450000"):
        other = await filing_client.put(
            f"/api/v1/policies/2025/{region}", json={"soft_floor": "1"}, headers=headers
        )
        assert other.status_code == 403
        assert other.json()["code"] == "policy_region_forbidden"
    denied = await filing_client.put(
        "/api/v1/policies/2025/440000", json={"soft_floor": "1"}, headers=auth("unit", unit.id)
    )
    assert denied.status_code == 403


async def test_policy_values_are_validated(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    headers = auth("ops")
    cases = [
        ({"soft_floor": "101"}, ["body", "soft_floor"]),
        ({"national_floor": "-1"}, ["body", "national_floor"]),
        ({"filing_deadline": "2025-02-30"}, ["body", "filing_deadline"]),
        ({"deadline": "2025-02-20"}, ["body", "deadline"]),
    ]
    for body, loc in cases:
        response = await filing_client.put(
            "/api/v1/policies/2025/440000", json=body, headers=headers
        )
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["loc"] == loc
    unknown = await filing_client.put("/api/v1/policies/2025/123456", json={}, headers=headers)
    assert unknown.status_code == 404


async def test_policy_change_applies_to_filings_of_that_year(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    """Floors are read from the database at each request: no literal 10%/30% in code."""
    tree = await make_tree(session)
    await filing_client.put(
        "/api/v1/policies/2024/000000", json={"national_floor": "20"}, headers=auth("ops")
    )
    response = await save(filing_client, tree.unit, own_body(ratio="15"))
    assert response.status_code == 422
    assert "20.00%" in response.json()["detail"]


async def test_filing_shows_the_policy_that_applies_to_it(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    policy = (await save(filing_client, tree.unit, own_body())).json()["policy"]
    assert policy == {
        "national_floor": "10.00",
        "encouraged_ratio": "15.00",
        "soft_floor": "30.00",
        "filing_deadline": "2024-02-20",
    }


async def test_finance_role_must_be_bound_to_an_active_finance_department(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    """A `finance` token bound to a budget unit (a mis-issued account) acts as nothing."""
    tree = await make_tree(session)
    headers = auth("finance", tree.department.id)
    calls = [
        ("PUT", "/api/v1/policies/2024/440000", {"soft_floor": "1"}),
        (
            "POST",
            "/api/v1/units",
            {"name": "某单位", "kind": "budget_unit", "region_code": "440000"},
        ),
        (
            "POST",
            f"/api/v1/filings/2024/units/{tree.unit.id}/reopen",
            {"open_until": "2024-12-31", "reason": "补报"},
        ),
        ("PATCH", f"/api/v1/units/{tree.unit.id}", {"name": "新名称", "reason": "更名"}),
    ]
    for method, path, body in calls:
        response = await filing_client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "not_a_finance_department"
    policy = await filing_client.get("/api/v1/policies/2024/440000", headers=headers)
    assert policy.json()["soft_floor"] == "30.00"


async def test_national_floor_is_set_only_on_the_national_row(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    """A region cannot lower the national floor for its units; it sets a soft floor instead."""
    tree = await make_tree(session)  # 2024: national 10%, Guangdong soft floor 30%
    for headers in (auth("finance", tree.finance.id), auth("ops")):
        response = await filing_client.put(
            "/api/v1/policies/2024/440000", json={"national_floor": "5"}, headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "national_floor_is_national"
        assert response.json()["errors"][0]["loc"] == ["body", "national_floor"]
    effective = await filing_client.get("/api/v1/policies/2024/440000", headers=auth("ops"))
    assert effective.json()["national_floor"] == "10.00"
    assert effective.json()["sources"]["national_floor"] == "000000"
    low = await save(filing_client, tree.unit, own_body(ratio="6"))
    assert low.json()["code"] == "ratio_below_national_floor"


@pytest.mark.parametrize("bad", [0, 1706745600, "2025-02-20T00:00:00", "20250220", "2025-2-20"])
async def test_policy_dates_are_iso_date_strings(
    session: AsyncSession, filing_client: httpx.AsyncClient, bad: object
) -> None:
    """A timestamp or a date-time is not silently taken as a deadline (0 is not 1970-01-01)."""
    for field in ("filing_deadline", "non_settlement_cutoff"):
        response = await filing_client.put(
            "/api/v1/policies/2025/000000", json={field: bad}, headers=auth("ops")
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", field]
    ok = await filing_client.put(
        "/api/v1/policies/2025/000000", json={"filing_deadline": "2025-02-20"}, headers=auth("ops")
    )
    assert ok.json()["filing_deadline"] == "2025-02-20"
    for amount in (10, 10.5):
        response = await filing_client.put(
            "/api/v1/policies/2025/000000", json={"national_floor": amount}, headers=auth("ops")
        )
        assert response.status_code == 422
