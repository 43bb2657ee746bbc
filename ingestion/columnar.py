"""Columnar mapping: GraphQL answer pages (JSON text) → typed landed columns and quarantine, in one DuckDB query.

The row mappers (`ingestion.shopify.order_row` …) cost a Python call per field per record; at Shopify's page
sizes that, and building a frame from dicts, made landing ~30× slower than the parse itself. Here a mapping is
declared once (`NodeMapping`: landed column ← JSON path, with a kind that says how it is validated) and turned
into one SQL statement that DuckDB runs vectorised over all pages of a batch:

1. every page text is parsed once (`from_json`), and the connection's `nodes` are unnested as JSON values;
2. `json_transform` pulls the declared paths out as text (numbers as their JSON text);
3. each kind is validated in SQL — required keys present, timestamps ISO-8601 with an offset, money a finite
   decimal, integers whole — and the first failure per node becomes the quarantine reason, worded as the row
   mappers word it (`createdAt 'x' is not an ISO-8601 timestamp`, `lineItems[2].quantity …`);
4. good nodes come back as an Arrow table with the landed types (UTC microseconds, list<struct>), `_raw` being
   the node re-serialised as compact JSON (DuckDB's writer: the same text as `raw_json` except that a control
   character is escaped with upper-case hex), bad ones as (key, reason, raw) for the quarantine.

Nothing is dropped silently: a node that is not an object, lacks a required key or has a value that does not
parse is quarantined; the rest lands.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing import QuarantineRecord

Kind = Literal["text", "timestamp", "money", "int", "text_list", "gid"]

# Python's datetime.fromisoformat forms, with the offset required (text without one is refused, as parse_utc).
_TIMESTAMP_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2}(:?\d{2})?)?)$"
_DECIMAL_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INTEGER_RE = r"^[+-]?\d+(\.0*)?$"
# a node's JSON type in JSON's own words (DuckDB names number types by their SQL type)
_JSON_KIND = ("CASE coalesce(json_type(node), 'NULL') WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'an array' "
              "WHEN 'BOOLEAN' THEN 'a boolean' WHEN 'NULL' THEN 'null' WHEN 'OBJECT' THEN 'an object' "
              "ELSE 'a number' END")


@dataclass(frozen=True)
class Field:
    """Landed `column` ← the node's value at the dotted `path` (e.g. `totalPriceSet.shopMoney.amount`).

    kind: text (as sent), gid (text), timestamp (→ UTC microseconds), money (decimal text, trimmed), int
    (→ BIGINT), text_list (list of strings). `required`: a missing or empty value quarantines the node."""

    column: str
    path: str
    kind: Kind = "text"
    required: bool = False

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))


@dataclass(frozen=True)
class Nested:
    """A list<struct> column from a nested connection's `nodes` (e.g. an order's `lineItems`)."""

    column: str
    connection: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class NodeMapping:
    """How the nodes of one connection (`connection_path`, e.g. ("data", "orders")) become landed rows."""

    connection_path: tuple[str, ...]
    fields: tuple[Field | Nested, ...]
    label: str  # names the records in quarantine reasons, e.g. "shopify/orders"
    key_path: str = "id"

    @cached_property
    def sql(self) -> str:
        return _build_sql(self)


# -- SQL building ----------------------------------------------------------------------------------------
def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _transform_type(fields: Sequence[Field | Nested]) -> dict:
    """The json_transform structure: every leaf as VARCHAR (lists of VARCHAR), nested connections as lists."""
    shape: dict = {}
    for item in fields:
        if isinstance(item, Nested):
            shape[item.connection] = {"nodes": [_transform_type(item.fields)]}
            continue
        leaf: object = ["VARCHAR"] if item.kind == "text_list" else "VARCHAR"
        holder = shape
        *parents, last = item.steps
        for step in parents:
            holder = holder.setdefault(step, {})
        holder[last] = leaf
    return shape


def _ref(base: str, f: Field) -> str:
    return base + "".join(f'."{step}"' for step in f.steps)


def _value(base: str, f: Field) -> str:
    """The landed value of a field (TRY_: the select runs over bad nodes too, which are then set aside)."""
    ref = _ref(base, f)
    if f.kind == "timestamp":
        return f"TRY_CAST({ref} AS TIMESTAMPTZ)"
    if f.kind == "money":
        return f"trim({ref})"
    if f.kind == "int":
        return f"TRY_CAST(TRY_CAST(trim({ref}) AS DECIMAL(38, 9)) AS BIGINT)"
    return ref


def _quoted(ref: str) -> str:
    """SQL for the value as the row mappers show it in a reason: in single quotes."""
    return f"{_lit(chr(39))} || {ref} || {_lit(chr(39))}"


def _problem(base: str, f: Field, where: str = "''") -> str:
    """SQL text of the reason this field cannot land, or NULL. `where` is a SQL expression prefixing the field
    name (e.g. `'lineItems[' || (i - 1) || '].'` inside a nested list)."""
    ref = _ref(base, f)
    name = f.path.split(".")[0] if f.kind == "money" else f.path
    shown = _quoted(ref)

    def reason(*parts: str) -> str:
        return " || ".join([where, *parts])

    checks: list[tuple[str, str]] = []
    if f.required:
        checks.append((f"{ref} IS NULL OR {ref} = ''", reason(_lit(f"{name} is missing"))))
    if f.kind == "timestamp":
        no_offset = f"regexp_full_match({ref}, '^\\d{{4}}-\\d{{2}}-\\d{{2}}[T ][0-9:.]+$')"
        checks.append((f"NOT regexp_full_match({ref}, {_lit(_TIMESTAMP_RE)}) OR TRY_CAST({ref} AS TIMESTAMPTZ) IS NULL",
                       reason(_lit(f"{name} "), shown, f"CASE WHEN {no_offset} THEN ' has no UTC offset' "
                                                       "ELSE ' is not an ISO-8601 timestamp' END")))
    elif f.kind == "money":
        checks.append((f"NOT regexp_full_match(trim({ref}), {_lit(_DECIMAL_RE)})",
                       reason(_lit(f"{f.path} "), shown, "' is not a decimal amount'")))
    elif f.kind == "int":
        checks.append((f"NOT regexp_full_match(trim({ref}), {_lit(_INTEGER_RE)})",
                       reason(_lit(f"{name} "), shown, "' is not an integer'")))
    if not checks:
        return "NULL"
    # a NULL optional value passes: its conditions are NULL, not true
    return "CASE " + " ".join(f"WHEN {cond} THEN {text}" for cond, text in checks) + " ELSE NULL END"


def _build_sql(mapping: NodeMapping) -> str:
    node_shape = _transform_type(mapping.fields)

    selects: list[str] = []
    problems: list[str] = []
    for item in mapping.fields:
        if isinstance(item, Field):
            selects.append(f'{_value("t", item)} AS "{item.column}"')
            problems.append(_problem("t", item))
            continue
        lines = _ref("t", Field(item.column, f"{item.connection}.nodes"))
        members = ", ".join(f'"{f.column}" := {_value("x", f)}' for f in item.fields)
        selects.append(f'list_transform({lines}, lambda x: struct_pack({members})) AS "{item.column}"')
        where = f"{_lit(item.connection + '[')} || (i - 1) || '].'"
        line_problems = ", ".join(_problem("x", f, where) for f in item.fields)
        problems.append(f"list_filter(list_transform({lines}, lambda x, i: coalesce({line_problems})), "
                        f"lambda e: e IS NOT NULL)[1]")
    key = _ref("t", Field("key", mapping.key_path))
    nodes = "".join(f'."{s}"' for s in mapping.connection_path) + '."nodes"'
    # Parsing the page into JSON nodes and then the nodes into the typed shape measured cheaper than two
    # shapes over the page in one pass (and `node` is needed anyway: its type, `_raw`).
    return f"""
        WITH nodes AS (
            SELECT unnest(from_json(doc, {_lit(json.dumps(_page_shape(mapping, ["JSON"])))}){nodes}) AS node
            FROM docs
        ), typed AS (
            SELECT node, json_transform(node, {_lit(json.dumps(node_shape))}) AS t FROM nodes
        ), checked AS (
            SELECT *, CASE WHEN json_type(node) IS DISTINCT FROM 'OBJECT'
                           THEN 'node is ' || {_JSON_KIND} || ', not an object'
                           ELSE coalesce({", ".join(problems)}) END AS problem
            FROM typed
        )
        SELECT problem IS NULL AS ok, problem, {key} AS record_key, {", ".join(selects)},
               coalesce(node::VARCHAR, 'null') AS _raw
        FROM checked
    """


def _page_shape(mapping: NodeMapping, nodes: list) -> dict:
    shape: dict = {"nodes": nodes}
    for step in reversed(mapping.connection_path):
        shape = {step: shape}
    return shape


# -- running ---------------------------------------------------------------------------------------------
_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per thread (a connection is not shared across threads), UTC session zone."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        _local.con = con
    return con


@dataclass(frozen=True)
class Mapped:
    """Good rows as an Arrow table (the mapping's columns then `_raw`), bad nodes as quarantine records."""

    table: pa.Table
    bad: list[QuarantineRecord]


def map_pages(mapping: NodeMapping, pages: Sequence[str | bytes]) -> Mapped:
    """Map the nodes of every page (the whole GraphQL answer as JSON text) in one vectorised pass."""
    texts = [p.decode("utf-8") if isinstance(p, bytes | bytearray | memoryview) else p for p in pages]
    # via polars: pyarrow's own list conversion imports pandas (seconds on a cold process)
    docs = pa.Table.from_arrays([pl.Series("doc", texts, dtype=pl.String).to_arrow()], names=["doc"])
    result = _connection().from_arrow(docs).query("docs", mapping.sql).to_arrow_table()
    ok = result.column("ok")
    good = result.drop_columns(["ok", "problem", "record_key"])
    if pc.all(ok).as_py():  # filtering copies every column: only when there is something to set aside
        return Mapped(good, [])
    good = good.filter(ok)
    bad_rows = result.select(["record_key", "problem", "_raw"]).filter(pc.invert(ok)).to_pylist()
    bad = [QuarantineRecord(r["record_key"], f"{mapping.label} {r['record_key'] or '(no id)'}: {r['problem']}",
                            r["_raw"]) for r in bad_rows]
    return Mapped(good, bad)
