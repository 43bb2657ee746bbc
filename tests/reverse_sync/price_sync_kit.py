"""Shared pieces of the mall price-sync tests (Rakuten, Amazon, Yahoo): a published serving copy holding price
targets and dbt's listing ↔ ERP SKU match, and a way to make a mall briefly refuse some listings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from ichigen.config import Config
from ichigen.publish import BuildReport, publish
from sandbox.malls import MallListing
from sandbox.world import World

MAX_MOVE = 0.3  # guard_rails.max_price_change_fraction in these tests


def publish_price_targets(config: Config, channel: str, targets: dict[str, int],
                          listings: list[tuple[str, str | None]]) -> None:
    """A serving copy with what price sync reads — mart_channel_price_targets and the listing match
    (listing_id, ERP SKU) — through the real publish."""
    config.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(config.warehouse_path))
    con.execute("create or replace table mart_channel_price_targets "
                "(channel varchar, sku varchar, target_price_tax_incl bigint, explain varchar)")
    con.executemany("insert into mart_channel_price_targets values (?, ?, ?, 'test target')",
                    [(channel, sku, price) for sku, price in targets.items()])
    con.execute("create schema if not exists intermediate")
    con.execute("create or replace table intermediate.int_products__channel_listings "
                "(channel varchar, listing_id varchar, sku varchar)")
    con.executemany("insert into intermediate.int_products__channel_listings values (?, ?, ?)",
                    [(channel, listing_id, sku) for listing_id, sku in listings])
    con.close()
    publish(config.warehouse_path, config.serving_path, BuildReport(success=True))


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
