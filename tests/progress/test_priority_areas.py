"""Priority-area classification of the origin county, on the reference data (shared/data):
normalised names (full or short official names, with or without province and prefecture, spaces,
full-width characters) and region codes."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import PairedArea, PairedCounty
from tests.progress.helpers import complete, make_province, pay, post_order, unit_view

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


async def load_reference(session: AsyncSession) -> None:
    with (DATA / "guangdong_paired_counties.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            session.add(
                PairedCounty(
                    province=r["province"],
                    prefecture=r["prefecture"],
                    county=r["county"],
                    paired_guangdong_city=r["paired_guangdong_city"],
                    national_key_assistance_county=r["national_key_assistance_county"] == "yes",
                )
            )
    with (DATA / "guangdong_paired_areas_other.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            session.add(PairedArea(province=r["province"], area=r["area"], kind=r["kind"]))
    await session.flush()


CASES = [
    # key counties (national key assistance counties among the paired counties)
    ("罗城仫佬族自治县", "key_county"),
    ("广西壮族自治区河池市罗城仫佬族自治县", "key_county"),
    ("广西河池罗城县", "key_county"),
    ("融水苗族自治县", "key_county"),  # the list says 融水县
    ("柳州市 融水县", "key_county"),
    ("贵州省黔南布依族苗族自治州三都水族自治县", "key_county"),
    ("凤山县", "key_county"),
    # other paired counties
    ("田阳区", "paired_county"),  # 田阳县 became a district: same county
    ("广西壮族自治区百色市田阳县", "paired_county"),
    ("贵州省黔东南苗族侗族自治州黎平县", "paired_county"),
    ("黔东南州黎平县", "paired_county"),
    ("六盘水市盘州市", "paired_county"),
    ("毕节市七星关区", "paired_county"),
    ("ＧＺ 毕节市　七星关区", "paired_county"),  # full-width, ideographic space
    ("大七星关区", "none"),  # a prefix that names neither province nor prefecture
    # paired areas (Kashgar, Nyingchi)
    ("新疆维吾尔自治区喀什地区疏附县", "paired_area"),
    ("喀什市", "paired_area"),
    ("西藏自治区林芝市巴宜区", "paired_area"),
    # not priority areas
    ("广东省河源市和平县", "none"),
    ("广东省韶关市凤山县", "none"),  # same county name, another province
    ("河池市", "none"),  # a prefecture is not a county
    ("", "none"),
    (None, "none"),
    ("   ", "none"),
]


async def test_classification_on_the_reference_data(session: AsyncSession) -> None:
    await load_reference(session)
    got = [
        (origin, await session.scalar(text("SELECT progress_area_class(:o)"), {"o": origin}))
        for origin, _ in CASES
    ]
    await session.rollback()
    assert got == CASES


async def test_every_county_of_the_reference_list_is_recognised(session: AsyncSession) -> None:
    await load_reference(session)
    rows = (
        await session.execute(
            text(
                "SELECT county, prefecture, province, national_key_assistance_county AS key, "
                "progress_area_class(county) AS bare, "
                "progress_area_class(province || prefecture || county) AS full "
                "FROM paired_counties"
            )
        )
    ).all()
    await session.rollback()
    assert len(rows) == 99
    for r in rows:
        expected = "key_county" if r.key else "paired_county"
        assert (r.bare, r.full) == (expected, expected), r.county


async def test_region_codes_are_resolved_through_the_regions_table(session: AsyncSession) -> None:
    await load_reference(session)
    await session.execute(
        text(
            "INSERT INTO regions (code, name, parent_code, level) VALUES "
            "('451200', '河池市', '450000', 2), ('451225', '罗城仫佬族自治县', '451200', 3)"
        )
    )
    got = await session.scalar(text("SELECT progress_area_class('451225')"))
    unknown = await session.scalar(text("SELECT progress_area_class('999999')"))
    await session.rollback()  # regions are kept between tests: leave none behind
    assert (got, unknown) == ("key_county", "none")


async def test_priority_area_amounts_and_share_in_the_unit_view(
    session: AsyncSession,
    payments_client: httpx.AsyncClient,
    confirmation_client: httpx.AsyncClient,
) -> None:
    await load_reference(session)
    p = await make_province(session)
    origins = {
        "广西河池罗城县": ("100.00", "unit"),  # key county
        "黔东南州黎平县": ("200.00", "contractor"),  # paired county
        "新疆喀什地区疏附县": ("300.00", "union"),  # paired area
        "广东省河源市和平县": ("400.00", "personal"),  # none
    }
    for origin, (amount, channel) in origins.items():
        order = await post_order(payments_client, p, p.b1, amount, channel=channel, origin=origin)
        await pay(order)
        await complete(payments_client, order)
    view = await unit_view(confirmation_client, p.b1)
    assert view["priority_areas"] == {
        "paired_counties": "300.00",  # key counties included
        "key_counties": "100.00",
        "paired_areas_other": "300.00",
        "total": "1000.00",
        "share_pct": "60.00",
    }
