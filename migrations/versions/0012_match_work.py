"""Matcher work list: one row per imported batch (statement, id range) instead of one
`match_queue` row per pending line; ledger updates without a row lock per row (id changes and a
line's statement change refused or checked by AFTER row triggers that fire only when the column
is set; the outcome update no longer collects a transition table)

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Moving a line to another statement never happens; if it did, the new statement must exist
# (the same check, constraint name and SQLSTATE as the insert's statement-level check). The
# trigger is `UPDATE OF statement_id`: recording an outcome does not fire it.
STATEMENT_CHANGE_CHECK = (
    """
    CREATE FUNCTION bank_transactions_check_statement() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT FROM statements s WHERE s.id = NEW.statement_id) THEN
            RAISE EXCEPTION 'insert or update on table "bank_transactions" violates foreign key '
                            'constraint "fk_bank_transactions_statement_id_statements"'
                USING ERRCODE = 'foreign_key_violation',
                      CONSTRAINT = 'fk_bank_transactions_statement_id_statements',
                      TABLE = 'bank_transactions',
                      DETAIL = 'Key (statement_id) is not present in table "statements".';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER bank_transactions_statement_update
        AFTER UPDATE OF statement_id ON bank_transactions
        FOR EACH ROW EXECUTE FUNCTION bank_transactions_check_statement()
    """,
)

# The ledger tables refuse deletes and id changes (migration 0003). The id change is now refused
# by an AFTER row trigger: any BEFORE UPDATE row trigger, even one limited to a column the
# statement does not set, makes PostgreSQL lock each updated row first (an extra WAL record per
# recorded outcome and per paid order); an AFTER row trigger limited to `id` costs nothing on
# the updates that do not set it, and still fails the statement that does. Its name sorts before
# PostgreSQL's own foreign-key triggers ("RI_ConstraintTrigger_..."), which fire in name order
# with it: the refusal is reported as the ledger's rule, not as a dangling reference.
KEEPS_ID = '"Ledger_keeps_id"'
APPEND_ONLY = ("statements", "bank_transactions", "orders", "payment_confirmations")


def _refusal_trigger(name: str, timing_and_events: str, table: str) -> str:
    return f"""
        CREATE TRIGGER {name} {timing_and_events} ON {table}
            FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()
    """


def upgrade() -> None:
    op.create_table(
        "match_work",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("statement_id", sa.BigInteger(), nullable=False),
        sa.Column("first_tx_id", sa.BigInteger(), nullable=False),
        sa.Column("last_tx_id", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("lines > 0", name=op.f("ck_match_work_lines_positive")),
        sa.CheckConstraint("first_tx_id <= last_tx_id", name=op.f("ck_match_work_range")),
        sa.ForeignKeyConstraint(
            ["statement_id"], ["statements.id"], name=op.f("fk_match_work_statement_id_statements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_work")),
    )
    # lines still queued: one work item each (a queue left by the old code is usually empty)
    op.execute(
        """
        INSERT INTO match_work (statement_id, first_tx_id, last_tx_id, lines)
        SELECT t.statement_id, t.id, t.id, 1
          FROM match_queue q JOIN bank_transactions t ON t.id = q.bank_transaction_id
         WHERE t.outcome = 'pending'
         ORDER BY t.id
        """
    )
    op.drop_table("match_queue")
    op.execute("DROP TRIGGER bank_transactions_references_update ON bank_transactions")
    for statement in STATEMENT_CHANGE_CHECK:
        op.execute(statement)
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(_refusal_trigger(f"{table}_append_only", "BEFORE DELETE", table))
        op.execute(_refusal_trigger(KEEPS_ID, "AFTER UPDATE OF id", table))


def downgrade() -> None:
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {KEEPS_ID} ON {table}")
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(_refusal_trigger(f"{table}_append_only", "BEFORE DELETE OR UPDATE OF id", table))
    op.execute("DROP TRIGGER bank_transactions_statement_update ON bank_transactions")
    op.execute("DROP FUNCTION bank_transactions_check_statement()")
    op.execute(
        """
        CREATE TRIGGER bank_transactions_references_update AFTER UPDATE ON bank_transactions
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION bank_transactions_check_references()
        """
    )
    op.create_table(
        "match_queue",
        sa.Column("bank_transaction_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("bank_transaction_id", name=op.f("pk_match_queue")),
    )
    op.execute(
        """
        INSERT INTO match_queue (bank_transaction_id)
        SELECT t.id FROM match_work w
          JOIN bank_transactions t ON t.statement_id = w.statement_id
                                  AND t.id BETWEEN w.first_tx_id AND w.last_tx_id
         WHERE t.outcome = 'pending'
        ON CONFLICT DO NOTHING
        """
    )
    op.drop_table("match_work")
