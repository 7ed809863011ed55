"""Finance aggregates (财政部门汇总上报): a finance department hands its region up the finance tree.

A city or county finance department hands its region to its parent finance department; the
provincial department hands the province to the platform (`parent_finance_department_id` null).
Every hand-over is one immutable row (figures and snapshot never change); a returned hand-over is
followed by a new row with `version + 1`, so the history stays readable. Only the decision columns
(`status`, `decided_*`) of a row change, once.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money, intpk, str_enum
from shared.models.filings import Filing


class AggregateStatus(enum.StrEnum):
    SUBMITTED = "submitted"  # 已上报 (awaiting the level above)
    CONFIRMED = "confirmed"  # 上级已确认 / 平台已接收
    RETURNED = "returned"  # 上级退回 (the lower department resubmits: a new version)


class FinanceAggregate(Base):
    """One hand-over of a finance department's region for a fiscal year (one version)."""

    __tablename__ = "finance_aggregates"
    id: Mapped[intpk]
    year: Mapped[int]
    finance_department_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    # the receiving finance department; null: handed to the platform (provincial level)
    parent_finance_department_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    version: Mapped[int]
    status: Mapped[AggregateStatus] = mapped_column(str_enum(AggregateStatus, "aggregate_status"))
    units_count: Mapped[int]
    filed_count: Mapped[int]
    confirmed_count: Mapped[int]
    flagged_count: Mapped[int]
    canteen_total: Mapped[Decimal] = mapped_column(Money)
    reserved_amount: Mapped[Decimal] = mapped_column(Money)
    union_total: Mapped[Decimal] = mapped_column(Money)
    union_expected_amount: Mapped[Decimal] = mapped_column(Money)
    snapshot: Mapped[dict[str, Any]]
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("year", "finance_department_id", "version"),
        Index("ix_finance_aggregates_parent", "parent_finance_department_id", "year"),
        # at most one live (not returned) hand-over per department and year
        Index(
            "uq_finance_aggregates_live",
            "year",
            "finance_department_id",
            unique=True,
            postgresql_where=text("status <> 'returned'"),
        ),
    )


# Finance checks select filings by the flags computed at submit (`below_soft_floor`,
# `shared_contact_mobile`, any flag): a GIN index answers `flags @> ARRAY[...]` over a province.
Index("ix_filings_flags", Filing.flags, postgresql_using="gin")
