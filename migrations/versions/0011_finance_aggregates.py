"""Finance aggregates: hand-overs up the finance tree (versions, status, parent); GIN index on
filings.flags (finance checks)

Revision ID: 0011
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=16, scale=2)


def upgrade() -> None:
    op.create_table(
        "finance_aggregates",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("finance_department_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_finance_department_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "submitted",
                "confirmed",
                "returned",
                name="aggregate_status",
                native_enum=False,
                create_constraint=True,
                length=17,
            ),
            nullable=False,
        ),
        sa.Column("units_count", sa.Integer(), nullable=False),
        sa.Column("filed_count", sa.Integer(), nullable=False),
        sa.Column("confirmed_count", sa.Integer(), nullable=False),
        sa.Column("flagged_count", sa.Integer(), nullable=False),
        sa.Column("canteen_total", MONEY, nullable=False),
        sa.Column("reserved_amount", MONEY, nullable=False),
        sa.Column("union_total", MONEY, nullable=False),
        sa.Column("union_expected_amount", MONEY, nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["finance_department_id"],
            ["org_units.id"],
            name=op.f("fk_finance_aggregates_finance_department_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_finance_department_id"],
            ["org_units.id"],
            name=op.f("fk_finance_aggregates_parent_finance_department_id_org_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_aggregates")),
        sa.UniqueConstraint(
            "year",
            "finance_department_id",
            "version",
            name=op.f("uq_finance_aggregates_year_finance_department_id_version"),
        ),
    )
    op.create_index(
        "ix_finance_aggregates_parent",
        "finance_aggregates",
        ["parent_finance_department_id", "year"],
        unique=False,
    )
    op.create_index(
        "uq_finance_aggregates_live",
        "finance_aggregates",
        ["year", "finance_department_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'returned'"),
    )
    op.create_index("ix_filings_flags", "filings", ["flags"], postgresql_using="gin")
    # The live aggregate groups units by (finance department, first element of the path): with
    # these statistics the planner knows there are a few hundred groups (a hash aggregate), not
    # one per unit (a sort of the whole province).
    op.execute(
        "CREATE STATISTICS st_org_units_department ON finance_department_id, "
        "(CAST(split_part(path, '/', 2) AS bigint)) FROM org_units"
    )
    op.execute("ANALYZE org_units")


def downgrade() -> None:
    op.execute("DROP STATISTICS IF EXISTS st_org_units_department")
    op.drop_index("ix_filings_flags", table_name="filings", postgresql_using="gin")
    op.drop_index(
        "uq_finance_aggregates_live",
        table_name="finance_aggregates",
        postgresql_where=sa.text("status <> 'returned'"),
    )
    op.drop_index("ix_finance_aggregates_parent", table_name="finance_aggregates")
    op.drop_table("finance_aggregates")
