"""Organisation tree (预算单位 / 财政部门), its rename/merge history, regions and reference data."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, CreatedAt, intpk, str_enum


class UnitKind(enum.StrEnum):
    BUDGET_UNIT = "budget_unit"  # 预算单位
    FINANCE_DEPARTMENT = "finance_department"  # 财政部门


class UnitStatus(enum.StrEnum):
    ACTIVE = "active"
    MERGED = "merged"  # 合并: see merged_into_id
    REVOKED = "revoked"  # 撤销


class Region(Base):
    """A GB/T 2260 region: `000000` national, `440000` Guangdong, `440100` Guangzhou."""

    __tablename__ = "regions"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))
    level: Mapped[int]  # 0 national, 1 province, 2 city, 3 county


class OrgUnit(Base):
    """A budget unit or a finance department; `parent_id` is the superior in the budget tree.

    `path` is the materialised chain of ids from the root (`/1/5/9/`), so "is X a descendant of Y"
    is one index-friendly prefix test.
    """

    __tablename__ = "org_units"
    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[UnitKind] = mapped_column(str_enum(UnitKind, "unit_kind"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    finance_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id"), index=True
    )
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    path: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[UnitStatus] = mapped_column(
        str_enum(UnitStatus, "unit_status"), default=UnitStatus.ACTIVE
    )
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    contact_name: Mapped[str | None] = mapped_column(String(50))
    contact_mobile: Mapped[str | None] = mapped_column(String(20), index=True)
    contact_landline: Mapped[str | None] = mapped_column(String(30))
    union_contact_name: Mapped[str | None] = mapped_column(String(50))
    union_contact_mobile: Mapped[str | None] = mapped_column(String(20))
    union_contact_landline: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]

    __table_args__ = (
        Index("ix_org_units_path_pattern", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )

    def place_under(self, parent: OrgUnit | None) -> None:
        """Set the materialised path once the unit has its id (after a flush): the parent's path
        plus this id. The scope check (`shared.auth.unit_in_scope`) relies on this one rule."""
        assert self.id is not None, "flush the unit before placing it in the tree"
        self.path = f"{parent.path if parent else '/'}{self.id}/"


class UnitChangeKind(enum.StrEnum):
    CREATED = "created"
    RENAMED = "renamed"  # 更名
    MERGED = "merged"  # 合并
    REVOKED = "revoked"  # 撤销
    MOVED = "moved"  # new superior
    CONTACTS = "contacts"


class OrgUnitChange(Base):
    """History of a unit (names, merges, moves). A renamed unit keeps its id and filings."""

    __tablename__ = "org_unit_changes"
    id: Mapped[intpk]
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    kind: Mapped[UnitChangeKind] = mapped_column(str_enum(UnitChangeKind, "unit_change_kind"))
    old_value: Mapped[dict[str, Any] | None]
    new_value: Mapped[dict[str, Any] | None]
    related_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    effective_at: Mapped[datetime]
    actor_sub: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]


class PairedCounty(Base):
    """Guangdong's paired counties in Guangxi and Guizhou; 40 are national key counties."""

    __tablename__ = "paired_counties"
    id: Mapped[intpk]
    province: Mapped[str] = mapped_column(String(50))
    prefecture: Mapped[str] = mapped_column(String(50))
    county: Mapped[str] = mapped_column(String(50))
    paired_guangdong_city: Mapped[str] = mapped_column(String(50))
    national_key_assistance_county: Mapped[bool] = mapped_column(Boolean)
    __table_args__ = (
        Index("uq_paired_counties_province_county", "province", "county", unique=True),
    )


class PairedArea(Base):
    """Paired support areas outside the county list (对口支援: Kashgar, Nyingchi)."""

    __tablename__ = "paired_areas"
    id: Mapped[intpk]
    province: Mapped[str] = mapped_column(String(50))
    area: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))
    __table_args__ = (Index("uq_paired_areas_province_area", "province", "area", unique=True),)


class ServiceCentreCode(Base):
    """Regional service centre (区域服务中心) 4-digit codes that buyers put on their orders."""

    __tablename__ = "service_centre_codes"
    id: Mapped[intpk]
    served_area: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(4), index=True)
    note: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (UniqueConstraint("served_area", "region_code"),)
