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
import bisect
import json
import re
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from graphql import GraphQLError

MAX_PAGE_SIZE = 250
# Set while a bulk operation executes its query (sandbox.shopify_bulk): connections then ignore paging arguments
# and yield every matching record, as Shopify's bulk queries do.
UNBOUNDED: ContextVar[bool] = ContextVar("unbounded_connections", default=False)

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


def _cursor_value(value: Any) -> Any:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if isinstance(value, datetime) else value


def _from_cursor(value: Any, sample: Any) -> Any:
    """A cursor's last_value back in the type of the sort values (times travel as ISO text)."""
    if isinstance(sample, datetime):
        if not isinstance(value, str):
            raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"})
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise GraphQLError("Invalid cursor for current pagination sort.",
                               extensions={"code": "BAD_REQUEST"}) from None
    if sample is not None and type(value) is not type(sample):
        raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"})
    return value


class SortedIndex:
    """Records in ascending (sort value, id) order, with the keys for bisection. Build once per world version."""

    def __init__(self, records: list, sort_value: Callable[[Any], Any], record_id: Callable[[Any], int]):
        self.decorated = sorted(((sort_value(r), record_id(r)), r) for r in records)
        self.keys = [k for k, _ in self.decorated]


def paginate(records: list | SortedIndex, sort_value: Callable[[Any], Any], record_id: Callable[[Any], int],
             args: dict[str, Any], node: Callable[[Any], dict], what: str,
             predicate: Callable[[Any], bool] | None = None) -> dict[str, Any]:
    """One page of the records that satisfy `predicate`, as a Shopify connection: edges, nodes, pageInfo.

    The order is (sort value, id), ascending or with `reverse` descending. `after`/`before` cursors are keyset
    positions found by bisection, so a page costs O(page + log n) however large the collection is."""
    if UNBOUNDED.get():
        args = {"first": len(records.keys if isinstance(records, SortedIndex) else records),
                "reverse": args.get("reverse")}
    else:
        check_page_args(args, what)
    index = records if isinstance(records, SortedIndex) else SortedIndex(records, sort_value, record_id)
    keys, decorated = index.keys, index.decorated
    n = len(keys)
    reverse = bool(args.get("reverse"))
    sample = keys[0][0] if keys else None

    def cursor_key(cursor: str) -> tuple[Any, int]:
        last_id, last_value = decode_cursor(cursor)
        return (_from_cursor(last_value, sample), last_id)

    lo, hi = 0, n  # the window between the cursors, over the ascending order
    try:
        if args.get("after"):
            ck = cursor_key(args["after"])
            if reverse:
                hi = min(hi, bisect.bisect_left(keys, ck))
            else:
                lo = max(lo, bisect.bisect_right(keys, ck))
        if args.get("before"):
            ck = cursor_key(args["before"])
            if reverse:
                lo = max(lo, bisect.bisect_right(keys, ck))
            else:
                hi = min(hi, bisect.bisect_left(keys, ck))
    except TypeError:
        raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"}) from None

    # iteration order: position p (0..n-1) ↦ ascending index
    def at(p: int) -> int:
        return n - 1 - p if reverse else p

    def ok(p: int) -> bool:
        return predicate is None or predicate(decorated[at(p)][1])

    it_lo, it_hi = (n - hi, n - lo) if reverse else (lo, hi)
    first, last = args.get("first"), args.get("last")
    chosen: list[int] = []
    if first is not None:
        p = it_lo
        while p < it_hi and len(chosen) < first:
            if ok(p):
                chosen.append(p)
            p += 1
        if last is not None:
            chosen = chosen[-last:] if last else []
    else:
        p = it_hi - 1
        while p >= it_lo and len(chosen) < last:
            if ok(p):
                chosen.append(p)
            p -= 1
        chosen.reverse()
    if chosen:
        after_end, before_start = chosen[-1] + 1, chosen[0] - 1
    else:
        after_end, before_start = it_hi, it_lo - 1
    has_next = any(ok(p) for p in range(after_end, n))
    has_previous = any(ok(p) for p in range(before_start, -1, -1))
    page = [decorated[at(p)] for p in chosen]
    cursors = [encode_cursor(k[1], _cursor_value(k[0])) for k, _ in page]
    rows = [r for _, r in page]
    info = {
        "hasNextPage": has_next,
        "hasPreviousPage": has_previous,
        "startCursor": cursors[0] if cursors else None,
        "endCursor": cursors[-1] if cursors else None,
    }
    return {
        "edges": lambda _info: [{"cursor": c, "node": node(r)} for c, r in zip(cursors, rows, strict=True)],
        "nodes": lambda _info: [node(r) for r in rows],
        "pageInfo": info,
    }
