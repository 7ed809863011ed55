"""Progress toward the reserved share (预留份额完成情况): counters kept by triggers on `orders`
and `filing_versions` (migration 0009, docs/progress.md). Read-only for the application."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money

_CANTEEN = "unit_amount + contractor_amount + personal_amount"


class AreaClass:
    """Priority-area class of a purchase's origin county (mutually exclusive)."""

    KEY_COUNTY = "key_county"  # paired county that is a national key assistance county
    PAIRED_COUNTY = "paired_county"  # other paired county
    PAIRED_AREA = "paired_area"  # Kashgar, Nyingchi (对口支援)
    NONE = "none"


class ProgressCounter(Base):
    """Amount and number of counted orders per (year, unit, channel, month, area class)."""

    __tablename__ = "progress_counters"
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    unit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(String(18), primary_key=True)
    month: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    area_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    orders: Mapped[int] = mapped_column(Integer)


def _amount() -> Mapped[Decimal]:
    return mapped_column(Money, server_default="0")


class ProgressUnitTotal(Base):
    """Per (year, unit): the targets of the latest submitted filing and the counted amounts."""

    __tablename__ = "progress_unit_totals"
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    unit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reserved_amount: Mapped[Decimal | None] = mapped_column(Money)
    union_expected_amount: Mapped[Decimal | None] = mapped_column(Money)
    unit_amount: Mapped[Decimal] = _amount()
    contractor_amount: Mapped[Decimal] = _amount()
    personal_amount: Mapped[Decimal] = _amount()
    union_amount: Mapped[Decimal] = _amount()
    paired_amount: Mapped[Decimal] = _amount()  # paired counties, key counties included
    key_amount: Mapped[Decimal] = _amount()
    other_area_amount: Mapped[Decimal] = _amount()
    orders: Mapped[int] = mapped_column(Integer, server_default="0")
    canteen_amount: Mapped[Decimal] = mapped_column(Money, Computed(_CANTEEN, persisted=True))
    completion_pct: Mapped[Decimal | None] = mapped_column(
        Numeric(12, 2),
        Computed(
            f"CASE WHEN reserved_amount > 0 THEN round(({_CANTEEN}) * 100 / reserved_amount, 2) "
            "END",
            persisted=True,
        ),
    )
    __table_args__ = (
        Index("ix_progress_unit_totals_year_completion", "year", "completion_pct", "unit_id"),
    )


class ProgressAreaKey(Base):
    """Core names of the paired counties (rebuilt by a trigger on `paired_counties`)."""

    __tablename__ = "progress_area_keys"
    core: Mapped[str] = mapped_column(String(50), primary_key=True)
    province_core: Mapped[str] = mapped_column(String(50))
    prefecture_core: Mapped[str] = mapped_column(String(50))
    key_county: Mapped[bool] = mapped_column(Boolean)


class ProgressOriginClass(Base):
    """Memo of the area class of each origin text seen (cleared when reference data change)."""

    __tablename__ = "progress_origin_classes"
    origin: Mapped[str] = mapped_column(Text, primary_key=True)
    area_class: Mapped[str] = mapped_column(String(16))


class ProgressGroupTotal(Base):
    """Sums of the per-unit totals per (year, finance department, department, region): what a
    finance department's grouped views and totals read (kept by triggers, migration 0009)."""

    __tablename__ = "progress_group_totals"
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    finance_department_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    department_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    units_count: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(Integer)
    reserved_amount: Mapped[Decimal] = mapped_column(Money)
    union_expected_amount: Mapped[Decimal] = mapped_column(Money)
    unit_amount: Mapped[Decimal] = mapped_column(Money)
    contractor_amount: Mapped[Decimal] = mapped_column(Money)
    personal_amount: Mapped[Decimal] = mapped_column(Money)
    union_amount: Mapped[Decimal] = mapped_column(Money)
    paired_amount: Mapped[Decimal] = mapped_column(Money)
    key_amount: Mapped[Decimal] = mapped_column(Money)
    other_area_amount: Mapped[Decimal] = mapped_column(Money)
