"""Request and response models of the filing service (API.md "Organisation", "Policy", "Filing")."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    WithJsonSchema,
    field_validator,
)

from shared.models import CanteenType, SharedFilledBy, UnitKind, UnitStatus
from shared.money import MoneyOut, format_amount, parse_amount
from shared.text import ensure_storable

MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
LANDLINE_RE = re.compile(r"^0[0-9]{2,3}-[0-9]{7,8}$")
REGION_CODE_RE = re.compile(r"^[0-9]{6}$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def _strip(value: Any) -> Any:
    """Drop surrounding spaces; refuse text the database cannot store (NUL, lone surrogates)."""
    if isinstance(value, str):
        return ensure_storable(value).strip()
    return value


Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
"""A row id (bigint): out-of-range numbers are a 422, never a database error."""


OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none), BeforeValidator(_strip)]
"""Optional free text: surrounding spaces dropped, an empty string means "not given"."""


def _optional_amount(value: Any) -> Decimal | None:
    """API.md: amounts and ratios are JSON strings; a JSON number (even 1000) is a 422."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if not isinstance(value, str):
        raise ValueError('金额或比例须为数字字符串，例如 "200000.00"')
    return parse_amount(value)


def _iso_date(value: Any) -> Any:
    """A date is a `"YYYY-MM-DD"` string: no timestamps (0 is not 1970-01-01), no times."""
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise ValueError("日期格式应为 YYYY-MM-DD，例如 2024-02-20")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


OptionalMoney = Annotated[
    Decimal | None,
    BeforeValidator(_optional_amount),
    PlainSerializer(lambda v: None if v is None else format_amount(v), return_type=str | None),
    WithJsonSchema({"type": ["string", "null"], "pattern": r"^\d+(\.\d{1,2})?$"}),
]
"""Optional amount or ratio: an empty string means "not given"."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# contacts


class ContactIn(Strict):
    """联系人: name and mainland mobile required, landline `区号-号码` optional."""

    name: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=50)
    mobile: Annotated[str, BeforeValidator(_strip)]
    landline: OptionalText = None

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, value: str) -> str:
        if not MOBILE_RE.fullmatch(value):
            raise ValueError("手机号码须为11位中国大陆手机号，例如 13812345678")
        return value

    @field_validator("landline")
    @classmethod
    def _landline(cls, value: str | None) -> str | None:
        if value is not None and not LANDLINE_RE.fullmatch(value):
            raise ValueError("固定电话格式应为“区号-号码”，例如 020-83170000")
        return value


def _blank_contact_to_none(value: Any) -> Any:
    """An optional contact sent with every field empty (the form left blank) is "not given"."""
    if (
        isinstance(value, dict)
        and set(value) <= {"name", "mobile", "landline"}
        and all(_blank_to_none(v) is None for v in value.values())
    ):
        return None
    return value


OptionalContact = Annotated["ContactIn | None", BeforeValidator(_blank_contact_to_none)]
"""The union contact (工会采购预留份额联系人): optional; if given, name and mobile."""


class ContactOut(BaseModel):
    name: str | None
    mobile: str | None
    landline: str | None


class ContactsIn(Strict):
    """`PUT /units/mine/contacts`: the filing contact and the optional union contact."""

    contact: ContactIn
    union_contact: OptionalContact = None


# ---------------------------------------------------------------------------------------------
# units


class UnitCreate(Strict):
    name: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=200)
    kind: UnitKind
    parent_id: Id | None = None
    finance_department_id: Id | None = None
    region_code: str
    code: OptionalText = Field(default=None, max_length=64)

    @field_validator("region_code")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION_CODE_RE.fullmatch(value):
            raise ValueError("地区代码须为6位数字（GB/T 2260），例如 440000")
        return value


class UnitRename(Strict):
    name: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=200)
    reason: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=500)


class UnitMerge(Strict):
    into_unit_id: Id
    reason: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=500)


class UnitOut(BaseModel):
    id: int
    code: str
    name: str
    kind: UnitKind
    parent_id: int | None
    finance_department_id: int | None
    region_code: str
    path: str
    status: UnitStatus
    merged_into_id: int | None
    contact: ContactOut
    union_contact: ContactOut | None


class UnitChangeOut(BaseModel):
    kind: str
    old_value: dict[str, Any] | None
    new_value: dict[str, Any] | None
    related_unit_id: int | None
    actor_sub: str
    reason: str | None
    effective_at: datetime


# ---------------------------------------------------------------------------------------------
# policy


class PolicyIn(Strict):
    """Each field optional: a field sent (even `null`) is set on this row; one not sent is kept."""

    national_floor: OptionalMoney = None
    encouraged_ratio: OptionalMoney = None
    soft_floor: OptionalMoney = None
    filing_deadline: IsoDate | None = None
    non_settlement_cutoff: IsoDate | None = None

    @field_validator("national_floor", "encouraged_ratio", "soft_floor")
    @classmethod
    def _ratio(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value > 100:
            raise ValueError("比例不能超过100（单位为%）")
        return value


class PolicyRowOut(BaseModel):
    year: int
    region_code: str
    national_floor: MoneyOut | None
    encouraged_ratio: MoneyOut | None
    soft_floor: MoneyOut | None
    filing_deadline: date | None
    non_settlement_cutoff: date | None
    updated_by: str
    updated_at: datetime


class EffectivePolicyOut(BaseModel):
    year: int
    region_code: str
    chain: list[str]
    national_floor: MoneyOut | None
    encouraged_ratio: MoneyOut | None
    soft_floor: MoneyOut | None
    filing_deadline: date | None
    non_settlement_cutoff: date | None
    sources: dict[str, str | None] = Field(
        description="for each field, the region code of the row that gave it (null: not set)"
    )


# ---------------------------------------------------------------------------------------------
# filings


class UnionIn(Strict):
    """工会采购需求."""

    has_need: StrictBool
    total: OptionalMoney = None
    ratio: OptionalMoney = None
    remark: OptionalText = None


class FilingDraftIn(Strict):
    """`PUT /filings/{year}/mine`: the whole draft (create or replace)."""

    canteen_type: CanteenType
    shared_filled_by: SharedFilledBy | None = None
    representative_unit_id: Id | None = None
    shared_unit_ids: list[Id] = Field(default_factory=list, max_length=100)
    contractor_name: OptionalText = None
    canteen_total: OptionalMoney = None
    canteen_ratio: OptionalMoney = None
    remark: OptionalText = None
    union: UnionIn
    contact: ContactIn
    union_contact: OptionalContact = None


class SubmitIn(Strict):
    declaration: StrictBool = False
    justification: OptionalText = Field(default=None, max_length=500)


class ReturnIn(Strict):
    reason: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=500)
    parts: list[Literal["canteen", "union"]] = Field(default=["canteen", "union"], min_length=1)


class ConfirmIn(Strict):
    note: OptionalText = Field(default=None, max_length=500)


class ReopenIn(Strict):
    open_until: IsoDate
    reason: Annotated[str, BeforeValidator(_strip)] = Field(min_length=1, max_length=500)


class ReopenOut(BaseModel):
    id: int
    year: int
    unit_id: int
    open_until: IsoDate
    granted_by: str
    reason: str


class UnionOut(BaseModel):
    has_need: bool | None
    total: MoneyOut | None
    ratio: MoneyOut | None
    expected_amount: MoneyOut | None
    remark: str | None


class FiguresOut(BaseModel):
    """Figures of a submitted version (last year's, or the currently filed ones)."""

    year: int
    version: int
    canteen_type: str
    canteen_total: MoneyOut | None
    canteen_ratio: MoneyOut | None
    reserved_amount: MoneyOut | None
    union_has_need: bool | None
    union_total: MoneyOut | None
    union_ratio: MoneyOut | None
    union_expected_amount: MoneyOut | None
    submitted_at: datetime | None


class FilingPolicyOut(BaseModel):
    """The effective policy of the filing's year and the unit's region (for the form)."""

    national_floor: MoneyOut | None
    encouraged_ratio: MoneyOut | None
    soft_floor: MoneyOut | None
    filing_deadline: date | None


class FlagOut(BaseModel):
    code: str
    detail: str


class FilingOut(BaseModel):
    id: int
    unit_id: int
    unit_name: str
    year: int
    status: str
    status_label: str
    canteen_status: str
    canteen_status_label: str = Field(description="本单位食堂食材填报状态")
    union_status: str
    union_status_label: str = Field(description="本单位工会采购填报状态")
    canteen_type: CanteenType
    shared_filled_by: SharedFilledBy | None
    representative_unit_id: int | None
    representative_unit_name: str | None
    shared_unit_ids: list[int]
    contractor_name: str | None
    canteen_total: MoneyOut | None
    canteen_ratio: MoneyOut | None
    reserved_amount: MoneyOut | None
    remark: str | None
    union: UnionOut
    union_expected_amount: MoneyOut | None
    contact: ContactOut
    union_contact: ContactOut | None
    justification: str | None
    flags: list[str]
    flag_details: list[FlagOut]
    version: int
    submitted_at: datetime | None
    submitted_by: str | None
    previous_year: FiguresOut | None
    filed: FiguresOut | None = Field(
        description="the figures of the latest submitted version (null before the first submit)"
    )
    policy: FilingPolicyOut | None


class FilingEventOut(BaseModel):
    action: str
    from_status: str | None
    to_status: str
    actor_sub: str
    actor_role: str
    actor_unit_id: int | None
    at: datetime
    reason: str | None
    changes: dict[str, Any] | None


class FilingVersionOut(BaseModel):
    version_no: int
    submitted_by: str
    submitted_at: datetime
    snapshot: dict[str, Any]
