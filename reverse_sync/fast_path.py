"""The stock fast path: push the effect of new orders to every channel in seconds, between full builds (D60).

The scheduled cycle (ingest → dbt build → publish → sync) reconciles everything, but costs minutes (a launched
Dagster run starts 16–20 s late, dbt 4–7 s before its first model). The fast path is one long-running worker:

    worker = FastPathWorker(config, tick_seconds=1.0, on_tick=print).start()
    ...
    worker.stop()

Each tick (bounded in time; the loop bounded in ticks and seconds):
1. land what changed, one `ingestion.live.LiveLanding` step per channel (D80): Shopify webhook events followed
   up by `fetch_changed` (D13), Amazon ORDER_CHANGE notifications (D27) when a queue is configured, and the
   incremental order polls, each at most once per `poll_every[channel]` seconds (the channel's budget);
2. read every landed order that the published build does not know (its key is not in the serving copy's
   `fct_orders`) and is not cancelled: their units (a bundle: its components too) are "unpublished sales";
3. adjusted target = published target − unpublished sales of that SKU, never below 0; a bundle also never above
   what its components' adjusted targets allow; only SKUs with unpublished sales are planned;
4. plan against what each channel last showed (landed state or our applied pushes, D7) — on the channel that
   took an order, that is lowered by the order's units when the order came after our last look, because the
   channel itself already took them off — then push through the same guards, pushers and push log as the
   scheduled sync (`reverse_sync.stock.apply_plan`), run ids marked `fastpath`.

Recomputing from the published targets every tick makes the worker idempotent: a tick with nothing new plans
nothing, and a new publish (which now counts those orders) simply replaces the base.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from ichigen.config import Config
from ichigen.publish import published_version
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.landing_lock import LandingLockTimeout
from ingestion.live import CLIENT_MAKERS, LiveLanding
from reverse_sync.plan import ChannelListing, Plan, StockTarget, new_run_id, plan_stock
from reverse_sync.stock import SUPPORTED_CHANNELS, SyncError, SyncResult, apply_plan, known_listings

log = logging.getLogger("ichigen.fast_path")

FAST_PATH_MARK = "fastpath"  # in every run id the worker writes to the push log


def _shopify_lines(orders: pl.LazyFrame) -> pl.LazyFrame:
    return orders.select("order_id", pl.col("created_at"), pl.col("cancelled_at").is_not_null().alias("cancelled"),
                         pl.col("line_items").alias("line")).explode("line").select(
        "order_id", "created_at", "cancelled", pl.col("line").struct.field("variant_id").alias("listing_id"),
        pl.col("line").struct.field("current_quantity").alias("units"))


def _rakuten_lines(orders: pl.LazyFrame) -> pl.LazyFrame:
    return orders.select(pl.col("order_number").alias("order_id"), pl.col("order_datetime").alias("created_at"),
                         (pl.col("order_progress") == 900).alias("cancelled"),
                         pl.col("items").alias("line")).explode("line").select(
        "order_id", "created_at", "cancelled",
        pl.concat_str([pl.col("line").struct.field("manage_number"), pl.col("line").struct.field("variant_id")],
                      separator=":").alias("listing_id"),
        pl.col("line").struct.field("units").alias("units"))


def _yahoo_lines(orders: pl.LazyFrame) -> pl.LazyFrame:
    sub = pl.col("line").struct.field("sub_code")
    return orders.select("order_id", pl.col("order_time").alias("created_at"),
                         (pl.col("order_status") == 4).alias("cancelled"),  # 4 = キャンセル (D30)
                         pl.col("items").alias("line")).explode("line").select(
        "order_id", "created_at", "cancelled",
        # ingestion.yahoo.listing_code: "item:sub", or the item code alone
        pl.when(sub.is_null() | (sub == "")).then(pl.col("line").struct.field("item_id"))
        .otherwise(pl.concat_str([pl.col("line").struct.field("item_id"), sub], separator=":")).alias("listing_id"),
        pl.col("line").struct.field("quantity").alias("units"))


def _amazon_lines(orders: pl.LazyFrame) -> pl.LazyFrame:
    return orders.select("order_id", "created_at", (pl.col("fulfillment_status") == "CANCELLED").alias("cancelled"),
                         pl.col("order_items").alias("line")).explode("line").select(
        "order_id", "created_at", "cancelled", pl.col("line").struct.field("seller_sku").alias("listing_id"),
        pl.col("line").struct.field("quantity_ordered").alias("units"))


# Per channel: landed orders (newest version of each) → order_id, created_at, cancelled, listing_id, units.
ORDER_LINE_READERS: dict[str, Callable[[pl.LazyFrame], pl.LazyFrame]] = {
    "shopify": _shopify_lines, "rakuten": _rakuten_lines, "yahoo": _yahoo_lines, "amazon": _amazon_lines}
ORDER_KEYS = {"shopify": "order_id", "rakuten": "order_number", "yahoo": "order_id", "amazon": "order_id"}


@dataclass(frozen=True)
class PublishedState:
    """What the last published build knows: targets per channel, the listing ↔ SKU match, bundle components
    and the keys of every order it counted."""

    targets: dict[str, dict[str, int]]  # channel → sku → target quantity
    manifest: dict | None
    sku_of_listing: dict[tuple[str, str], str]  # (channel, listing_id) → ERP SKU
    components: dict[str, list[tuple[str, int]]]  # bundle SKU → [(component SKU, units per bundle)]
    order_keys: frozenset[tuple[str, str]]  # (channel, order_id) in fct_orders


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:
        return []


def read_published(config: Config, channels: Iterable[str]) -> PublishedState:
    """The published serving copy's targets and what the fast path needs beside them, read through one
    read-only connection so they come from one published version."""
    if not config.serving_path.exists():
        raise SyncError(f"fast path: no published serving copy at {config.serving_path}")
    wanted = tuple(channels)
    manifest = published_version(config.serving_path)
    con = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        try:
            target_rows = con.execute("select channel, sku, target_quantity from mart_channel_stock_targets").fetchall()
            keys = con.execute("select channel, order_id from fct_orders").fetchall()
        except duckdb.CatalogException as exc:
            # Without the published order keys we cannot tell new orders from counted ones: refuse, never guess.
            raise SyncError(f"fast path: the serving copy lacks what the fast path reads ({exc})") from None
        listings = _rows(con, "select channel, listing_id, sku from intermediate.int_products__channel_listings "
                              "where sku is not null")
        bundles = _rows(con, "select bundle_sku, component_sku, component_quantity "
                             "from intermediate.int_products__bundle_components")
    finally:
        con.close()
    targets: dict[str, dict[str, int]] = {channel: {} for channel in wanted}
    for channel, sku, quantity in target_rows:
        if channel in targets:
            targets[channel][sku] = int(quantity)
    components: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for bundle, component, quantity in bundles:
        components[bundle].append((component, int(quantity)))
    return PublishedState(targets, manifest, {(c, lid): sku for c, lid, sku in listings}, dict(components),
                          frozenset((c, str(o)) for c, o in keys))


@dataclass(frozen=True)
class UnpublishedSale:
    channel: str
    order_id: str
    sku: str
    units: int
    created_at: datetime


def unpublished_sales(landing: LandingZone, published: PublishedState, channels: Iterable[str]) -> list[UnpublishedSale]:
    """Open order lines landed since the published build (orders it does not know), newest version per order."""
    sales: list[UnpublishedSale] = []
    for channel in channels:
        with landing.reading(f"fast path: {channel} orders"):  # a compaction waits until these are read (D160)
            if not landing.batch_files(channel, "orders"):  # nothing landed yet: no columns to read, no sales
                continue
            key = ORDER_KEYS[channel]
            newest = landing.landed(channel, "orders").sort("_fetched_at").group_by(key, maintain_order=True).last()
            lines = ORDER_LINE_READERS[channel](newest).filter(~pl.col("cancelled") & (pl.col("units") > 0)).collect()
        for row in lines.iter_rows(named=True):
            if (channel, str(row["order_id"])) in published.order_keys:
                continue
            sku = published.sku_of_listing.get((channel, row["listing_id"]))
            if sku is None:  # a listing the build matched to nothing has no target either
                continue
            sales.append(UnpublishedSale(channel, str(row["order_id"]), sku, int(row["units"]), row["created_at"]))
    return sales


def adjusted_targets(published: PublishedState, sales: list[UnpublishedSale]) -> dict[str, dict[str, int]]:
    """channel → sku → adjusted target, for the SKUs the unpublished sales touch (D60's rule):
    target − units sold of the SKU (a sold bundle's units count against its components too), never below 0; a
    bundle touched through a component is also capped at min(component adjusted target // units per bundle)."""
    sold: dict[str, int] = defaultdict(int)
    for sale in sales:
        sold[sale.sku] += sale.units
        for component, per_bundle in published.components.get(sale.sku, ()):
            sold[component] += sale.units * per_bundle
    touched_bundles = {b for b, parts in published.components.items() if any(c in sold for c, _ in parts)}
    adjusted: dict[str, dict[str, int]] = {}
    for channel, targets in published.targets.items():
        out = {sku: max(targets[sku] - units, 0) for sku, units in sold.items() if sku in targets}
        for bundle in touched_bundles & targets.keys():
            caps = [out.get(c, targets.get(c, 0)) // q for c, q in published.components[bundle] if c in targets and q]
            out[bundle] = min([out.get(bundle, targets[bundle]), *caps])
        adjusted[channel] = out
    return adjusted


def expected_now(listings: dict[str, ChannelListing], sales: list[UnpublishedSale],
                 channel: str) -> dict[str, ChannelListing]:
    """What the channel shows now by our account: its last known quantity minus the units it sold itself after we
    last looked (an order stamped in the same second as our look counts as before it: at worst the fast path
    under-shows by those units until the next full sync; it never shows a sold unit)."""
    out = dict(listings)
    for sale in sales:
        known = out.get(sale.sku)
        if sale.channel == channel and known is not None and sale.created_at > known.seen_at:
            out[sale.sku] = replace(known, quantity=max(known.quantity - sale.units, 0))
    return out


def plan_fast(channel: str, published: PublishedState, wanted: dict[str, int],
              listings: dict[str, ChannelListing]) -> Plan:
    """A stock plan for only the touched SKUs; the guard's zeroed fraction still counts the whole catalogue."""
    targets = {sku: StockTarget(sku, qty, "fast path: published target − unpublished sales")
               for sku, qty in wanted.items()}
    plan = plan_stock(channel, targets, listings, published.manifest)
    plan.run_id = new_run_id(f"{channel}-{FAST_PATH_MARK}")
    plan.listed = len(published.targets.get(channel, {}).keys() & listings.keys())
    return plan


@dataclass
class TickResult:
    """What one tick did: rows landed per channel/entity, unpublished sales seen, and the pushes."""

    started_at: datetime
    seconds: float = 0.0
    landing_seconds: float = 0.0
    skipped: bool = False  # nothing new since the last tick: no plan, no channel call
    landed: dict[str, int] = field(default_factory=dict)
    unpublished_orders: int = 0
    skus: list[str] = field(default_factory=list)
    pushes: dict[str, SyncResult] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return sum(r.applied for r in self.pushes.values())

    @property
    def planned(self) -> int:
        return sum(r.planned for r in self.pushes.values())


class FastPathWorker:
    """Lands, adjusts and pushes on a tick; `tick()` runs one step, `start()`/`stop()` run them on a thread.

    `land_from`: channels whose orders the worker lands (others are only pushed to); `poll_every`: seconds
    between incremental order polls per channel (Rakuten and Yahoo at their budget; 0 = every tick).
    `max_ticks`/`max_seconds` bound the loop; `on_tick` receives every TickResult."""

    def __init__(self, config: Config, *, channels: Iterable[str] = SUPPORTED_CHANNELS,
                 land_from: Iterable[str] | None = None, tick_seconds: float = 1.0,
                 poll_every: dict[str, float] | None = None, max_ticks: int = 1_000_000,
                 max_seconds: float = 7 * 24 * 3600.0, on_tick: Callable[[TickResult], None] | None = None,
                 shopify_webhooks: bool = False):
        self.config = config
        self.channels = tuple(channels)
        unknown = set(self.channels) - set(SUPPORTED_CHANNELS)
        if unknown:
            raise SyncError(f"fast path: no stock push for {sorted(unknown)}")
        # A channel switched off (Yahoo by default until the store is connected) is neither landed nor pushed to:
        # it has no landed orders to read, and nothing of ours should change its stock.
        self.channels = tuple(c for c in self.channels if getattr(config.channels, c).enabled)
        self.land_from = tuple(c for c in (self.channels if land_from is None else land_from)
                               if getattr(config.channels, c).enabled)
        self.tick_seconds = tick_seconds
        self.poll_every = {c: 0.0 for c in self.land_from} | (poll_every or {})
        self.max_ticks, self.max_seconds = max_ticks, max_seconds
        self.on_tick = on_tick
        self.shopify_webhooks = shopify_webhooks
        self.landing = LandingZone(config.landing_dir)
        # One client per channel for the worker's life, shared by its polls and pushes: a new httpx client costs
        # ~40 ms (TLS context) and Amazon's an LWA token exchange, which a tick every second cannot afford.
        self.clients: dict[str, ChannelClient] = {}
        # Landing is ingestion's (pushes, then polls when due); the worker calls one step per channel per tick.
        self.live = LiveLanding(config, self.land_from, landing=self.landing, poll_every=self.poll_every,
                                shopify_webhooks=shopify_webhooks, clients=self.client, wait_seconds=0)
        self._pool = ThreadPoolExecutor(max_workers=len(SUPPORTED_CHANNELS), thread_name_prefix="fast-path")
        self._last_seen: tuple | None = None  # (published version, unpublished sales) the last clean tick pushed
        self.ticks = 0
        self.results: list[TickResult] = []  # the last 100
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def client(self, channel: str) -> ChannelClient:
        if channel not in self.clients:
            self.clients[channel] = CLIENT_MAKERS[channel](self.config)
        return self.clients[channel]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()
        self._pool.shutdown(wait=True)

    # ----------------------------------------------------------------------------------------- landing
    def _each_channel(self, what: str, channels: Iterable[str], work: Callable[[str], Any],
                      result: TickResult) -> dict[str, Any]:
        """`work(channel)` for every channel at once (each waits on its own API and rate limit, so threads
        overlap them); a channel that raises is reported in `result.errors` and the others go on."""
        futures = {channel: self._pool.submit(work, channel) for channel in channels}
        done: dict[str, Any] = {}
        for channel, future in futures.items():
            try:
                done[channel] = future.result()
            except Exception as exc:  # noqa: BLE001 — one channel's outage must not stop the others
                result.errors.append(f"{what} {channel}: {type(exc).__name__}: {exc}")
        return done

    def _push_channel(self, channel: str, published: PublishedState, wanted: dict[str, int],
                      sales: list[UnpublishedSale]) -> SyncResult | None:
        listings = expected_now(known_listings(self.config, channel), sales, channel)
        plan = plan_fast(channel, published, wanted, listings)
        return None if plan.is_empty else apply_plan(self.config, plan, client=self.client(channel))

    # ----------------------------------------------------------------------------------------- one tick
    def tick(self) -> TickResult:
        result = TickResult(datetime.now(UTC))
        clock = time.monotonic()
        for landed in self._each_channel("land", self.land_from, self.live.land, result).values():
            result.landed.update(landed)
        result.landing_seconds = time.monotonic() - clock
        try:
            published = read_published(self.config, self.channels)
            sales = unpublished_sales(self.landing, published, self.land_from)
        except (SyncError, FileNotFoundError, LandingLockTimeout) as exc:  # reported; the next tick retries
            result.errors.append(str(exc))
            return self._done(result, clock)
        result.unpublished_orders = len({(s.channel, s.order_id) for s in sales})
        seen = ((published.manifest or {}).get("version"), frozenset(sales))
        if seen == self._last_seen:
            result.skipped = True
            return self._done(result, clock)
        adjusted = adjusted_targets(published, sales)
        result.skus = sorted({sku for wanted in adjusted.values() for sku in wanted})
        pushed = self._each_channel(
            "push", [c for c in self.channels if adjusted.get(c)],
            lambda channel: self._push_channel(channel, published, adjusted[channel], sales), result)
        result.pushes = {channel: push for channel, push in pushed.items() if push is not None}
        clean = not result.errors and all(p.verdict.allowed and p.applied == p.planned for p in result.pushes.values())
        # A tick that pushed everything it planned need not plan again until something changes; otherwise retry.
        self._last_seen = seen if clean else None
        return self._done(result, clock)

    def _done(self, result: TickResult, clock: float) -> TickResult:
        result.seconds = time.monotonic() - clock
        self.ticks += 1
        self.results = [*self.results[-99:], result]
        for error in result.errors:
            log.warning("fast path: %s", error)
        if self.on_tick is not None:
            self.on_tick(result)
        return result

    # ----------------------------------------------------------------------------------------- the loop
    def run(self) -> int:
        """Tick until stopped, `max_ticks` or `max_seconds`; returns the ticks run."""
        deadline = time.monotonic() + self.max_seconds
        ran = 0
        while ran < self.max_ticks and time.monotonic() < deadline and not self._stop.is_set():
            began = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 — the worker outlives a bad tick; the error is logged
                log.exception("fast path tick failed")
            ran += 1
            self._stop.wait(max(0.0, self.tick_seconds - (time.monotonic() - began)))
        return ran

    def start(self) -> FastPathWorker:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="ichigen-fast-path", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.close()
