"""One price sync run for a channel: plan → guard → push (or dry run) → log, field `price` in the push log.

Targets are `mart_channel_price_targets.target_price_tax_incl` (tax-inclusive JPY, the channel's rounding and
any active sale window already applied by dbt). The channel's current price is the newest of what ingestion
landed and what a price push since then set. Guard rails: the stock rails that apply to any plan (failed
build, stale or missing targets) plus the price ones — a move beyond `max_price_change_fraction`, a price of
0 or above `max_price_jpy` refuses the whole run.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ichigen.config import Config
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from reverse_sync.plan import Plan, latest_listings, plan_prices, read_price_targets
from reverse_sync.push_log import applied_state
from reverse_sync.shopify import ShopifyPricePusher
from reverse_sync.stock import SyncError, SyncResult, apply_plan


def shopify_price_state(config: Config) -> pl.DataFrame:
    """The price the shop showed per variant (newest landed version), as sku, target_ref, quantity, seen_at."""
    landed = LandingZone(config.landing_dir).landed("shopify", "product_variants")
    frame = landed.select("variant_id", "product_id", "sku", "price", "updated_at", "_fetched_at").collect()
    if frame.is_empty():
        return pl.DataFrame(schema={"sku": pl.String, "target_ref": pl.String, "quantity": pl.Int64,
                                    "seen_at": pl.Datetime("us", "UTC")})
    newest = frame.sort("updated_at", "_fetched_at").group_by("variant_id", maintain_order=True).last()
    return newest.filter(pl.col("price").is_not_null()).select(
        "sku",
        (pl.col("variant_id") + "@" + pl.col("product_id")).alias("target_ref"),
        # JPY has no minor unit: "1980.0" → 1980 (a fractional price would be a data error worth seeing)
        pl.col("price").cast(pl.Decimal(18, 2)).cast(pl.Int64).alias("quantity"),
        pl.col("_fetched_at").alias("seen_at"),
    )


def plan_channel_prices(config: Config, channel: str, full: bool = False) -> Plan:
    if channel not in PRICE_CHANNELS:
        raise SyncError(f"price sync for {channel!r} is not built yet; supported: {PRICE_CHANNELS}")
    targets, manifest = read_price_targets(config.serving_path, channel)
    listings = latest_listings(shopify_price_state(config), applied_state(config.push_log_dir, channel, "price"))
    return plan_prices(channel, targets, listings, manifest, full)


def _shopify_price_pusher(config: Config, client: ChannelClient | None) -> ShopifyPricePusher:
    shopify = config.channels.shopify
    return ShopifyPricePusher(client or ChannelClient.for_shopify(shopify), shopify.api_version)


PRICE_PUSHERS = {"shopify": _shopify_price_pusher}
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
