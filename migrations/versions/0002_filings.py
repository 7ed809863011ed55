"""filings, versions, events, department summaries, finance reviews

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "department_summaries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("department_unit_id", sa.BigInteger(), nullable=False),
        sa.Column("finance_department_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "submitted",
                "confirmed",
                "returned",
                name="summary_status",
                native_enum=False,
                create_constraint=True,
                length=17,
            ),
            nullable=False,
        ),
        sa.Column("units_count", sa.Integer(), nullable=False),
        sa.Column("canteen_total", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("reserved_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("union_total", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("union_expected_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("flagged_count", sa.Integer(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_unit_id"],
            ["org_units.id"],
            name=op.f("fk_department_summaries_department_unit_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["finance_department_id"],
            ["org_units.id"],
            name=op.f("fk_department_summaries_finance_department_id_org_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_department_summaries")),
        sa.UniqueConstraint(
            "year",
            "department_unit_id",
            name=op.f("uq_department_summaries_year_department_unit_id"),
        ),
    )
    op.create_index(
        op.f("ix_department_summaries_finance_department_id"),
        "department_summaries",
        ["finance_department_id"],
        unique=False,
    )
    op.create_table(
        "filings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "submitted",
                "returned",
                "confirmed",
                "department_submitted",
                "finance_confirmed",
                "finance_returned",
                name="filing_status",
                native_enum=False,
                create_constraint=True,
                length=28,
            ),
            nullable=False,
        ),
        sa.Column(
            "canteen_status",
            sa.Enum(
                "draft",
                "submitted",
                "returned",
                "confirmed",
                "department_submitted",
                "finance_confirmed",
                "finance_returned",
                name="filing_part_status",
                native_enum=False,
                create_constraint=True,
                length=28,
            ),
            nullable=False,
        ),
        sa.Column(
            "union_status",
            sa.Enum(
                "draft",
                "submitted",
                "returned",
                "confirmed",
                "department_submitted",
                "finance_confirmed",
                "finance_returned",
                name="filing_union_status",
                native_enum=False,
                create_constraint=True,
                length=28,
            ),
            nullable=False,
        ),
        sa.Column(
            "canteen_type",
            sa.Enum(
                "own",
                "outsourced",
                "shared",
                "none",
                name="canteen_type",
                native_enum=False,
                create_constraint=True,
                length=18,
            ),
            nullable=False,
        ),
        sa.Column(
            "shared_filled_by",
            sa.Enum(
                "self",
                "other",
                name="shared_filled_by",
                native_enum=False,
                create_constraint=True,
                length=13,
            ),
            nullable=True,
        ),
        sa.Column("representative_unit_id", sa.BigInteger(), nullable=True),
        sa.Column("contractor_name", sa.String(length=200), nullable=True),
        sa.Column("contractor_unit_id", sa.BigInteger(), nullable=True),
        sa.Column("canteen_total", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("canteen_ratio", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("reserved_amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("remark", sa.String(length=250), nullable=True),
        sa.Column("union_has_need", sa.Boolean(), nullable=True),
        sa.Column("union_total", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("union_ratio", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("union_expected_amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("union_remark", sa.String(length=50), nullable=True),
        sa.Column("contact_name", sa.String(length=50), nullable=True),
        sa.Column("contact_mobile", sa.String(length=20), nullable=True),
        sa.Column("contact_landline", sa.String(length=30), nullable=True),
        sa.Column("union_contact_name", sa.String(length=50), nullable=True),
        sa.Column("union_contact_mobile", sa.String(length=20), nullable=True),
        sa.Column("union_contact_landline", sa.String(length=30), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("flags", postgresql.ARRAY(sa.String(length=60)), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(length=100), nullable=True),
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
            ["contractor_unit_id"],
            ["org_units.id"],
            name=op.f("fk_filings_contractor_unit_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["representative_unit_id"],
            ["org_units.id"],
            name=op.f("fk_filings_representative_unit_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_units.id"], name=op.f("fk_filings_unit_id_org_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filings")),
        sa.UniqueConstraint("unit_id", "year", name=op.f("uq_filings_unit_id_year")),
    )
    op.create_index(
        "ix_filings_representative_unit_id", "filings", ["representative_unit_id"], unique=False
    )
    op.create_index("ix_filings_year_status", "filings", ["year", "status"], unique=False)
    op.create_table(
        "provincial_aggregates",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("finance_department_id", sa.BigInteger(), nullable=False),
        sa.Column("units_count", sa.Integer(), nullable=False),
        sa.Column("reserved_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("union_expected_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("handed_over_by", sa.String(length=100), nullable=False),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["finance_department_id"],
            ["org_units.id"],
            name=op.f("fk_provincial_aggregates_finance_department_id_org_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provincial_aggregates")),
        sa.UniqueConstraint(
            "year",
            "finance_department_id",
            name=op.f("uq_provincial_aggregates_year_finance_department_id"),
        ),
    )
    op.create_table(
        "filing_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("filing_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=30), nullable=True),
        sa.Column("to_status", sa.String(length=30), nullable=False),
        sa.Column("actor_sub", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("actor_unit_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["filing_id"], ["filings.id"], name=op.f("fk_filing_events_filing_id_filings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_events")),
    )
    op.create_index(
        op.f("ix_filing_events_filing_id"), "filing_events", ["filing_id"], unique=False
    )
    op.create_table(
        "filing_shared_units",
        sa.Column("filing_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["filing_id"], ["filings.id"], name=op.f("fk_filing_shared_units_filing_id_filings")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_units.id"], name=op.f("fk_filing_shared_units_unit_id_org_units")
        ),
        sa.PrimaryKeyConstraint("filing_id", "unit_id", name=op.f("pk_filing_shared_units")),
    )
    op.create_table(
        "filing_versions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("filing_id", sa.BigInteger(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["filing_id"], ["filings.id"], name=op.f("fk_filing_versions_filing_id_filings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_versions")),
        sa.UniqueConstraint(
            "filing_id", "version_no", name=op.f("uq_filing_versions_filing_id_version_no")
        ),
    )
    op.create_table(
        "finance_reviews",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("summary_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("reviewer_sub", sa.String(length=100), nullable=False),
        sa.Column("reviewer_unit_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_unit_id"],
            ["org_units.id"],
            name=op.f("fk_finance_reviews_reviewer_unit_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"],
            ["department_summaries.id"],
            name=op.f("fk_finance_reviews_summary_id_department_summaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_reviews")),
    )
    op.create_index(
        op.f("ix_finance_reviews_summary_id"), "finance_reviews", ["summary_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_finance_reviews_summary_id"), table_name="finance_reviews")
    op.drop_table("finance_reviews")
    op.drop_table("filing_versions")
    op.drop_table("filing_shared_units")
    op.drop_index(op.f("ix_filing_events_filing_id"), table_name="filing_events")
    op.drop_table("filing_events")
    op.drop_table("provincial_aggregates")
    op.drop_index("ix_filings_year_status", table_name="filings")
    op.drop_index("ix_filings_representative_unit_id", table_name="filings")
    op.drop_table("filings")
    op.drop_index(
        op.f("ix_department_summaries_finance_department_id"), table_name="department_summaries"
    )
    op.drop_table("department_summaries")
