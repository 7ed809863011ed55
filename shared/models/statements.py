"""Statement import bookkeeping (issue #10): which stored bank lines a statement's duplicate
lines were copies of, so every credit of a file is accounted for in `GET /statements/{id}`."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base


class StatementDuplicate(Base):
    """`lines` lines of statement `statement_id` were copies of the stored bank line
    `bank_transaction_id` (stored once, under the statement that brought it first)."""

    __tablename__ = "statement_duplicates"
    statement_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("statements.id", ondelete="CASCADE"), primary_key=True
    )
    bank_transaction_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("bank_transactions.id", ondelete="CASCADE"), primary_key=True
    )
    lines: Mapped[int] = mapped_column(Integer)
