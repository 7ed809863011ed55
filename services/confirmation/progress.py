"""Progress toward the reserved share (API.md "Progress toward the reserved share", SPEC §6):
the unit view, the finance views and their Excel export, the drift check. Reads only: the
counters are kept by the database (migration 0009) in the transaction that makes an order count.
"""

from __future__ import annotations

import calendar
import io
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.confirmation import progress_repository as repo
from shared.auth import Principal, Role, ensure_unit_in_scope
from shared.errors import NotFound
from shared.money import MoneyOut, round_cents
from shared.settings import get_settings

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
GroupBy = Literal["department", "region", "unit"]
Sort = Literal[
    "completion_pct", "union_completion_pct", "canteen_purchased", "reserved_amount",
    "union_purchased",
]  # fmt: skip
BEHIND_COUNT = 10


# ----------------------------------------------------------------------------- schemas


class ByChannel(BaseModel):
    unit: MoneyOut
    contractor: MoneyOut
    personal: MoneyOut
    union: MoneyOut


class PriorityAreas(BaseModel):
    paired_counties: MoneyOut  # key counties included
    key_counties: MoneyOut
    paired_areas_other: MoneyOut
    total: MoneyOut  # every counted purchase (all channels)
    share_pct: MoneyOut | None


class MonthAmount(BaseModel):
    month: int
    amount: MoneyOut  # canteen channels
    last_year_amount: MoneyOut | None


class Projection(BaseModel):
    year_end_amount: MoneyOut
    on_track: bool | None
    method: Literal["actual", "ytd_pace", "last_year_shape", "not_started"]


class Figures(BaseModel):
    reserved_amount: MoneyOut | None
    canteen_purchased: MoneyOut
    canteen_completion_pct: MoneyOut | None
    union_expected_amount: MoneyOut | None
    union_purchased: MoneyOut
    union_completion_pct: MoneyOut | None
    by_channel: ByChannel
    priority_areas: PriorityAreas


class MergedUnit(BaseModel):
    unit_id: int
    name: str
    canteen_purchased: MoneyOut
    union_purchased: MoneyOut


class UnitProgressOut(Figures):
    unit_id: int
    unit_name: str
    unit_status: str
    year: int
    monthly: list[MonthAmount]
    projection: Projection
    merged_units: list[MergedUnit]  # units merged into this one: their figures stay theirs
    as_of: datetime


class ProgressRow(Figures):
    key: str
    name: str | None
    units_count: int


class FinanceProgressOut(BaseModel):
    items: list[ProgressRow]
    next_cursor: str | None
    totals: ProgressRow
    behind: list[ProgressRow]


# ----------------------------------------------------------------------------- figures


def _pct(amount: Decimal, target: Decimal | None) -> Decimal | None:
    if target is None or target <= 0:
        return None
    return round_cents(amount * 100 / target)


def _d(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


def figures(r: Any) -> dict[str, Any]:
    """The common figures of a totals-shaped row (unit totals or a group's sums)."""
    canteen = _d(r.unit_amount) + _d(r.contractor_amount) + _d(r.personal_amount)
    union = _d(r.union_amount)
    reserved = None if r.reserved_amount is None else Decimal(r.reserved_amount)
    expected = None if r.union_expected_amount is None else Decimal(r.union_expected_amount)
    total = canteen + union
    paired, other = _d(r.paired_amount), _d(r.other_area_amount)
    return {
        "reserved_amount": reserved,
        "canteen_purchased": canteen,
        "canteen_completion_pct": _pct(canteen, reserved),
        "union_expected_amount": expected,
        "union_purchased": union,
        "union_completion_pct": _pct(union, expected),
        "by_channel": ByChannel(
            unit=_d(r.unit_amount),
            contractor=_d(r.contractor_amount),
            personal=_d(r.personal_amount),
            union=union,
        ),
        "priority_areas": PriorityAreas(
            paired_counties=paired,
            key_counties=_d(r.key_amount),
            paired_areas_other=other,
            total=total,
            share_pct=_pct(paired + other, total),
        ),
    }


class _Empty:
    reserved_amount = None
    union_expected_amount = None
    unit_amount = contractor_amount = personal_amount = union_amount = None
    paired_amount = key_amount = other_area_amount = None


def project(
    year: int,
    as_of: datetime,
    monthly: dict[int, Decimal],
    last_year: dict[int, Decimal],
) -> tuple[Decimal, str]:
    """Year-end canteen amount: the actual total for a past year; for the current year the
    year-to-date amount divided by the share of last year's total bought by the same point of
    the year (last year's monthly shape) when last year had purchases, else by the elapsed
    fraction of the year (the year-to-date pace)."""
    ytd = sum(monthly.values(), ZERO)
    if year < as_of.year:
        return ytd, "actual"
    if year > as_of.year:
        return ZERO, "not_started"
    days_in_month = calendar.monthrange(year, as_of.month)[1]
    month_fraction = Decimal(as_of.day) / Decimal(days_in_month)
    last_total = sum(last_year.values(), ZERO)
    if last_total > 0:
        before = sum((v for m, v in last_year.items() if m < as_of.month), ZERO)
        share = (before + last_year.get(as_of.month, ZERO) * month_fraction) / last_total
        if share > 0:
            return round_cents(ytd / share), "last_year_shape"
    days = 366 if calendar.isleap(year) else 365
    elapsed = Decimal(as_of.timetuple().tm_yday) / Decimal(days)
    return round_cents(ytd / elapsed), "ytd_pace"


async def unit_progress(
    session: AsyncSession, principal: Principal, year: int, unit_id: int
) -> UnitProgressOut:
    await ensure_unit_in_scope(session, principal, unit_id)
    unit = await repo.unit_brief(session, unit_id)
    if unit is None:
        raise NotFound("单位不存在或无权访问", code="unit_not_found")
    totals = await repo.unit_totals(session, year, unit_id) or _Empty()
    months = await repo.monthly_canteen(session, [year, year - 1], unit_id)
    this_year = {m: Decimal(a) for (y, m), a in months.items() if y == year}
    last_year = {m: Decimal(a) for (y, m), a in months.items() if y == year - 1}
    as_of = datetime.now(ZoneInfo(get_settings().timezone))
    projected, method = project(year, as_of, this_year, last_year)
    base = figures(totals)
    reserved = base["reserved_amount"]
    return UnitProgressOut(
        unit_id=unit.id,
        unit_name=unit.name,
        unit_status=str(unit.status),
        year=year,
        **base,
        monthly=[
            MonthAmount(
                month=m,
                amount=this_year.get(m, ZERO),
                last_year_amount=last_year.get(m, ZERO) if last_year else None,
            )
            for m in range(1, 13)
        ],
        projection=Projection(
            year_end_amount=projected,
            on_track=None if reserved is None or reserved <= 0 else projected >= reserved,
            method=method,
        ),
        merged_units=[
            MergedUnit(
                unit_id=m.id,
                name=m.name,
                canteen_purchased=m.canteen_amount,
                union_purchased=m.union_amount,
            )
            for m in await repo.merged_into(session, year, unit_id)
        ],
        as_of=as_of,
    )


async def _finance_department(
    session: AsyncSession, principal: Principal, finance_department_id: int
) -> None:
    """404 unless the department exists, is a finance department and is in the caller's scope
    (a finance department sees itself and the departments under it; ops all)."""
    if principal.role == Role.FINANCE:
        await ensure_unit_in_scope(session, principal, finance_department_id)
    unit = await repo.unit_brief(session, finance_department_id)
    if unit is None or str(unit.kind) != "finance_department":
        raise NotFound("财政部门不存在或无权访问", code="finance_department_not_found")


def _row(r: Any, key: Any, name: str | None, count: int) -> ProgressRow:
    return ProgressRow(key=str(key), name=name, units_count=count, **figures(r))


async def finance_progress(
    session: AsyncSession,
    principal: Principal,
    *,
    year: int,
    finance_department_id: int,
    group_by: GroupBy,
    sort: Sort,
    descending: bool,
    offset: int,
    limit: int | None,
) -> tuple[FinanceProgressOut, int | None]:
    """The page and the offset of the next one (None at the end)."""
    await _finance_department(session, principal, finance_department_id)
    page = await repo.finance_rows(
        session,
        year=year,
        finance_department_id=finance_department_id,
        group_by=group_by,
        sort=sort,
        descending=descending,
        offset=offset,
        limit=limit,
        behind=BEHIND_COUNT,
    )
    items = [_row(r, r.key, r.label, 1 if group_by == "unit" else r.units_count) for r in page.rows]
    out = FinanceProgressOut(
        items=items,
        next_cursor=None,
        totals=_row(page.totals, "total", None, page.totals.units_count),
        behind=[_row(r, r.key, r.label, 1) for r in page.behind],
    )
    return out, (offset + len(items) if page.more else None)


# ----------------------------------------------------------------------------- export

EXPORT_COLUMNS = (
    ("key", "编号"),
    ("name", "名称"),
    ("units_count", "单位数"),
    ("reserved_amount", "预留份额"),
    ("canteen_purchased", "食堂已采购"),
    ("canteen_completion_pct", "完成率(%)"),
    ("union_expected_amount", "工会预计采购"),
    ("union_purchased", "工会已采购"),
    ("union_completion_pct", "工会完成率(%)"),
    ("unit", "单位账号"),
    ("contractor", "食堂承包方"),
    ("personal", "个人采购"),
    ("paired_counties", "帮扶县"),
    ("key_counties", "其中国家乡村振兴重点帮扶县"),
    ("paired_areas_other", "对口支援地区"),
    ("share_pct", "帮扶地区占比(%)"),
)


def _cells(row: ProgressRow) -> list[Any]:
    c, a = row.by_channel, row.priority_areas
    values = (
        row.key, row.name, row.units_count, row.reserved_amount, row.canteen_purchased,
        row.canteen_completion_pct, row.union_expected_amount, row.union_purchased,
        row.union_completion_pct, c.unit, c.contractor, c.personal, a.paired_counties,
        a.key_counties, a.paired_areas_other, a.share_pct,
    )  # fmt: skip
    return [float(v) if isinstance(v, Decimal) else v for v in values]


def build_xlsx(rows: list[ProgressRow], totals: ProgressRow, title: str) -> bytes:
    """The workbook (xlsxwriter, constant memory: rows are written in order and flushed).
    CPU work: call it off the event loop."""
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"constant_memory": True, "in_memory": True})
    sheet = workbook.add_worksheet("完成情况")
    bold = workbook.add_format({"bold": True})
    money = workbook.add_format({"num_format": "#,##0.00"})
    sheet.write_row(0, 0, [title], bold)
    sheet.write_row(1, 0, [label for _, label in EXPORT_COLUMNS], bold)
    line = 2
    for row in rows:
        for col, value in enumerate(_cells(row)):
            sheet.write(line, col, value, money if isinstance(value, float) else None)
        line += 1
    for col, value in enumerate(_cells(totals)):
        sheet.write(line, col, "合计" if col == 0 else value, bold)
    workbook.close()
    return buffer.getvalue()


# ----------------------------------------------------------------------------- drift


async def check_drift(session: AsyncSession) -> dict[str, Any]:
    """Counters against a recomputation from the orders, the per-unit totals against the
    counters, and the per-(department, region) sums against the per-unit totals. Every
    difference is logged as an error: there must never be any."""
    counters = await repo.counter_drift(session)
    totals = await repo.totals_drift(session)
    groups = await repo.groups_drift(session)
    report = {
        "counter_rows": len(counters),
        "total_rows": len(totals),
        "group_rows": len(groups),
        "drift_rows": len(counters) + len(totals) + len(groups),
        "examples": [
            {k: str(v) for k, v in r._mapping.items()} for r in [*counters, *totals, *groups][:20]
        ],
    }
    if report["drift_rows"]:
        log.error("progress counters drift from the orders: %s", report)
    else:
        log.info("progress counters: no drift")
    return report
