"""One stock sync run for a channel: plan → guard → push (or dry run) → log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from ichigen.config import Config
from ichigen.publish import last_build
from ingestion import amazon as amazon_ingestion
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.rakuten import INVENTORY_API
from ingestion.rakuten import make_client as rakuten_client
from reverse_sync.amazon import AmazonStockPusher, amazon_listings_state
from reverse_sync.guard import GuardVerdict, check_plan, unpushed_records
from reverse_sync.journal import Journal
from reverse_sync.plan import ChannelListing, Plan, latest_listings, plan_stock, read_stock_targets
from reverse_sync.push_log import PushRecord, applied_state, write_push_log
from reverse_sync.rakuten import LandedStock, RakutenStockPusher
from reverse_sync.shopify import ShopifyRestStockPusher
from reverse_sync.shopify_bulk import ShopifyBulkStockPusher
from reverse_sync.yahoo import make_pusher as make_yahoo_pusher
from reverse_sync.yahoo import yahoo_listings_state

SUPPORTED_CHANNELS = ("shopify", "rakuten", "amazon", "yahoo")
# The landed entity that holds each channel's shown stock (what a stock push asset depends on).
STOCK_STATE_ENTITY = {"shopify": "inventory_levels", "rakuten": "stock", "amazon": "listings", "yahoo": "stock"}


class SyncError(RuntimeError):
    """A sync run could not be planned (missing targets, ambiguous channel state)."""


@dataclass
class SyncResult:
    channel: str
    run_id: str
    dry_run: bool
    planned: int
    unchanged: int
    verdict: GuardVerdict
    records: list[PushRecord] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def applied(self) -> int:
        return self.count("applied")

    @property
    def failed(self) -> int:
        return self.count("failed") + self.count("stale")

    @property
    def refused(self) -> int:
        return self.count("refused")


def shopify_listings_state(config: Config) -> pl.DataFrame:
    """What the shop last showed per inventory item × location, from the landing zone."""
    frame = LandingZone(config.landing_dir).select("shopify", "inventory_levels", "sku", "inventory_item_id",
                                                   "location_id", "available", "_fetched_at")
    location = config.channels.shopify.location_id
    if location is None:
        locations = frame.get_column("location_id").unique().to_list()
        if len(locations) > 1:
            raise SyncError(
                f"shopify: the shop has {len(locations)} locations ({', '.join(sorted(locations)[:5])}); "
                "set channels.shopify.location_id to the one ichigen manages"
            )
    else:
        frame = frame.filter(pl.col("location_id") == location)
    return frame.select(
        "sku",
        (pl.col("inventory_item_id") + "@" + pl.col("location_id")).alias("target_ref"),
        pl.col("available").cast(pl.Int64).alias("quantity"),
        pl.col("_fetched_at").alias("seen_at"),
    )


def rakuten_listings_state(config: Config) -> pl.DataFrame:
    """What Rakuten last showed per manageNumber:variantId (landed stock), with the ERP SKU the warehouse
    matched each listing to (by merchantDefinedSkuId, else JAN: int_products__channel_listings in the
    published serving copy, the same match the targets were computed from)."""
    frame = LandingZone(config.landing_dir).select("rakuten", "stock", "listing_id", "quantity", "_fetched_at")
    con = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        rows = con.execute("select listing_id, sku from intermediate.int_products__channel_listings "
                           "where channel = 'rakuten' and sku is not null").fetchall()
    except duckdb.CatalogException as exc:
        raise SyncError(f"rakuten: the serving copy has no listing match (int_products__channel_listings): {exc}") \
            from None
    finally:
        con.close()
    matched = pl.DataFrame(rows, schema={"listing_id": pl.String, "sku": pl.String}, orient="row")
    return frame.join(matched, on="listing_id", how="inner").select(
        "sku",
        pl.col("listing_id").alias("target_ref"),
        pl.col("quantity").cast(pl.Int64).alias("quantity"),
        pl.col("_fetched_at").alias("seen_at"),
    )


def _shopify_pusher(config: Config, client: ChannelClient | None) -> ShopifyBulkStockPusher | ShopifyRestStockPusher:
    shopify = config.channels.shopify
    client = client or ChannelClient.for_shopify(shopify)
    if shopify.push_via == "rest":  # D114, D115
        return ShopifyRestStockPusher(client, shopify.api_version)
    return ShopifyBulkStockPusher(client, config)  # direct calls, or a bulk mutation above the threshold (D143)


def _amazon_pusher(config: Config, client: ChannelClient | None) -> AmazonStockPusher:
    return AmazonStockPusher(client or amazon_ingestion.make_client(config), config.channels.amazon,
                             LandingZone(config.landing_dir))


def rakuten_landed_stock(config: Config) -> dict[str, LandedStock]:
    """The newest landed stock read per manageNumber:variantId (quantity, the mall's `updated`, when read)."""
    frame = (LandingZone(config.landing_dir).select("rakuten", "stock", "listing_id", "quantity", "updated_at",
                                                    "_fetched_at")
             .sort("_fetched_at").group_by("listing_id", maintain_order=True).last())
    return {row["listing_id"]: LandedStock(int(row["quantity"]), row["updated_at"], row["_fetched_at"])
            for row in frame.iter_rows(named=True)}


def _rakuten_pusher(config: Config, client: ChannelClient | None) -> RakutenStockPusher:
    return RakutenStockPusher(client or rakuten_client(config, api=INVENTORY_API), Journal(config.push_log_dir, "rakuten"),
                              rakuten_landed_stock(config))


def _yahoo_pusher(config: Config, client: ChannelClient | None):
    return make_yahoo_pusher(config, client, yahoo_listings_state(config))


# Per channel: what it shows now (sku, target_ref, quantity, seen_at) and how to push to it.
LISTING_STATE_READERS: dict[str, Callable[[Config], pl.DataFrame]] = {
    "shopify": shopify_listings_state, "rakuten": rakuten_listings_state, "amazon": amazon_listings_state,
    "yahoo": yahoo_listings_state}
PUSHERS = {"shopify": _shopify_pusher, "rakuten": _rakuten_pusher, "amazon": _amazon_pusher, "yahoo": _yahoo_pusher}


def plan_channel_stock(config: Config, channel: str, full: bool = False) -> Plan:
    if channel not in SUPPORTED_CHANNELS:
        raise SyncError(f"stock sync for {channel!r} is not built yet; supported: {SUPPORTED_CHANNELS}")
    targets, manifest = read_stock_targets(config.serving_path, channel)
    return plan_stock(channel, targets, known_listings(config, channel), manifest, full)


def known_listings(config: Config, channel: str) -> dict[str, ChannelListing]:
    """What the channel last showed per SKU: the newer of landed state and our own applied pushes."""
    landed = LISTING_STATE_READERS[channel](config)
    return latest_listings(landed, applied_state(config.push_log_dir, channel, "stock"))


def sync_stock(
    config: Config,
    channel: str = "shopify",
    *,
    dry_run: bool = False,
    client: ChannelClient | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    full: bool = False,
) -> SyncResult:
    return apply_plan(config, plan_channel_stock(config, channel, full), dry_run=dry_run, client=client,
                      on_progress=on_progress)


def apply_plan(
    config: Config,
    plan: Plan,
    *,
    dry_run: bool = False,
    client: ChannelClient | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    pushers: dict[str, Callable[[Config, ChannelClient | None], Any]] | None = None,
) -> SyncResult:
    """Guard a plan, then push it (or log it as a dry run / refusal) and write the push log. Shared by the
    scheduled stock sync, the fast path (reverse_sync.fast_path) and price sync (which passes its own
    `pushers`), so all go through the same guards."""
    channel = plan.channel
    verdict = check_plan(plan, config.guard_rails, last_build(config.warehouse_path))
    result = SyncResult(channel, plan.run_id, dry_run, len(plan.changes), plan.unchanged, verdict)

    if not verdict.allowed or dry_run:
        result.records = unpushed_records(plan, verdict)
        write_push_log(config.push_log_dir, result.records)
        return result

    if plan.is_empty:
        return result
    pusher = (pushers or PUSHERS)[channel](config, client)
    result.records = pusher.push(plan.run_id, plan.changes, plan.planned_at, on_progress)
    write_push_log(config.push_log_dir, result.records)
    logged = getattr(pusher, "logged", None)  # delta pushers: the journal's calls are settled now (D100)
    if logged is not None:
        logged(plan.run_id)
    return result

