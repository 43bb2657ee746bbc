"""What the stock-sync tests of every channel share: a hand-published serving copy and deterministic targets."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from ichigen.config import Config
from ichigen.publish import BuildReport, publish


def publish_stock_targets(config: Config, channel: str, targets: dict[str, int],
                          listing_match: Iterable[tuple[str, str]] | None = None) -> None:
    """Publish, through the real publish step, a serving copy with what reverse sync reads for `channel`: the
    targets and, for the malls, dbt's listing ↔ ERP SKU match as (listing_id, erp_sku) pairs."""
    config.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(config.warehouse_path))
    con.execute("create or replace table mart_channel_stock_targets "
                "(channel varchar, sku varchar, target_quantity bigint, explain varchar)")
    con.executemany("insert into mart_channel_stock_targets values (?, ?, ?, 'test target')",
                    [(channel, sku, quantity) for sku, quantity in targets.items()])
    if listing_match is not None:
        con.execute("create schema if not exists intermediate")
        con.execute("create or replace table intermediate.int_products__channel_listings "
                    "(channel varchar, listing_id varchar, sku varchar)")
        con.executemany("insert into intermediate.int_products__channel_listings values (?, ?, ?)",
                        [(channel, listing_id, sku) for listing_id, sku in listing_match])
    con.close()
    publish(config.warehouse_path, config.serving_path, BuildReport(success=True))


def targets_from(before: dict[str, int]) -> dict[str, int]:
    """A deterministic, different quantity for every listed SKU (a few zeros, never negative)."""
    return {sku: (qty + 3) % 7 for sku, qty in sorted(before.items())}
