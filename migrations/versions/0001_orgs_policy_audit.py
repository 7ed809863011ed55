"""organisation tree, regions, reference data, policy, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_sub", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("actor_unit_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity_type", sa.String(length=60), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_entity", "audit_log", ["entity_type", "entity_id", "at"], unique=False
    )
    op.create_table(
        "idempotency_records",
        sa.Column("actor_sub", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("actor_sub", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "paired_areas",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=50), nullable=False),
        sa.Column("area", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paired_areas")),
    )
    op.create_index(
        "uq_paired_areas_province_area", "paired_areas", ["province", "area"], unique=True
    )
    op.create_table(
        "paired_counties",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=50), nullable=False),
        sa.Column("prefecture", sa.String(length=50), nullable=False),
        sa.Column("county", sa.String(length=50), nullable=False),
        sa.Column("paired_guangdong_city", sa.String(length=50), nullable=False),
        sa.Column("national_key_assistance_county", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paired_counties")),
    )
    op.create_index(
        "uq_paired_counties_province_county", "paired_counties", ["province", "county"], unique=True
    )
    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_code", sa.String(length=6), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["regions.code"], name=op.f("fk_regions_parent_code_regions")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_regions")),
    )
    op.create_table(
        "service_centre_codes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("served_area", sa.String(length=100), nullable=False),
        sa.Column("region_code", sa.String(length=4), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_centre_codes")),
        sa.UniqueConstraint(
            "served_area",
            "region_code",
            name=op.f("uq_service_centre_codes_served_area_region_code"),
        ),
    )
    op.create_index(
        op.f("ix_service_centre_codes_region_code"),
        "service_centre_codes",
        ["region_code"],
        unique=False,
    )
    op.create_table(
        "org_units",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "budget_unit",
                "finance_department",
                name="unit_kind",
                native_enum=False,
                create_constraint=True,
                length=26,
            ),
            nullable=False,
        ),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("finance_department_id", sa.BigInteger(), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "merged",
                "revoked",
                name="unit_status",
                native_enum=False,
                create_constraint=True,
                length=15,
            ),
            nullable=False,
        ),
        sa.Column("merged_into_id", sa.BigInteger(), nullable=True),
        sa.Column("contact_name", sa.String(length=50), nullable=True),
        sa.Column("contact_mobile", sa.String(length=20), nullable=True),
        sa.Column("contact_landline", sa.String(length=30), nullable=True),
        sa.Column("union_contact_name", sa.String(length=50), nullable=True),
        sa.Column("union_contact_mobile", sa.String(length=20), nullable=True),
        sa.Column("union_contact_landline", sa.String(length=30), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["finance_department_id"],
            ["org_units.id"],
            name=op.f("fk_org_units_finance_department_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["org_units.id"], name=op.f("fk_org_units_merged_into_id_org_units")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["org_units.id"], name=op.f("fk_org_units_parent_id_org_units")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_org_units_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_units")),
        sa.UniqueConstraint("code", name=op.f("uq_org_units_code")),
    )
    op.create_index(
        op.f("ix_org_units_contact_mobile"), "org_units", ["contact_mobile"], unique=False
    )
    op.create_index(
        op.f("ix_org_units_finance_department_id"),
        "org_units",
        ["finance_department_id"],
        unique=False,
    )
    op.create_index(op.f("ix_org_units_parent_id"), "org_units", ["parent_id"], unique=False)
    op.create_index(
        "ix_org_units_path_pattern",
        "org_units",
        ["path"],
        unique=False,
        postgresql_ops={"path": "text_pattern_ops"},
    )
    op.create_index(op.f("ix_org_units_region_code"), "org_units", ["region_code"], unique=False)
    op.create_table(
        "policies",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("national_floor", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("encouraged_ratio", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("soft_floor", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("filing_deadline", sa.Date(), nullable=True),
        sa.Column("non_settlement_cutoff", sa.Date(), nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_policies_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("year", "region_code", name=op.f("uq_policies_year_region_code")),
    )
    op.create_table(
        "filing_reopenings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("open_until", sa.Date(), nullable=False),
        sa.Column("granted_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_units.id"], name=op.f("fk_filing_reopenings_unit_id_org_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_reopenings")),
    )
    op.create_index(
        op.f("ix_filing_reopenings_unit_id"), "filing_reopenings", ["unit_id"], unique=False
    )
    op.create_table(
        "org_unit_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "created",
                "renamed",
                "merged",
                "revoked",
                "moved",
                "contacts",
                name="unit_change_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("old_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("related_unit_id", sa.BigInteger(), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_sub", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["related_unit_id"],
            ["org_units.id"],
            name=op.f("fk_org_unit_changes_related_unit_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_units.id"], name=op.f("fk_org_unit_changes_unit_id_org_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_unit_changes")),
    )
    op.create_index(
        op.f("ix_org_unit_changes_unit_id"), "org_unit_changes", ["unit_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_org_unit_changes_unit_id"), table_name="org_unit_changes")
    op.drop_table("org_unit_changes")
    op.drop_index(op.f("ix_filing_reopenings_unit_id"), table_name="filing_reopenings")
    op.drop_table("filing_reopenings")
    op.drop_table("policies")
    op.drop_index(op.f("ix_org_units_region_code"), table_name="org_units")
    op.drop_index(
        "ix_org_units_path_pattern",
        table_name="org_units",
        postgresql_ops={"path": "text_pattern_ops"},
    )
    op.drop_index(op.f("ix_org_units_parent_id"), table_name="org_units")
    op.drop_index(op.f("ix_org_units_finance_department_id"), table_name="org_units")
    op.drop_index(op.f("ix_org_units_contact_mobile"), table_name="org_units")
    op.drop_table("org_units")
    op.drop_index(op.f("ix_service_centre_codes_region_code"), table_name="service_centre_codes")
    op.drop_table("service_centre_codes")
    op.drop_table("regions")
    op.drop_index("uq_paired_counties_province_county", table_name="paired_counties")
    op.drop_table("paired_counties")
    op.drop_index("uq_paired_areas_province_area", table_name="paired_areas")
    op.drop_table("paired_areas")
    op.drop_table("idempotency_records")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_table("audit_log")
