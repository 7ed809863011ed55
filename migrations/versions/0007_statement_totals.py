"""statement credit totals, duplicate attribution, import heartbeat, format xls (issue #10)

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_FORMATS = "'csv', 'xlsx', 'mt940', 'camt053'"


def _format_check(formats: str) -> None:
    op.drop_constraint(op.f("ck_statements_statement_format"), "statements", type_="check")
    op.create_check_constraint(
        op.f("ck_statements_statement_format"), "statements", f"format IN ({formats})"
    )


def upgrade() -> None:
    _format_check(_FORMATS + ", 'xls'")
    op.add_column(
        "statements",
        sa.Column(
            "credit_total", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
    )
    op.add_column(
        "statements", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "statement_duplicates",
        sa.Column("statement_id", sa.BigInteger(), nullable=False),
        sa.Column("bank_transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_transaction_id"],
            ["bank_transactions.id"],
            name=op.f("fk_statement_duplicates_bank_transaction_id_bank_transactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["statements.id"],
            name=op.f("fk_statement_duplicates_statement_id_statements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "statement_id", "bank_transaction_id", name=op.f("pk_statement_duplicates")
        ),
    )


def downgrade() -> None:
    op.execute("UPDATE statements SET format = 'xlsx' WHERE format = 'xls'")  # append-only table
    _format_check(_FORMATS)
    op.drop_table("statement_duplicates")
    op.drop_column("statements", "heartbeat_at")
    op.drop_column("statements", "credit_total")
