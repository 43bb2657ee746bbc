"""Shopify bulk operations: backfills (`bulkOperationRunQuery` → poll `bulkOperation(id:)` → JSONL) and the
mechanics of bulk mutations that reverse sync uses (stage a JSONL of variables → `bulkOperationRunMutation` →
poll → a result JSONL).

Backfills run when the window to fetch is longer than `channels.shopify.bulk_threshold_days` (DECISIONS.md
D110–D113). The bulk query selects exactly the fields of the paged query (`ORDER_FIELDS`, `VARIANT_FIELDS`, the
line-item fields), so the nodes reassembled here go through the same mapping and land the same rows:

- Shopify writes one object a line, a nested connection's nodes as their own lines carrying `__parentId`; line
  items are put back under their order (`lineItems: {pageInfo: {hasNextPage: false, endCursor: null}, nodes}` —
  the shape of a fully completed paged order), in file order. A child whose parent is not in the file, or a line
  that is not a JSON object, is quarantined; the rest lands.
- Every exchange goes through the one request loop: the mutations and the polls as GraphQL (cost-paced), the
  staged upload (multipart form) and the download as plain requests to storage without the access token.
- Up to five bulk query operations and five bulk mutation operations may run per shop (2026-10); one refused
  with LIMIT_REACHED / OPERATION_IN_PROGRESS is retried after a wait, within `bulk_timeout_seconds`.
- The wait polls with backoff and, between polls, looks for the operation's `bulk_operations/finish` webhook
  in the landed webhook events (`FinishWatch`): when the receiver runs, the wait ends when Shopify announces
  the end; the polls stay the backstop for a missed delivery (D142).
- FAILED / CANCELED / EXPIRED → IngestionError naming the status and errorCode; `partialDataUrl` is not landed
  (a partial file is not a prefix in cursor order, so the cursor derived from it could skip orders).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from ichigen.config import Config
from ingestion.common import raw_json, utcnow
from ingestion.errors import IngestionError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone, QuarantineRecord
from ingestion.shopify import LINE_ITEM_FIELDS, ORDER_FIELDS, SOURCE, VARIANT_FIELDS, _search, graphql_path

RUN = """
mutation IchigenBulkRun($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status }
    userErrors { code field message }
  }
}
"""

POLL = """
query IchigenBulkPoll($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url partialDataUrl }
}
"""

RUN_MUTATION = """
mutation IchigenBulkRunMutation($mutation: String!, $stagedUploadPath: String!, $clientIdentifier: String) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $stagedUploadPath,
                           clientIdentifier: $clientIdentifier) {
    bulkOperation { id status }
    userErrors { code field message }
  }
}
"""

STAGE = """
mutation IchigenStageBulkVariables($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url parameters { name value } }
    userErrors { field message }
  }
}
"""

CANCEL = """
mutation IchigenBulkCancel($id: ID!) {
  bulkOperationCancel(id: $id) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

DOCUMENTS = {"bulk_run": RUN, "bulk_poll": POLL, "bulk_run_mutation": RUN_MUTATION, "staged_uploads_create": STAGE,
             "bulk_cancel": CANCEL}
RUN_OPERATIONS = {"bulkOperationRunQuery": "bulk_run", "bulkOperationRunMutation": "bulk_run_mutation"}
BUSY_CODES = {"LIMIT_REACHED", "OPERATION_IN_PROGRESS"}
BULK_FINISH_TOPIC = "bulk_operations/finish"
FIRST_POLL_SECONDS = 0.25
WATCH_SECONDS = 0.2  # how often a wait looks for the landed finish webhook between its polls
JSONL_MIME = "text/jsonl"
NODES_PER_PAGE = 250  # reassembled nodes are mapped in page-sized groups, like the paged path


def _selection(fragment: str) -> str:
    """The field selection inside a fragment definition (bulk queries are written without fragments)."""
    return fragment[fragment.index("{") + 1: fragment.rindex("}")]


@dataclass(frozen=True)
class BulkEntity:
    root: str  # the connection at the top of the query and of the synthetic pages
    nested: str | None  # the nested connection whose lines carry __parentId
    sort_key: str

    def document(self, since: datetime | None) -> str:
        search = _search(since)
        arguments = f"sortKey: {self.sort_key}" + (f", query: {json.dumps(search)}" if search else "")
        if self.root == "orders":
            inner = ORDER_FIELDS + f"      lineItems {{ edges {{ node {{ {_selection(LINE_ITEM_FIELDS)} }} }} }}\n"
        else:
            inner = VARIANT_FIELDS
        return f"{{\n  {self.root}({arguments}) {{\n    edges {{\n      node {{{inner}      }}\n    }}\n  }}\n}}\n"


BULK_ENTITIES = {
    "orders": BulkEntity("orders", "lineItems", "UPDATED_AT"),
    "product_variants": BulkEntity("productVariants", None, "ID"),
}


@dataclass
class _Page:
    number: int
    items: list[dict[str, Any]]


class BulkFetch:
    """The reassembled nodes of one bulk operation, shaped like `ingestion.shopify.Fetch` (iterate pages,
    `texts()`, `pages`, `truncated`) so the same mappers land them; `bad` holds what could not be attached."""

    truncated = False

    def __init__(self, root: str, nodes: list[dict[str, Any]], bad: list[QuarantineRecord], requests: int,
                 ended_by: str = "poll"):
        self.root = root
        self.nodes = nodes
        self.bad = bad
        self.pages = requests  # HTTP exchanges it took (run, polls, download)
        self.ended_by = ended_by  # what ended the wait: a poll, or the landed finish webhook

    def __iter__(self) -> Iterator[_Page]:
        for number, start in enumerate(range(0, len(self.nodes), NODES_PER_PAGE), 1):
            yield _Page(number, self.nodes[start:start + NODES_PER_PAGE])

    def texts(self) -> Iterator[str]:
        for page in self:
            yield raw_json({"data": {self.root: {"nodes": page.items}}})


def _graphql(client: ChannelClient, config: Config, operation: str, document: str, variables: dict) -> dict:
    response = client.request("POST", graphql_path(config.channels.shopify.api_version), operation=operation,
                              json={"query": document, "variables": variables})
    return response.json()["data"]


class FinishWatch:
    """The `bulk_operations/finish` webhook events landed by the receiver (ingestion.webhooks lands every signed
    delivery, de-duplicated, as `shopify/webhook_events`). A wait asks `ended(id)` between its polls, so it ends
    when the shop says the operation ended rather than at the next backoff poll; without a running receiver
    nothing lands and the polls alone decide (D142). Reads only batches it has not read, of the days since it
    was made."""

    def __init__(self, landing: LandingZone, since: datetime | None = None):
        self.landing = landing
        self.since = (since or utcnow()) - timedelta(minutes=5)  # a delivery may land just before we look
        self._read: set[Path] = set()
        self._ended: set[str] = set()

    def _new_files(self) -> list[Path]:
        folder = self.landing.entity_dir("shopify", "webhook_events")
        files: list[Path] = []
        day, today = self.since.date(), utcnow().date()
        while day <= today:
            files += [p for p in (folder / f"date={day:%Y-%m-%d}").glob("*.parquet")
                      if not p.name.startswith(".") and p not in self._read]
            day += timedelta(days=1)
        return sorted(files)

    def ended(self, operation_id: str) -> bool:
        if operation_id in self._ended:
            return True
        with self.landing.reading("bulk finish watch"):  # a compaction keeps listed batches until read (D160)
            files = self._new_files()
            if not files:
                return operation_id in self._ended
            try:
                events = pl.read_parquet(files, columns=["topic", "resource_gid"])
            except (OSError, pl.exceptions.PolarsError):
                return False  # a batch we cannot read now: the next look (or the poll) decides
        self._read.update(files)
        self._ended.update(r for t, r in events.iter_rows() if t == BULK_FINISH_TOPIC and r)
        return operation_id in self._ended


@dataclass
class BulkRun:
    """How one bulk operation went: its final BulkOperation, the HTTP exchanges it took, and what ended the
    wait (`poll`, or `webhook` when a landed bulk_operations/finish event cut it short)."""

    operation: dict[str, Any]
    requests: int
    ended_by: str = "poll"


def start_operation(client: ChannelClient, config: Config, field: str, document: str, variables: dict, *,
                    label: str, deadline: float) -> tuple[dict[str, Any], int]:
    """Run `bulkOperationRunQuery` / `bulkOperationRunMutation` until the shop takes it: (the operation, HTTP
    exchanges). Refusals for concurrency wait and retry within the deadline; any other refusal raises."""
    shop = config.channels.shopify
    wait = FIRST_POLL_SECONDS
    requests = 0
    while True:
        payload = _graphql(client, config, RUN_OPERATIONS[field], document, variables)[field]
        requests += 1
        errors = payload.get("userErrors") or []
        if not errors and payload.get("bulkOperation"):
            return payload["bulkOperation"], requests
        if errors and all(e.get("code") in BUSY_CODES for e in errors) and time.monotonic() + wait < deadline:
            time.sleep(wait)  # other bulk operations of this app are running: wait for a slot
            wait = min(wait * 2, shop.bulk_poll_max_seconds)
            continue
        described = "; ".join(f"[{e.get('code')}] {e.get('message')}" for e in errors) or "no operation returned"
        raise IngestionError(f"{SOURCE}/{label}: {field} refused: {described}")


def wait_for_operation(client: ChannelClient, config: Config, operation: dict[str, Any], *, label: str,
                       deadline: float, watch: FinishWatch | None = None) -> BulkRun:
    """Poll `bulkOperation(id:)` until the operation has ended (backing off from 0.25 s to
    `bulk_poll_max_seconds`); between polls, look every WATCH_SECONDS for its landed finish webhook and poll at
    once when it is there. Bounded by `deadline`: past it, IngestionError."""
    shop = config.channels.shopify
    wait = FIRST_POLL_SECONDS
    requests, ended_by = 0, "poll"
    while operation.get("status") in ("CREATED", "RUNNING", "CANCELING"):
        next_poll = time.monotonic() + wait
        if next_poll > deadline:
            raise IngestionError(f"{SOURCE}/{label}: bulk operation {operation.get('id')} still "
                                 f"{operation.get('status')} after {shop.bulk_timeout_seconds:g}s "
                                 "(channels.shopify.bulk_timeout_seconds)")
        announced = False
        while not announced and time.monotonic() < next_poll:
            time.sleep(max(0.0, min(WATCH_SECONDS if watch else wait, next_poll - time.monotonic())))
            announced = watch is not None and watch.ended(operation["id"])
        wait = min(wait * 2, shop.bulk_poll_max_seconds)
        operation = _graphql(client, config, "bulk_poll", POLL, {"id": operation["id"]})["bulkOperation"] or {}
        requests += 1
        ended_by = "webhook" if announced else "poll"
        if announced and operation.get("status") in ("CREATED", "RUNNING", "CANCELING"):
            watch = None  # announced but not yet ended here: the backoff polls decide, never a tight loop
    return BulkRun(operation, requests, ended_by)


def run_bulk_query(client: ChannelClient, config: Config, query: str, *, label: str,
                   watch: FinishWatch | None = None) -> BulkRun:
    """Start a bulk query and wait for its end. Raises IngestionError when it cannot start in time or ends other
    than COMPLETED."""
    deadline = time.monotonic() + config.channels.shopify.bulk_timeout_seconds
    operation, started = start_operation(client, config, "bulkOperationRunQuery", RUN, {"query": query},
                                         label=label, deadline=deadline)
    run = wait_for_operation(client, config, operation, label=label, deadline=deadline, watch=watch)
    run.requests += started
    operation = run.operation
    if operation.get("status") != "COMPLETED":
        raise IngestionError(
            f"{SOURCE}/{label}: bulk operation {operation.get('id')} ended {operation.get('status')} "
            f"(errorCode {operation.get('errorCode')}, {operation.get('objectCount')} objects); nothing landed — "
            "the next run starts a new one")
    return run


def stage_variables(client: ChannelClient, config: Config, body: bytes, *, filename: str) -> tuple[str, int]:
    """Upload a bulk mutation's JSONL variables: `stagedUploadsCreate` (BULK_MUTATION_VARIABLES, POST), then the
    multipart form to the target — its parameters as fields, the file last — without the API token (storage is
    another host). Returns (the `stagedUploadPath`: the `key` parameter, HTTP exchanges)."""
    payload = _graphql(client, config, "staged_uploads_create", STAGE, {"input": [{
        "resource": "BULK_MUTATION_VARIABLES", "filename": filename, "mimeType": JSONL_MIME, "httpMethod": "POST",
    }]})["stagedUploadsCreate"]
    if payload.get("userErrors") or not payload.get("stagedTargets"):
        raise IngestionError(f"{SOURCE}/{filename}: stagedUploadsCreate refused: {payload.get('userErrors')}")
    target = payload["stagedTargets"][0]
    fields = {p["name"]: p["value"] for p in target["parameters"]}
    if "key" not in fields or not target.get("url"):
        raise IngestionError(f"{SOURCE}/{filename}: the staged upload target has no url or key: {target}")
    # An upload is an overwrite of the same key, so the request loop may retry it.
    client.request("POST", target["url"], operation="staged_upload", data=fields,
                   files={"file": (filename, body, JSONL_MIME)}, credentials=False)
    return fields["key"], 2


def run_bulk_mutation(client: ChannelClient, config: Config, mutation: str, body: bytes, *, label: str,
                      client_identifier: str | None = None, watch: FinishWatch | None = None) -> BulkRun:
    """Stage `body` (JSONL: one line of variables per execution), run `mutation` over it in bulk and wait for the
    end. The returned operation may have ended FAILED or CANCELED: the caller reads what ran from its `url` or
    `partialDataUrl`. Raises IngestionError when it cannot start, or runs past `bulk_timeout_seconds` (then it
    is canceled, best effort: lines may have run; the caller must treat their outcome as unknown)."""
    deadline = time.monotonic() + config.channels.shopify.bulk_timeout_seconds
    path, staged = stage_variables(client, config, body, filename=f"{label}.jsonl")
    variables = {"mutation": mutation, "stagedUploadPath": path, "clientIdentifier": client_identifier}
    operation, started = start_operation(client, config, "bulkOperationRunMutation", RUN_MUTATION, variables,
                                         label=label, deadline=deadline)
    try:
        run = wait_for_operation(client, config, operation, label=label, deadline=deadline, watch=watch)
    except IngestionError:
        with contextlib.suppress(Exception):  # the timeout is the error worth reporting
            _graphql(client, config, "bulk_cancel", CANCEL, {"id": operation["id"]})
        raise
    run.requests += staged + started
    return run


def download(client: ChannelClient, url: str, path: Path) -> Path:
    """A result file (pre-signed URL on storage) streamed into `path` through the request loop, without the
    token (D112)."""
    client.request("GET", url, operation="bulk_download", sink=path, credentials=False)
    return path


def reassemble(lines: Iterator[bytes | str], root: str, nested: str | None) -> tuple[list[dict], list[QuarantineRecord]]:
    """JSONL lines → root nodes with their nested connection's nodes put back under them (by `__parentId`)."""
    nodes: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    orphans: list[tuple[int, dict[str, Any]]] = []
    bad: list[QuarantineRecord] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            bad.append(QuarantineRecord(None, f"{SOURCE}/{root} bulk line {number}: not JSON ({exc})", text))
            continue
        if not isinstance(obj, dict):
            bad.append(QuarantineRecord(None, f"{SOURCE}/{root} bulk line {number}: not an object", obj))
            continue
        parent_id = obj.pop("__parentId", None)
        if parent_id is None:
            if nested is not None:
                obj[nested] = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}
            nodes.append(obj)
            if isinstance(obj.get("id"), str):
                by_id[obj["id"]] = obj
        elif nested is not None and parent_id in by_id:
            by_id[parent_id][nested]["nodes"].append(obj)
        else:
            orphans.append((number, {**obj, "__parentId": parent_id}))
    for number, obj in orphans:  # a child listed before its parent (ungrouped output allows it)
        parent = by_id.get(obj["__parentId"]) if nested is not None else None
        if parent is not None:
            parent[nested]["nodes"].append({k: v for k, v in obj.items() if k != "__parentId"})
        else:
            bad.append(QuarantineRecord(obj.get("id"), f"{SOURCE}/{root} bulk line {number}: parent "
                                                       f"{obj['__parentId']} is not in the file", obj))
    return nodes, bad


def bulk_fetch(client: ChannelClient, config: Config, entity: str, since: datetime | None,
               landing: LandingZone | None = None) -> BulkFetch:
    """The whole window of `entity` since `since` through one bulk operation, reassembled. The wait ends early
    when the webhook receiver lands the operation's finish event in `landing` (the polls stay the backstop)."""
    spec = BULK_ENTITIES[entity]
    watch = FinishWatch(landing or LandingZone(config.landing_dir))
    run = run_bulk_query(client, config, spec.document(since), label=entity, watch=watch)
    url = run.operation.get("url")
    if not url:  # Shopify gives no file when nothing matched
        return BulkFetch(spec.root, [], [], run.requests, run.ended_by)
    with tempfile.TemporaryDirectory(prefix="ichigen-bulk-") as folder:
        path = download(client, url, Path(folder) / "result.jsonl")
        with path.open("rb") as lines:
            nodes, bad = reassemble(lines, spec.root, spec.nested)
    return BulkFetch(spec.root, nodes, bad, run.requests + 1, run.ended_by)
