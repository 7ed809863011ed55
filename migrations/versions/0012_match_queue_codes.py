"""match_queue.codes: the code candidates of each queued line, so the import can settle a bare
line at insert unless an earlier undecided line names its order (issue #14)

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# issue #14 branches from issue #10, whose 0007 is already a child of 0004: chained after it so
# that the branch keeps one head (the lead chains the migrations at merge anyway)
revision: str = "0012"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("match_queue", sa.Column("codes", postgresql.ARRAY(sa.Text()), nullable=True))
    # lines queued before this migration: a bare remark's code is known; the others stay NULL
    # ("unknown"), and while any such line is queued no line is settled at insert
    op.execute(
        """
        UPDATE match_queue q SET codes = ARRAY[lower(t.remark)]
          FROM bank_transactions t
         WHERE t.id = q.bank_transaction_id AND t.remark ~ '^[A-Za-z0-9]{6}$'
        """
    )
    op.create_index(
        "ix_match_queue_codes_unknown",
        "match_queue",
        ["bank_transaction_id"],
        postgresql_where=sa.text("codes IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_match_queue_codes_unknown", table_name="match_queue")
    op.drop_column("match_queue", "codes")
