"""SPEC.md §2: the fields of a filing and their rules, checked when the draft is saved."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import auth
from tests.factories import make_unit
from tests.filing.helpers import (
    error_codes,
    error_locs,
    make_tree,
    no_union,
    own_body,
    save,
    shared_other_body,
)


@pytest.mark.parametrize(
    ("total", "ratio", "reserved"),
    [
        ("1000000", "20", "200000.00"),
        ("10000", "18", "1800.00"),
        ("2000011", "20", "400002.20"),
    ],
)
async def test_worked_examples_of_the_notice(
    session: AsyncSession, filing_client: httpx.AsyncClient, total: str, ratio: str, reserved: str
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(total, ratio))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reserved_amount"] == reserved
    assert body["canteen_total"] == f"{int(total)}.00"
    assert body["canteen_ratio"] == f"{int(ratio)}.00"
    # the union example of the notice: 200000 × 20% = 40000.00
    assert body["union_expected_amount"] == "40000.00"
    assert body["union"]["expected_amount"] == "40000.00"
    assert body["status"] == "draft"


async def test_reserved_amount_rounds_half_up_to_the_cent(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    # 0.25 × 30% = 0.075 → 0.08 (half-up), 33.33 × 33.33% = 11.108889 → 11.11
    response = await save(filing_client, tree.unit, own_body("0.25", "30"))
    assert response.json()["reserved_amount"] == "0.08"
    response = await save(filing_client, tree.unit, own_body("33.33", "33.33"))
    assert response.json()["reserved_amount"] == "11.11"


@pytest.mark.parametrize(
    "bad", ["1,000,000", "1000000.123", "-100", "1e6", "abc", "１０００", " 100", "1.2.3"]
)
async def test_totals_and_ratios_accept_digits_and_one_decimal_point_only(
    session: AsyncSession, filing_client: httpx.AsyncClient, bad: str
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(total=bad))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert ["body", "canteen_total"] in error_locs(response)
    response = await save(filing_client, tree.unit, own_body(ratio=bad))
    assert response.status_code == 422
    assert ["body", "canteen_ratio"] in error_locs(response)


async def test_amounts_accept_up_to_two_decimals(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    for total, shown in (
        ("200000", "200000.00"),
        ("200000.5", "200000.50"),
        ("200000.50", "200000.50"),
    ):
        response = await save(filing_client, tree.unit, own_body(total=total))
        assert response.status_code == 200, response.text
        assert response.json()["canteen_total"] == shown


async def test_ratio_above_100_rejected(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(ratio="100.01"))
    assert response.status_code == 422
    assert response.json()["code"] == "ratio_above_100"
    assert error_locs(response) == [["body", "canteen_ratio"]]
    union = {"has_need": True, "total": "1", "ratio": "250"}
    response = await save(filing_client, tree.unit, own_body(union=union))
    assert error_locs(response) == [["body", "union", "ratio"]]
    assert (await save(filing_client, tree.unit, own_body(ratio="100"))).status_code == 200


async def test_reserved_amount_is_computed_never_sent(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(reserved_amount="1.00"))
    assert response.status_code == 422
    assert ["body", "reserved_amount"] in error_locs(response)


@pytest.mark.parametrize("canteen_type", ["own", "outsourced"])
async def test_own_and_outsourced_require_total_and_ratio(
    session: AsyncSession, filing_client: httpx.AsyncClient, canteen_type: str
) -> None:
    tree = await make_tree(session)
    body = own_body(canteen_type=canteen_type, canteen_total=None, canteen_ratio="")
    if canteen_type == "outsourced":
        body["contractor_name"] = "广州某餐饮管理有限公司"
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 422
    assert error_locs(response) == [["body", "canteen_total"], ["body", "canteen_ratio"]]
    assert response.json()["detail"].startswith("canteen_total: 请填写年度食堂食材采购总额")


async def test_no_canteen_remark_must_be_exact(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    body = own_body(canteen_type="none", canteen_total=None, canteen_ratio=None)
    for wrong in ("无饭堂", "", "无食堂。", "没有食堂"):
        response = await save(filing_client, tree.unit, {**body, "remark": wrong})
        assert response.status_code == 422, wrong
        assert response.json()["code"] == "no_canteen_remark_must_be_exact"
        assert error_locs(response) == [["body", "remark"]]
        assert "无食堂" in response.json()["detail"]
    response = await save(filing_client, tree.unit, {**body, "remark": "无食堂"})
    assert response.status_code == 200, response.text
    assert response.json()["remark"] == "无食堂"
    assert response.json()["reserved_amount"] is None


async def test_no_canteen_forbids_total_and_ratio(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(canteen_type="none", remark="无食堂"))
    assert response.status_code == 422
    assert set(error_codes(response)) == {"field_not_allowed"}
    assert error_locs(response) == [["body", "canteen_total"], ["body", "canteen_ratio"]]


async def test_remark_at_most_50_characters(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(remark="备" * 51))
    assert response.status_code == 422
    assert response.json()["code"] == "remark_too_long"
    response = await save(filing_client, tree.unit, own_body(remark="备" * 50))
    assert response.status_code == 200
    union = {"has_need": False, "remark": "无" * 51}
    response = await save(filing_client, tree.unit, own_body(union=union))
    assert error_locs(response) == [["body", "union", "remark"]]


async def test_shared_canteen_requires_who_fills(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(canteen_type="shared"))
    assert response.status_code == 422
    assert response.json()["code"] == "shared_filled_by_required"
    response = await save(filing_client, tree.unit, own_body(shared_filled_by="self"))
    assert response.json()["code"] == "field_not_allowed"


async def test_shared_self_files_figures_and_records_sharing_units(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    body = own_body(
        canteen_type="shared",
        shared_filled_by="self",
        shared_unit_ids=[tree.sibling.id, tree.stranger.id],
    )
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 200, response.text
    assert response.json()["shared_unit_ids"] == [tree.sibling.id, tree.stranger.id]
    assert response.json()["reserved_amount"] == "300000.00"
    body["shared_unit_ids"] = [tree.unit.id, 999999]
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 422
    assert error_locs(response) == [["body", "shared_unit_ids", 0], ["body", "shared_unit_ids", 1]]


async def test_shared_other_references_representative_and_renders_remark(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    body = shared_other_body(tree.sibling.id)
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 200, response.text
    filing = response.json()
    assert filing["representative_unit_id"] == tree.sibling.id
    assert filing["representative_unit_name"] == "广东省第二中学"
    assert filing["remark"] == "共用广东省第二中学食堂"
    assert filing["canteen_total"] is None and filing["reserved_amount"] is None


async def test_shared_other_rejects_a_typed_remark_and_figures(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    body = own_body(
        canteen_type="shared",
        shared_filled_by="other",
        representative_unit_id=tree.sibling.id,
        remark="共用XX单位食堂",
    )
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 422
    assert error_locs(response) == [
        ["body", "canteen_total"],
        ["body", "canteen_ratio"],
        ["body", "remark"],
    ]


@pytest.mark.parametrize("representative", [None, 999999, "self", "finance"])
async def test_shared_other_needs_an_existing_representative_unit(
    session: AsyncSession, filing_client: httpx.AsyncClient, representative: object
) -> None:
    tree = await make_tree(session)
    known = {"self": tree.unit.id, "finance": tree.finance.id}
    rep_id = known[representative] if isinstance(representative, str) else representative
    assert rep_id is None or isinstance(rep_id, int)
    body = shared_other_body(rep_id)
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 422
    assert error_locs(response) == [["body", "representative_unit_id"]]


async def test_representative_only_for_shared_other(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(
        filing_client, tree.unit, own_body(representative_unit_id=tree.sibling.id)
    )
    assert response.status_code == 422
    assert error_locs(response) == [["body", "representative_unit_id"]]


async def test_outsourced_records_the_purchasing_entity(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(canteen_type="outsourced"))
    assert response.status_code == 422
    assert error_locs(response) == [["body", "contractor_name"]]
    body = own_body(canteen_type="outsourced", contractor_name="广州某餐饮管理有限公司")
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 200
    assert response.json()["contractor_name"] == "广州某餐饮管理有限公司"
    response = await save(filing_client, tree.unit, own_body(contractor_name="某公司"))
    assert error_locs(response) == [["body", "contractor_name"]]


async def test_union_no_needs_a_remark(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(
        filing_client, tree.unit, own_body(union={"has_need": False, "remark": " "})
    )
    assert response.status_code == 422
    assert response.json()["code"] == "union_remark_required"
    assert error_locs(response) == [["body", "union", "remark"]]
    response = await save(filing_client, tree.unit, own_body(union=no_union()))
    assert response.status_code == 200
    assert response.json()["union"]["has_need"] is False
    assert response.json()["union_expected_amount"] is None


async def test_union_yes_requires_total_and_ratio(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(union={"has_need": True}))
    assert response.status_code == 422
    assert error_locs(response) == [["body", "union", "total"], ["body", "union", "ratio"]]
    union = {"has_need": False, "total": "100", "remark": "无需求"}
    response = await save(filing_client, tree.unit, own_body(union=union))
    assert error_locs(response) == [["body", "union", "total"]]
    response = await save(filing_client, tree.unit, own_body(union={"has_need": "yes"}))
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("contact", "loc"),
    [
        ({"name": "李四", "mobile": "12812345678"}, ["body", "contact", "mobile"]),
        ({"name": "李四", "mobile": "1381234567"}, ["body", "contact", "mobile"]),
        ({"name": "李四", "mobile": "+8613812345678"}, ["body", "contact", "mobile"]),
        ({"name": "", "mobile": "13812345678"}, ["body", "contact", "name"]),
        ({"mobile": "13812345678"}, ["body", "contact", "name"]),
        ({"name": "李四"}, ["body", "contact", "mobile"]),
        (
            {"name": "李四", "mobile": "13812345678", "landline": "83170000"},
            ["body", "contact", "landline"],
        ),
        (
            {"name": "李四", "mobile": "13812345678", "landline": "020 83170000"},
            ["body", "contact", "landline"],
        ),
    ],
)
async def test_contact_needs_name_and_mainland_mobile_landline_optional(
    session: AsyncSession, filing_client: httpx.AsyncClient, contact: dict[str, str], loc: list[str]
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(contact=contact))
    assert response.status_code == 422
    assert error_locs(response) == [loc]
    assert response.json()["errors"][0]["msg"]


async def test_union_contact_is_optional(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    body = own_body(union_contact=None, contact={"name": "李四", "mobile": "13812345678"})
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 200, response.text
    assert response.json()["union_contact"] is None
    assert response.json()["contact"] == {"name": "李四", "mobile": "13812345678", "landline": None}
    body["union_contact"] = {"name": "王五", "mobile": "123"}
    response = await save(filing_client, tree.unit, body)
    assert error_locs(response) == [["body", "union_contact", "mobile"]]


async def test_year_without_policy_cannot_be_filed(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(), year=2031)
    assert response.status_code == 404
    assert response.json()["code"] == "policy_missing"
    assert "2031" in response.json()["detail"]


async def test_only_budget_units_file(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    response = await filing_client.put(
        "/api/v1/filings/2024/mine", json=own_body(), headers=auth("finance", tree.finance.id)
    )
    assert response.status_code == 403
    response = await save(filing_client, tree.finance, own_body())
    assert response.status_code == 403
    assert response.json()["code"] == "not_a_budget_unit"


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        {"canteen_type": "canteen"},
        {**own_body(), "shared_unit_ids": [2**70]},
        {**own_body(), "representative_unit_id": -1},
        {**own_body(), "remark": "a\x00b"},
        {**own_body(), "contact": "13812345678"},
        {**own_body(), "union": None},
        {**own_body(), "canteen_total": True},
        {**own_body(), "canteen_total": {"x": 1}},
        {**own_body(), "canteen_total": "9" * 20},
    ],
)
async def test_no_input_yields_a_server_error(
    session: AsyncSession, filing_client: httpx.AsyncClient, body: object
) -> None:
    tree = await make_tree(session)
    response = await filing_client.put(
        "/api/v1/filings/2024/mine", json=body, headers=auth("unit", tree.unit.id)
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"canteen_type": "own", "canteen_total": 1e400}',
        '{"canteen_type": "own", "canteen_total": NaN}',
        "{not json",
        '{"canteen_type": "own", "remark": "\\ud800"}',
    ],
)
async def test_malformed_json_is_a_422(
    session: AsyncSession, filing_client: httpx.AsyncClient, raw: str
) -> None:
    tree = await make_tree(session)
    headers = {**auth("unit", tree.unit.id), "Content-Type": "application/json"}
    response = await filing_client.put("/api/v1/filings/2024/mine", content=raw, headers=headers)
    assert response.status_code == 422, response.text


async def test_huge_year_or_garbage_path_is_a_4xx(
    session: AsyncSession, filing_client: httpx.AsyncClient
) -> None:
    tree = await make_tree(session)
    headers = auth("unit", tree.unit.id)
    for path in ("/api/v1/filings/99999999999999999999/mine", "/api/v1/filings/abc/mine"):
        assert (await filing_client.get(path, headers=headers)).status_code == 422
    unit = await make_unit(session)
    await session.commit()
    response = await filing_client.get("/api/v1/filings/2024/mine", headers=auth("unit", unit.id))
    assert response.status_code == 404
    assert response.json()["code"] == "filing_not_found"


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("remark", "\ud800", ["body", "remark"]),
        ("contact", {"name": "李\udfff", "mobile": "13812345678"}, ["body", "contact", "name"]),
        ("union", {"has_need": False, "remark": "\ud83d"}, ["body", "union", "remark"]),
    ],
)
async def test_text_with_a_lone_surrogate_is_a_422_not_a_server_error(
    session: AsyncSession, filing_client: httpx.AsyncClient, field: str, value: object, loc: list
) -> None:
    """JSON may carry `\\ud800` (valid JSON, not valid UTF-8): a 422, never a database error."""
    tree = await make_tree(session)
    body = own_body()
    body[field] = value
    raw = json.dumps(body)  # ensure_ascii: the surrogate stays escaped
    headers = {**auth("unit", tree.unit.id), "Content-Type": "application/json"}
    response = await filing_client.put("/api/v1/filings/2024/mine", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    assert error_locs(response) == [loc]
    mine = await filing_client.get("/api/v1/filings/2024/mine", headers=headers)
    assert mine.status_code == 404


@pytest.mark.parametrize("blank", [{"name": "", "mobile": "", "landline": ""}, {}, None])
async def test_union_contact_left_blank_is_no_union_contact(
    session: AsyncSession, filing_client: httpx.AsyncClient, blank: object
) -> None:
    """API.md's draft body sends the optional union contact as empty strings."""
    tree = await make_tree(session)
    response = await save(filing_client, tree.unit, own_body(union_contact=blank))
    assert response.status_code == 200, response.text
    assert response.json()["union_contact"] is None
    contacts = {"contact": {"name": "李四", "mobile": "13812345678"}, "union_contact": blank}
    response = await filing_client.put(
        "/api/v1/units/mine/contacts", json=contacts, headers=auth("unit", tree.unit.id)
    )
    assert response.status_code == 200, response.text
    assert response.json()["union_contact"] is None
    half = own_body(union_contact={"name": "王五", "mobile": "", "landline": ""})
    response = await save(filing_client, tree.unit, half)
    assert error_locs(response) == [["body", "union_contact", "mobile"]]


@pytest.mark.parametrize("number", [1000000, 0, 20])
async def test_totals_and_ratios_are_json_strings_not_numbers(
    session: AsyncSession, filing_client: httpx.AsyncClient, number: int
) -> None:
    """API.md: "200000", "200000.5", "200000.50" — a JSON number is refused like 1000.5 is."""
    tree = await make_tree(session)
    body = own_body()
    body["canteen_total"] = number
    body["union"] = {"has_need": True, "total": "200000", "ratio": number}
    response = await save(filing_client, tree.unit, body)
    assert response.status_code == 422, response.text
    assert error_locs(response) == [["body", "canteen_total"], ["body", "union", "ratio"]]
    assert "数字字符串" in response.json()["detail"]
