"""Amazon stock push from a fresh read (D26): per-SKU `patchListingsItem`, or a JSON_LISTINGS_FEED for large sets.

Amazon takes absolute quantities only: no compare-and-swap, no deltas. So right before sending, the pusher
reads what Amazon shows now and lowers each target by every unit sold since the quantity the plan started from
(`old_value`): a sale between our read and our push is never put back on sale.

- Up to `channels.amazon.feed_threshold` changes (D26): getListingsItem, then the PATCH at once (one round
  trip of window), about 5 SKUs a second (patch 5/s burst 5 plus the read).
- Above it (D65): a JSON_LISTINGS_FEED per ≤ `feed_max_messages` changes. The fresh read is
  searchListingsItems by SKU (20 a call at 5/s: ~100 SKUs/s, the binding limit, half the feed ceiling of
  ~208/s); then the document (one PATCH message per SKU) is uploaded to the URL createFeedDocument returned
  (a plain client: the pre-signed URL must not see our access token), createFeed, getFeed polled every
  `feed_poll_seconds` for at most `feed_wait_seconds`, then the processing report decides per SKU: a
  message with an ERROR issue is logged `failed` with its issues, the rest `applied`. A feed that ends FATAL
  or outlives the wait is logged `failed` for all its SKUs (outcome unknown, not resent).

Nothing is resent after an answer that may mean "applied" (`idempotent=False` on PATCH and createFeed): a
resend of an absolute quantity after a sale would resurrect that unit. It is logged `failed`, and the next
cycle plans again from a fresh state. 429 QuotaExceeded and 503 (not processed) are retried by the request
loop.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from ichigen.config import AmazonConfig, Config
from ingestion.amazon import DEFAULT_FULFILLMENT_CHANNEL, LISTINGS_PATH
from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.ratelimit import RateSpec
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

PRODUCT_TYPE = "PRODUCT"  # patches of offer attributes are accepted under the generic product type
FEEDS_PATH = "/feeds/2021-06-30"
FEED_TYPE = "JSON_LISTINGS_FEED"
FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
READ_BATCH = 20  # searchListingsItems takes at most 20 identifiers
FEED_DONE = ("DONE", "FATAL", "CANCELLED")
# Documented usage plans of the Feeds operations (requests per second, burst), added to the amazon limiter.
FEED_RATE_LIMITS: dict[str, tuple[float, int]] = {
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
}
QUANTITY_PATH = "/attributes/fulfillment_availability"


def amazon_listings_state(config: Config) -> pl.DataFrame:
    """What Amazon last showed per seller SKU (landed amazon/listings), keyed by the ERP SKU each listing sells
    — the match dbt made (int_products__channel_listings in the published copy: seller SKU, then JAN)."""
    landed = LandingZone(config.landing_dir).select("amazon", "listings", "sku", "quantity", "_fetched_at")
    con = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        matched = con.execute(
            "select listing_id, sku from intermediate.int_products__channel_listings "
            "where channel = 'amazon' and sku is not null").fetchall()
    finally:
        con.close()
    erp_sku = pl.DataFrame(matched, schema={"target_ref": pl.String, "erp_sku": pl.String}, orient="row")
    return (
        landed.rename({"sku": "target_ref"})
        .join(erp_sku, on="target_ref", how="inner")
        .select(pl.col("erp_sku").alias("sku"), "target_ref", pl.col("quantity").cast(pl.Int64),
                pl.col("_fetched_at").alias("seen_at"))
    )


@dataclass
class _Fresh:
    """One change re-targeted from a fresh read: what Amazon shows now and the quantity to send."""

    change: PlannedChange
    current: int
    value: int


class AmazonStockPusher:
    def __init__(self, client: ChannelClient, amazon: AmazonConfig):
        self.client = client
        self.amazon = amazon
        if client.limiter is not None:
            for operation, (rate, burst) in FEED_RATE_LIMITS.items():
                client.limiter.set_operation(operation, RateSpec(rate * amazon.rate_scale, burst))
        self.feed_ids: list[str] = []  # the feeds this pusher created (for the push's caller and tests)

    def _item_path(self, seller_sku: str) -> str:
        return f"{LISTINGS_PATH}/{self.amazon.seller_id}/{seller_sku}"

    def current_quantity(self, seller_sku: str) -> int:
        """The merchant-fulfilled quantity Amazon shows now for this SKU."""
        item = self.client.request("GET", self._item_path(seller_sku), operation="getListingsItem", params={
            "marketplaceIds": self.amazon.marketplace_id, "includedData": "fulfillmentAvailability"}).json()
        return _default_quantity(item)

    def current_quantities(self, seller_skus: list[str]) -> dict[str, int]:
        """Quantities Amazon shows now, 20 SKUs a searchListingsItems call; a SKU Amazon does not know is absent."""
        found: dict[str, int] = {}
        for start in range(0, len(seller_skus), READ_BATCH):
            batch = seller_skus[start:start + READ_BATCH]
            body = self.client.request("GET", f"{LISTINGS_PATH}/{self.amazon.seller_id}",
                                       operation="searchListingsItems", params={
                                           "marketplaceIds": self.amazon.marketplace_id, "identifiersType": "SKU",
                                           "identifiers": ",".join(batch), "pageSize": READ_BATCH,
                                           "includedData": "fulfillmentAvailability"}).json()
            found.update({item["sku"]: _default_quantity(item) for item in body.get("items") or []})
        return found

    def set_quantity(self, seller_sku: str, quantity: int) -> dict:
        body = {"productType": PRODUCT_TYPE, "patches": [_quantity_patch(quantity)]}
        return self.client.request("PATCH", self._item_path(seller_sku), operation="patchListingsItem",
                                   params={"marketplaceIds": self.amazon.marketplace_id}, json=body,
                                   idempotent=False).json()

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        if len(changes) > self.amazon.feed_threshold:
            return self.push_by_feeds(run_id, changes, planned_at, on_progress)
        records = []
        for done, change in enumerate(changes, 1):
            records.append(self._push_one(run_id, change, planned_at))
            if on_progress:
                on_progress(done, len(changes))
        return records

    def _push_one(self, run_id: str, change: PlannedChange, planned_at: datetime) -> PushRecord:
        believed, value = change.old_value, change.new_value
        try:
            fresh = _retarget(change, self.current_quantity(change.target_ref))
            believed, value = fresh.current, fresh.value
            if value == believed:
                return _record(run_id, change, believed, value, "applied", None, planned_at, 0)
            answer = self.set_quantity(change.target_ref, value)
        except ChannelError as exc:
            return _record(run_id, change, believed, value, "failed", f"{type(exc).__name__}: {exc}",
                           planned_at, 1)
        if answer.get("status") != "ACCEPTED":
            issues = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in answer.get("issues") or [])
            return _record(run_id, change, believed, value, "failed", f"{answer.get('status')}: {issues}",
                           planned_at, 1)
        return _record(run_id, change, believed, value, "applied", None, planned_at, 1)

    # -- feeds (D65) -----------------------------------------------------------------------------------
    def push_by_feeds(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
                      on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        """One JSON_LISTINGS_FEED per `feed_max_messages` changes, each from its own fresh read."""
        records: list[PushRecord] = []
        size = self.amazon.feed_max_messages
        for start in range(0, len(changes), size):
            records += self._push_feed(run_id, changes[start:start + size], planned_at)
            if on_progress:
                on_progress(min(start + size, len(changes)), len(changes))
        return records

    def _push_feed(self, run_id: str, changes: list[PlannedChange], planned_at: datetime) -> list[PushRecord]:
        try:
            shown = self.current_quantities([c.target_ref for c in changes])
        except ChannelError as exc:
            return [_record(run_id, c, c.old_value, c.new_value, "failed", f"fresh read: {type(exc).__name__}: "
                            f"{exc}", planned_at, 0) for c in changes]
        records, to_send = [], []
        for change in changes:
            if change.target_ref not in shown:
                records.append(_record(run_id, change, change.old_value, change.new_value, "failed",
                                       "not found on Amazon (searchListingsItems by SKU)", planned_at, 0))
                continue
            fresh = _retarget(change, shown[change.target_ref])
            if fresh.value == fresh.current:
                records.append(_record(run_id, change, fresh.current, fresh.value, "applied", None, planned_at, 0))
            else:
                to_send.append(fresh)
        if not to_send:
            return records
        try:
            feed_id = self._submit_feed(to_send)
            issues = self._await_report(feed_id)
        except (ChannelError, FeedOutcomeUnknown) as exc:
            return records + [_record(run_id, f.change, f.current, f.value, "failed",
                                      f"{type(exc).__name__}: {exc}", planned_at, 1) for f in to_send]
        for message_id, fresh in enumerate(to_send, 1):
            problems = issues.get(message_id)
            errors = [i for i in problems or [] if i.get("severity") == "ERROR"]
            if errors:
                text = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in errors)
                records.append(_record(run_id, fresh.change, fresh.current, fresh.value, "failed",
                                       f"feed {feed_id} message {message_id}: {text}", planned_at, 1))
            else:
                records.append(_record(run_id, fresh.change, fresh.current, fresh.value, "applied", None,
                                       planned_at, 1))
        return records

    def feed_document(self, sends: list[_Fresh]) -> dict:
        """The JSON_LISTINGS_FEED (listings-feed-schema-v2): one PATCH message per SKU, messageId = position."""
        return {"header": {"sellerId": self.amazon.seller_id, "version": "2.0", "issueLocale": "ja_JP"},
                "messages": [{"messageId": n, "sku": f.change.target_ref, "operationType": "PATCH",
                              "productType": PRODUCT_TYPE, "patches": [_quantity_patch(f.value)]}
                             for n, f in enumerate(sends, 1)]}

    def _submit_feed(self, sends: list[_Fresh]) -> str:
        """createFeedDocument → upload → createFeed; the feed id."""
        document = self.client.request("POST", f"{FEEDS_PATH}/documents", operation="createFeedDocument",
                                       json={"contentType": FEED_CONTENT_TYPE}).json()
        content = json.dumps(self.feed_document(sends), ensure_ascii=False, separators=(",", ":")).encode()
        with self._document_client() as storage:
            storage.request("PUT", document["url"], operation="uploadFeedDocument", content=content,
                            headers={"Content-Type": FEED_CONTENT_TYPE})
        created = self.client.request("POST", f"{FEEDS_PATH}/feeds", operation="createFeed", idempotent=False, json={
            "feedType": FEED_TYPE, "marketplaceIds": [self.amazon.marketplace_id],
            "inputFeedDocumentId": document["feedDocumentId"]}).json()
        self.feed_ids.append(created["feedId"])
        return created["feedId"]

    def _await_report(self, feed_id: str) -> dict[int, list[dict]]:
        """Poll getFeed (bounded by feed_wait_seconds), then the processing report's issues per messageId."""
        deadline = time.monotonic() + self.amazon.feed_wait_seconds
        polls = int(self.amazon.feed_wait_seconds / self.amazon.feed_poll_seconds) + 1
        feed: dict = {}
        for _ in range(polls):
            feed = self.client.request("GET", f"{FEEDS_PATH}/feeds/{feed_id}", operation="getFeed").json()
            if feed.get("processingStatus") in FEED_DONE or time.monotonic() >= deadline:
                break
            time.sleep(min(self.amazon.feed_poll_seconds, max(0.0, deadline - time.monotonic())))
        status = feed.get("processingStatus")
        if status not in FEED_DONE:
            raise FeedOutcomeUnknown(f"feed {feed_id} still {status} after {self.amazon.feed_wait_seconds:g}s; "
                                     "not resent, the next cycle reads again")
        report = self._report(feed["resultFeedDocumentId"]) if feed.get("resultFeedDocumentId") else {}
        if status != "DONE":
            notes = "; ".join(i.get("message", "") for i in report.get("issues") or [])
            raise FeedOutcomeUnknown(f"feed {feed_id} ended {status}: {notes or 'no report'}")
        by_message: dict[int, list[dict]] = {}
        for issue in report.get("issues") or []:
            by_message.setdefault(issue.get("messageId"), []).append(issue)
        return by_message

    def _report(self, document_id: str) -> dict:
        located = self.client.request("GET", f"{FEEDS_PATH}/documents/{document_id}",
                                      operation="getFeedDocument").json()
        with self._document_client() as storage:
            raw = storage.request("GET", located["url"], operation="downloadFeedDocument").content
        if located.get("compressionAlgorithm") == "GZIP":
            raw = gzip.decompress(raw)
        return json.loads(raw)

    def _document_client(self) -> ChannelClient:
        """Documents live behind pre-signed URLs: no LWA token, no SP-API quota, the same retries."""
        return ChannelClient(self.client.channel, self.client.base_url, None, None, self.client.timeout,
                             self.client.max_retries)


class FeedOutcomeUnknown(RuntimeError):
    """A feed that ended FATAL or was still processing when we stopped waiting: what it applied is unknown."""


def _default_quantity(item: dict) -> int:
    for entry in item.get("fulfillmentAvailability") or []:
        if entry.get("fulfillmentChannelCode") == DEFAULT_FULFILLMENT_CHANNEL:
            return int(entry.get("quantity") or 0)
    return 0


def _quantity_patch(quantity: int) -> dict:
    return {"op": "replace", "path": QUANTITY_PATH,
            "value": [{"fulfillment_channel_code": DEFAULT_FULFILLMENT_CHANNEL, "quantity": quantity}]}


def _retarget(change: PlannedChange, current: int) -> _Fresh:
    """Units sold since the state the plan started from are gone: take them off the target (never raise it)."""
    return _Fresh(change, current, max(0, change.new_value - max(0, change.old_value - current)))


def _record(run_id: str, change: PlannedChange, believed: int, value: int, status: str, error: str | None,
            planned_at: datetime, attempt: int) -> PushRecord:
    return PushRecord(run_id=run_id, channel=change.channel, field=change.field, sku=change.sku,
                      target_ref=change.target_ref, old_value=believed, new_value=value, status=status,
                      error=error, planned_at=planned_at, pushed_at=datetime.now(UTC), attempt=attempt)
