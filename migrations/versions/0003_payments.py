"""suppliers, orders, statements, bank transactions, allocations, review, confirmations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "('pending_payment', 'partially_paid')"

# `open_payment_codes` holds the code of every open order (a code names one open order: primary
# key). Statement-level triggers keep it for every writer of `orders`, set-based: a violation
# fails the INSERT or UPDATE of the order itself (IntegrityError, as a unique index would). The
# update trigger's plan (cached per session) is pinned to index probes, like the reference
# checks below.
OPEN_CODE_TRIGGERS = (
    f"""
    CREATE FUNCTION orders_open_code_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO open_payment_codes (payment_code, order_id)
        SELECT n.payment_code, n.id FROM new_orders n WHERE n.status IN {_OPEN};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION orders_open_code_update() RETURNS trigger LANGUAGE plpgsql
        SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
        SET enable_bitmapscan = off AS $$
    BEGIN
        DELETE FROM open_payment_codes c
         USING new_orders n
         WHERE c.order_id = n.id
           AND (n.status NOT IN {_OPEN} OR c.payment_code <> n.payment_code);
        INSERT INTO open_payment_codes (payment_code, order_id)
        SELECT n.payment_code, n.id
          FROM new_orders n
         WHERE n.status IN {_OPEN}
           AND NOT EXISTS (SELECT FROM open_payment_codes c WHERE c.order_id = n.id);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER orders_open_code_insert AFTER INSERT ON orders
        REFERENCING NEW TABLE AS new_orders
        FOR EACH STATEMENT EXECUTE FUNCTION orders_open_code_insert()
    """,
    """
    CREATE TRIGGER orders_open_code_update AFTER UPDATE ON orders
        REFERENCING NEW TABLE AS new_orders
        FOR EACH STATEMENT EXECUTE FUNCTION orders_open_code_update()
    """,
)

# The two bulk paths (statement lines: one insert per imported line; allocations: one per matched
# line) check their references once per statement instead of once per row: PostgreSQL's foreign
# keys run a trigger and a lookup query for every row, a third of the import's and the matcher's
# database time. The check below is the same (every reference must exist, same constraint name,
# SQLSTATE 23503), done set-based on the statement's new rows; the other direction — a parent
# disappearing — cannot happen because the referenced ledger tables are append-only (deleting a
# row or changing an id is refused), so no lock on the parent is needed either.
_CHECKED_REFERENCES = {
    # child table: ((column, parent table, constraint name), ...)
    "bank_transactions": (
        ("statement_id", "statements", "fk_bank_transactions_statement_id_statements"),
    ),
    "payment_allocations": (
        (
            "bank_transaction_id",
            "bank_transactions",
            "fk_payment_allocations_bank_transaction_id_bank_transactions",
        ),
        ("order_id", "orders", "fk_payment_allocations_order_id_orders"),
        (
            "confirmation_id",
            "payment_confirmations",
            "fk_payment_allocations_confirmation_id_payment_confirmations",
        ),
    ),
}
APPEND_ONLY = ("statements", "bank_transactions", "orders", "payment_confirmations")


def _reference_check_sql(table: str) -> list[str]:
    checks = "".join(
        f"""
        IF EXISTS (SELECT FROM (SELECT DISTINCT n.{column} AS ref FROM new_rows n) r
                    WHERE r.ref IS NOT NULL
                      AND NOT EXISTS (SELECT FROM {parent} p WHERE p.id = r.ref)) THEN
            RAISE EXCEPTION 'insert or update on table "{table}" violates foreign key '
                            'constraint "{name}"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{name}', TABLE = '{table}',
                      DETAIL = 'Key ({column}) is not present in table "{parent}".';
        END IF;"""
        for column, parent, name in _CHECKED_REFERENCES[table]
    )
    return [
        # index probes on the parents' primary keys, never a scan of a parent: the plan is made
        # once per session (PL/pgSQL caches it), maybe while a parent looks empty to the planner
        # (fresh or truncated table), and a scan per new row would then cost seconds per batch
        f"""
        CREATE FUNCTION {table}_check_references() RETURNS trigger LANGUAGE plpgsql
            SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
            SET enable_bitmapscan = off AS $$
        BEGIN{checks}
            RETURN NULL;
        END $$
        """,
        *(
            f"""
            CREATE TRIGGER {table}_references_{event.lower()} AFTER {event} ON {table}
                REFERENCING NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION {table}_check_references()
            """
            for event in ("INSERT", "UPDATE")
        ),
    ]


_APPEND_ONLY_FUNCTION = """
    CREATE FUNCTION refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'rows of "%" are never deleted and keep their id (payments ledger)',
            TG_TABLE_NAME USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME;
    END $$
"""


def _append_only_sql(table: str) -> str:
    return f"""
        CREATE TRIGGER {table}_append_only BEFORE DELETE OR UPDATE OF id ON {table}
            FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()
    """


def upgrade() -> None:
    op.create_table(
        "statements",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column(
            "format",
            sa.Enum(
                "csv",
                "xlsx",
                "mt940",
                "camt053",
                name="statement_format",
                native_enum=False,
                create_constraint=True,
                length=15,
            ),
            nullable=False,
        ),
        sa.Column("profile", sa.String(length=60), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("lines_total", sa.Integer(), nullable=False),
        sa.Column("lines_new", sa.Integer(), nullable=False),
        sa.Column("lines_duplicate", sa.Integer(), nullable=False),
        sa.Column("lines_ignored", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
    )
    op.create_index(op.f("ix_statements_sha256"), "statements", ["sha256"], unique=False)
    op.create_table(
        "suppliers",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppliers")),
    )
    op.create_table(
        "bank_transactions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("statement_id", sa.BigInteger(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("bank_ref", sa.String(length=100), nullable=True),
        sa.Column("account_no", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=6), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("payer_name", sa.String(length=200), nullable=True),
        sa.Column("payer_account", sa.String(length=60), nullable=True),
        sa.Column("payer_bank", sa.String(length=200), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=30), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "pending",
                "matched",
                "partial",
                "review",
                "unmatched",
                "ignored",
                name="tx_outcome",
                native_enum=False,
                create_constraint=True,
                length=17,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_transactions")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_bank_transactions_dedupe_key")),
        postgresql_with={"fillfactor": "50"},
    )
    op.create_table(
        "match_queue",
        sa.Column("bank_transaction_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("bank_transaction_id", name=op.f("pk_match_queue")),
    )
    op.create_index(
        op.f("ix_bank_transactions_statement_id"),
        "bank_transactions",
        ["statement_id"],
        unique=False,
    )
    op.create_table(
        "supplier_accounts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("holder_name", sa.String(length=200), nullable=False),
        sa.Column("account_no", sa.String(length=40), nullable=False),
        sa.Column("bank_name", sa.String(length=200), nullable=False),
        sa.Column("is_settlement", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_supplier_accounts_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_accounts")),
        sa.UniqueConstraint("account_no", name=op.f("uq_supplier_accounts_account_no")),
    )
    op.create_index(
        op.f("ix_supplier_accounts_supplier_id"), "supplier_accounts", ["supplier_id"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_no", sa.String(length=40), nullable=False),
        sa.Column("buyer_unit_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "purchase_channel",
            sa.Enum(
                "unit",
                "contractor",
                "personal",
                "union",
                name="purchase_channel",
                native_enum=False,
                create_constraint=True,
                length=18,
            ),
            nullable=False,
        ),
        sa.Column("supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("settlement_account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("paid_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending_payment",
                "partially_paid",
                "paid",
                "cancelled",
                name="order_status",
                native_enum=False,
                create_constraint=True,
                length=23,
            ),
            nullable=False,
        ),
        sa.Column("payment_code", sa.String(length=6), nullable=False),
        sa.Column("payment_code_legacy", sa.Boolean(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("region_code", sa.String(length=4), nullable=True),
        sa.Column("origin_county", sa.String(length=100), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("amount > 0", name=op.f("ck_orders_amount_positive")),
        sa.CheckConstraint(
            "paid_amount >= 0 AND paid_amount <= amount", name=op.f("ck_orders_paid_within_amount")
        ),
        sa.ForeignKeyConstraint(
            ["buyer_unit_id"], ["org_units.id"], name=op.f("fk_orders_buyer_unit_id_org_units")
        ),
        sa.ForeignKeyConstraint(
            ["settlement_account_id"],
            ["supplier_accounts.id"],
            name=op.f("fk_orders_settlement_account_id_supplier_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["suppliers.id"], name=op.f("fk_orders_supplier_id_suppliers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("order_no", name=op.f("uq_orders_order_no")),
        postgresql_with={"fillfactor": "50"},
    )
    op.create_index(op.f("ix_orders_buyer_unit_id"), "orders", ["buyer_unit_id"], unique=False)
    op.create_index("ix_orders_payment_code", "orders", ["payment_code"], unique=False)
    op.create_index(op.f("ix_orders_supplier_id"), "orders", ["supplier_id"], unique=False)
    op.create_table(
        "open_payment_codes",
        sa.Column("payment_code", sa.String(length=6), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_open_payment_codes_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("payment_code", name=op.f("pk_open_payment_codes")),
        sa.UniqueConstraint("order_id", name=op.f("uq_open_payment_codes_order_id")),
    )
    for statement in OPEN_CODE_TRIGGERS:
        op.execute(statement)
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=30), nullable=True),
        sa.Column("to_status", sa.String(length=30), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("bank_transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_sub", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["bank_transaction_id"],
            ["bank_transactions.id"],
            name=op.f("fk_order_events_bank_transaction_id_bank_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"], unique=False)
    op.create_table(
        "payment_confirmations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("buyer_unit_id", sa.BigInteger(), nullable=False),
        sa.Column("supplier_account_id", sa.BigInteger(), nullable=True),
        sa.Column("none_of_the_above", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "matched",
                "under_review",
                "confirmed",
                "failed",
                name="confirmation_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("remark", sa.String(length=300), nullable=True),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
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
            ["buyer_unit_id"],
            ["org_units.id"],
            name=op.f("fk_payment_confirmations_buyer_unit_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_payment_confirmations_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_account_id"],
            ["supplier_accounts.id"],
            name=op.f("fk_payment_confirmations_supplier_account_id_supplier_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_confirmations")),
    )
    op.create_index(
        op.f("ix_payment_confirmations_order_id"),
        "payment_confirmations",
        ["order_id"],
        unique=False,
    )
    op.create_table(
        "payment_allocations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bank_transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("confirmation_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "auto",
                "review",
                "self_service",
                name="allocation_source",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("actor_sub", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_allocations_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_allocations")),
        sa.UniqueConstraint(
            "bank_transaction_id", name=op.f("uq_payment_allocations_bank_transaction_id")
        ),
    )
    op.create_index(
        op.f("ix_payment_allocations_order_id"), "payment_allocations", ["order_id"], unique=False
    )
    op.create_table(
        "payment_confirmation_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("confirmation_id", sa.BigInteger(), nullable=False),
        sa.Column("payer_name", sa.String(length=200), nullable=False),
        sa.Column("payer_account", sa.String(length=60), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("is_cash", sa.Boolean(), nullable=False),
        sa.Column("bank_transaction_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bank_transaction_id"],
            ["bank_transactions.id"],
            name=op.f("fk_payment_confirmation_entries_bank_transaction_id_bank_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["confirmation_id"],
            ["payment_confirmations.id"],
            name=op.f("fk_payment_confirmation_entries_confirmation_id_payment_confirmations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_confirmation_entries")),
    )
    op.create_index(
        op.f("ix_payment_confirmation_entries_confirmation_id"),
        "payment_confirmation_entries",
        ["confirmation_id"],
        unique=False,
    )
    op.create_table(
        "payment_vouchers",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("confirmation_id", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=50), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["confirmation_id"],
            ["payment_confirmations.id"],
            name=op.f("fk_payment_vouchers_confirmation_id_payment_confirmations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_vouchers")),
        sa.UniqueConstraint(
            "confirmation_id", "sha256", name=op.f("uq_payment_vouchers_confirmation_id_sha256")
        ),
    )
    op.create_index(
        op.f("ix_payment_vouchers_confirmation_id"),
        "payment_vouchers",
        ["confirmation_id"],
        unique=False,
    )
    op.create_table(
        "review_cases",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bank_transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("confirmation_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "reason",
            sa.Enum(
                "overpayment",
                "order_already_paid",
                "order_cancelled",
                "payee_not_settlement_account",
                "multiple_codes",
                "cash_deposit",
                "payer_account_invalid",
                "code_suggestion",
                "self_service",
                name="review_reason",
                native_enum=False,
                create_constraint=True,
                length=36,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "allocated",
                "rejected",
                name="review_status",
                native_enum=False,
                create_constraint=True,
                length=17,
            ),
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("suggested_order_id", sa.BigInteger(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["bank_transaction_id"],
            ["bank_transactions.id"],
            name=op.f("fk_review_cases_bank_transaction_id_bank_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["confirmation_id"],
            ["payment_confirmations.id"],
            name=op.f("fk_review_cases_confirmation_id_payment_confirmations"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_review_cases_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["suggested_order_id"],
            ["orders.id"],
            name=op.f("fk_review_cases_suggested_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_cases")),
        sa.UniqueConstraint(
            "bank_transaction_id", name=op.f("uq_review_cases_bank_transaction_id")
        ),
    )
    op.create_index(
        "ix_review_cases_status_reason", "review_cases", ["status", "reason"], unique=False
    )
    for table in _CHECKED_REFERENCES:
        for statement in _reference_check_sql(table):
            op.execute(statement)
    op.execute(_APPEND_ONLY_FUNCTION)
    for table in APPEND_ONLY:
        op.execute(_append_only_sql(table))


def downgrade() -> None:
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP FUNCTION refuse_ledger_change()")
    for table in _CHECKED_REFERENCES:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {table}_references_{event} ON {table}")
        op.execute(f"DROP FUNCTION {table}_check_references()")
    op.drop_index("ix_review_cases_status_reason", table_name="review_cases")
    op.drop_table("review_cases")
    op.drop_index(op.f("ix_payment_vouchers_confirmation_id"), table_name="payment_vouchers")
    op.drop_table("payment_vouchers")
    op.drop_index(
        op.f("ix_payment_confirmation_entries_confirmation_id"),
        table_name="payment_confirmation_entries",
    )
    op.drop_table("payment_confirmation_entries")
    op.drop_index(op.f("ix_payment_allocations_order_id"), table_name="payment_allocations")
    op.drop_table("payment_allocations")
    op.drop_index(op.f("ix_payment_confirmations_order_id"), table_name="payment_confirmations")
    op.drop_table("payment_confirmations")
    op.drop_index(op.f("ix_order_events_order_id"), table_name="order_events")
    op.drop_table("order_events")
    op.execute("DROP TRIGGER orders_open_code_update ON orders")
    op.execute("DROP TRIGGER orders_open_code_insert ON orders")
    op.execute("DROP FUNCTION orders_open_code_update()")
    op.execute("DROP FUNCTION orders_open_code_insert()")
    op.drop_table("open_payment_codes")
    op.drop_index(op.f("ix_orders_supplier_id"), table_name="orders")
    op.drop_index("ix_orders_payment_code", table_name="orders")
    op.drop_index(op.f("ix_orders_buyer_unit_id"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_supplier_accounts_supplier_id"), table_name="supplier_accounts")
    op.drop_table("supplier_accounts")
    op.drop_index(op.f("ix_bank_transactions_statement_id"), table_name="bank_transactions")
    op.drop_table("match_queue")
    op.drop_table("bank_transactions")
    op.drop_table("suppliers")
    op.drop_index(op.f("ix_statements_sha256"), table_name="statements")
    op.drop_table("statements")
