"""Excel workbooks of the finance users (财政部门导出): streamed, constant memory.

xlsxwriter's `constant_memory` mode writes each row to a temporary file as soon as the row is
complete, so a province of 60,000 units costs a few MB whatever its size. Rows are read from the
database in batches through a server-side cursor (async), and each batch is written in a worker
thread (`asyncio.to_thread`): the event loop never builds the file. Sheets are written one after
the other (constant-memory mode cannot go back to an earlier row).

Layout of every sheet: a Chinese header row, frozen; an auto-filter over the data; amounts and
ratios as numeric cells formatted `#,##0.00`; column widths sized for Chinese text (two units per
CJK character); mobiles masked (`138****5678`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from shared.masking import mask_mobile

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

STATUS_ZH = {
    None: "未填报",
    "draft": "草稿（未提交）",
    "submitted": "待上级预算单位确认",
    "returned": "已退回",
    "confirmed": "上级预算单位已确认",
    "department_submitted": "部门已报送同级财政",
    "finance_confirmed": "财政部门已审核",
    "finance_returned": "财政部门已退回",
}
SUMMARY_STATUS_ZH = {
    None: "未报送",
    "not_submitted": "未报送",
    "submitted": "已报送同级财政",
    "confirmed": "财政部门已确认",
    "returned": "财政部门已退回",
}
CANTEEN_ZH = {
    None: "",
    "own": "本单位自有的食堂",
    "outsourced": "食堂外包",
    "shared": "其他单位共用食堂",
    "none": "无食堂",
}
FLAG_ZH = {
    "below_soft_floor": "低于本地区比例",
    "sharp_change_total": "采购总额变化大",
    "sharp_change_ratio": "预留比例变化大",
    "representative_not_filed": "代表单位未填报",
    "union_zero_amounts": "工会金额为0",
    "shared_contact_mobile": "联系人手机号共用",
    "no_canteen_remark": "无食堂备注不规范",
}


@dataclass(frozen=True)
class Column:
    header: str
    key: str | Callable[[dict[str, Any]], Any]
    kind: str = "text"  # text | money | int | datetime

    def value(self, row: dict[str, Any]) -> Any:
        return self.key(row) if callable(self.key) else row.get(self.key)


WIDTH_SAMPLE_ROWS = 2_000
"""Column widths follow the longest value of the first rows (every row would double the cost)."""
MAX_WIDTH = 60
EXCEL_EPOCH = datetime(1899, 12, 30)
ONE_DAY = timedelta(days=1)


def display_width(text: str) -> int:
    """Excel column units of a text: CJK and full-width characters (three UTF-8 bytes) count
    two, others one."""
    return len(text) + (len(text.encode()) - len(text)) // 2


def _flags(row: dict[str, Any]) -> str:
    return "、".join(FLAG_ZH.get(f, f) for f in (row.get("flags") or []))


def _mobile(row: dict[str, Any]) -> str | None:
    return mask_mobile(row.get("contact_mobile"))


UNIT_COLUMNS: tuple[Column, ...] = (
    Column("单位编码", "unit_code"),
    Column("单位名称", "unit_name"),
    Column("主管部门", "department_name"),
    Column("财政部门", "finance_department_name"),
    Column("地区代码", "region_code"),
    Column("填报状态", lambda r: STATUS_ZH.get(r.get("status"), r.get("status"))),
    Column("食堂类型", lambda r: CANTEEN_ZH.get(r.get("canteen_type"), r.get("canteen_type"))),
    Column("年度食堂食材采购总额（元）", "canteen_total", "money"),
    Column("预留比例（%）", "canteen_ratio", "money"),
    Column("预留份额（元）", "reserved_amount", "money"),
    Column("工会采购总额（元）", "union_total", "money"),
    Column("工会预计采购金额（元）", "union_expected_amount", "money"),
    Column("备注", "remark"),
    Column("异常标记", _flags),
    Column("联系人", "contact_name"),
    Column("联系人手机", _mobile),
    Column("提交时间", "submitted_at", "datetime"),
)

NOT_FILED_COLUMNS: tuple[Column, ...] = (
    Column("单位编码", "unit_code"),
    Column("单位名称", "unit_name"),
    Column("主管部门", "department_name"),
    Column("财政部门", "finance_department_name"),
    Column("填报状态", lambda r: STATUS_ZH.get(r.get("status"), r.get("status"))),
    Column("联系人", "contact_name"),
    Column("联系人手机", _mobile),
)

SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("主管部门", "department_name"),
    Column("财政部门", "finance_department_name"),
    Column("单位数", "units", "int"),
    Column("已填报", "filed", "int"),
    Column("已确认", "confirmed", "int"),
    Column("异常数", "flagged", "int"),
    Column("年度食堂食材采购总额（元）", "canteen_total", "money"),
    Column("预留份额（元）", "reserved_amount", "money"),
    Column("工会采购总额（元）", "union_total", "money"),
    Column("工会预计采购金额（元）", "union_expected_amount", "money"),
    Column("部门汇总状态", lambda r: SUMMARY_STATUS_ZH.get(r.get("summary_status"), "")),
)


class SheetWriter:
    """One worksheet written row by row (constant memory); widths follow the longest text."""

    def __init__(self, book: XlsxBook, name: str, columns: Sequence[Column]) -> None:
        self.book = book
        self.columns = columns
        self.sheet: Worksheet = book.workbook.add_worksheet(name)
        self.row = 0
        self.widths = [display_width(c.header) + 2 for c in columns]
        for col, c in enumerate(columns):
            self.sheet.write_string(0, col, c.header, book.header)
        self.sheet.freeze_panes(1, 0)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        sheet, book = self.sheet, self.book
        write_number, write_string = sheet.write_number, sheet.write_string
        money_format, datetime_format, tz = book.money, book.datetime, book.tz
        kinds = [(col, c.key, c.kind) for col, c in enumerate(self.columns)]
        for data in rows:
            self.row += 1
            row = self.row
            measure = row <= WIDTH_SAMPLE_ROWS
            for col, key, kind in kinds:
                value = key(data) if callable(key) else data.get(key)
                if value is None or value == "":
                    continue
                if kind == "money":
                    write_number(row, col, float(value), money_format)
                    text = f"{value:,.2f}" if measure else ""
                elif kind == "int":
                    write_number(row, col, value)
                    text = str(value) if measure else ""
                elif kind == "datetime" and isinstance(value, datetime):
                    # an Excel date-time (a number: sortable, filterable, cheap to write)
                    local = value.astimezone(tz).replace(tzinfo=None)
                    write_number(row, col, (local - EXCEL_EPOCH) / ONE_DAY, datetime_format)
                    text = "2024-01-01 00:00" if measure else ""
                else:
                    text = str(value)
                    write_string(row, col, text)
                if measure:
                    width = display_width(text) + 2
                    if width > self.widths[col]:
                        self.widths[col] = min(width, MAX_WIDTH)

    def close(self) -> None:
        """Widths and auto-filter (allowed after the rows in constant-memory mode)."""
        for col, width in enumerate(self.widths):
            self.sheet.set_column(col, col, width)
        self.sheet.autofilter(0, 0, max(self.row, 1), len(self.columns) - 1)


class XlsxBook:
    """A workbook in a temporary file; `path` is handed to the response, which deletes it."""

    def __init__(self, tz: Any) -> None:
        fd, self.path = tempfile.mkstemp(prefix="export-", suffix=".xlsx")
        os.close(fd)
        self.tz = tz
        self.workbook = xlsxwriter.Workbook(
            self.path,
            {"constant_memory": True, "tmpdir": tempfile.gettempdir(), "strings_to_numbers": False},
        )
        self.header = self.workbook.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": False}
        )
        self.money = self.workbook.add_format({"num_format": "#,##0.00"})
        self.datetime = self.workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})

    def sheet(self, name: str, columns: Sequence[Column]) -> SheetWriter:
        return SheetWriter(self, name, columns)

    def close(self) -> None:
        self.workbook.close()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


async def write_sheet(
    book: XlsxBook,
    name: str,
    columns: Sequence[Column],
    batches: AsyncIterator[list[dict[str, Any]]] | Sequence[dict[str, Any]],
) -> int:
    """Write one sheet: batches come from the database (async), each is written off the loop."""
    writer = await asyncio.to_thread(book.sheet, name, columns)
    if isinstance(batches, Sequence):
        await asyncio.to_thread(writer.write, batches)
    else:
        # the next batch is fetched while the thread writes this one (at most two in memory)
        writing: asyncio.Future[None] | None = None
        try:
            async for batch in batches:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(writer.write, batch))
        finally:
            if writing is not None:
                await writing
    await asyncio.to_thread(writer.close)
    return writer.row
