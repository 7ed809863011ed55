"""Excel workbooks (what finance users work in): opened with openpyxl, cells checked."""

from __future__ import annotations

import io
from datetime import datetime

import httpx
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import FilingStatus, SummaryStatus
from tests.confirmation.finance_tree import make_finance_tree, make_summary
from tests.conftest import auth
from tests.factories import make_submitted_filing

Y = 2024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rows(ws: Worksheet) -> list[list[object]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _col(ws: Worksheet, header: str) -> int:
    return [c.value for c in ws[1]].index(header) + 1


async def test_province_workbook_sheets_cells_and_layout(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await make_submitted_filing(
        session,
        t.education,
        canteen_total="2000011",
        canteen_ratio="20",
        status=FilingStatus.CONFIRMED,
        flags=("below_soft_floor",),
        contact_mobile="13812345678",
    )
    await make_submitted_filing(session, t.school, contact_mobile="13900001111")
    await make_submitted_filing(session, t.city_school, flags=("union_zero_amounts",))
    await make_submitted_filing(session, t.other_department)
    await make_summary(session, t.education, t.province, status=SummaryStatus.SUBMITTED)
    await session.commit()

    r = await confirmation_client.get(
        f"/api/v1/finance/{Y}/export.xlsx", headers=auth("finance", t.province.id)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XLSX
    assert "attachment" in r.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["汇总", "明细", "未填报", "低于比例", "异常"]

    summary = wb["汇总"]
    rows = _rows(summary)
    assert rows[0][:3] == ["主管部门", "财政部门", "单位数"]
    by_dept = {row[0]: row for row in rows[1:]}
    assert set(by_dept) == {"广东省教育厅", "广东省林业局", "广州市教育局"}  # not Guangxi's
    edu = by_dept["广东省教育厅"]
    assert edu[1] == "广东省财政厅"
    assert edu[2:6] == [3, 2, 1, 1]  # units, filed, confirmed, flagged
    assert edu[-1] == "已报送同级财政"
    assert by_dept["广东省林业局"][-1] == "未报送"
    reserved_col = _col(summary, "预留份额（元）")
    cell = summary.cell(row=[r[0] for r in rows].index("广东省教育厅") + 1, column=reserved_col)
    # 2,000,011.00 × 20% = 400,002.20 plus the school's 300,000.00
    assert cell.value == 700002.2
    assert cell.number_format == "#,##0.00"

    detail = wb["明细"]
    assert detail.freeze_panes == "A2"
    assert detail.auto_filter.ref is not None and detail.auto_filter.ref.startswith("A1:")
    headers = [c.value for c in detail[1]]
    assert headers[:4] == ["单位编码", "单位名称", "主管部门", "财政部门"]
    rows = _rows(detail)
    assert len(rows) == 1 + 6  # every unit of the province (Guangzhou's included)
    name_col, mobile_col = _col(detail, "单位名称"), _col(detail, "联系人手机")
    total_col, ratio_col = (
        _col(detail, "年度食堂食材采购总额（元）"),
        _col(detail, "预留比例（%）"),
    )
    edu_row = next(i for i, r in enumerate(rows, 1) if r[name_col - 1] == "广东省教育厅")
    assert detail.cell(edu_row, mobile_col).value == "138****5678"
    assert detail.cell(edu_row, total_col).value == 2000011
    assert detail.cell(edu_row, total_col).number_format == "#,##0.00"
    assert detail.cell(edu_row, ratio_col).value == 20
    assert detail.cell(edu_row, _col(detail, "主管部门")).value == "广东省教育厅"
    submitted = detail.cell(edu_row, _col(detail, "提交时间"))
    assert isinstance(submitted.value, datetime)  # a real date-time, local time
    assert submitted.number_format == "yyyy-mm-dd hh:mm"
    school_row = next(i for i, r in enumerate(rows, 1) if r[name_col - 1] == "广东省实验中学")
    assert detail.cell(school_row, _col(detail, "主管部门")).value == "广东省教育厅"
    assert detail.cell(school_row, _col(detail, "填报状态")).value == "待上级预算单位确认"
    all_text = " ".join(str(v) for r in rows for v in r if v is not None)
    assert "13812345678" not in all_text and "13900001111" not in all_text
    # widths fit Chinese text: the long amount header is wider than its characters
    letter = get_column_letter(total_col)
    assert (detail.column_dimensions[letter].width or 0) >= 2 * len("年度食堂食材采购总额（元）")

    assert [r[1] for r in _rows(wb["未填报"])[1:]] == [
        "广东省第二中学",
        "广东省林业局",
        "广州市教育局",
    ]
    assert [r[1] for r in _rows(wb["低于比例"])[1:]] == ["广东省教育厅"]
    assert [r[1] for r in _rows(wb["异常"])[1:]] == ["广东省教育厅", "广州市第一中学"]
    assert wb["异常"].freeze_panes == "A2"


async def test_department_workbook_and_its_scope(
    session: AsyncSession, confirmation_client: httpx.AsyncClient
) -> None:
    t = await make_finance_tree(session)
    await make_submitted_filing(session, t.education, status=FilingStatus.CONFIRMED)
    await make_submitted_filing(session, t.school)
    await session.commit()
    path = f"/api/v1/departments/{t.education.id}/summary/{Y}/export.xlsx"
    for headers in (
        auth("unit", t.education.id),
        auth("finance", t.province.id),
        auth("ops"),
    ):
        r = await confirmation_client.get(path, headers=headers)
        assert r.status_code == 200, r.text
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["汇总", "明细"]
    total = _rows(wb["汇总"])[1]
    assert total[0] == "广东省教育厅"
    assert total[2:5] == [3, 2, 1]
    assert total[-1] == "未报送"
    assert [r[1] for r in _rows(wb["明细"])[1:]] == [
        "广东省教育厅",
        "广东省实验中学",
        "广东省第二中学",
    ]
    for headers in (
        auth("unit", t.school.id),  # a subordinate is not the department
        auth("unit", t.forestry.id),
        auth("finance", t.city.id),
    ):
        r = await confirmation_client.get(path, headers=headers)
        assert r.status_code == 404, headers
