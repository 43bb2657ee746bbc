"""Shopify backfills through a bulk operation: `bulkOperationRunQuery` → poll `bulkOperation(id:)` → JSONL.

Used by `ingestion.shopify.ingest` when the window to fetch is longer than `channels.shopify.bulk_threshold_days`
(DECISIONS.md D110–D113). The bulk query selects exactly the fields of the paged query (`ORDER_FIELDS`,
`VARIANT_FIELDS`, the line-item fields), so the nodes reassembled here go through the same mapping and land the
same rows:

- Shopify writes one object a line, a nested connection's nodes as their own lines carrying `__parentId`; line
  items are put back under their order (`lineItems: {pageInfo: {hasNextPage: false, endCursor: null}, nodes}` —
  the shape of a fully completed paged order), in file order. A child whose parent is not in the file, or a line
  that is not a JSON object, is quarantined; the rest lands.
- Every exchange goes through the one request loop: the mutation and the polls as GraphQL (cost-paced), the
  download as a plain GET of the pre-signed URL without the access token, streamed to a temporary file.
- Up to five bulk query operations may run per shop (2026-10); one refused with LIMIT_REACHED /
  OPERATION_IN_PROGRESS is retried after a wait, within `bulk_timeout_seconds`.
- FAILED / CANCELED / EXPIRED → IngestionError naming the status and errorCode; `partialDataUrl` is not landed
  (a partial file is not a prefix in cursor order, so the cursor derived from it could skip orders).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ichigen.config import Config
from ingestion.common import raw_json
from ingestion.errors import IngestionError
from ingestion.http import ChannelClient
from ingestion.landing import QuarantineRecord
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

DOCUMENTS = {"bulk_run": RUN, "bulk_poll": POLL}
BUSY_CODES = {"LIMIT_REACHED", "OPERATION_IN_PROGRESS"}
FIRST_POLL_SECONDS = 0.25
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

    def __init__(self, root: str, nodes: list[dict[str, Any]], bad: list[QuarantineRecord], requests: int):
        self.root = root
        self.nodes = nodes
        self.bad = bad
        self.pages = requests  # HTTP exchanges it took (run, polls, download)

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


def run_bulk_query(client: ChannelClient, config: Config, query: str, *, label: str) -> tuple[dict[str, Any], int]:
    """Start a bulk query and wait for its end; (the final BulkOperation, HTTP exchanges used).
    Raises IngestionError when it cannot start in time or ends other than COMPLETED."""
    shop = config.channels.shopify
    deadline = time.monotonic() + shop.bulk_timeout_seconds
    wait = FIRST_POLL_SECONDS
    requests = 0
    while True:
        payload = _graphql(client, config, "bulk_run", RUN, {"query": query})["bulkOperationRunQuery"]
        requests += 1
        errors = payload.get("userErrors") or []
        if not errors and payload.get("bulkOperation"):
            operation = payload["bulkOperation"]
            break
        if errors and all(e.get("code") in BUSY_CODES for e in errors) and time.monotonic() + wait < deadline:
            time.sleep(wait)  # other bulk queries of this app are running: wait for a slot
            wait = min(wait * 2, shop.bulk_poll_max_seconds)
            continue
        described = "; ".join(f"[{e.get('code')}] {e.get('message')}" for e in errors) or "no operation returned"
        raise IngestionError(f"{SOURCE}/{label}: bulkOperationRunQuery refused: {described}")

    wait = FIRST_POLL_SECONDS
    while operation.get("status") in ("CREATED", "RUNNING", "CANCELING"):
        if time.monotonic() + wait > deadline:
            raise IngestionError(f"{SOURCE}/{label}: bulk operation {operation.get('id')} still "
                                 f"{operation.get('status')} after {shop.bulk_timeout_seconds:g}s "
                                 "(channels.shopify.bulk_timeout_seconds)")
        time.sleep(wait)
        wait = min(wait * 2, shop.bulk_poll_max_seconds)
        operation = _graphql(client, config, "bulk_poll", POLL, {"id": operation["id"]})["bulkOperation"] or {}
        requests += 1
    if operation.get("status") != "COMPLETED":
        raise IngestionError(
            f"{SOURCE}/{label}: bulk operation {operation.get('id')} ended {operation.get('status')} "
            f"(errorCode {operation.get('errorCode')}, {operation.get('objectCount')} objects); nothing landed — "
            "the next run starts a new one")
    return operation, requests


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


def bulk_fetch(client: ChannelClient, config: Config, entity: str, since: datetime | None) -> BulkFetch:
    """The whole window of `entity` since `since` through one bulk operation, reassembled."""
    spec = BULK_ENTITIES[entity]
    operation, requests = run_bulk_query(client, config, spec.document(since), label=entity)
    url = operation.get("url")
    if not url:  # Shopify gives no file when nothing matched
        return BulkFetch(spec.root, [], [], requests)
    with tempfile.TemporaryDirectory(prefix="ichigen-bulk-") as folder:
        path = Path(folder) / "result.jsonl"
        client.request("GET", url, operation="bulk_download", sink=path, credentials=False)
        with path.open("rb") as lines:
            nodes, bad = reassemble(lines, spec.root, spec.nested)
    return BulkFetch(spec.root, nodes, bad, requests + 1)
