"""One price sync run for a channel: plan → guard → push (or dry run) → log, field `price` in the push log.

Targets are `mart_channel_price_targets.target_price_tax_incl` (tax-inclusive JPY, the channel's mark-up,
rounding and any active sale window already applied by dbt). The channel's current price is the newest of what
ingestion landed (Shopify product_variants.price, Rakuten listings.standard_price, Amazon listings.price from the
offer, Yahoo listings.price) and what a price push since then set. Guard rails: the stock rails that apply to
any plan (failed build, stale or missing targets) plus the price ones — a move beyond
`max_price_change_fraction`, a price of 0 or above `max_price_jpy` refuses the whole run.

Pushers (one per channel, each by the channel's own price API; DECISIONS.md D90–D94): Shopify
productVariantsBulkUpdate, Rakuten Items API 2.0 PATCH (reverse_sync.rakuten_prices), Amazon patchListingsItem /
JSON_LISTINGS_FEED of purchasable_offer (reverse_sync.amazon_prices), Yahoo updateItems
(reverse_sync.yahoo_prices).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

from ichigen.config import Config
from ingestion import amazon as amazon_ingestion
from ingestion import yahoo as yahoo_ingestion
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.rakuten import ITEMS_API
from ingestion.rakuten import make_client as rakuten_client
from reverse_sync.amazon_prices import AmazonPricePusher
from reverse_sync.plan import Plan, latest_listings, plan_prices, read_price_targets
from reverse_sync.push_log import applied_state
from reverse_sync.rakuten_prices import RakutenPricePusher
from reverse_sync.shopify import ShopifyPricePusher
from reverse_sync.stock import SyncError, SyncResult, apply_plan
from reverse_sync.yahoo_prices import YahooPricePusher, item_of

PRICE_STATE_SCHEMA = {"sku": pl.String, "target_ref": pl.String, "quantity": pl.Int64,
                      "seen_at": pl.Datetime("us", "UTC")}
# The landed entity that holds each channel's shown price (what a price push asset depends on).
PRICE_STATE_ENTITY = {"shopify": "product_variants", "rakuten": "listings", "amazon": "listings",
                      "yahoo": "listings"}


def shopify_price_state(config: Config) -> pl.DataFrame:
    """The price the shop showed per variant (newest landed version), as sku, target_ref, quantity, seen_at."""
    frame = LandingZone(config.landing_dir).select("shopify", "product_variants", "variant_id", "product_id", "sku",
                                                   "price", "updated_at", "_fetched_at")
    if frame.is_empty():
        return pl.DataFrame(schema=PRICE_STATE_SCHEMA)
    newest = frame.sort("updated_at", "_fetched_at").group_by("variant_id", maintain_order=True).last()
    return newest.filter(pl.col("price").is_not_null()).select(
        "sku",
        (pl.col("variant_id") + "@" + pl.col("product_id")).alias("target_ref"),
        # JPY has no minor unit: "1980.0" → 1980 (a fractional price would be a data error worth seeing)
        pl.col("price").cast(pl.Decimal(18, 2)).cast(pl.Int64).alias("quantity"),
        pl.col("_fetched_at").alias("seen_at"),
    )


def matched_skus(config: Config, channel: str) -> pl.DataFrame:
    """listing_id → ERP SKU for one mall, the match dbt made (int_products__channel_listings in the published
    copy: seller SKU, then JAN) — the same match the targets were computed from."""
    if not config.serving_path.exists():
        raise SyncError(f"{channel}: no published serving copy at {config.serving_path}: run a build first")
    con = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        rows = con.execute("select listing_id, sku from intermediate.int_products__channel_listings "
                           "where channel = ? and sku is not null", [channel]).fetchall()
    except duckdb.CatalogException as exc:
        raise SyncError(f"{channel}: the serving copy has no listing match (int_products__channel_listings): "
                        f"{exc}") from None
    finally:
        con.close()
    return pl.DataFrame(rows, schema={"listing_id": pl.String, "sku": pl.String}, orient="row")


def _mall_price_state(config: Config, channel: str, listing_column: str, price: pl.Expr) -> pl.DataFrame:
    """The newest landed listings of a mall as sku, target_ref (the mall's listing id), quantity (the shown
    tax-inclusive price), seen_at. Listings without a price or an ERP match are left out."""
    frame = LandingZone(config.landing_dir).select(channel, "listings", pl.col(listing_column).alias("listing_id"),
                                                   price.alias("quantity"), "_fetched_at")
    if frame.is_empty():
        return pl.DataFrame(schema=PRICE_STATE_SCHEMA)
    newest = frame.sort("_fetched_at").group_by("listing_id", maintain_order=True).last()
    return newest.filter(pl.col("quantity").is_not_null()).join(
        matched_skus(config, channel), on="listing_id", how="inner").select(
        "sku", pl.col("listing_id").alias("target_ref"), pl.col("quantity").cast(pl.Int64),
        pl.col("_fetched_at").alias("seen_at"))


def _jpy_text(column: str) -> pl.Expr:
    # JPY has no minor unit: "1980" / "1980.00" → 1980
    return pl.col(column).cast(pl.Decimal(18, 2)).cast(pl.Int64)


def rakuten_price_state(config: Config) -> pl.DataFrame:
    """Rakuten's variant standardPrice (Items API 2.0, landed rakuten/listings), per manageNumber:variantId."""
    return _mall_price_state(config, "rakuten", "listing_id", _jpy_text("standard_price"))


def amazon_price_state(config: Config) -> pl.DataFrame:
    """Amazon's offer price (landed amazon/listings.price, the JP offer), per seller SKU."""
    return _mall_price_state(config, "amazon", "sku", _jpy_text("price"))


def yahoo_price_state(config: Config) -> pl.DataFrame:
    """Yahoo's price per listing code (landed yahoo/listings from myItemList)."""
    return _mall_price_state(config, "yahoo", "listing_code", pl.col("price").cast(pl.Int64))


PRICE_STATE_READERS: dict[str, Callable[[Config], pl.DataFrame]] = {
    "shopify": shopify_price_state, "rakuten": rakuten_price_state, "amazon": amazon_price_state,
    "yahoo": yahoo_price_state}


def plan_channel_prices(config: Config, channel: str, full: bool = False) -> Plan:
    if channel not in PRICE_CHANNELS:
        raise SyncError(f"price sync for {channel!r} is not built; supported: {PRICE_CHANNELS}")
    targets, manifest = read_price_targets(config.serving_path, channel)
    listings = latest_listings(PRICE_STATE_READERS[channel](config),
                               applied_state(config.push_log_dir, channel, "price"))
    return plan_prices(channel, targets, listings, manifest, full)


def _shopify_price_pusher(config: Config, client: ChannelClient | None) -> ShopifyPricePusher:
    shopify = config.channels.shopify
    return ShopifyPricePusher(client or ChannelClient.for_shopify(shopify), shopify.api_version)


def _rakuten_price_pusher(config: Config, client: ChannelClient | None) -> RakutenPricePusher:
    return RakutenPricePusher(client or rakuten_client(config, api=ITEMS_API))


def _amazon_price_pusher(config: Config, client: ChannelClient | None) -> AmazonPricePusher:
    return AmazonPricePusher(client or amazon_ingestion.make_client(config), config.channels.amazon)


def _yahoo_price_pusher(config: Config, client: ChannelClient | None) -> YahooPricePusher:
    # Yahoo prices an item code, not a sub code: the pusher needs every listed sub code's target (D92)
    targets, _ = read_price_targets(config.serving_path, "yahoo")
    item_targets: dict[str, dict[str, int]] = {}
    for sku, ref in yahoo_price_state(config).select("sku", "target_ref").iter_rows():
        if sku in targets:
            item_targets.setdefault(item_of(ref), {})[ref] = targets[sku].target_price
    return YahooPricePusher(client or yahoo_ingestion.make_client(config), config.channels.yahoo.seller_id,
                            item_targets)


PRICE_PUSHERS = {"shopify": _shopify_price_pusher, "rakuten": _rakuten_price_pusher,
                 "amazon": _amazon_price_pusher, "yahoo": _yahoo_price_pusher}
PRICE_CHANNELS = tuple(PRICE_PUSHERS)


def sync_prices(
    config: Config,
    channel: str = "shopify",
    *,
    dry_run: bool = False,
    client: ChannelClient | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    full: bool = False,
) -> SyncResult:
    return apply_plan(config, plan_channel_prices(config, channel, full), dry_run=dry_run, client=client,
                      on_progress=on_progress, pushers=PRICE_PUSHERS)
