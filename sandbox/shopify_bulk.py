"""Shopify bulk operations (Admin GraphQL 2026-10): queries and mutations → poll → JSONL.

- `bulkOperationRunQuery(query:, groupObjects:)` validates the inner query against the published schema and
  Shopify's bulk restrictions (a query operation; at least one and at most five connections; connections nested
  at most two levels; no top-level `node`/`nodes`; a parent of a nested connection selects `id`). A refused query
  answers `userErrors [{code: INVALID, field: ["query"]}]` and no operation.
- `bulkOperationRunMutation(mutation:, stagedUploadPath:, clientIdentifier:)` runs one mutation per line of a
  JSONL variables file uploaded through `stagedUploadsCreate` (sandbox.shopify_staged); checks and execution are
  in sandbox.shopify_bulk_mutation. Refusals: `INVALID_MUTATION`, `NO_SUCH_FILE`, `INVALID_STAGED_UPLOAD_FILE`.
  The lines run in the operation's worker, in file order, each under the world's lock (other requests go between
  lines); the result file has one line per input line: that execution's response plus `__lineNumber`.
- Concurrency, as 2026-10 enforces it: at most `concurrency` (default 5; 1 before 2026-01) bulk query operations
  and, separately, as many bulk mutation operations CREATED or RUNNING per shop; one more → `userErrors [{code:
  LIMIT_REACHED}]` (`OPERATION_IN_PROGRESS` when the limit is 1, the older wording).
- Asynchronous, as in Shopify: the run mutation only checks and registers the operation and answers CREATED at
  once; a worker thread per operation does the work afterwards. A query's worker takes a snapshot of the shop
  under the world's lock (copies of its records, sandbox.shopify_snapshot, just after the run's own request has
  let go of the lock) and then, without the lock, executes the query over it (connections unbounded,
  `first`/`after` ignored, as in a bulk query) and builds the JSONL: the file is one moment's shop, and every
  other request is answered while the export runs, as Shopify serves other calls during a bulk operation. An
  operation is RUNNING until its work is done and then `processing_seconds` more (Shopify's queueing and upload,
  and a window in which a poll sees it RUNNING however fast the work was; objectCount never decreases: lines
  done so far, then a share of the total growing over the processing time), then COMPLETED
  with `url` (null when a query matched nothing) — whether it is polled or not. `execution_gate(gid)`, when set,
  is called by the worker before it touches the world, and `export_gate(gid)` by a query's worker after its
  snapshot, outside the lock (tests hold an operation at either to see it RUNNING, cancel it, call the shop
  meanwhile, …); both are None by default.
- `bulkOperationCancel` of a RUNNING operation ends it CANCELED at once: its worker stops (before the next
  mutation line; a query's execution is cut short) and whatever it produced is dropped — no url. Mutation lines
  that already ran stay applied. `close()` stops every worker and waits for them, bounded.
- When an operation ends (completed, failed, canceled) `on_finish(node)` is called once, after the real end — the shop turns it into a
  `bulk_operations/finish` webhook (sandbox.webhooks) for the subscriptions of BULK_OPERATIONS_FINISH.
- `bulkOperation(id:)`, `bulkOperations(first:, query:, sortKey:, reverse:)` (newest first; `status:` and
  `operation_type:` filters) and the deprecated `currentBulkOperation(type:)` read them.
- Output: one JSON object a line; a node of a nested connection is its own line after its parent with
  `"__parentId"`: the parent's id (Shopify's default `groupObjects: false` layout). The file is served at
  `<shop>/bulk-operation-outputs/<token>.jsonl` — an unguessable URL needing no access token, standing in for
  Shopify's signed storage URL; it is not an Admin API exchange, so the traffic log does not record it.
- `fail_next(code)` makes the next operation end FAILED with that errorCode and a `partialDataUrl`: a query's
  first half of lines; a mutation runs only the first half of its lines, whose results are the partial data.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    execute,
    get_named_type,
    parse,
    validate,
    visit,
)

from sandbox.shopify_bulk_mutation import check_mutation, read_variables, run_lines
from sandbox.shopify_search import UNBOUNDED, Field, build_filter, paginate, parse_search
from sandbox.shopify_staged import StagedUploads
from sandbox.world import World, iso_z

DEFAULT_CONCURRENCY = 5  # bulk operations of each type at once per shop, API versions 2026-01 and later
MAX_CONNECTIONS = 5
MAX_NESTING = 2
GID_PREFIX = "gid://shopify/BulkOperation/"
OUTPUT_PATH = "/bulk-operation-outputs"
STOP_WAIT_SECONDS = 5.0  # how long close() waits for the workers, in all

log = logging.getLogger("sandbox.shopify_bulk")


class _Stopped(Exception):
    """Raised inside a query's execution once its operation is canceled or the shop shuts down."""


@dataclass
class BulkOperation:
    number: int
    query: str
    created_at: datetime
    started: float
    type: str = "QUERY"  # QUERY | MUTATION
    lines: list[str] = field(default_factory=list)  # the result file, set when the work is done
    root_count: int = 0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    fail_with: str | None = None
    canceled: bool = False
    partial_count: int = 0  # lines in the partial file of a FAILED operation
    partial_roots: int = 0
    client_identifier: str | None = None
    notified: bool = False  # on_finish has been called
    seconds: float = 0.3  # how long it stays RUNNING after the work is done (the shop's processing time then)
    done: int = 0  # objects produced so far by the worker (mutation lines run)
    ended: float | None = None  # the clock when the worker finished (then lines, root_count, partial_* are final)
    stop: threading.Event = field(default_factory=threading.Event)  # set on cancel and on shutdown
    worker: threading.Thread | None = None

    @property
    def gid(self) -> str:
        return f"{GID_PREFIX}{self.number}"


class BulkOperations:
    """The shop's bulk operations. Thread-safe. The GraphQL roots run under the world's lock (the request's);
    each operation's worker takes that lock itself: a query's for its snapshot only, a mutation's for each line."""

    def __init__(self, world: World, schema: GraphQLSchema, root: Callable[[], dict[str, Any]],
                 field_resolver: Callable[..., Any], type_resolver: Callable[..., Any], *,
                 snapshot_root: Callable[[], dict[str, Any]],
                 concurrency: int = DEFAULT_CONCURRENCY, processing_seconds: float = 0.3,
                 clock: Callable[[], float] = time.monotonic, staged: StagedUploads | None = None,
                 error: Callable[..., dict[str, Any]] | None = None,
                 on_finish: Callable[[dict[str, Any]], None] | None = None):
        self.world = world
        self.schema = schema
        self._root = root  # over the live world: mutation lines run on it, each under the world's lock
        # Called under the world's lock: a root value over a copy of the shop at that moment, which a query's
        # execution then reads without the lock (sandbox.shopify_snapshot).
        self._snapshot_root = snapshot_root
        self._field_resolver = field_resolver
        self._type_resolver = type_resolver
        self.concurrency = concurrency
        self.processing_seconds = processing_seconds
        self._clock = clock
        self.staged = staged or StagedUploads()
        self._error = error or (lambda exc, code=None: {"message": exc.message,
                                                        "extensions": {"code": code or "INTERNAL_SERVER_ERROR"}})
        self.on_finish = on_finish  # called once with the final node when an operation ends
        self._ops: dict[int, BulkOperation] = {}
        self._lock = threading.Lock()
        self._next = 1_000_000
        self._fail_next: str | None = None
        self._timers: list[threading.Timer] = []
        self._closed = False
        self.execution_gate: Callable[[str], None] | None = None  # see the module doc
        self.export_gate: Callable[[str], None] | None = None  # see the module doc
        self.base_url = "http://127.0.0.1"  # the served address; the app sets it from each request

    # ------------------------------------------------------------------------------------------ state
    def status(self, op: BulkOperation) -> str:
        if op.canceled:
            return "CANCELED"
        if op.ended is None or self._clock() - op.ended < op.seconds:
            return "RUNNING"
        return "FAILED" if op.fail_with else "COMPLETED"

    def running(self, kind: str = "QUERY") -> list[BulkOperation]:
        with self._lock:
            return [op for op in self._ops.values() if op.type == kind and self.status(op) == "RUNNING"]

    @property
    def started(self) -> int:
        """Operations created so far (for tests)."""
        with self._lock:
            return len(self._ops)

    def fail_next(self, error_code: str = "INTERNAL_SERVER_ERROR") -> None:
        self._fail_next = error_code

    def output(self, token: str, partial: bool = False) -> bytes | None:
        """The JSONL behind a result URL (None: no such file, or not finished yet)."""
        with self._lock:
            op = next((o for o in self._ops.values() if o.token == token), None)
        if op is None or self.status(op) not in ("COMPLETED", "FAILED"):
            return None
        lines = op.lines[: op.partial_count] if op.fail_with else op.lines
        return "".join(line + "\n" for line in lines).encode("utf-8")

    def node(self, op: BulkOperation, status: str | None = None) -> dict[str, Any]:
        status = status or self.status(op)
        done = status in ("COMPLETED", "FAILED")
        total = len(op.lines)
        if status == "CREATED":
            objects = roots = 0
        elif status == "RUNNING":  # what the worker has done so far, then a share of the total growing with time
            objects = roots = op.done
            if op.ended is not None:
                share = min(1.0, (self._clock() - op.ended) / op.seconds) if op.seconds else 1.0
                objects, roots = max(objects, int(total * share)), max(roots, int(op.root_count * share))
        elif status == "COMPLETED":
            objects, roots = total, op.root_count
        elif status == "FAILED":
            objects, roots = op.partial_count, op.partial_roots
        else:  # CANCELED: what was done before the cancel; its output is dropped
            objects = roots = op.done
        body = self.output(op.token) if done else None
        url = f"{self.base_url}{OUTPUT_PATH}/{op.token}.jsonl"
        return {
            "__typename": "BulkOperation",
            "id": op.gid,
            "type": op.type,
            "status": status,
            "errorCode": op.fail_with if status == "FAILED" else None,
            "createdAt": iso_z(op.created_at),
            "completedAt": iso_z(self.world.clock()) if status == "COMPLETED" else None,
            "objectCount": str(objects),
            "rootObjectCount": str(roots),
            "fileSize": str(len(body)) if status == "COMPLETED" and total else None,
            "url": url if status == "COMPLETED" and total else None,
            "partialDataUrl": url if status == "FAILED" and op.partial_count else None,
            "query": op.query,
        }

    # ------------------------------------------------------------------------------------------ finishing
    def _register(self, op: BulkOperation, work: Callable[[], None]) -> None:
        """Keep the operation and start its worker (it waits for the world's lock the request holds)."""
        with self._lock:
            self._ops[op.number] = op
            if self._closed:
                op.stop.set()
            op.worker = threading.Thread(target=self._work, args=(op, work), name=f"shopify-bulk-{op.number}",
                                         daemon=True)
        op.worker.start()

    def _work(self, op: BulkOperation, work: Callable[[], None]) -> None:
        try:
            if self.execution_gate is not None:
                self.execution_gate(op.gid)
            if not op.stop.is_set():
                work()
        except Exception:  # a sandbox fault: the operation fails as Shopify's would, and the log says why
            log.exception("bulk operation %s failed", op.gid)
            self._executed(op, [], 0, "INTERNAL_SERVER_ERROR", (0, 0))
        finally:
            if op.ended is None:  # stopped before its work was done: canceled, or the shop is going away
                self._executed(op, [], 0, "INTERNAL_SERVER_ERROR", (0, 0))

    def _executed(self, op: BulkOperation, lines: list[str], roots: int, fail_with: str | None,
                  partial: tuple[int, int]) -> None:
        """The worker's work is done: keep its result (dropped if the operation was canceled meanwhile) and,
        when someone listens, call `on_finish` once the processing time has passed too."""
        with self._lock:
            if op.ended is not None:
                return
            if not op.canceled:
                op.lines, op.root_count, op.fail_with = lines, roots, fail_with
                op.partial_count, op.partial_roots = partial
            op.ended = self._clock()
        if self.on_finish is not None and not op.canceled:
            self._schedule(op, op.ended + op.seconds - self._clock())

    def _schedule(self, op: BulkOperation, delay: float) -> None:
        with self._lock:
            if self._closed:
                return
            timer = threading.Timer(max(0.0, delay), self._finished, args=(op,))
            timer.daemon = True
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _finished(self, op: BulkOperation) -> None:
        if self.status(op) == "RUNNING":  # the timer woke a little early for our clock
            self._schedule(op, 0.02)
            return
        with self._lock:
            if op.notified or self._closed or self.on_finish is None:
                return
            op.notified = True
        self.on_finish(self.node(op))

    def close(self, timeout: float = STOP_WAIT_SECONDS) -> bool:
        """Stop the workers (waiting `timeout` seconds at most, in all) and the timers that would report finished
        operations (the server is going away). True when every worker has ended."""
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, []
            ops = list(self._ops.values())
        for timer in timers:
            timer.cancel()
        for op in ops:
            op.stop.set()
        return self.join(timeout)

    def join(self, timeout: float) -> bool:
        """Wait `timeout` seconds at most, in all, for every worker to end; True when none is left."""
        with self._lock:
            workers = [op.worker for op in self._ops.values() if op.worker is not None]
        deadline = time.monotonic() + timeout
        for worker in workers:
            if worker is not threading.current_thread():
                worker.join(max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in workers if w is not threading.current_thread())

    # ------------------------------------------------------------------------------------------ roots
    def query_roots(self, warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"bulkOperation": self._by_id, "currentBulkOperation": self._current,
                "bulkOperations": lambda info, **args: self._list(info, warnings, **args)}

    def mutation_roots(self) -> dict[str, Any]:
        return {"bulkOperationRunQuery": self.run_query, "bulkOperationRunMutation": self.run_mutation,
                "bulkOperationCancel": self.cancel, **self.staged.graphql_roots()}

    def _find(self, value: str) -> BulkOperation | None:
        if not value.startswith(GID_PREFIX) or not value[len(GID_PREFIX):].isdigit():
            return None
        with self._lock:
            return self._ops.get(int(value[len(GID_PREFIX):]))

    def _by_id(self, info, id: str):
        op = self._find(id)
        return self.node(op) if op is not None else None

    def _current(self, info, type: str = "QUERY"):
        with self._lock:
            latest = max((o for o in self._ops.values() if o.type == type), key=lambda o: o.number, default=None)
        return self.node(latest) if latest is not None else None

    def _list(self, info, warnings: list[dict[str, Any]] | None, query: str | None = None,
              sortKey: str = "CREATED_AT", reverse: bool = False, **args):
        """bulkOperations: newest first by default (`reverse: true` for oldest first)."""
        with self._lock:
            ops = list(self._ops.values())
        search = parse_search(query)
        fields = {
            "status": Field("text", lambda o: self.status(o).lower()),
            "operation_type": Field("text", lambda o: o.type.lower()),
            "id": Field("id", lambda o: o.number),
            "created_at": Field("time", lambda o: o.created_at),
        }
        predicate = build_filter(search, fields, lambda o: o.query, self.world.clock(), info.field_name)
        if warnings is not None:
            warnings.extend({"path": [info.field_name], **w} for w in search.warnings)
        if sortKey == "COMPLETED_AT":  # the order of ending: the processing time after its work has run out
            def sort(o: BulkOperation) -> float:
                return o.ended + o.seconds if o.ended is not None else float("inf")
        else:
            def sort(o: BulkOperation) -> float:
                return o.started
        return paginate(ops, sort, lambda o: o.number, {**args, "reverse": not reverse}, self.node,
                        info.field_name, predicate)

    def cancel(self, info, id: str):
        op = self._find(id)
        if op is None:
            return {"bulkOperation": None, "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}]}
        if self.status(op) != "RUNNING":
            return {"bulkOperation": self.node(op), "userErrors": [
                {"field": None, "message": f"A bulk operation cannot be canceled when it is {self.status(op).lower()}"}]}
        with self._lock:
            op.canceled = True
            op.lines = []  # anything already produced is dropped
        op.stop.set()  # the worker stops before its next step (it cannot be mid-step: we hold the world's lock)
        if self.on_finish is not None:
            self._schedule(op, 0.0)  # canceled is an end too: the finish webhook goes out now
        return {"bulkOperation": self.node(op), "userErrors": []}

    def _busy(self, kind: str) -> tuple[str, str] | None:
        """(code, message) when another operation of this type may not start now."""
        running = self.running(kind)
        if len(running) < self.concurrency:
            return None
        what = "bulk query" if kind == "QUERY" else "bulk mutation"
        if self.concurrency == 1:
            return "OPERATION_IN_PROGRESS", (f"A {what} operation for this app and shop is already in progress: "
                                             f"{running[0].gid}.")
        return "LIMIT_REACHED", (f"Bulk operations limit reached: {self.concurrency} {what} operations are "
                                 "already running for this app and shop. Please try again later.")

    def _new(self, kind: str, text: str, client_identifier: str | None = None) -> BulkOperation:
        with self._lock:
            self._next += 1
            op = BulkOperation(self._next, text, self.world.clock(), self._clock(), type=kind,
                               fail_with=self._take_fail_next(), client_identifier=client_identifier,
                               seconds=self.processing_seconds)
        return op

    def _take_fail_next(self) -> str | None:
        code, self._fail_next = self._fail_next, None  # (under self._lock)
        return code

    def run_query(self, info, query: str, groupObjects: bool = False):
        def refuse(code: str, message: str, where: list[str] | None = None) -> dict[str, Any]:
            return {"bulkOperation": None, "userErrors": [{"code": code, "field": where, "message": message}]}

        problem = self.check(query)
        if problem is not None:
            return refuse("INVALID", problem, ["query"])
        busy = self._busy("QUERY")
        if busy is not None:
            return refuse(*busy)
        op = self._new("QUERY", query)
        self._register(op, lambda: self._run_query(op))
        return {"bulkOperation": self.node(op, "CREATED"), "userErrors": []}

    def _run_query(self, op: BulkOperation) -> None:
        """The worker's part of a query: a snapshot of the shop under the world's lock (copies of its records,
        milliseconds), then the execution over it and the JSONL outside the lock, so that every other request is
        answered while the export runs (D213)."""
        with self.world.lock:
            if op.stop.is_set():
                return
            root = self._snapshot_root()
        if self.export_gate is not None:
            self.export_gate(op.gid)
        result = self._read(op, root)
        if op.stop.is_set():
            return
        lines, roots, error = _jsonl(result)
        fail_with = error or op.fail_with
        self._executed(op, lines, roots, fail_with, (len(lines) // 2, roots // 2))

    def run_mutation(self, info, mutation: str, stagedUploadPath: str, clientIdentifier: str | None = None,
                     groupObjects: bool | None = None):
        def refuse(code: str | None, message: str, where: list[str] | None = None) -> dict[str, Any]:
            return {"bulkOperation": None, "userErrors": [{"code": code, "field": where, "message": message}]}

        document, problem = check_mutation(self.schema, mutation)
        if document is None:
            return refuse("INVALID_MUTATION", problem or "Invalid mutation.", ["mutation"])
        body = self.staged.read(stagedUploadPath)
        if body is None:
            return refuse("NO_SUCH_FILE", f"The JSONL file could not be found at {stagedUploadPath!r}: upload it "
                                          "with stagedUploadsCreate first.", ["stagedUploadPath"])
        variables, problem = read_variables(body)
        if variables is None:
            return refuse("INVALID_STAGED_UPLOAD_FILE", problem or "Invalid JSONL file.", ["stagedUploadPath"])
        busy = self._busy("MUTATION")
        if busy is not None:
            return refuse(*busy)
        op = self._new("MUTATION", mutation, clientIdentifier)
        self._register(op, lambda: self._run_mutation(op, document, variables))
        return {"bulkOperation": self.node(op, "CREATED"), "userErrors": []}

    def _run_mutation(self, op: BulkOperation, document, variables: list[dict[str, Any]]) -> None:
        """The worker's part of a mutation: one line at a time, each under the world's lock."""
        # A failing operation stops half-way: only the first half of the lines runs, and their results are
        # the partial data (Shopify gives no url then, only partialDataUrl).
        todo = variables[: len(variables) // 2] if op.fail_with else variables
        steps = run_lines(self.schema, document, todo, self._root, self._field_resolver, self._type_resolver,
                          self._error)
        lines: list[str] = []
        while True:
            with self.world.lock:  # a cancel holds this lock too: once it has answered, no further line runs
                if op.stop.is_set():
                    return
                line = next(steps, None)
            if line is None:
                break
            lines.append(line)
            op.done = len(lines)
        self._executed(op, lines, len(lines), op.fail_with, (len(lines), len(lines)))

    # ------------------------------------------------------------------------------------------ the query
    def check(self, query: str) -> str | None:
        """Why Shopify would refuse this bulk query, or None."""
        try:
            document = parse(query)
        except GraphQLError as exc:
            return f"Invalid bulk query: {exc.message}"
        errors = validate(self.schema, document)
        if errors:
            return f"Invalid bulk query: {errors[0].message}"
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation.value != "query":
            return "Invalid bulk query: a bulk query must hold exactly one query operation."
        for selection in operations[0].selection_set.selections:
            if isinstance(selection, FieldNode) and selection.name.value in ("node", "nodes"):
                return "Bulk queries cannot contain a top level `node` or `nodes` field."
        connections: list[int] = []
        problems: list[str] = []
        type_info = TypeInfo(self.schema)
        depth = [0]

        class Walk(Visitor):
            def enter_field(self, node: FieldNode, *_):
                named = get_named_type(type_info.get_type())
                if named is not None and named.name.endswith("Connection"):
                    depth[0] += 1
                    connections.append(depth[0])
                    node_selected = _selected_fields(node)
                    if depth[0] > 1 and "__parent_has_id" not in parents[-1]:
                        problems.append(f"The parent 'node' field for a nested connection must select the 'id' "
                                        f"field. Connection field: '{node.name.value}'")
                    parents.append(node_selected)

            def leave_field(self, node: FieldNode, *_):
                named = get_named_type(type_info.get_type())
                if named is not None and named.name.endswith("Connection"):
                    depth[0] -= 1
                    parents.pop()

        parents: list[set[str]] = [{"__parent_has_id"}]
        visit(operations[0], TypeInfoVisitor(type_info, Walk()))
        if problems:
            return problems[0]
        if not connections:
            return "Bulk queries must contain at least one connection."
        if len(connections) > MAX_CONNECTIONS:
            return f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
        if max(connections) > MAX_NESTING:
            return f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_NESTING}."
        return None

    def _read(self, op: BulkOperation, root: dict[str, Any]) -> ExecutionResult:
        """Run the operation's query unbounded over `root`, a snapshot's (no lock needed).
        Every field first checks the stop flag, so a canceled or shut-down operation's execution ends early."""
        resolve = self._field_resolver

        def field_resolver(source: Any, info, **args: Any) -> Any:
            if op.stop.is_set():
                raise _Stopped(op.gid)
            return resolve(source, info, **args)

        token = UNBOUNDED.set(True)
        try:
            return execute(self.schema, parse(op.query), root_value=root, field_resolver=field_resolver,
                           type_resolver=self._type_resolver)
        finally:
            UNBOUNDED.reset(token)


def _jsonl(result: ExecutionResult) -> tuple[list[str], int, str | None]:
    """A bulk query's result flattened to JSONL lines: (lines, root objects, errorCode or None)."""
    if result.errors or result.data is None:
        return [], 0, "INTERNAL_SERVER_ERROR"
    lines: list[dict[str, Any]] = []
    roots = 0
    for value in result.data.values():
        if _is_connection(value):
            roots += len(_connection_nodes(value))
            _flatten(value, None, lines)
    return [json.dumps(line, ensure_ascii=False, separators=(",", ":")) for line in lines], roots, None


def _selected_fields(node: FieldNode) -> set[str]:
    """Names selected on a connection's nodes (`nodes { … }` or `edges { node { … } }`), plus a marker for `id`."""
    names: set[str] = set()
    for selection in node.selection_set.selections if node.selection_set else ():
        if not isinstance(selection, FieldNode):
            continue
        inner = selection
        if selection.name.value == "edges":
            inner = next((s for s in selection.selection_set.selections
                          if isinstance(s, FieldNode) and s.name.value == "node"), None)
        elif selection.name.value != "nodes":
            continue
        for field_node in inner.selection_set.selections if inner is not None and inner.selection_set else ():
            if isinstance(field_node, FieldNode):
                names.add(field_node.name.value)
    if "id" in names:
        names.add("__parent_has_id")
    return names


def _is_connection(value: Any) -> bool:
    return isinstance(value, dict) and ("nodes" in value or "edges" in value)


def _connection_nodes(value: dict[str, Any]) -> list[dict[str, Any]]:
    if value.get("nodes") is not None:
        return list(value["nodes"])
    return [edge["node"] for edge in value.get("edges") or [] if edge and edge.get("node") is not None]


def _flatten(connection: dict[str, Any], parent_id: str | None, out: list[dict[str, Any]]) -> None:
    for node in _connection_nodes(connection):
        if node is None:
            continue
        line = {key: value for key, value in node.items() if not _is_connection(value)}
        if parent_id is not None:
            line["__parentId"] = parent_id
        out.append(line)
        for value in node.values():
            if _is_connection(value):
                _flatten(value, node.get("id"), out)
