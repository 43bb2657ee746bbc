"""Shopify stock push: `inventorySetQuantities` (≤ 250 quantities a call) with compare-and-swap.

- `changeFromQuantity` is the quantity we last saw. If the shop sold a unit since, Shopify refuses the whole
  call with CHANGE_FROM_QUANTITY_STALE; we re-read the items that changed, lower each target by the units sold
  since our read (never resurrecting a sold unit), and retry with the fresh quantity. Bounded attempts.
- `@idempotent(key:)` (required since 2026-04) carries a key fixed per chunk and attempt, so when the HTTP
  loop retries a request whose response was lost, Shopify answers from its record instead of applying twice.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime

from ingestion.http import ChannelClient
from ingestion.shopify import graphql_path
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

MAX_PER_CALL = 250
MAX_STALE_ROUNDS = 3
STALE = "CHANGE_FROM_QUANTITY_STALE"
# Calls in flight at once: the cost bucket, not a request count, is Shopify's limit (D101), so a second call
# overlaps the first one's round trip instead of leaving the bucket's restore rate unused.
IN_FLIGHT = 4

# Only what the push reads: the userErrors, and a group that says the call applied. Asking for every change
# (two per quantity, with item and location) made each 250-row answer ~3× the work to build and to parse.
SET_QUANTITIES = """
mutation SetAvailable($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { createdAt }
    userErrors { code field message }
  }
}
"""

# Re-read exactly the items of a refused chunk (≤ 100 ids a call keeps the query cost far below 1,000).
CURRENT_AVAILABLE = """
query CurrentAvailable($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } }
    }
  }
}
"""
REREAD_PER_CALL = 100


def split_ref(target_ref: str) -> tuple[str, str]:
    item, _, location = target_ref.partition("@")
    return item, location


@dataclass
class _Pending:
    change: PlannedChange
    believed: int  # what we believe the shop shows now (changeFromQuantity)
    value: int  # what we will set


class ShopifyStockPusher:
    def __init__(self, client: ChannelClient, api_version: str, in_flight: int = IN_FLIGHT):
        self.client = client
        self.path = graphql_path(api_version)
        self.in_flight = in_flight

    def _graphql(self, operation: str, query: str, variables: dict) -> dict:
        response = self.client.request(
            "POST", self.path, operation=operation, json={"query": query, "variables": variables}
        )
        return response.json()["data"]

    def current_available(self, target_refs: list[str]) -> dict[str, int]:
        """What the shop shows now for these `<inventoryItemId>@<locationId>` references."""
        by_location: dict[str, list[str]] = {}
        for ref in target_refs:
            item, location = split_ref(ref)
            by_location.setdefault(location, []).append(item)
        found: dict[str, int] = {}
        for location, items in by_location.items():
            for index in range(0, len(items), REREAD_PER_CALL):
                data = self._graphql(
                    "nodes", CURRENT_AVAILABLE,
                    {"ids": items[index : index + REREAD_PER_CALL], "locationId": location},
                )
                for node in data["nodes"]:
                    level = (node or {}).get("inventoryLevel")
                    if not level:
                        continue
                    qty = {q["name"]: q["quantity"] for q in level["quantities"]}.get("available")
                    if qty is not None:
                        found[f"{node['id']}@{location}"] = int(qty)
        return found

    def push(
        self,
        run_id: str,
        changes: list[PlannedChange],
        planned_at: datetime,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[PushRecord]:
        chunks = [[_Pending(c, c.old_value, c.new_value) for c in changes[index : index + MAX_PER_CALL]]
                  for index in range(0, len(changes), MAX_PER_CALL)]
        return self._push_chunks(run_id, chunks, planned_at, on_progress)

    def _push_chunks(self, run_id: str, chunks: list[list[_Pending]], planned_at: datetime,
                     on_progress: Callable[[int, int], None] | None = None, *, first_attempt: int = 1,
                     key_prefix: str = "") -> list[PushRecord]:
        """Push chunks of ≤ 250 rows, IN_FLIGHT calls at a time; records in chunk order. `first_attempt` > 1
        continues rows an earlier attempt found stale (re-read already done); `key_prefix` keeps their
        idempotency keys apart from the first attempt's."""
        results: list[list[PushRecord]] = [[] for _ in chunks]
        total = sum(len(chunk) for chunk in chunks)
        done = 0
        # Chunks hold disjoint items and each call carries its own compare-and-swap and idempotency key, so
        # several may be in flight at once (D101); the shared cost throttle and limiter still pace every call.
        with ThreadPoolExecutor(max_workers=max(1, min(self.in_flight, len(chunks)))) as pool:
            futures = {pool.submit(self._push_chunk, run_id, f"{key_prefix}{n}", chunk, planned_at, first_attempt): n
                       for n, chunk in enumerate(chunks)}
            for future in as_completed(futures):
                n = futures[future]
                results[n] = future.result()
                done += len(chunks[n])
                if on_progress:
                    on_progress(done, total)
        return [record for chunk_records in results for record in chunk_records]

    def _push_chunk(
        self, run_id: str, chunk_no: str, chunk: list[_Pending], planned_at: datetime, first_attempt: int = 1
    ) -> list[PushRecord]:
        records: list[PushRecord] = []
        for attempt in range(first_attempt, MAX_STALE_ROUNDS + 1):
            quantities = []
            for p in chunk:
                item, location = split_ref(p.change.target_ref)
                quantities.append(
                    {"inventoryItemId": item, "locationId": location, "quantity": p.value,
                     "changeFromQuantity": p.believed}
                )
            variables = {
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": f"ichigen://sync/{run_id}",
                    "quantities": quantities,
                },
                "idempotencyKey": f"{run_id}-{chunk_no}-{attempt}",
            }
            try:
                payload = self._graphql("inventorySetQuantities", SET_QUANTITIES, variables)[
                    "inventorySetQuantities"
                ]
            except Exception as exc:  # noqa: BLE001 — every failure is logged per row and retried next cycle
                now = datetime.now(UTC)
                return records + [
                    self._record(run_id, p, "failed", f"{type(exc).__name__}: {exc}", planned_at, now, attempt)
                    for p in chunk
                ]
            now = datetime.now(UTC)
            errors = payload.get("userErrors") or []
            if not errors:
                return records + [self._record(run_id, p, "applied", None, planned_at, now, attempt) for p in chunk]

            stale = [e for e in errors if e.get("code") == STALE]
            if len(stale) != len(errors):
                # A row the shop rejects (unknown item, bad quantity) fails the call; log it and push the rest.
                bad_rows = _rows_named(errors, len(chunk))
                message = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
                if not bad_rows:
                    return records + [
                        self._record(run_id, p, "failed", message, planned_at, now, attempt) for p in chunk
                    ]
                records += [
                    self._record(run_id, chunk[i], "failed", message, planned_at, now, attempt) for i in bad_rows
                ]
                chunk = [p for i, p in enumerate(chunk) if i not in bad_rows]
                if not chunk:
                    return records
                continue

            # Someone bought since our read: take the fresh quantity and subtract what sold from our target.
            lower_by_sales(chunk, self.current_available([p.change.target_ref for p in chunk]))
        now = datetime.now(UTC)
        return records + [
            self._record(run_id, p, "stale", "shop kept changing; retried next cycle", planned_at, now,
                         MAX_STALE_ROUNDS)
            for p in chunk
        ]

    @staticmethod
    def _record(run_id, pending: _Pending, status, error, planned_at, pushed_at, attempt) -> PushRecord:
        c = pending.change
        return PushRecord(
            run_id=run_id, channel=c.channel, field=c.field, sku=c.sku, target_ref=c.target_ref,
            old_value=pending.believed, new_value=pending.value, status=status, error=error,
            planned_at=planned_at, pushed_at=pushed_at, attempt=attempt,
        )


def lower_by_sales(rows: list[_Pending], fresh: dict[str, int]) -> None:
    """Rows whose shop quantity moved since the read they were planned from: believe the fresh quantity and
    lower the target by the units sold since (never below 0), so a push never puts back a sold unit (D12)."""
    for p in rows:
        current = fresh.get(p.change.target_ref)
        if current is None or current == p.believed:
            continue
        p.value = max(0, p.value - max(0, p.believed - current))
        p.believed = current


def _rows_named(errors: list[dict], size: int) -> set[int]:
    """Indexes of `quantities` rows that userErrors point at (field: ["input", "quantities", "3", ...])."""
    rows: set[int] = set()
    for error in errors:
        path = error.get("field") or []
        for i, part in enumerate(path[:-1]):
            if part == "quantities" and str(path[i + 1]).isdigit() and int(path[i + 1]) < size:
                rows.add(int(path[i + 1]))
    return rows


# ------------------------------------------------------------------------------------------------ REST fallback
def _numeric(gid: str) -> int:
    """gid://shopify/InventoryItem/123 → 123 (REST speaks numeric ids)."""
    tail = gid.rsplit("/", 1)[-1].split("?", 1)[0]
    if not tail.isdigit():
        raise ValueError(f"{gid!r} is not a Shopify GID")
    return int(tail)


class ShopifyRestStockPusher(ShopifyStockPusher):
    """`POST /admin/api/<v>/inventory_levels/set.json` for old custom apps whose token cannot call
    `inventorySetQuantities` (`channels.shopify.push_via = "rest"`, D114).

    REST's set is absolute and has no compare-and-swap. To keep the race small, every chunk re-reads the shop's
    `available` for its rows (one GraphQL `nodes` read per ≤ 100 items) right before the sets, and lowers each
    target by what sold since the plan's read, as the GraphQL path does on CHANGE_FROM_QUANTITY_STALE. What is
    left open — a sale between that re-read and the set, at 2 calls/s per row — is D115. The call limit
    (`X-Shopify-Shop-Api-Call-Limit`, 429 + Retry-After) is honoured by the request loop; a set is idempotent
    (the same absolute value), so the loop may retry it."""

    REREAD_CHUNK = 20  # rows re-read together: at 2 sets/s a chunk is ~10 s old by its last set

    def __init__(self, client: ChannelClient, api_version: str):
        super().__init__(client, api_version)
        self.rest_path = f"/admin/api/{api_version}/inventory_levels/set.json"

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        records: list[PushRecord] = []
        for index in range(0, len(changes), self.REREAD_CHUNK):
            chunk = [_Pending(c, c.old_value, c.new_value) for c in changes[index: index + self.REREAD_CHUNK]]
            try:
                fresh = self.current_available([p.change.target_ref for p in chunk])
            except Exception as exc:  # noqa: BLE001 — logged per row, retried next cycle
                now = datetime.now(UTC)
                records += [self._record(run_id, p, "failed", f"re-read failed: {exc}", planned_at, now, 1)
                            for p in chunk]
                continue
            lower_by_sales(chunk, fresh)  # never put back a sold unit
            for p in chunk:
                records.append(self._set(run_id, p, planned_at))
            if on_progress:
                on_progress(len(records), len(changes))
        return records

    def _set(self, run_id: str, p: _Pending, planned_at: datetime) -> PushRecord:
        item, location = split_ref(p.change.target_ref)
        try:
            if p.value == p.believed:
                return self._record(run_id, p, "applied", None, planned_at, datetime.now(UTC), 1)
            self.client.request("POST", self.rest_path, operation="inventory_levels_set", json={
                "location_id": _numeric(location), "inventory_item_id": _numeric(item), "available": p.value})
        except Exception as exc:  # noqa: BLE001 — logged per row, retried next cycle
            return self._record(run_id, p, "failed", f"{type(exc).__name__}: {exc}", planned_at,
                                datetime.now(UTC), 1)
        return self._record(run_id, p, "applied", None, planned_at, datetime.now(UTC), 1)


# ------------------------------------------------------------------------------------------------ prices
UPDATE_PRICES = """
mutation SetPrices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants, allowPartialUpdates: true) {
    productVariants { id price }
    userErrors { code field message }
  }
}
"""


class ShopifyPricePusher:
    """Prices with `productVariantsBulkUpdate`, one call per product (≤ 250 variants each), partial updates
    allowed so one rejected variant does not hold back the others. A price is absolute and carries no race
    with sales: a retry sets the same value again, so no idempotency key is needed.

    `target_ref` of a price change is `<variantId>@<productId>` (what the landed product_variants give)."""

    def __init__(self, client: ChannelClient, api_version: str):
        self.client = client
        self.path = graphql_path(api_version)

    def push(
        self,
        run_id: str,
        changes: list[PlannedChange],
        planned_at: datetime,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[PushRecord]:
        by_product: dict[str, list[PlannedChange]] = {}
        for change in changes:
            by_product.setdefault(split_ref(change.target_ref)[1], []).append(change)
        records: list[PushRecord] = []
        for product_id, product_changes in by_product.items():
            for index in range(0, len(product_changes), MAX_PER_CALL):
                records += self._push_product(run_id, product_id, product_changes[index : index + MAX_PER_CALL],
                                              planned_at)
                if on_progress:
                    on_progress(len(records), len(changes))
        return records

    def _push_product(self, run_id: str, product_id: str, chunk: list[PlannedChange],
                      planned_at: datetime) -> list[PushRecord]:
        variables = {
            "productId": product_id,
            "variants": [{"id": split_ref(c.target_ref)[0], "price": str(c.new_value)} for c in chunk],
        }

        def record(change: PlannedChange, status: str, error: str | None) -> PushRecord:
            return PushRecord(run_id=run_id, channel=change.channel, field="price", sku=change.sku,
                              target_ref=change.target_ref, old_value=change.old_value, new_value=change.new_value,
                              status=status, error=error, planned_at=planned_at, pushed_at=datetime.now(UTC),
                              attempt=1)

        try:
            response = self.client.request("POST", self.path, operation="productVariantsBulkUpdate",
                                           json={"query": UPDATE_PRICES, "variables": variables})
            payload = response.json()["data"]["productVariantsBulkUpdate"]
        except Exception as exc:  # noqa: BLE001 — logged per row, retried next cycle
            return [record(c, "failed", f"{type(exc).__name__}: {exc}") for c in chunk]
        errors: dict[int, str] = {}
        for error in payload.get("userErrors") or []:
            path = error.get("field") or []
            row = int(path[1]) if len(path) > 1 and path[0] == "variants" and str(path[1]).isdigit() else None
            text = f"{error.get('code')}: {error.get('message')}"
            for i in ([row] if row is not None and row < len(chunk) else range(len(chunk))):
                errors[i] = f"{errors[i]}; {text}" if i in errors else text
        return [record(c, "failed", errors[i]) if i in errors else record(c, "applied", None)
                for i, c in enumerate(chunk)]
