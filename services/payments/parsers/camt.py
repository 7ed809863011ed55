"""ISO 20022 CAMT.053 bank-to-customer statements (camt.053.001.02 … .001.13), streamed.

`lxml.etree.iterparse` walks the file; each `Ntry` is converted when it closes and then freed,
so memory stays flat. Elements are matched by local name, so every schema version (they differ
in namespace and in a few wrappers such as `Dbtr/Pty/Nm` vs `Dbtr/Nm`) is read by one code path.
Entries not booked (`Sts` other than BOOK, e.g. PDNG) are skipped; an entry without `Sts` is
booked. Amounts are the booked ones, in the account's currency (see `_split`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import BinaryIO

from lxml import etree

from shared.money import CENT

from .limits import Limits, too_many_elements, too_many_rows
from .models import StatementLine, StatementParseError
from .streams import ChainedStream
from .values import AMOUNT_DIGITS, SHANGHAI, aware

_Element = etree._Element
_AMOUNT_RE = re.compile(r"\d{1,20}(?:\.\d{1,10})?")


def _local(element: _Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def _child(element: _Element | None, *path: str) -> _Element | None:
    """Descend by local names; None when any step is missing."""
    current = element
    for name in path:
        if current is None:
            return None
        current = next((c for c in current if _local(c) == name), None)
    return current


def _children(element: _Element | None, name: str) -> list[_Element]:
    return [] if element is None else [c for c in element if _local(c) == name]


def _text(element: _Element | None, *path: str) -> str | None:
    found = _child(element, *path)
    if found is None:
        return None
    return _content(found)


def _content(element: _Element) -> str | None:
    """Text of a leaf; an (unresolved, never fetched) entity reference stays literal `&name;`."""
    return "".join(str(part) for part in element.itertext()).strip() or None


def _account_id(acct: _Element | None) -> str | None:
    """`Acct/Id/IBAN` or `Acct/Id/Othr/Id`."""
    return _text(acct, "Id", "IBAN") or _text(acct, "Id", "Othr", "Id")


def _party_name(party: _Element | None) -> str | None:
    """`Dbtr/Pty/Nm` (v.08+) or `Dbtr/Nm` (older)."""
    return _text(party, "Pty", "Nm") or _text(party, "Nm")


def _date_or_time(element: _Element | None, line_no: int) -> datetime | None:
    if element is None:
        return None
    raw = _text(element, "DtTm") or _text(element, "Dt")
    if raw is None:
        return None
    try:
        if "T" in raw:
            return aware(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        return datetime.combine(date.fromisoformat(raw[:10]), time(), SHANGHAI)
    except ValueError as exc:
        raise StatementParseError(f"日期“{raw}”无法识别", line_no=line_no, code="bad_date") from exc


def _is_booked(entry: _Element) -> bool:
    """BOOK, or no `Sts` at all (a camt.053 reports booked entries by definition)."""
    status = _text(entry, "Sts", "Cd") or _text(entry, "Sts") or "BOOK"
    return status.upper() == "BOOK"


def camt_amount(element: _Element, line_no: int) -> Decimal:
    """An ISO 20022 amount: more decimals are accepted when they are zeros (`8.850`), never
    when they carry fractions of a cent (`8.855`)."""
    raw = _content(element)
    if raw is None or not _AMOUNT_RE.fullmatch(raw):
        raise StatementParseError(f"金额“{raw or ''}”无效", line_no=line_no, code="bad_amount")
    amount = Decimal(raw)
    cents = amount.quantize(CENT)
    if cents != amount:
        raise StatementParseError(f"金额“{raw}”超过两位小数", line_no=line_no, code="bad_amount")
    if cents <= 0:
        raise StatementParseError(f"金额“{raw}”无效", line_no=line_no, code="bad_amount")
    if cents.adjusted() >= AMOUNT_DIGITS:
        raise StatementParseError(
            f"金额“{raw}”超出系统允许的范围", line_no=line_no, code="bad_amount"
        )
    return cents


def _channel(entry: _Element) -> str | None:
    """Cash and counter transactions from the ISO bank transaction code (BkTxCd)."""
    domain = _child(entry, "BkTxCd", "Domn")
    family = _text(domain, "Fmly", "Cd")
    subfamily = _text(domain, "Fmly", "SubFmlyCd")
    if subfamily in {"CDPT", "CWDL", "CASH"} or family == "CASH":
        return "cash"
    if family == "CNTR":
        return "counter"
    proprietary = (_text(entry, "BkTxCd", "Prtry", "Cd") or "").upper()
    if proprietary in {"CASH", "CDPT"}:
        return "cash"
    return None


def _remark(*sources: _Element | None) -> str | None:
    for source in sources:
        if source is None:
            continue
        ustrd = _children(_child(source, "RmtInf"), "Ustrd")
        texts = [text for u in ustrd if (text := _content(u))]
        if texts:
            return " ".join(texts)
    for source in sources:
        extra = _text(source, "AddtlTxInf") or _text(source, "AddtlNtryInf")
        if extra:
            return extra
    return None


class _Statement:
    def __init__(self) -> None:
        self.account: str | None = None
        self.currency: str | None = None


def _tx_amount(tx: _Element) -> _Element | None:
    amount = _child(tx, "Amt")
    if amount is None:
        amount = _child(tx, "AmtDtls", "TxAmt", "Amt")
    return amount


def _split(
    details: list[_Element], entry_amount: Decimal, currency: str, line_no: int
) -> list[tuple[_Element | None, Decimal]]:
    """The lines of an entry, each with its amount in the account's currency. A single `TxDtls`
    takes the booked `Ntry/Amt` (its own amount may be the instructed one, in another currency);
    several are split only when each has an amount in the entry's currency and they add up to
    the entry amount; otherwise the entry is one line."""
    if len(details) <= 1:
        return [(details[0] if details else None, entry_amount)]
    parts: list[tuple[_Element | None, Decimal]] = []
    for index, tx in enumerate(details):
        element = _tx_amount(tx)
        if element is None or (element.get("Ccy") or currency).upper() != currency:
            return [(None, entry_amount)]
        parts.append((tx, camt_amount(element, line_no + index + 1)))
    if sum(amount for _, amount in parts) != entry_amount:
        return [(None, entry_amount)]
    return parts


def _entry_lines(
    entry: _Element, statement: _Statement, entry_no: int, line_no: int
) -> Iterator[StatementLine]:
    if statement.account is None:
        raise StatementParseError(
            f"第 {entry_no} 笔分录（Ntry）所在对账单缺少账号（Acct/Id）", code="missing_account"
        )
    entry_direction = _direction(_text(entry, "CdtDbtInd"), line_no + 1)
    entry_ref = _text(entry, "AcctSvcrRef")
    booked_at = _date_or_time(_child(entry, "BookgDt"), line_no + 1)
    value_moment = _date_or_time(_child(entry, "ValDt"), line_no + 1)
    value_date = None if value_moment is None else value_moment.date()
    channel = _channel(entry)
    entry_amount_element = _child(entry, "Amt")
    if entry_amount_element is None:
        raise StatementParseError("分录缺少金额（Amt）", line_no=line_no + 1, code="bad_amount")
    entry_amount = camt_amount(entry_amount_element, line_no + 1)
    currency = (entry_amount_element.get("Ccy") or statement.currency or "CNY").upper()
    details = [tx for nd in _children(entry, "NtryDtls") for tx in _children(nd, "TxDtls")]
    parts = _split(details, entry_amount, currency, line_no)
    several = len(parts) > 1
    refs = [_text(tx, "Refs", "AcctSvcrRef") for tx, _ in parts]
    repeated = several and len({r for r in refs if r}) < sum(1 for r in refs if r)
    for index, ((tx, amount), tx_ref) in enumerate(zip(parts, refs, strict=True), start=1):
        line_no += 1
        direction = entry_direction
        if several and tx is not None and _text(tx, "CdtDbtInd"):
            direction = _direction(_text(tx, "CdtDbtInd"), line_no)
        if several:
            if tx_ref and repeated:  # two transactions must never share a reference
                reference: str | None = f"{tx_ref}/{index}"
            else:
                reference = tx_ref or (f"{entry_ref}/{index}" if entry_ref else None)
        else:
            reference = entry_ref or tx_ref
        side = "Dbtr" if direction == "credit" else "Cdtr"
        parties = _child(tx, "RltdPties")
        agents = _child(tx, "RltdAgts")
        if tx is None and details:  # an entry kept whole: the remarks of all its details
            remark = " ".join(r for d in details if (r := _remark(d))) or _remark(entry)
        else:
            remark = _remark(tx, entry)
        yield StatementLine(
            line_no=line_no,
            account_no=statement.account,
            bank_ref=reference,
            direction=direction,
            amount=amount,
            currency=currency,
            booked_at=booked_at,
            value_date=value_date,
            payer_name=_party_name(_child(parties, side)),
            payer_account=_account_id(_child(parties, f"{side}Acct")),
            payer_bank=_text(agents, f"{side}Agt", "FinInstnId", "Nm"),
            remark=remark,
            channel=channel,
        )


def _direction(indicator: str | None, line_no: int) -> str:
    if indicator == "CRDT":
        return "credit"
    if indicator == "DBIT":
        return "debit"
    raise StatementParseError(
        f"借贷标识（CdtDbtInd）“{indicator}”无效", line_no=line_no, code="bad_direction"
    )


_FREED_WITH_PARENT = {"Ntry", "Stmt"}
_TOP = {"Document", "BkToCstmrStmt", "Stmt"}


def read_camt053(
    head: bytes, stream: BinaryIO, limits: Limits | None = None
) -> Iterator[StatementLine]:
    limits = limits or Limits()
    events = etree.iterparse(
        ChainedStream(head, stream),
        events=("end",),
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        remove_comments=True,
    )
    statement = _Statement()
    line_no = 0
    entry_no = 0
    elements = 0
    try:
        for _event, element in events:
            elements += 1
            if elements > limits.xml_elements:
                raise too_many_elements(limits)
            name = _local(element)
            parent = element.getparent()
            parent_name = "" if parent is None else _local(parent)
            if name == "Acct":
                if parent_name == "Stmt":
                    statement.account = _account_id(element)
                    statement.currency = _text(element, "Ccy")
            elif name == "Ntry":
                entry_no += 1
                if _is_booked(element):
                    for line in _entry_lines(element, statement, entry_no, line_no):
                        line_no = line.line_no
                        if line_no > limits.rows:
                            raise too_many_rows(limits)
                        yield line
            elif name == "Stmt":
                statement = _Statement()
            if name in _FREED_WITH_PARENT or parent_name in _TOP:
                # done with it: a top-level element (read or unknown) is never kept
                _free(element)
    except etree.XMLSyntaxError as exc:
        raise StatementParseError(
            f"XML 格式错误（第 {exc.lineno} 行）：{exc.msg}", code="bad_xml"
        ) from exc


def _free(element: _Element) -> None:
    """Release a processed element and the siblings before it."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
