"""Notify: message states, encrypted mobiles, attempts, receipts, templates, provider cool-downs,
reminder days in the policy

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("pending", "sending", "sent", "failed")
NEW_STATUSES = ("pending", "sending", "sent", "delivered", "undelivered", "unknown", "failed")


def _status_check(values: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    # --- sms_outbox: new states, encrypted mobile, template version, segments, provider
    op.drop_constraint(op.f("ck_sms_outbox_sms_status"), "sms_outbox", type_="check")
    op.alter_column(
        "sms_outbox", "status", type_=sa.String(length=19), existing_type=sa.String(length=15)
    )
    op.create_check_constraint("sms_status", "sms_outbox", _status_check(NEW_STATUSES))
    op.add_column("sms_outbox", sa.Column("mobile_ciphertext", sa.LargeBinary(), nullable=True))
    op.add_column("sms_outbox", sa.Column("mobile_key_id", sa.String(length=40), nullable=True))
    op.add_column("sms_outbox", sa.Column("mobile_hash", sa.String(length=64), nullable=True))
    op.add_column(
        "sms_outbox",
        sa.Column("template_version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column(
        "sms_outbox", sa.Column("segments", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "sms_outbox",
        sa.Column("attempts_before_resend", sa.Integer(), nullable=False, server_default="0"),
    )
    op.alter_column("sms_outbox", "attempts_before_resend", server_default=None)
    op.alter_column("sms_outbox", "template_version", server_default=None)
    op.alter_column("sms_outbox", "segments", server_default=None)
    op.add_column("sms_outbox", sa.Column("provider", sa.String(length=20), nullable=True))
    op.add_column("sms_outbox", sa.Column("last_error_code", sa.String(length=100), nullable=True))
    op.add_column(
        "sms_outbox", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("sms_outbox", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_sms_outbox_mobile_hash"), "sms_outbox", ["mobile_hash"])
    op.create_index("ix_sms_outbox_created_at", "sms_outbox", ["created_at"])
    op.drop_index(
        "ix_sms_outbox_due",
        table_name="sms_outbox",
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.create_index(
        "ix_sms_outbox_due",
        "sms_outbox",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'sending', 'unknown')"),
    )

    op.create_table(
        "sms_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["sms_outbox.id"],
            name=op.f("fk_sms_attempts_message_id_sms_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_attempts")),
    )
    op.create_index(op.f("ix_sms_attempts_message_id"), "sms_attempts", ["message_id"])
    op.create_index(
        "ix_sms_attempts_provider_message_id", "sms_attempts", ["provider", "provider_message_id"]
    )

    op.create_table(
        "sms_receipts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("applied_to", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_receipts")),
    )
    op.create_index(
        "ix_sms_receipts_provider_message_id", "sms_receipts", ["provider", "provider_message_id"]
    )
    op.create_index("ix_sms_receipts_message_id", "sms_receipts", ["message_id"])

    op.create_table(
        "sms_templates",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider_codes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_templates")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_sms_templates_name_version")),
    )

    op.create_table(
        "sms_provider_cooldowns",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("cooled_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_sms_provider_cooldowns")),
    )

    op.add_column("policies", sa.Column("reminder_days_first", sa.Integer(), nullable=True))
    op.add_column("policies", sa.Column("reminder_days_second", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("policies", "reminder_days_second")
    op.drop_column("policies", "reminder_days_first")
    op.drop_table("sms_provider_cooldowns")
    op.drop_table("sms_templates")
    op.drop_index("ix_sms_receipts_message_id", table_name="sms_receipts")
    op.drop_index("ix_sms_receipts_provider_message_id", table_name="sms_receipts")
    op.drop_table("sms_receipts")
    op.drop_index("ix_sms_attempts_provider_message_id", table_name="sms_attempts")
    op.drop_index(op.f("ix_sms_attempts_message_id"), table_name="sms_attempts")
    op.drop_table("sms_attempts")
    op.drop_index(
        "ix_sms_outbox_due",
        table_name="sms_outbox",
        postgresql_where=sa.text("status IN ('pending', 'sending', 'unknown')"),
    )
    op.create_index(
        "ix_sms_outbox_due",
        "sms_outbox",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.drop_index("ix_sms_outbox_created_at", table_name="sms_outbox")
    op.drop_index(op.f("ix_sms_outbox_mobile_hash"), table_name="sms_outbox")
    for column in (
        "purged_at",
        "delivered_at",
        "last_error_code",
        "provider",
        "segments",
        "template_version",
        "attempts_before_resend",
        "mobile_hash",
        "mobile_key_id",
        "mobile_ciphertext",
    ):
        op.drop_column("sms_outbox", column)
    op.drop_constraint(op.f("ck_sms_outbox_sms_status"), "sms_outbox", type_="check")
    op.execute("UPDATE sms_outbox SET status = 'sent' WHERE status IN ('delivered', 'undelivered')")
    op.execute("UPDATE sms_outbox SET status = 'pending' WHERE status = 'unknown'")
    op.alter_column(
        "sms_outbox", "status", type_=sa.String(length=15), existing_type=sa.String(length=19)
    )
    op.create_check_constraint("sms_status", "sms_outbox", _status_check(OLD_STATUSES))
