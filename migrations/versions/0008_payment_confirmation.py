"""self-service payment confirmation: rounds, entry results, payee SMS requests

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS_CHECK = "ck_payment_confirmations_confirmation_status"
_OLD_STATUSES = ("matched", "under_review", "confirmed", "failed")
_NEW_STATUSES = ("matched", "not_found", "under_review", "confirmed", "failed")


def _status_check(statuses: Sequence[str]) -> None:
    op.execute(f"ALTER TABLE payment_confirmations DROP CONSTRAINT {_STATUS_CHECK}")
    values = ", ".join(f"'{s}'" for s in statuses)
    op.execute(
        f"ALTER TABLE payment_confirmations ADD CONSTRAINT {_STATUS_CHECK} "
        f"CHECK (status IN ({values}))"
    )


def upgrade() -> None:
    _status_check(_NEW_STATUSES)
    one = sa.text("1")
    op.add_column(
        "payment_confirmations",
        sa.Column("round", sa.Integer(), server_default=one, nullable=False),
    )
    op.add_column(
        "payment_confirmation_entries",
        sa.Column("round", sa.Integer(), server_default=one, nullable=False),
    )
    op.add_column(
        "payment_confirmation_entries",
        sa.Column("kind", sa.String(length=10), server_default="declared", nullable=False),
    )
    op.add_column(
        "payment_confirmation_entries", sa.Column("result", sa.String(length=20), nullable=True)
    )
    op.add_column(
        "payment_confirmation_entries", sa.Column("reason", sa.String(length=40), nullable=True)
    )
    op.add_column(
        "payment_vouchers", sa.Column("round", sa.Integer(), server_default=one, nullable=False)
    )
    op.create_index(
        "ix_bank_transactions_account_no_amount", "bank_transactions", ["account_no", "amount"]
    )
    op.create_index("ix_payment_confirmations_status_id", "payment_confirmations", ["status", "id"])
    op.create_table(
        "payment_confirmation_rounds",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("confirmation_id", sa.BigInteger(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("supplier_account_id", sa.BigInteger(), nullable=True),
        sa.Column("none_of_the_above", sa.Boolean(), nullable=False),
        sa.Column("remark", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column(
            "submitted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("bank_transaction_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bank_transaction_id"],
            ["bank_transactions.id"],
            name=op.f("fk_payment_confirmation_rounds_bank_transaction_id_bank_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["confirmation_id"],
            ["payment_confirmations.id"],
            name=op.f("fk_payment_confirmation_rounds_confirmation_id_payment_confirmations"),
        ),
        sa.ForeignKeyConstraint(
            ["supplier_account_id"],
            ["supplier_accounts.id"],
            name=op.f("fk_payment_confirmation_rounds_supplier_account_id_supplier_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_confirmation_rounds")),
        sa.UniqueConstraint(
            "confirmation_id",
            "round",
            name=op.f("uq_payment_confirmation_rounds_confirmation_id_round"),
        ),
    )
    op.create_table(
        "payee_sms_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("mobile_hash", sa.String(length=64), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("sms_outbox_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_payee_sms_requests_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payee_sms_requests")),
    )
    op.create_index(
        "ix_payee_sms_requests_order_day", "payee_sms_requests", ["order_id", "business_day"]
    )
    op.create_index(
        "ix_payee_sms_requests_mobile_day", "payee_sms_requests", ["mobile_hash", "business_day"]
    )


def downgrade() -> None:
    op.drop_index("ix_payee_sms_requests_mobile_day", table_name="payee_sms_requests")
    op.drop_index("ix_payee_sms_requests_order_day", table_name="payee_sms_requests")
    op.drop_table("payee_sms_requests")
    op.drop_table("payment_confirmation_rounds")
    op.drop_index("ix_payment_confirmations_status_id", table_name="payment_confirmations")
    op.drop_index("ix_bank_transactions_account_no_amount", table_name="bank_transactions")
    op.drop_column("payment_vouchers", "round")
    op.drop_column("payment_confirmation_entries", "reason")
    op.drop_column("payment_confirmation_entries", "result")
    op.drop_column("payment_confirmation_entries", "kind")
    op.drop_column("payment_confirmation_entries", "round")
    op.drop_column("payment_confirmations", "round")
    op.execute(
        "UPDATE payment_confirmations SET status = 'under_review' WHERE status = 'not_found'"
    )
    _status_check(_OLD_STATUSES)
