"""Organisation: registering units, reading a unit and its children, contacts, renames, merges."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.filing.app import create_app
from shared.models import AuditLog, UnitKind
from tests.conftest import auth
from tests.factories import make_unit
from tests.filing.helpers import make_tree, own_body, save_and_submit, shared_other_body


async def test_finance_registers_units_and_reads_children(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    finance = await make_unit(session, "广州市财政局", kind=UnitKind.FINANCE_DEPARTMENT)
    await session.commit()
    headers = auth("finance", finance.id)
    created = await filing_client.post(
        "/api/v1/units",
        json={"name": "广州市教育局", "kind": "budget_unit", "region_code": "440100"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    department = created.json()
    assert department["finance_department_id"] == finance.id  # defaults to the caller
    assert department["path"] == f"/{department['id']}/"
    assert department["status"] == "active"
    child = await filing_client.post(
        "/api/v1/units",
        json={
            "name": "广州市第一中学",
            "kind": "budget_unit",
            "parent_id": department["id"],
            "finance_department_id": finance.id,
            "region_code": "440100",
        },
        headers=headers,
    )
    assert child.status_code == 201
    assert child.json()["path"] == f"/{department['id']}/{child.json()['id']}/"

    read = await filing_client.get(f"/api/v1/units/{department['id']}", headers=headers)
    assert read.json()["name"] == "广州市教育局"
    children = await filing_client.get(
        f"/api/v1/units/{department['id']}/children", headers=auth("unit", department["id"])
    )
    assert [c["name"] for c in children.json()["items"]] == ["广州市第一中学"]
    assert children.json()["next_cursor"] is None


async def test_children_are_paginated(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    parent = await make_unit(session)
    for _ in range(3):
        await make_unit(session, parent=parent)
    await session.commit()
    headers = auth("unit", parent.id)
    first = await filing_client.get(f"/api/v1/units/{parent.id}/children?limit=2", headers=headers)
    assert len(first.json()["items"]) == 2
    cursor = first.json()["next_cursor"]
    second = await filing_client.get(
        f"/api/v1/units/{parent.id}/children?limit=2&cursor={cursor}", headers=headers
    )
    assert len(second.json()["items"]) == 1 and second.json()["next_cursor"] is None
    bad = await filing_client.get(f"/api/v1/units/{parent.id}/children?cursor=!!", headers=headers)
    assert bad.status_code == 422


async def test_only_finance_and_ops_register_units(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    unit = await make_unit(session)
    await session.commit()
    body = {"name": "某单位", "kind": "budget_unit", "region_code": "440000"}
    assert (await filing_client.post("/api/v1/units", json=body)).status_code == 401
    response = await filing_client.post("/api/v1/units", json=body, headers=auth("unit", unit.id))
    assert response.status_code == 403
    ops = await filing_client.post("/api/v1/units", json=body, headers=auth("ops"))
    assert ops.status_code == 201


async def test_register_unit_validates_references(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    other_finance = await make_unit(session, "深圳市财政局", kind=UnitKind.FINANCE_DEPARTMENT)
    await session.commit()
    headers = auth("finance", other_finance.id)
    cases: list[tuple[dict[str, object], list[str]]] = [
        ({"region_code": "999999"}, ["body", "region_code"]),
        ({"region_code": "44"}, ["body", "region_code"]),
        ({"parent_id": tree.department.id}, ["body", "parent_id"]),  # not in its scope
        ({"parent_id": 2**70}, ["body", "parent_id"]),
        ({"finance_department_id": tree.department.id}, ["body", "finance_department_id"]),
        ({"kind": "ministry"}, ["body", "kind"]),
    ]
    for extra, loc in cases:
        body: dict[str, object] = {
            "name": "某单位",
            "kind": "budget_unit",
            "region_code": "440300",
            **extra,
        }
        response = await filing_client.post("/api/v1/units", json=body, headers=headers)
        assert response.status_code == 422, (extra, response.text)
        assert response.json()["errors"][0]["loc"] == loc
    body = {"name": "某单位", "kind": "budget_unit", "region_code": "440300", "code": "X1"}
    assert (
        await filing_client.post("/api/v1/units", json=body, headers=headers)
    ).status_code == 201
    dup = await filing_client.post("/api/v1/units", json=body, headers=headers)
    assert dup.status_code == 409 and dup.json()["code"] == "unit_code_taken"


async def test_unit_out_of_scope_is_404(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    for path in (f"/api/v1/units/{tree.stranger.id}", f"/api/v1/units/{tree.stranger.id}/children"):
        response = await filing_client.get(path, headers=auth("unit", tree.unit.id))
        assert response.status_code == 404
    superior = await filing_client.get(
        f"/api/v1/units/{tree.unit.id}", headers=auth("unit", tree.department.id)
    )
    assert superior.status_code == 200


async def test_unit_updates_contacts_at_any_time_without_reapproval(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    await save_and_submit(filing_client, tree.unit, own_body())
    response = await filing_client.put(
        "/api/v1/units/mine/contacts",
        json={"contact": {"name": "新联系人", "mobile": "13500000000", "landline": "0755-8888888"}},
        headers=auth("unit", tree.unit.id),
    )
    assert response.status_code == 200, response.text
    assert response.json()["contact"] == {
        "name": "新联系人",
        "mobile": "13500000000",
        "landline": "0755-8888888",
    }
    mine = (
        await filing_client.get("/api/v1/filings/2024/mine", headers=auth("unit", tree.unit.id))
    ).json()
    assert mine["status"] == "submitted"  # no re-approval
    assert mine["contact"]["mobile"] == "13500000000"
    history = await filing_client.get(
        "/api/v1/filings/2024/mine/history", headers=auth("unit", tree.unit.id)
    )
    last = history.json()[-1]
    assert last["action"] == "contacts_updated"
    assert last["from_status"] == last["to_status"] == "submitted"
    audit = (
        (
            await session.execute(
                select(AuditLog)
                .where(AuditLog.action == "unit.contacts_updated")
                .order_by(AuditLog.id)
            )
        )
        .scalars()
        .all()
    )
    assert audit[-1].changes is not None
    assert audit[-1].changes["contact_mobile"] == ["13812345678", "13500000000"]
    # the filing's own audit trail records the change to the submitted filing too
    filing_audit = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "filing.contacts_updated", AuditLog.entity_id == str(mine["id"])
        )
    )
    assert filing_audit is not None and filing_audit.actor_sub == f"unit:{tree.unit.id}"
    assert filing_audit.changes is not None
    assert filing_audit.changes["contact_mobile"] == ["13812345678", "13500000000"]
    changes = await filing_client.get(
        f"/api/v1/units/{tree.unit.id}/history", headers=auth("unit", tree.department.id)
    )
    assert changes.json()[-1]["kind"] == "contacts"
    assert changes.json()[-1]["new_value"]["contact_mobile"] == "135****0000"


async def test_contacts_are_validated(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await filing_client.put(
        "/api/v1/units/mine/contacts",
        json={"contact": {"name": "张三", "mobile": "10086"}},
        headers=auth("unit", tree.unit.id),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "contact", "mobile"]


async def test_other_units_see_masked_mobiles(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    tree.unit.contact_mobile = "13812345678"
    await session.commit()
    own = await filing_client.get(
        f"/api/v1/units/{tree.unit.id}", headers=auth("unit", tree.unit.id)
    )
    assert own.json()["contact"]["mobile"] == "13812345678"
    superior = await filing_client.get(
        f"/api/v1/units/{tree.unit.id}", headers=auth("unit", tree.department.id)
    )
    assert superior.json()["contact"]["mobile"] == "138****5678"
    listing = await filing_client.get(
        f"/api/v1/units/{tree.department.id}/children", headers=auth("unit", tree.department.id)
    )
    mobiles = {c["id"]: c["contact"]["mobile"] for c in listing.json()["items"]}
    assert mobiles[tree.unit.id] == "138****5678"


async def test_renamed_unit_keeps_its_filings(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    renamed = await filing_client.patch(
        f"/api/v1/units/{tree.unit.id}",
        json={"name": "广东实验中学", "reason": "机构更名"},
        headers=auth("finance", tree.finance.id),
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["id"] == tree.unit.id
    mine = await filing_client.get("/api/v1/filings/2024/mine", headers=auth("unit", tree.unit.id))
    assert mine.json()["id"] == filing_id
    assert mine.json()["unit_name"] == "广东实验中学"
    history = await filing_client.get(
        f"/api/v1/units/{tree.unit.id}/history", headers=auth("unit", tree.unit.id)
    )
    renames = [c for c in history.json() if c["kind"] == "renamed"]
    assert renames[0]["old_value"] == {"name": "广东省实验中学"}
    assert renames[0]["reason"] == "机构更名"
    versions = await filing_client.get(
        "/api/v1/filings/2024/mine/versions", headers=auth("unit", tree.unit.id)
    )
    assert versions.json()[0]["snapshot"]["unit_name"] == "广东省实验中学"  # as filed


async def test_merged_unit_filings_stay_attributable(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    filing_id = (await save_and_submit(filing_client, tree.unit, own_body())).json()["id"]
    merged = await filing_client.post(
        f"/api/v1/units/{tree.unit.id}/merge",
        json={"into_unit_id": tree.sibling.id, "reason": "两校合并"},
        headers=auth("finance", tree.finance.id),
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "merged"
    assert merged.json()["merged_into_id"] == tree.sibling.id
    filing = await filing_client.get(
        f"/api/v1/filings/{filing_id}", headers=auth("unit", tree.department.id)
    )
    assert filing.json()["unit_id"] == tree.unit.id
    refused = await filing_client.put(
        "/api/v1/filings/2025/mine", json=own_body(), headers=auth("unit", tree.unit.id)
    )
    assert refused.status_code == 409 and refused.json()["code"] == "unit_inactive"
    again = await filing_client.post(
        f"/api/v1/units/{tree.unit.id}/merge",
        json={"into_unit_id": tree.sibling.id, "reason": "x"},
        headers=auth("finance", tree.finance.id),
    )
    assert again.status_code == 409


async def test_shared_other_remark_follows_the_representatives_current_name(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    body = shared_other_body(tree.sibling.id)
    draft = await filing_client.put(
        "/api/v1/filings/2024/mine", json=body, headers=auth("unit", tree.unit.id)
    )
    assert draft.json()["remark"] == "共用广东省第二中学食堂"
    await filing_client.patch(
        f"/api/v1/units/{tree.sibling.id}",
        json={"name": "广东二中", "reason": "更名"},
        headers=auth("ops"),
    )
    submitted = await filing_client.post(
        "/api/v1/filings/2024/mine/submit",
        json={"declaration": True},
        headers=auth("unit", tree.unit.id),
    )
    assert submitted.json()["remark"] == "共用广东二中食堂"
    assert submitted.json()["canteen_status_label"] == "待上级预算单位确认"


async def test_forged_cursor_is_a_422(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    import base64

    parent = await make_unit(session)
    await session.commit()
    cursor = base64.urlsafe_b64encode(b"9" * 30).decode().rstrip("=")
    response = await filing_client.get(
        f"/api/v1/units/{parent.id}/children?cursor={cursor}", headers=auth("unit", parent.id)
    )
    assert response.status_code == 422


async def test_finance_department_registers_units_of_its_own_region_only(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    guangzhou = await make_unit(
        session, "广州市财政局", kind=UnitKind.FINANCE_DEPARTMENT, region_code="440100"
    )
    await session.commit()
    headers = auth("finance", guangzhou.id)
    for kind in ("budget_unit", "finance_department"):
        for region in ("440300", "440000", "000000"):  # Shenzhen, the province, national
            bad = {"name": "某单位", "kind": kind, "region_code": region}
            response = await filing_client.post("/api/v1/units", json=bad, headers=headers)
            assert response.status_code == 422, (kind, region, response.text)
            assert response.json()["code"] == "region_outside_finance_department"
            assert response.json()["errors"][0]["loc"] == ["body", "region_code"]
    # ops too cannot attach a unit to a finance department of another region
    body: dict[str, object] = {
        "name": "某单位",
        "kind": "budget_unit",
        "region_code": "440300",
        "finance_department_id": guangzhou.id,
    }
    response = await filing_client.post("/api/v1/units", json=body, headers=auth("ops"))
    assert response.json()["code"] == "region_outside_finance_department"
    body = {"name": "广州市教育局", "kind": "budget_unit", "region_code": "440100"}
    created = await filing_client.post("/api/v1/units", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["finance_department_id"] == guangzhou.id


async def test_token_with_an_impossible_unit_id_is_a_401_not_a_server_error(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    for unit_id in (2**63 + 5, 0, -1):
        headers = auth("unit", unit_id)
        response = await filing_client.put(
            "/api/v1/filings/2024/mine", json=own_body(), headers=headers
        )
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "token_invalid"
    response = await filing_client.get("/api/v1/units/mine", headers=auth("unit", 2**62))
    assert response.status_code == 404


@pytest.mark.parametrize("sub", ["x" * 101, "clerk\ud800", "clerk\x00"])
async def test_token_whose_subject_cannot_be_recorded_is_a_401_not_a_server_error(
    session: AsyncSession, filing_client: httpx.AsyncClient, sub: str
) -> None:
    """The subject is recorded as who acted (100 characters of plain text)."""
    tree = await make_tree(session)
    contacts = {"contact": {"name": "甲", "mobile": "13811112222"}}
    response = await filing_client.put(
        "/api/v1/units/mine/contacts", json=contacts, headers=auth("unit", tree.unit.id, sub=sub)
    )
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_invalid"
    ok = await filing_client.put(
        "/api/v1/units/mine/contacts",
        json=contacts,
        headers=auth("unit", tree.unit.id, sub="张" * 100),
    )
    assert ok.status_code == 200


async def test_returned_union_part_can_be_modified_after_the_representative_was_renamed(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    """Only the union part returned: the canteen part (shared/other) stays locked, but the
    remark rendered from the renamed representative is not a change by the unit."""
    tree = await make_tree(session)
    body = shared_other_body(tree.sibling.id)
    filing_id = (await save_and_submit(filing_client, tree.unit, body)).json()["id"]
    await filing_client.patch(
        f"/api/v1/units/{tree.sibling.id}",
        json={"name": "广东二中", "reason": "更名"},
        headers=auth("ops"),
    )
    returned = await filing_client.post(
        f"/api/v1/filings/{filing_id}/return",
        json={"reason": "工会采购比例请核实", "parts": ["union"]},
        headers=auth("unit", tree.department.id),
    )
    assert returned.json()["canteen_status"] == "submitted"
    body["union"] = {"has_need": True, "total": "200000", "ratio": "25"}
    modified = await filing_client.put(
        "/api/v1/filings/2024/mine", json=body, headers=auth("unit", tree.unit.id)
    )
    assert modified.status_code == 200, modified.text
    assert modified.json()["union_expected_amount"] == "50000.00"
    body["representative_unit_id"] = tree.stranger.id  # a real canteen change stays refused
    locked = await filing_client.put(
        "/api/v1/filings/2024/mine", json=body, headers=auth("unit", tree.unit.id)
    )
    assert locked.status_code == 409 and locked.json()["code"] == "part_locked"


async def test_two_crossed_merges_cannot_both_succeed(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    """A merged into B and, at the same moment, B into A: exactly one wins (no merge cycle)."""
    tree = await make_tree(session)
    headers = auth("finance", tree.finance.id)
    other_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app()), base_url="http://filing-2.test"
    )
    async with other_client:
        results = await asyncio.gather(
            filing_client.post(
                f"/api/v1/units/{tree.unit.id}/merge",
                json={"into_unit_id": tree.sibling.id, "reason": "合并"},
                headers=headers,
            ),
            other_client.post(
                f"/api/v1/units/{tree.sibling.id}/merge",
                json={"into_unit_id": tree.unit.id, "reason": "合并"},
                headers=headers,
            ),
        )
    codes = sorted(r.status_code for r in results)
    assert codes[0] == 200 and codes[1] in (409, 422), [r.text for r in results]
    a = await filing_client.get(f"/api/v1/units/{tree.unit.id}", headers=headers)
    b = await filing_client.get(f"/api/v1/units/{tree.sibling.id}", headers=headers)
    assert sorted([a.json()["status"], b.json()["status"]]) == ["active", "merged"]
