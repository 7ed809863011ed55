"""Request and response models of the confirmation service (API.md "Confirmation and aggregation").

The pending item (`PendingItemOut`) is the superior's row: this year against last year, the change
and the flags. `FigureSetOut` is shared by anything that shows one year's filed figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.filing.schemas import FilingVersionOut, FlagOut
from shared.money import MoneyOut
from shared.text import ensure_storable

FlagCode = Literal[
    "below_soft_floor",
    "sharp_change_total",
    "sharp_change_ratio",
    "representative_not_filed",
    "union_zero_amounts",
    "shared_contact_mobile",
]
"""The anomaly codes computed at submit (filing service, README "Filing flags")."""

Part = Literal["canteen", "union"]


def _strip(value: object) -> object:
    if isinstance(value, str):
        return ensure_storable(value).strip()
    return value


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# superior's confirmation (预留份额信息确认)


class UnionFiguresOut(BaseModel):
    has_need: bool | None
    total: MoneyOut | None
    ratio: MoneyOut | None
    expected_amount: MoneyOut | None


class FigureSetOut(BaseModel):
    """One year's filed figures of a unit (current filing, or last year's latest version)."""

    canteen_type: str | None
    canteen_total: MoneyOut | None
    canteen_ratio: MoneyOut | None
    reserved_amount: MoneyOut | None
    remark: str | None
    union: UnionFiguresOut


class ChangeOut(BaseModel):
    """This year against last year: pct = (this − last) / last × 100, points = this − last; two
    decimals half-up; null without last year (pct also when last year's value is 0)."""

    canteen_total_pct: MoneyOut | None
    canteen_ratio_points: MoneyOut | None
    reserved_amount_pct: MoneyOut | None


class PendingItemOut(BaseModel):
    filing_id: int
    unit_id: int
    unit_name: str
    year: int
    status: str
    canteen_status: str
    union_status: str
    version: int
    submitted_at: datetime | None
    current: FigureSetOut
    previous_year: FigureSetOut | None
    change: ChangeOut
    flags: list[str]
    flag_details: list[FlagOut]
    justification: str | None


class FilingDetailOut(PendingItemOut):
    """The pending item plus every submitted version (immutable snapshots, mobiles masked)."""

    versions: list[FilingVersionOut]


class ConfirmIn(Strict):
    note: Annotated[str | None, BeforeValidator(_blank_to_none), BeforeValidator(_strip)] = Field(
        default=None, max_length=500
    )


class ReturnIn(Strict):
    reason: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=500)
    parts: list[Part] = Field(default=["canteen", "union"], min_length=1)


class DecisionOut(BaseModel):
    """The filing after a superior's decision."""

    filing_id: int
    unit_id: int
    year: int
    status: str
    canteen_status: str
    union_status: str
    version: int
    sms_queued: bool


class BatchConfirmIn(Strict):
    filing_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=500
    )
    note: Annotated[str | None, BeforeValidator(_blank_to_none), BeforeValidator(_strip)] = Field(
        default=None, max_length=500
    )


class BatchResultOut(BaseModel):
    filing_id: int
    ok: bool
    code: str | None = None
    detail: str | None = None


class BatchOut(BaseModel):
    results: list[BatchResultOut]


# ---------------------------------------------------------------------------------------------
# department summary (本部门及下属单位确认汇总) and finance review (财政部门审核确认)

SummaryState = Literal["not_submitted", "submitted", "confirmed", "returned"]


class BlockingUnitOut(BaseModel):
    unit_id: int
    unit_name: str
    reason: Literal["not_filed", "returned", "awaiting_confirmation", "finance_returned"]
    filing_id: int | None
    filing_status: str | None


class TotalsOut(BaseModel):
    canteen_total: MoneyOut
    reserved_amount: MoneyOut
    union_total: MoneyOut
    union_expected_amount: MoneyOut


class SummaryEventOut(BaseModel):
    """One step of a summary's history: submitted / resubmitted / confirmed / returned."""

    action: str
    version: int
    actor_sub: str
    actor_unit_id: int | None
    at: datetime
    reason: str | None


class SummaryOut(BaseModel):
    id: int | None
    year: int
    department_unit_id: int
    department_name: str
    finance_department_id: int | None
    status: SummaryState
    version: int
    ready: bool
    units_total: int
    filed: int
    confirmed: int
    blocking: list[BlockingUnitOut]
    totals: TotalsOut
    flagged_count: int
    submitted_at: datetime | None
    history: list[SummaryEventOut]


class SummaryUnitOut(BaseModel):
    """A unit as the submitted snapshot holds it (names and figures as submitted)."""

    unit_id: int
    unit_name: str
    filing_id: int
    filing_version: int
    canteen_type: str | None
    canteen_total: MoneyOut | None
    canteen_ratio: MoneyOut | None
    reserved_amount: MoneyOut | None
    union_has_need: bool | None
    union_total: MoneyOut | None
    union_expected_amount: MoneyOut | None
    flags: list[str]


class SummarySnapshotOut(BaseModel):
    """A submitted department summary (what the finance department reviews)."""

    id: int
    year: int
    department_unit_id: int
    department_name: str
    finance_department_id: int
    status: str
    version: int
    units_count: int
    totals: TotalsOut
    flagged_count: int
    submitted_by: str
    submitted_at: datetime
    units: list[SummaryUnitOut] | None = None


class SummaryVersionOut(BaseModel):
    version: int
    submitted_by: str
    submitted_at: datetime
    snapshot: dict[str, object]


class SummaryDetailOut(SummarySnapshotOut):
    history: list[SummaryEventOut]
    versions: list[SummaryVersionOut]


class ReviewConfirmIn(ConfirmIn):
    pass


class ReviewReturnIn(Strict):
    reason: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=500)
