"""Year-and-region policy: ratios, deadlines and cut-offs are data, never literals in code."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, Ratio, intpk


class Policy(Base):
    """One (fiscal year, region) row; each field may be null and is then inherited from the
    less specific region (city → province → national `000000`)."""

    __tablename__ = "policies"
    id: Mapped[intpk]
    year: Mapped[int]
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    national_floor: Mapped[Decimal | None] = mapped_column(Ratio)  # 全国最低预留比例 (hard)
    encouraged_ratio: Mapped[Decimal | None] = mapped_column(Ratio)  # 鼓励比例
    soft_floor: Mapped[Decimal | None] = mapped_column(Ratio)  # 原则上不低于 (needs justification)
    filing_deadline: Mapped[date | None] = mapped_column(Date)  # 填报截止日期 (inclusive)
    non_settlement_cutoff: Mapped[date | None] = mapped_column(Date)  # 非结算账户凭证截止下单日
    # SMS reminders (填报提醒) to units with no submitted filing, N and M days before the deadline
    reminder_days_first: Mapped[int | None]
    reminder_days_second: Mapped[int | None]
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[CreatedAt]
    __table_args__ = (UniqueConstraint("year", "region_code"),)


class FilingReopening(Base):
    """A finance department reopens filing for one unit after the deadline (补报)."""

    __tablename__ = "filing_reopenings"
    id: Mapped[intpk]
    year: Mapped[int]
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    open_until: Mapped[date] = mapped_column(Date)
    granted_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None]
