"""Columnar mapping: GraphQL answer pages (JSON text) → typed landed columns and quarantine, in DuckDB statements.

The row mappers (`ingestion.shopify.order_row` …) cost a Python call per field per record; at Shopify's page
sizes that, and building a frame from dicts, made landing ~30× slower than the parse itself. Here a mapping is
declared once (`NodeMapping`: landed column ← JSON path, with a kind that says how it is validated) and turned
into one SQL statement that DuckDB runs vectorised over all pages of a batch:

1. every page text is parsed once (`from_json`), and the connection's `nodes` are unnested as JSON values;
2. `json_transform` pulls the declared paths out as text (numbers as their JSON text);
3. each kind is validated in SQL — required keys present, timestamps ISO-8601 with an offset, money a finite
   decimal, integers whole — into one `ok` per node;
4. good nodes come back as an Arrow table with the landed types (UTC microseconds, list<struct>), `_raw` being
   the node re-serialised as compact JSON (DuckDB's writer: the same text as `raw_json` except that a control
   character is escaped with upper-case hex);
5. only when some node is not ok, a second statement over those nodes' `_raw` words the first failure of each
   as the row mappers word it (`createdAt 'x' is not an ISO-8601 timestamp`, `lineItems[2].quantity …`), and
   they become (key, reason, raw) for the quarantine.

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

    @cached_property
    def reasons_sql(self) -> str:
        return _reasons_sql(self)


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
        # for every text the check accepts (an integral decimal) DuckDB's BIGINT cast gives the value a cast
        # through DECIMAL gives, for less (D120)
        return f"TRY_CAST({ref} AS BIGINT)"
    return ref


def _quoted(ref: str) -> str:
    """SQL for the value as the row mappers show it in a reason: in single quotes."""
    return f"{_lit(chr(39))} || {ref} || {_lit(chr(39))}"


def _checks(base: str, f: Field, where: str = "''", value: str | None = None) -> list[tuple[str, str]]:
    """(condition, reason) pairs, in order, for why this field cannot land: the first true condition's reason
    is the field's problem. `where` is a SQL expression prefixing the field name (e.g. `'lineItems[' || (i - 1)
    || '].'` inside a nested list); `value`, when given, is a column that already holds the field's landed value
    (`_value`), so the cast is not run twice. A NULL optional value passes: its conditions are NULL, not true."""
    ref = _ref(base, f)
    value = value or _value(base, f)
    name = f.path.split(".")[0] if f.kind == "money" else f.path
    shown = _quoted(ref)

    def reason(*parts: str) -> str:
        return " || ".join([where, *parts])

    checks: list[tuple[str, str]] = []
    if f.required:
        checks.append((f"{ref} IS NULL OR {ref} = ''", reason(_lit(f"{name} is missing"))))
    if f.kind == "timestamp":
        no_offset = f"regexp_full_match({ref}, '^\\d{{4}}-\\d{{2}}-\\d{{2}}[T ][0-9:.]+$')"
        # (the cast of a good text is never NULL; a NULL text is a missing optional value, not a failed cast)
        checks.append((f"{ref} IS NOT NULL AND (NOT regexp_full_match({ref}, {_lit(_TIMESTAMP_RE)}) OR {value} IS NULL)",
                       reason(_lit(f"{name} "), shown, f"CASE WHEN {no_offset} THEN ' has no UTC offset' "
                                                       "ELSE ' is not an ISO-8601 timestamp' END")))
    elif f.kind == "money":
        checks.append((f"NOT regexp_full_match({value}, {_lit(_DECIMAL_RE)})",
                       reason(_lit(f"{f.path} "), shown, "' is not a decimal amount'")))
    elif f.kind == "int":  # (an integer beyond BIGINT casts to NULL: quarantined, not landed as NULL)
        checks.append((f"{ref} IS NOT NULL AND (NOT regexp_full_match(trim({ref}), {_lit(_INTEGER_RE)}) "
                       f"OR {value} IS NULL)",
                       reason(_lit(f"{name} "), shown, "' is not an integer'")))
    return checks


def _first_reason(checks: Sequence[tuple[str, str]]) -> str:
    """SQL: the reason of the first true condition, else NULL."""
    if not checks:
        return "NULL"
    return "CASE " + " ".join(f"WHEN {cond} THEN {text}" for cond, text in checks) + " ELSE NULL END"


def _any_true(checks: Sequence[tuple[str, str]]) -> str:
    """SQL: true when some condition is true (NULL or false otherwise, which a CASE treats alike)."""
    return " OR ".join(f"({cond})" for cond, _ in checks) or "false"


@dataclass(frozen=True)
class _Parts:
    """The pieces both statements share: the typed columns (`vals`), and the node-level checks."""

    shape: str  # json_transform structure, as a SQL literal
    values: tuple[str, ...]  # landed column expressions over `t`
    checks: tuple[tuple[str, str], ...]  # (condition, reason) over `vals`, in field order


def _parts(mapping: NodeMapping) -> _Parts:
    values: list[str] = []
    checks: list[tuple[str, str]] = []
    for item in mapping.fields:
        if isinstance(item, Field):
            values.append(f'{_value("t", item)} AS "{item.column}"')
            checks.extend(_checks("t", item, value=f'"{item.column}"'))
            continue
        lines = _ref("t", Field(item.column, f"{item.connection}.nodes"))
        members = ", ".join(f'"{f.column}" := {_value("x", f)}' for f in item.fields)
        values.append(f'list_transform({lines}, lambda x: struct_pack({members})) AS "{item.column}"')
        where = f"{_lit(item.connection + '[')} || (i - 1) || '].'"
        bad_line = _any_true([c for f in item.fields for c in _checks("x", f, where)])
        reasons = ", ".join(_first_reason(_checks("x", f, where)) for f in item.fields)
        checks.append((f"list_bool_or(list_transform({lines}, lambda x: {bad_line}))",
                       f"list_filter(list_transform({lines}, lambda x, i: coalesce({reasons})), "
                       f"lambda e: e IS NOT NULL)[1]"))
    return _Parts(_lit(json.dumps(_transform_type(mapping.fields))), tuple(values), tuple(checks))


def _typed_ctes(parts: _Parts) -> str:
    """`typed` and `vals` over a CTE `nodes` (column `node`, JSON text; other columns carried along)."""
    return f"""typed AS (
            SELECT *, json_transform(node, {parts.shape}) AS t FROM nodes
        ), vals AS (
            SELECT *, {", ".join(parts.values)} FROM typed
        )"""


def _build_sql(mapping: NodeMapping) -> str:
    """The statement over the page texts (`docs`): every node with `ok`, its key, landed columns and `_raw`.

    Parsing the page into JSON nodes and then the nodes into the typed shape measured cheaper than two shapes
    over the page in one pass (and `node` is needed anyway: `_raw`). A node is an object when its JSON text
    starts with `{` (DuckDB writes it compactly; json_type would parse every node once more). Only whether a
    node is good is decided here; the wording of what is wrong is `_reasons_sql`'s, run over the bad nodes
    alone (the reasons doubled this statement, and its bind time is paid on every call)."""
    parts = _parts(mapping)
    key = _ref("t", Field("key", mapping.key_path))
    nodes = "".join(f'."{s}"' for s in mapping.connection_path) + '."nodes"'
    columns = ", ".join(f'"{item.column}"' for item in mapping.fields)
    return f"""
        WITH nodes AS (
            SELECT unnest(from_json(doc, {_lit(json.dumps(_page_shape(mapping, ["JSON"])))}){nodes}) AS node
            FROM docs
        ), {_typed_ctes(parts)}
        SELECT coalesce(starts_with(node, '{{') AND NOT coalesce({_any_true(parts.checks)}, false), false) AS ok,
               {key} AS record_key, {columns}, coalesce(node::VARCHAR, 'null') AS _raw
        FROM vals
    """


def _reasons_sql(mapping: NodeMapping) -> str:
    """The statement over bad nodes (`bad`: `pos`, `node` as `_raw` text): the first reason each cannot land,
    worded as the row mappers word it, in `pos` order."""
    parts = _parts(mapping)
    return f"""
        WITH nodes AS (SELECT pos, node::JSON AS node FROM bad), {_typed_ctes(parts)}
        SELECT CASE WHEN NOT starts_with(node, '{{')
                    THEN 'node is ' || {_JSON_KIND} || ', not an object'
                    ELSE {_first_reason(parts.checks)} END AS problem
        FROM vals ORDER BY pos
    """


def _page_shape(mapping: NodeMapping, nodes: list) -> dict:
    shape: dict = {"nodes": nodes}
    for step in reversed(mapping.connection_path):
        shape = {step: shape}
    return shape


# -- running ---------------------------------------------------------------------------------------------
_local = threading.local()
BATCH_BYTES = 512 * 1024  # page text per record batch DuckDB parses at a time (see _docs)


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


def _docs(pages: Sequence[str | bytes], label: str) -> pa.Table:
    """The page texts as an Arrow table of UTF-8 strings, in record batches of about `BATCH_BYTES`.

    Bytes (the response bodies as received) are never decoded into Python strings: polars takes them as binary
    and checks the UTF-8 in one pass. DuckDB parses the JSON of one record batch at a time, in parallel across
    batches: a batch whose parsed documents still fit in the CPU cache measured ~1.5× cheaper per node than the
    whole set in one batch (DECISIONS.md D120)."""
    if all(isinstance(p, str) for p in pages):
        docs = pl.Series("doc", pages, dtype=pl.String)
    else:
        blobs = [p.encode() if isinstance(p, str) else bytes(p) for p in pages]
        try:
            docs = pl.Series("doc", blobs, dtype=pl.Binary).cast(pl.String)
        except pl.exceptions.InvalidOperationError:
            bad = next(i for i, b in enumerate(blobs) if not _is_utf8(b))
            raise ValueError(f"{label}: page {bad + 1} of {len(blobs)} is not UTF-8 text") from None
    # via polars: pyarrow's own list conversion imports pandas (seconds on a cold process); string_view is
    # polars' own layout, so no copy (DuckDB reads it as VARCHAR)
    text = docs.to_arrow(compat_level=pl.CompatLevel.newest())
    sizes = docs.str.len_bytes().to_list()
    batches: list[pa.RecordBatch] = []
    start = taken = 0
    for i, size in enumerate(sizes):
        taken += size
        if taken >= BATCH_BYTES or i == len(sizes) - 1:
            batches.append(pa.RecordBatch.from_arrays([text.slice(start, i + 1 - start)], names=["doc"]))
            start, taken = i + 1, 0
    return pa.Table.from_batches(batches, schema=pa.schema([pa.field("doc", text.type)]))


def _is_utf8(blob: bytes) -> bool:
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _run(sql: str, **tables: pa.Table) -> pa.Table:
    """Run `sql` over Arrow tables registered under their names for the call."""
    con = _connection()
    for name, table in tables.items():
        con.register(name, table)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        for name in tables:
            con.unregister(name)


def map_pages(mapping: NodeMapping, pages: Sequence[str | bytes], *, native: bool = True) -> Mapped:
    """Map the nodes of every page (the whole GraphQL answer as JSON text, str or the response bytes) in one
    vectorised pass: natively when every page is within the fast path (`ingestion.pagescan`, D243), else in
    DuckDB, which also words why a node cannot land. `native=False`: DuckDB only (the reference the fast
    path is tested against)."""
    if native:
        from ingestion.pagescan import map_pages as scan_pages  # (it imports this module's declarations)

        scanned = scan_pages(mapping, pages)
        if scanned is not None:
            return Mapped(scanned, [])
    # register + sql: the relation API's from_arrow(...).query(...) binds the statement twice
    result = _run(mapping.sql, docs=_docs(pages, mapping.label))
    ok = result.column("ok")
    good = result.drop_columns(["ok", "record_key"])
    if pc.all(ok).as_py():  # filtering copies every column: only when there is something to set aside
        return Mapped(good, [])
    bad = result.select(["record_key", "_raw"]).filter(pc.invert(ok))
    # (pa.array over a Python sequence would import pandas: seconds on a cold process)
    bad_nodes = pa.table({"pos": pl.int_range(bad.num_rows, eager=True).to_arrow(), "node": bad.column("_raw")})
    problems = _run(mapping.reasons_sql, bad=bad_nodes).column("problem").to_pylist()
    records = []
    for key, raw, problem in zip(bad.column("record_key").to_pylist(), bad.column("_raw").to_pylist(), problems,
                                 strict=True):
        if problem is None:  # both statements share their checks: a bug, not bad input
            raise RuntimeError(f"{mapping.label} {key or '(no id)'}: rejected without a reason")
        records.append(QuarantineRecord(key, f"{mapping.label} {key or '(no id)'}: {problem}", raw))
    return Mapped(good.filter(ok), records)
