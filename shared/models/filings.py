"""Reserved-share filings (预留份额填报), their immutable submitted versions, events, and the
department summaries / finance reviews / provincial aggregates of confirmation (确认汇总)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, Money, Ratio, intpk, str_enum


class CanteenType(enum.StrEnum):
    OWN = "own"  # 本单位自有的食堂
    OUTSOURCED = "outsourced"  # 食堂外包
    SHARED = "shared"  # 其他单位共用食堂
    NONE = "none"  # 无食堂


class SharedFilledBy(enum.StrEnum):
    SELF = "self"  # 由本单位填写
    OTHER = "other"  # 由其他单位填写


class FilingStatus(enum.StrEnum):
    DRAFT = "draft"  # 草稿
    SUBMITTED = "submitted"  # 待上级预算单位确认
    RETURNED = "returned"  # 已退回
    CONFIRMED = "confirmed"  # 上级已确认
    DEPARTMENT_SUBMITTED = "department_submitted"  # 部门已汇总报送财政
    FINANCE_CONFIRMED = "finance_confirmed"  # 财政已审核
    FINANCE_RETURNED = "finance_returned"  # 财政退回部门


class Filing(Base):
    """One unit's filing for one fiscal year: the current (draft or submitted) figures."""

    __tablename__ = "filings"
    id: Mapped[intpk]
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    year: Mapped[int]
    status: Mapped[FilingStatus] = mapped_column(
        str_enum(FilingStatus, "filing_status"), default=FilingStatus.DRAFT
    )
    canteen_status: Mapped[FilingStatus] = mapped_column(
        str_enum(FilingStatus, "filing_part_status"), default=FilingStatus.DRAFT
    )
    union_status: Mapped[FilingStatus] = mapped_column(
        str_enum(FilingStatus, "filing_union_status"), default=FilingStatus.DRAFT
    )
    canteen_type: Mapped[CanteenType] = mapped_column(str_enum(CanteenType, "canteen_type"))
    shared_filled_by: Mapped[SharedFilledBy | None] = mapped_column(
        str_enum(SharedFilledBy, "shared_filled_by")
    )
    representative_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    contractor_name: Mapped[str | None] = mapped_column(String(200))  # 采购执行主体 (outsourced)
    contractor_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    canteen_total: Mapped[Decimal | None] = mapped_column(Money)
    canteen_ratio: Mapped[Decimal | None] = mapped_column(Ratio)
    reserved_amount: Mapped[Decimal | None] = mapped_column(Money)  # 预留份额, computed
    # 备注: a client remark is at most 50 characters (checked by the API); a `shared/other`
    # remark is rendered from the representative unit's name (up to 200 chars), hence the width.
    remark: Mapped[str | None] = mapped_column(String(250))
    union_has_need: Mapped[bool | None]
    union_total: Mapped[Decimal | None] = mapped_column(Money)
    union_ratio: Mapped[Decimal | None] = mapped_column(Ratio)
    union_expected_amount: Mapped[Decimal | None] = mapped_column(Money)  # 预计采购金额, computed
    union_remark: Mapped[str | None] = mapped_column(String(50))
    contact_name: Mapped[str | None] = mapped_column(String(50))
    contact_mobile: Mapped[str | None] = mapped_column(String(20))
    contact_landline: Mapped[str | None] = mapped_column(String(30))
    union_contact_name: Mapped[str | None] = mapped_column(String(50))
    union_contact_mobile: Mapped[str | None] = mapped_column(String(20))
    union_contact_landline: Mapped[str | None] = mapped_column(String(30))
    justification: Mapped[str | None] = mapped_column(Text)  # below the soft floor
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    version: Mapped[int] = mapped_column(Integer, default=0)  # submitted versions so far
    lock_version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic concurrency
    submitted_at: Mapped[datetime | None]
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    __table_args__ = (
        UniqueConstraint("unit_id", "year"),
        Index("ix_filings_year_status", "year", "status"),
        Index("ix_filings_representative_unit_id", "representative_unit_id"),
    )
    __mapper_args__ = {"version_id_col": lock_version}  # noqa: RUF012


class FilingSharedUnit(Base):
    """Units sharing a canteen whose representative (this filing's unit) files for them."""

    __tablename__ = "filing_shared_units"
    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)


class FilingVersion(Base):
    """An immutable snapshot of a filing as submitted (one per submission)."""

    __tablename__ = "filing_versions"
    id: Mapped[intpk]
    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id"))
    version_no: Mapped[int]
    snapshot: Mapped[dict[str, Any]]
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("filing_id", "version_no"),)


class FilingEvent(Base):
    """Every transition of a filing: who, when, what changed and why."""

    __tablename__ = "filing_events"
    id: Mapped[intpk]
    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))  # drafted, submitted, confirmed, returned, ...
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    actor_sub: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_unit_id: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any] | None]
    at: Mapped[CreatedAt]


class SummaryStatus(enum.StrEnum):
    SUBMITTED = "submitted"  # 已报送同级财政
    CONFIRMED = "confirmed"  # 财政审核通过
    RETURNED = "returned"  # 财政退回


class DepartmentSummary(Base):
    """A supervising unit's summary of its department (本部门及下属单位) sent to the finance
    department of its level: one row per (year, department), holding the latest submitted
    version (`version`, figures, `snapshot`); every version stays in `DepartmentSummaryVersion`."""

    __tablename__ = "department_summaries"
    id: Mapped[intpk]
    year: Mapped[int]
    department_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    finance_department_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    status: Mapped[SummaryStatus] = mapped_column(str_enum(SummaryStatus, "summary_status"))
    units_count: Mapped[int]
    canteen_total: Mapped[Decimal] = mapped_column(Money)
    reserved_amount: Mapped[Decimal] = mapped_column(Money)
    union_total: Mapped[Decimal] = mapped_column(Money)
    union_expected_amount: Mapped[Decimal] = mapped_column(Money)
    flagged_count: Mapped[int]
    snapshot: Mapped[dict[str, Any]]
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)  # submissions so far (返回后重报 +1)
    updated_at: Mapped[CreatedAt]
    __table_args__ = (UniqueConstraint("year", "department_unit_id"),)


class DepartmentSummaryVersion(Base):
    """An immutable snapshot of a department summary as submitted (one per submission): the
    units and figures as they were sent, so a return and resubmission keeps the history."""

    __tablename__ = "department_summary_versions"
    id: Mapped[intpk]
    summary_id: Mapped[int] = mapped_column(ForeignKey("department_summaries.id"))
    version_no: Mapped[int]
    units_count: Mapped[int]
    canteen_total: Mapped[Decimal] = mapped_column(Money)
    reserved_amount: Mapped[Decimal] = mapped_column(Money)
    union_total: Mapped[Decimal] = mapped_column(Money)
    union_expected_amount: Mapped[Decimal] = mapped_column(Money)
    flagged_count: Mapped[int]
    snapshot: Mapped[dict[str, Any]]
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("summary_id", "version_no"),)


class FinanceReview(Base):
    """A finance department's decision on a department summary."""

    __tablename__ = "finance_reviews"
    id: Mapped[intpk]
    summary_id: Mapped[int] = mapped_column(ForeignKey("department_summaries.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # confirm | return
    reviewer_sub: Mapped[str] = mapped_column(String(100))
    reviewer_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    summary_version: Mapped[int] = mapped_column(Integer, default=1)  # the version reviewed
    at: Mapped[CreatedAt]


class ProvincialAggregate(Base):
    """The provincial finance department's aggregate handed to the platform."""

    __tablename__ = "provincial_aggregates"
    id: Mapped[intpk]
    year: Mapped[int]
    finance_department_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    units_count: Mapped[int]
    reserved_amount: Mapped[Decimal] = mapped_column(Money)
    union_expected_amount: Mapped[Decimal] = mapped_column(Money)
    snapshot: Mapped[dict[str, Any]]
    handed_over_by: Mapped[str] = mapped_column(String(100))
    handed_over_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("year", "finance_department_id"),)
