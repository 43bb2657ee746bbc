"""The fast path of `ingestion.columnar`: page bytes → landed Arrow columns in one native pass (D243).

`ichigen_pagescan` (C, `native/`) reads the pages once, with no intermediate JSON values: it walks each node
against the mapping's declared shape, copies the declared values into Arrow buffers (timestamps already as UTC
microseconds) and the node's own text into `_raw`. It accepts only what it can prove lands exactly as the DuckDB
statement lands it: compact JSON inside the nodes (the text DuckDB's writer would produce again, so `_raw` is the
same bytes; escapes DuckDB writes otherwise are decoded and the node's `_raw` written in DuckDB's form), every
declared value of its plain form (timestamps `YYYY-MM-DDTHH:MM:SS[.ffffff]` with `Z` or `±HH:MM`,
money `-?digits[.digits]`, integers as JSON integers), no repeated declared key, no missing required value.

Anything else — a bad record, a pretty-printed page, an escaped key, a number where text is declared — makes the scan
answer None for the whole call, and `columnar.map_pages` maps the pages through DuckDB as before, which also
words the quarantine reasons. The fast path never sets a record aside; it only lands calls it fully accepts.
tests/ingestion/test_pagescan.py holds the two paths to the same tables over the sandbox's pages and over
mutated ones.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
from ichigen_pagescan import scan

from ingestion.columnar import Field, NodeMapping

# the scanner's kinds (ichigen_pagescan.c)
TEXT, TIMESTAMP, MONEY, INT, TEXT_LIST, OBJECT, OBJECT_LIST = range(7)
_KIND = {"text": TEXT, "gid": TEXT, "timestamp": TIMESTAMP, "money": MONEY, "int": INT, "text_list": TEXT_LIST}
_ARROW = {TIMESTAMP: pa.timestamp("us", tz="UTC"), INT: pa.int64(), TEXT_LIST: pa.list_(pa.string())}
# pages per native call when a call's pages are split across threads (the GIL is released while scanning)
MIN_PAGES_PER_THREAD = 32
THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class _Column:
    name: str
    kind: int
    level: int  # 0: a node's column; 1: a nested list's element's column
    members: tuple[int, ...] = ()  # for a nested list: the indexes of its elements' columns


@dataclass(frozen=True)
class Plan:
    native: tuple  # (connection path, shape, (kind, level) per column) as ichigen_pagescan.scan takes it
    columns: tuple[_Column, ...]
    top: tuple[int, ...]  # the node-level columns, in the mapping's order


@cache
def plan_of(mapping: NodeMapping) -> Plan:
    """The scanner's plan for a mapping: the shape tree of the declared paths and the columns it fills."""
    columns: list[_Column] = []
    top: list[int] = []

    def add_leaf(tree: dict, f: Field, level: int) -> int:
        index = len(columns)
        columns.append(_Column(f.column, _KIND[f.kind], level))
        *parents, last = f.steps
        holder = tree
        for step in parents:
            holder = holder.setdefault(step, {})
            if not isinstance(holder, dict):
                raise ValueError(f"{mapping.label}: {f.path} lies under a leaf")
        if last in holder:
            raise ValueError(f"{mapping.label}: {f.path} declared twice")
        holder[last] = (_KIND[f.kind], index, f.required)
        return index

    tree: dict = {}
    for item in mapping.fields:
        if isinstance(item, Field):
            top.append(add_leaf(tree, item, 0))
            continue
        list_index = len(columns)
        columns.append(_Column(item.column, OBJECT_LIST, 0))
        element: dict = {}
        members = tuple(add_leaf(element, f, 1) for f in item.fields)
        columns[list_index] = _Column(item.column, OBJECT_LIST, 0, members)
        tree.setdefault(item.connection, {})["nodes"] = (OBJECT_LIST, list_index, element)
        top.append(list_index)

    def shape(node: dict) -> tuple:
        entries = []
        for key, value in node.items():
            if isinstance(value, dict):
                entries.append((key.encode(), OBJECT, -1, False, shape(value)))
            elif value[0] == OBJECT_LIST:
                entries.append((key.encode(), OBJECT_LIST, value[1], False, shape(value[2])))
            else:
                entries.append((key.encode(), value[0], value[1], value[2], None))
        return tuple(entries)

    path = tuple(step.encode() for step in mapping.connection_path)
    native = (path, shape(tree), tuple((c.kind, c.level) for c in columns))
    return Plan(native, tuple(columns), tuple(top))


def _buffer(native: tuple[int, int, object] | None) -> pa.Buffer | None:
    """A buffer the scanner filled, without a copy: (address, length, capsule that frees it)."""
    if native is None:
        return None
    address, length, owner = native
    return pa.foreign_buffer(address, length, base=owner)


def _validity(valid: pa.Buffer, count: int) -> tuple[pa.Buffer | None, int]:
    flags = np.frombuffer(valid, dtype=np.uint8, count=count)
    nulls = count - int(np.count_nonzero(flags))
    if nulls == 0:
        return None, 0
    return pa.py_buffer(np.packbits(flags, bitorder="little")), nulls


def _array(plan: Plan, buffers: list, index: int) -> pa.Array:
    column = plan.columns[index]
    count, valid, offsets, data, child_offsets, child_data = buffers[index]
    bitmap, nulls = _validity(valid, count)
    if column.kind in (TEXT, MONEY):
        return pa.StringArray.from_buffers(count, offsets, data, bitmap, nulls)
    if column.kind in (TIMESTAMP, INT):
        return pa.Array.from_buffers(_ARROW[column.kind], count, [bitmap, data], nulls)
    if column.kind == TEXT_LIST:
        strings = pa.StringArray.from_buffers(child_offsets.size // 4 - 1, child_offsets, child_data)
        return pa.Array.from_buffers(_ARROW[TEXT_LIST], count, [bitmap, offsets], nulls, children=[strings])
    members = [_array(plan, buffers, m) for m in column.members]
    names = [plan.columns[m].name for m in column.members]
    elements = pa.StructArray.from_arrays(members, names=names)
    return pa.Array.from_buffers(pa.list_(elements.type), count, [bitmap, offsets], nulls, children=[elements])


def _batch(plan: Plan, native: list) -> pa.RecordBatch:
    buffers = [(count, *(_buffer(b) for b in rest)) for count, *rest in native]
    raw_count, _, raw_offsets, raw_data, _, _ = buffers[-1]
    arrays = [_array(plan, buffers, i) for i in plan.top]
    arrays.append(pa.StringArray.from_buffers(raw_count, raw_offsets, raw_data))
    names = [plan.columns[i].name for i in plan.top] + ["_raw"]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def map_pages(mapping: NodeMapping, pages: Sequence[str | bytes]) -> pa.Table | None:
    """Every node of the pages as landed columns then `_raw`, or None when some page is outside the fast path
    (then the DuckDB path maps them all)."""
    plan = plan_of(mapping)
    blobs = [p.encode() if isinstance(p, str) else p for p in pages]
    parts = max(1, min(THREADS, len(blobs) // MIN_PAGES_PER_THREAD))
    size = max(1, -(-len(blobs) // parts))
    chunks = [blobs[start:start + size] for start in range(0, len(blobs), size)] or [[]]
    results: list = [None] * len(chunks)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = scan(chunks[i], plan.native)
        except BaseException as exc:  # raised on the caller's thread below, not lost in a helper's
            errors.append(exc)

    # the other parts on threads of their own, started per call (no pool: nothing to break across a fork),
    # the first part on the caller's thread
    helpers = [threading.Thread(target=run, args=(i,), name="pagescan") for i in range(1, len(chunks))]
    for helper in helpers:
        helper.start()
    try:
        run(0)
    finally:
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[0]
    if any(r is None for r in results):
        return None
    batches = [_batch(plan, r) for r in results]
    return pa.Table.from_batches(batches)
