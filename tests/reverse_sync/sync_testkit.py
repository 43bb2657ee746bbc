"""What the reverse-sync tests of every channel share: a hand-published serving copy with stock or price
targets (and, for the malls, dbt's listing ↔ ERP SKU match), deterministic targets, and a mall that briefly
refuses some listings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import duckdb
import httpx

from ichigen.config import Config
from ichigen.publish import BuildReport, publish
from ingestion.ratelimit import reset_channel_limiters
from ingestion.throttle import reset_shared_throttles
from sandbox import start_world
from sandbox.malls import MallListing
from sandbox.world import World

MAX_MOVE = 0.3  # guard_rails.max_price_change_fraction in the price tests


def _publish_targets(config: Config, mart: str, value_column: str, channel: str, targets: dict[str, int],
                     listing_match: Iterable[tuple[str, str | None]] | None) -> None:
    config.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(config.warehouse_path))
    con.execute(f"create or replace table {mart} (channel varchar, sku varchar, {value_column} bigint, explain varchar)")
    con.executemany(f"insert into {mart} values (?, ?, ?, 'test target')",
                    [(channel, sku, value) for sku, value in targets.items()])
    if listing_match is not None:
        con.execute("create schema if not exists intermediate")
        con.execute("create or replace table intermediate.int_products__channel_listings "
                    "(channel varchar, listing_id varchar, sku varchar)")
        con.executemany("insert into intermediate.int_products__channel_listings values (?, ?, ?)",
                        [(channel, listing_id, sku) for listing_id, sku in listing_match])
    con.close()
    publish(config.warehouse_path, config.serving_path, BuildReport(success=True))


def publish_stock_targets(config: Config, channel: str, targets: dict[str, int],
                          listing_match: Iterable[tuple[str, str | None]] | None = None) -> None:
    """Publish, through the real publish step, mart_channel_stock_targets for `channel` and (for the malls) the
    listing match as (listing_id, erp_sku) pairs."""
    _publish_targets(config, "mart_channel_stock_targets", "target_quantity", channel, targets, listing_match)


def publish_price_targets(config: Config, channel: str, targets: dict[str, int],
                          listing_match: Iterable[tuple[str, str | None]] | None = None) -> None:
    """The same for price sync: mart_channel_price_targets (tax-inclusive JPY) and the listing match."""
    _publish_targets(config, "mart_channel_price_targets", "target_price_tax_incl", channel, targets, listing_match)


def shopify_shown(running) -> dict[str, int]:
    """SKU → what the sandbox shop shows as available now (its own view, not ours)."""
    rows = httpx.get(f"{running.shopify_url}/_sandbox/inventory", timeout=10).json()
    return {row["sku"]: row["available"] for row in rows}


def targets_from(before: dict[str, int]) -> dict[str, int]:
    """A deterministic, different quantity for every listed SKU (a few zeros, never negative)."""
    return {sku: (qty + 3) % 7 for sku, qty in sorted(before.items())}


def raised(price: int) -> int:
    """A new price well inside the guard's cap (+10 %, at least +10 yen)."""
    return price + max(10, price // 10)


@contextmanager
def unlisted(world: World, channel: str, listings: list[MallListing]) -> Iterator[None]:
    """The mall does not know these listings for a while (taken down and put back by the shop): a push meets
    the channel's own "unknown listing" answer for them, then they are back as they were."""
    mall = world.mall(channel)
    with world.lock:
        saved = list(mall.listings)
        mall.listings[:] = [s for s in saved if s not in listings]
        for listing in listings:
            mall.by_listing.pop(listing.listing_id, None)
    try:
        yield
    finally:
        with world.lock:
            mall.listings[:] = saved
            mall.by_listing.update({s.listing_id: s for s in listings})


SHOPIFY_TOKEN = "shpat_sandbox"


@contextmanager
def shopify_shop(config: Config, **world) -> Iterator:
    """A sandbox world whose Shopify shop a push test talks to (Plus restore rate, the test's token), started
    after the process-wide limiters and throttles are reset so no earlier test's budget carries over."""
    reset_channel_limiters()
    reset_shared_throttles()
    with start_world(data_dir=config.sandbox_dir, port=0, access_token=SHOPIFY_TOKEN, restore_rate=1000.0,
                     **world) as running:
        yield running
