"""Request and response models of the finance endpoints (checks, aggregates, lists)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.money import MoneyOut


class Figures(BaseModel):
    """Counts and sums of a set of units (a department, a region, the whole scope)."""

    units: int = 0
    filed: int = 0
    confirmed: int = 0
    flagged: int = 0
    canteen_total: MoneyOut = Field(default_factory=lambda: MoneyOut(0))
    reserved_amount: MoneyOut = Field(default_factory=lambda: MoneyOut(0))
    union_total: MoneyOut = Field(default_factory=lambda: MoneyOut(0))
    union_expected_amount: MoneyOut = Field(default_factory=lambda: MoneyOut(0))


class DepartmentRow(Figures):
    department_id: int
    department_name: str
    finance_department_id: int
    summary_id: int | None
    summary_status: str  # not_submitted | submitted | confirmed | returned


class RegionRow(Figures):
    finance_department_id: int
    finance_department_name: str
    region_code: str
    aggregate_id: int | None
    aggregate_version: int | None
    aggregate_status: str  # not_submitted | submitted | confirmed | returned


class AggregateOut(BaseModel):
    """One hand-over (a version): figures as handed over, and the decision of the level above."""

    id: int
    year: int
    finance_department_id: int
    parent_finance_department_id: int | None
    recipient: str  # finance_department | platform
    version: int
    status: str
    units: int
    filed: int
    confirmed: int
    flagged: int
    canteen_total: MoneyOut
    reserved_amount: MoneyOut
    union_total: MoneyOut
    union_expected_amount: MoneyOut
    snapshot: dict[str, Any]
    submitted_by: str
    submitted_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None


class MissingItem(BaseModel):
    kind: str  # department_summary | lower_aggregate
    unit_id: int
    name: str
    status: str


class LiveAggregateOut(BaseModel):
    """`GET /finance/{year}/aggregate`: the region by department and by sub-region, live."""

    year: int
    finance_department_id: int
    finance_department_name: str
    recipient: str
    status: str  # of the latest hand-over: not_submitted | submitted | confirmed | returned
    current_aggregate_id: int | None
    ready: bool
    missing: list[MissingItem]
    totals: Figures
    departments: list[DepartmentRow]
    regions: list[RegionRow]
    history: list[AggregateOut]


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


class CheckItem(BaseModel):
    """A unit in a check, with the figures that put it there."""

    unit_id: int
    unit_code: str
    unit_name: str
    region_code: str
    finance_department_id: int | None
    finance_department_name: str | None
    filing_id: int | None
    status: str | None
    canteen_status: str | None
    union_status: str | None
    canteen_type: str | None
    canteen_total: MoneyOut | None
    canteen_ratio: MoneyOut | None
    reserved_amount: MoneyOut | None
    union_total: MoneyOut | None
    union_expected_amount: MoneyOut | None
    remark: str | None
    flags: list[str]
    contact_name: str | None
    contact_mobile: str | None  # masked
    submitted_at: datetime | None
    threshold: MoneyOut | None = None  # the floor the ratio is below (ratio checks)
    deadline: date | None = None  # not_filed: the filing deadline of the unit's region
    days_left: int | None = None  # not_filed: days until the deadline (negative: overdue)
    close_to_deadline: bool | None = None  # not_filed: 0 <= days_left <= the warning window


class CheckPage(BaseModel):
    kind: str
    total: int
    items: list[CheckItem]
    next_cursor: str | None = None


class FinanceFilingPage(BaseModel):
    total: int
    items: list[CheckItem]
    next_cursor: str | None = None
