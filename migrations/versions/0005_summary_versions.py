"""department summary versions (return and resubmit keep history), reviewed version

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "department_summaries",
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
    )
    op.alter_column("department_summaries", "version", server_default=None)
    op.add_column(
        "department_summaries",
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column(
        "finance_reviews",
        sa.Column("summary_version", sa.Integer(), server_default="1", nullable=False),
    )
    op.alter_column("finance_reviews", "summary_version", server_default=None)
    op.create_table(
        "department_summary_versions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("summary_id", sa.BigInteger(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
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
            ["summary_id"],
            ["department_summaries.id"],
            name=op.f("fk_department_summary_versions_summary_id_department_summaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_department_summary_versions")),
        sa.UniqueConstraint(
            "summary_id",
            "version_no",
            name=op.f("uq_department_summary_versions_summary_id_version_no"),
        ),
    )


def downgrade() -> None:
    op.drop_table("department_summary_versions")
    op.drop_column("finance_reviews", "summary_version")
    op.drop_column("department_summaries", "updated_at")
    op.drop_column("department_summaries", "version")
