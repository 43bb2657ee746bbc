"""Shopify's search syntax (the `query:` argument) and cursor paging, as far as the sandbox needs them.

Search: terms separated by spaces (implicit AND), `AND`, `OR`, a leading `-` or `NOT` to negate, `field:value`
with the comparators `:<`, `:<=`, `:>`, `:>=`, values optionally in single or double quotes, a trailing `*` for a
prefix match, and bare words (the resource's default text search). Times: ISO-8601 with `Z` or an offset, a date
(`2026-11-01`), or `now`; a time without an offset is read as UTC. An unknown field is ignored with a search
warning, as Shopify does. Parentheses are not supported.

Paging: `first`/`after` and `last`/`before` over a keyset (sort value, id), so an object is never skipped when
another object changes between pages; cursors are base64 JSON `{"last_id": …, "last_value": …}` like Shopify's.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from graphql import GraphQLError

MAX_PAGE_SIZE = 250

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<conn>AND|OR)(?=\s|$)
      | (?P<neg>-|NOT\s+)?
        (?:(?P<field>[A-Za-z_][\w.]*):(?P<op><=|>=|<|>|=)?)?
        (?P<value>'[^']*'|"[^"]*"|[^\s]+)
    )""",
    re.VERBOSE,
)


@dataclass
class Term:
    field: str | None
    op: str
    value: str
    negated: bool = False


@dataclass
class Search:
    """A parsed query: OR of AND-groups of terms, plus warnings for the response's extensions."""

    groups: list[list[Term]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(self.groups)


def parse_search(text: str | None) -> Search:
    search = Search(groups=[[]])
    if not text or not text.strip():
        return search
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        if m.group("conn") == "OR":
            search.groups.append([])
            continue
        if m.group("conn") == "AND":
            continue
        value = m.group("value")
        if value is None:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        search.groups[-1].append(Term(m.group("field"), m.group("op") or ":", value, bool(m.group("neg"))))
    return search


def parse_time(value: str, now: datetime) -> tuple[datetime, datetime] | None:
    """A time value as the half-open range [start, end) it denotes (a date is a whole UTC day)."""
    v = value.strip()
    if v.lower() == "now":
        return now, now + timedelta(seconds=1)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            d = date.fromisoformat(v)
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        if re.fullmatch(r"\d{4}", v):
            start = datetime(int(v), 1, 1, tzinfo=UTC)
            return start, datetime(int(v) + 1, 1, 1, tzinfo=UTC)
        ts = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    ts = ts.astimezone(UTC)
    return ts, ts + timedelta(microseconds=1)


def _compare(op: str, actual, start, end) -> bool:
    if op in (":", "="):
        return start <= actual < end
    if op == ">=":
        return actual >= start
    if op == ">":
        return actual >= end
    if op == "<=":
        return actual < end
    if op == "<":
        return actual < start
    return False


@dataclass
class Field:
    """How one search field reads a record: kind is 'time', 'id', 'text' or 'number'."""

    kind: str
    get: Callable[[Any], Any]


def build_filter(search: Search, fields: dict[str, Field], default_text: Callable[[Any], str], now: datetime,
                 path: str) -> Callable[[Any], bool] | None:
    """A predicate for records, or None when nothing filters. Unknown fields become warnings and are ignored."""
    compiled: list[list[Callable[[Any], bool]]] = []
    for group in search.groups:
        preds: list[Callable[[Any], bool]] = []
        for term in group:
            pred = _term_predicate(term, fields, default_text, now, search, path)
            if pred is None:
                continue
            preds.append((lambda p: lambda r: not p(r))(pred) if term.negated else pred)
        if preds:
            compiled.append(preds)
    if not compiled:
        return None
    return lambda record: any(all(p(record) for p in group) for group in compiled)


def _term_predicate(term: Term, fields: dict[str, Field], default_text, now, search: Search, path: str):
    if term.field is None:
        needle = term.value.lower().rstrip("*")
        return lambda r: needle in default_text(r).lower()
    spec = fields.get(term.field)
    if spec is None:
        search.warnings.append({"field": term.field, "message": "Invalid search field for this query."})
        return None
    if spec.kind == "time":
        bounds = parse_time(term.value, now)
        if bounds is None:
            search.warnings.append({"field": term.field, "message": f"Invalid time value: {term.value}"})
            return None
        start, end = bounds
        return lambda r: (v := spec.get(r)) is not None and _compare(term.op, v, start, end)
    if spec.kind in ("id", "number"):
        raw = term.value.rsplit("/", 1)[-1]
        try:
            num = int(raw) if spec.kind == "id" else float(raw)
        except ValueError:
            search.warnings.append({"field": term.field, "message": f"Invalid value: {term.value}"})
            return None
        return lambda r: (v := spec.get(r)) is not None and _compare(term.op, v, num, num + (1 if spec.kind == "id" else 1e-9))
    needle = term.value.lower()
    if needle.endswith("*"):
        prefix = needle[:-1]
        return lambda r: any(str(v).lower().startswith(prefix) for v in _values(spec.get(r)))
    return lambda r: any(str(v).lower() == needle for v in _values(spec.get(r)))


def _values(v) -> Sequence:
    if v is None:
        return ()
    if isinstance(v, (list, tuple, set)):
        return list(v)
    return (v,)


# ------------------------------------------------------------------------------------------------ paging
def encode_cursor(record_id: int, value: Any) -> str:
    raw = json.dumps({"last_id": record_id, "last_value": value}, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, Any]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return int(data["last_id"]), data["last_value"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise GraphQLError("Invalid cursor for current pagination sort.",
                           extensions={"code": "BAD_REQUEST"}) from None


def check_page_args(args: dict[str, Any], what: str) -> None:
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
    for name, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise GraphQLError(f"{name} on {what} must be a non-negative number.", extensions={"code": "BAD_REQUEST"})
        if value is not None and value > MAX_PAGE_SIZE:
            raise GraphQLError(
                f"The {name} argument on {what} can be at most {MAX_PAGE_SIZE}; use the cursor in "
                f"pageInfo.endCursor to fetch the next page.",
                extensions={"code": "MAX_PAGE_SIZE_EXCEEDED", "maxPageSize": MAX_PAGE_SIZE},
            )


def paginate(records: list, sort_value: Callable[[Any], Any], record_id: Callable[[Any], int],
             args: dict[str, Any], node: Callable[[Any], dict], what: str) -> dict[str, Any]:
    """One page of `records` (already filtered) as a Shopify connection: edges, nodes, pageInfo."""
    check_page_args(args, what)
    reverse = bool(args.get("reverse"))

    def key(r):
        return (sort_value(r), record_id(r))

    ordered = sorted(records, key=key, reverse=reverse)
    keys = [key(r) for r in ordered]

    def beyond(k, cursor_key) -> bool:  # k comes after the cursor in iteration order
        return k < cursor_key if reverse else k > cursor_key

    lo, hi = 0, len(ordered)
    if args.get("after"):
        last_id, last_value = decode_cursor(args["after"])
        ck = (last_value, last_id)
        _check_cursor_type(ck, keys)
        lo = next((i for i, k in enumerate(keys) if beyond(k, ck)), len(keys))
    if args.get("before"):
        last_id, last_value = decode_cursor(args["before"])
        ck = (last_value, last_id)
        _check_cursor_type(ck, keys)
        hi = next((i for i, k in enumerate(keys) if k == ck or beyond(k, ck)), len(keys))
    hi = max(lo, hi)
    if args.get("first") is not None:
        page_lo, page_hi = lo, min(hi, lo + args["first"])
    else:
        page_lo, page_hi = max(lo, hi - args["last"]), hi
    if args.get("first") is not None and args.get("last") is not None:
        page_lo = max(page_lo, page_hi - args["last"])
    page = ordered[page_lo:page_hi]
    cursors = [encode_cursor(record_id(r), sort_value(r)) for r in page]
    info = {
        "hasNextPage": page_hi < len(ordered),
        "hasPreviousPage": page_lo > 0,
        "startCursor": cursors[0] if cursors else None,
        "endCursor": cursors[-1] if cursors else None,
    }
    return {
        "edges": lambda _info: [{"cursor": c, "node": node(r)} for c, r in zip(cursors, page, strict=True)],
        "nodes": lambda _info: [node(r) for r in page],
        "pageInfo": info,
    }


def _check_cursor_type(cursor_key, keys) -> None:
    if keys and type(cursor_key[0]) is not type(keys[0][0]):
        raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"})
