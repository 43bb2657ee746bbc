"""Amazon stock push from a fresh state (D26): per-SKU `patchListingsItem`, or JSON_LISTINGS_FEEDs for large sets.

Amazon takes absolute quantities only: no compare-and-swap, no deltas. So before sending, the pusher learns
what sold since the quantity the plan started from (`old_value`) and lowers each target by those units: a
sale between the plan's read and our push is never put back on sale.

- Up to `channels.amazon.feed_threshold` changes (D26): getListingsItem, then the PATCH at once (one round
  trip of window), about 5 SKUs a second (patch 5/s burst 5 plus the read).
- Above it: JSON_LISTINGS_FEEDs of ≤ `feed_max_messages` changes each, sent one after another without waiting
  for the previous one's processing; the processing reports are read at the end (D201). Per SKU from the
  report: a message with an ERROR issue is logged `failed` with its issues, the rest `applied`. A feed that
  ends FATAL or outlives `feed_wait_seconds` is logged `failed` for all its SKUs (outcome unknown, not resent).
  What the pusher knows before each feed:
  - up to `feed_fresh_read_max` changes (D65): every SKU read fresh with searchListingsItems (20 a call at
    5/s: ~100 SKUs/s, the binding limit);
  - more (D200): the sales since the plan's read, from searchOrders (createdAfter = the plan's oldest read −
    `feed_sales_lookback_minutes`; complete up to the answer's `createdBefore`, about two minutes before the
    call) and from the ORDER_CHANGE notifications landed since; only the SKUs those orders name are read
    fresh — once for the whole push before its first feed, and again before a part for a SKU notified since
    (D223) — the rest go out as planned. Too many orders for `feed_sales_max_pages` → every SKU is read fresh.

Nothing is resent after an answer that may mean "applied" (`idempotent=False` on PATCH and createFeed): a
resend of an absolute quantity after a sale would resurrect that unit. It is logged `failed`, and the next
cycle plans again from a fresh state. 429 QuotaExceeded and 503 (not processed) are retried by the request
loop.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from ichigen.config import AmazonConfig, Config
from ingestion.amazon import (
    DEFAULT_FULFILLMENT_CHANNEL,
    ENTITY_SPECS,
    LISTINGS_PATH,
    ORDERS_PATH,
    operation_spec,
)
from ingestion.common import format_utc
from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.paging import PageRequest, paginate
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
# searchOrders answers only for orders created at least this long before the call (Amazon's systematic delay;
# a `createdBefore` later than that is refused): reads younger than this are not asked about.
ORDERS_DELAY = timedelta(minutes=2)


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


@dataclass(frozen=True)
class _Sales:
    """What the sales check learnt before a feed push (D200)."""

    since: datetime  # orders created from here on count (the plan's oldest read − the look-back)
    skus: frozenset[str]  # seller SKUs in the orders searchOrders returned


@dataclass(frozen=True)
class _ReadAhead:
    """The sold SKUs of a feed push read once before its first feed (D223)."""

    sold: frozenset[str]  # seller SKUs known sold when they were read
    shown: dict[str, int]  # what Amazon showed for them (a SKU Amazon does not know is absent)
    # True for the first part, which follows the read at once: its notifications need no second look.
    just_read: bool = True


@dataclass
class _Submitted:
    """One feed on its way: its sends and its id, or why it could not be created."""

    sends: list
    feed_id: str | None = None
    error: str | None = None


class AmazonStockPusher:
    def __init__(self, client: ChannelClient, amazon: AmazonConfig, landing: LandingZone | None = None):
        self.client = client
        self.amazon = amazon
        self.landing = landing  # where ORDER_CHANGE notifications land (None: the sales check uses searchOrders only)
        if client.limiter is not None:
            for operation, (rate, burst) in FEED_RATE_LIMITS.items():
                client.limiter.set_operation(operation, operation_spec(rate, burst, amazon.rate_scale))
        self.feed_ids: list[str] = []  # the feeds this pusher created (for the push's caller and tests)
        # What the last feed push's sales check learnt (None: it read every SKU); reported by bench/resync.py.
        self.sales: _Sales | None = None

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

    # -- feeds (D65, D200, D201) ------------------------------------------------------------------------
    def push_by_feeds(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
                      on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        """JSON_LISTINGS_FEEDs of ≤ `feed_max_messages` changes: each part's state learnt and its feed created
        one after another, then every feed's processing report read (D201)."""
        size = self.amazon.feed_max_messages
        parts = [changes[start:start + size] for start in range(0, len(changes), size)]
        knowledge = self.sales = self._feed_knowledge(changes)
        ahead = self._read_ahead(changes, knowledge)
        done: list[list[PushRecord]] = []
        submitted: list[_Submitted] = []
        for part in parts:
            records, sends = self._feed_sends(run_id, part, planned_at, knowledge, ahead)
            done.append(records)
            submitted.append(self._submit(sends))
            if ahead is not None:
                ahead = replace(ahead, just_read=False)
        out: list[PushRecord] = []
        finished = 0
        for records, feed in zip(done, submitted, strict=True):
            out += records + self._feed_records(run_id, feed, planned_at)
            finished += len(records) + len(feed.sends)
            if on_progress:
                on_progress(finished, len(changes))
        return out

    def _feed_knowledge(self, changes: list[PlannedChange]) -> _Sales | None:
        """Learnt once per push before the first feed: the sales check for a large push (D200), else None (every
        part reads its SKUs fresh, D65)."""
        if len(changes) <= self.amazon.feed_fresh_read_max:
            return None
        try:
            return self.sales_since(c.seen_at for c in changes)
        except ChannelError:
            return None  # no order knowledge: read every SKU, as a smaller push does

    def _read_ahead(self, changes: list[PlannedChange], sales: _Sales | None) -> _ReadAhead | None:
        """With a sales check, the SKUs of the whole push that sold since the plan's read (or whose read time is
        unknown), read once before the first feed: ⌈sold / 20⌉ calls rather than one for every part that holds
        a sold SKU. None without a sales check or when the read fails (each part then reads its own)."""
        if sales is None:
            return None
        sold = sales.skus | self.notified_skus(sales.since)
        wanted = [c.target_ref for c in changes if c.seen_at is None or c.target_ref in sold]
        try:
            return _ReadAhead(sold, self.current_quantities(wanted) if wanted else {})
        except ChannelError:
            return None

    def _feed_sends(self, run_id: str, part: list[PlannedChange], planned_at: datetime,
                    sales: _Sales | None, ahead: _ReadAhead | None) -> tuple[list[PushRecord], list[_Fresh]]:
        """Records of the changes that need no message (not on Amazon, already at target, unreadable) and the
        re-targeted changes to send. With a sales check only the SKUs that sold since the plan's read (or whose
        read time is unknown) are read fresh: those known before the first feed were read ahead, and before each
        later part the landed notifications are looked at again so a SKU notified since is read too (D223)."""
        if sales is None:
            fresh_reads, to_read = part, part
        else:
            sold = ahead.sold if ahead is not None and ahead.just_read else \
                sales.skus | self.notified_skus(sales.since)
            fresh_reads = [c for c in part if c.seen_at is None or c.target_ref in sold]
            to_read = fresh_reads if ahead is None else [
                c for c in fresh_reads if c.seen_at is not None and c.target_ref not in ahead.sold]
        records: list[PushRecord] = []
        try:
            shown = self.current_quantities([c.target_ref for c in to_read]) if to_read else {}
        except ChannelError as exc:
            failed = {id(c) for c in to_read}
            records = [_record(run_id, c, c.old_value, c.new_value, "failed", f"fresh read: {type(exc).__name__}: "
                               f"{exc}", planned_at, 0) for c in to_read]
            part = [c for c in part if id(c) not in failed]
            fresh_reads = [c for c in fresh_reads if id(c) not in failed]
            shown = {}
        if ahead is not None:
            shown = {**ahead.shown, **shown}
        read = {id(c) for c in fresh_reads}
        sends: list[_Fresh] = []
        for change in part:
            if id(change) not in read:  # no sale since the plan's read: the plan's quantity is Amazon's
                fresh = _Fresh(change, change.old_value, change.new_value)
            elif change.target_ref not in shown:
                records.append(_record(run_id, change, change.old_value, change.new_value, "failed",
                                       "not found on Amazon (searchListingsItems by SKU)", planned_at, 0))
                continue
            else:
                fresh = _retarget(change, shown[change.target_ref])
            if fresh.value == fresh.current:
                records.append(_record(run_id, change, fresh.current, fresh.value, "applied", None, planned_at, 0))
            else:
                sends.append(fresh)
        return records, sends

    def _submit(self, sends: list) -> _Submitted:
        if not sends:
            return _Submitted(sends)
        try:
            return _Submitted(sends, feed_id=self._submit_feed(sends))
        except ChannelError as exc:
            return _Submitted(sends, error=f"{type(exc).__name__}: {exc}")

    def _feed_records(self, run_id: str, feed: _Submitted, planned_at: datetime) -> list[PushRecord]:
        """One record per message of a submitted feed, from its processing report."""
        if not feed.sends:
            return []
        error = feed.error
        issues: dict[int, list[dict]] = {}
        if feed.feed_id is not None:
            try:
                issues = self._await_report(feed.feed_id)
            except (ChannelError, FeedOutcomeUnknown) as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            return [self._sent_record(run_id, send, "failed", error, planned_at) for send in feed.sends]
        records = []
        for message_id, send in enumerate(feed.sends, 1):
            errors = [i for i in issues.get(message_id) or [] if i.get("severity") == "ERROR"]
            text = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in errors)
            records.append(self._sent_record(run_id, send, "failed" if errors else "applied",
                                             f"feed {feed.feed_id} message {message_id}: {text}" if errors else None,
                                             planned_at))
        return records

    def _sent_record(self, run_id: str, send: _Fresh, status: str, error: str | None,
                     planned_at: datetime) -> PushRecord:
        return _record(run_id, send.change, send.current, send.value, status, error, planned_at, 1)

    # -- the sales check (D200) ------------------------------------------------------------------------
    def sales_since(self, seen: Iterable[datetime | None]) -> _Sales:
        """Seller SKUs in the orders created since the plan's oldest read (− the look-back), by searchOrders.
        When every read is younger than searchOrders can answer for (two minutes), nothing is asked: a sale
        since is only known from a notification. Raises ChannelError when the orders do not fit
        `feed_sales_max_pages` pages, so the caller reads every SKU instead."""
        known = [t for t in seen if t is not None]
        now = datetime.now(UTC)
        since = (min(known) if known else now) - timedelta(minutes=self.amazon.feed_sales_lookback_minutes)
        if since >= now - ORDERS_DELAY:
            return _Sales(since, frozenset())
        params = {"createdAfter": format_utc(since), "marketplaceIds": self.amazon.marketplace_id,
                  "maxResultsPerPage": self.amazon.page_size}
        pager = paginate(self.client, PageRequest("GET", ORDERS_PATH, params=params), ENTITY_SPECS["orders"].paging,
                         operation="searchOrders", max_pages=self.amazon.feed_sales_max_pages, on_limit="stop")
        skus: set[str] = set()
        for page in pager:
            for order in page.items:
                for item in (order or {}).get("orderItems") or []:
                    sku = (item.get("product") or {}).get("sellerSku")
                    if sku:
                        skus.add(sku)
        if pager.truncated:
            raise ChannelError(f"amazon: searchOrders: more orders since {format_utc(since)} than "
                               f"{self.amazon.feed_sales_max_pages} pages", channel="amazon", operation="searchOrders")
        return _Sales(since, frozenset(skus))

    def notified_skus(self, since: datetime) -> frozenset[str]:
        """Seller SKUs of the ORDER_CHANGE notifications landed for events from `since` on (the live worker
        lands them within about a second of the sale; a dropped or late one is simply not here)."""
        if self.landing is None:
            return frozenset()
        with self.landing.reading("amazon/notifications for the sales check"):
            rows = (self.landing.landed("amazon", "notifications").filter(pl.col("event_time") >= since)
                    .select("_raw").collect())
        skus: set[str] = set()
        for raw in rows.get_column("_raw").to_list():
            try:
                summary = json.loads(raw or "")["Payload"]["OrderChangeNotification"]["Summary"]
            except (ValueError, KeyError, TypeError):
                continue
            skus.update(i["SellerSKU"] for i in summary.get("OrderItems") or [] if i.get("SellerSKU"))
        return frozenset(skus)

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
