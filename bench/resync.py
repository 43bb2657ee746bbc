"""resync_fraction_of_ceiling_<channel> (target ≥ 0.9): a full stock resync (`full=True` plan, every listed SKU)
of a large catalogue to each channel at the channel's documented limits, as a fraction of the push ceiling in
../shared/design/channels.md ("Push ceilings"). Peer: none.

Per channel the sandbox serves its documented limits and the client runs at the project's configured budget:
- shopify: inventorySetQuantities ≤ 250 a call under the cost bucket (sandbox `restore_rate` as configured,
  100 points/s standard); ceiling ~2,500 SKUs/s.
- rakuten: bulk-upsert ≤ 400 a call, ~1 request/s per API; ceiling ~400 SKUs/s.
- yahoo: setStock ≤ 1,000 codes a call, ~1 request/s; ceiling ~1,000 SKUs/s.
- amazon: JSON_LISTINGS_FEED ≤ 25,000 messages, createFeed 1/120 s (burst 15); ceiling ~208 SKUs/s. Amazon
  processes a feed in minutes; the sandbox's processing delay is compressed to `FEED_PROCESSING_S` (the
  figure therefore leaves out Amazon's processing time, as the ceiling's "plus processing time" does).

The plan is built with the real planner (`plan_stock(..., full=True)`) from what each channel shows (the
sandbox's own listing state instead of an ingestion run, so the figure is the push alone), and pushed with the
channel's real pusher over real HTTP. Each row reports achieved SKUs/s and the 429s the client was given;
the target is ≥ 0.9 *and* no 429 beyond the first (Shopify's THROTTLED counts as a 429). Rakuten and Yahoo
send deltas with no read before each call (D100), Shopify keeps several calls in flight under its cost bucket
(D101); Amazon still reads every SKU fresh before its feed (searchListingsItems, D65), which binds it at
~100 SKUs/s (D103).

Quick mode (tests/bench): a small catalogue with every mall's rate, limit and ceiling × `QUICK_SPEED` (time
compression; Shopify runs at its real rates — a small catalogue is a couple of calls), so it finishes in seconds; full mode: 50,000 SKUs at the real rates (several minutes: Amazon's
fresh reads alone take ~500 s).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import Result, Scale, timed

NAME = "resync_fraction_of_ceiling_{channel}"
CHANNELS = ("shopify", "rakuten", "yahoo", "amazon")
CEILING_SKUS_PER_S = {"shopify": 2500.0, "rakuten": 400.0, "yahoo": 1000.0, "amazon": 25_000 / 120}
SIZES: dict[str, dict[str, Any]] = {
    "full": {"world": {"skus": 50_000, "customers": 200, "history_days": 1, "orders_per_day": 20}, "speed": 1.0},
    "quick": {"world": {"skus": 400, "customers": 20, "history_days": 1, "orders_per_day": 5}, "speed": 20.0},
}
QUICK_SPEED = SIZES["quick"]["speed"]
FEED_PROCESSING_S = 2.0  # Amazon: minutes; compressed here (divided by the speed in quick mode)
SHOPIFY_RESTORE_RATE = 100.0  # points/s, the sandbox's and Shopify standard's restore rate
TOKEN = "shpat_sandbox"


def _config(base: Path, running, speed: float):
    from ichigen.config import load_config

    return load_config().with_overrides(**{
        "base_dir": str(base), "paths.landing": "landing", "paths.warehouse": "warehouse/warehouse.duckdb",
        "paths.serving": "serving/ichigen.duckdb", "paths.push_log": "push_log", "paths.sandbox": "sandbox",
        "paths.dagster_home": "dagster",
        "channels.shopify.base_url": running.shopify_url, "channels.shopify.access_token": TOKEN,
        # The ceiling is that of direct inventorySetQuantities calls; a bulk mutation (D143) runs on Shopify's
        # side at a pace the sandbox cannot stand for, so this bench measures the direct path at every size.
        "channels.shopify.push_bulk_threshold": 0,
        "channels.rakuten.base_url": running.rakuten_url, "channels.yahoo.base_url": running.yahoo_url,
        "channels.amazon.base_url": running.amazon_url,
        "channels.amazon.token_url": f"{running.amazon_url}/auth/o2/token",
        # The project's client budgets, × speed (time compression in quick mode).
        "channels.shopify.requests_per_second": load_config().channels.shopify.requests_per_second,
        "channels.rakuten.requests_per_second": load_config().channels.rakuten.requests_per_second * speed,
        "channels.yahoo.requests_per_second": load_config().channels.yahoo.requests_per_second * speed,
        "channels.amazon.rate_scale": speed,
        "channels.amazon.requests_per_second": load_config().channels.amazon.requests_per_second * speed,
        "channels.amazon.feed_poll_seconds": FEED_PROCESSING_S / speed / 4,
        "channels.amazon.feed_wait_seconds": 600.0,
    })


def _shown(running, channel: str) -> dict[str, tuple[str, int]]:
    """ERP SKU → (the channel's reference, quantity shown now), from the sandbox's own state."""
    world = running.world
    with world.lock:
        if channel == "shopify":
            by_item = {v.inventory_item_id: v.sku for v in world.variants}
            location = world.locations[0].id
            return {by_item[item]: (f"gid://shopify/InventoryItem/{item}@gid://shopify/Location/{location}",
                                    level.available)
                    for (item, loc), level in world.levels.items() if loc == location and item in by_item}
        return {s.erp_sku: (s.listing_id, s.quantity) for s in world.mall(channel).listings if s.erp_sku}


def _pusher(config, channel: str):
    from reverse_sync.stock import PUSHERS
    from reverse_sync.yahoo import YahooStockPusher, api

    if channel == "yahoo":  # no landed reads in this bench: nothing is blocked by an earlier unknown outcome
        return YahooStockPusher(api.make_client(config), config, {})
    return PUSHERS[channel](config, None)


def _rate_limited(stats) -> int:
    """429s (and Shopify's THROTTLED answers, its 429 in a 200) the client was given, from its retry log."""
    return sum(n for reason, n in stats.retry_reasons.items() if reason in ("http_429", "throttled"))


def resync(running, config, channel: str, speed: float) -> Result:
    from reverse_sync.plan import ChannelListing, StockTarget, plan_stock

    shown = _shown(running, channel)
    now = datetime.now(UTC)
    listings = {sku: ChannelListing(sku, ref, qty, now) for sku, (ref, qty) in shown.items()}
    targets = {sku: StockTarget(sku, (qty + 3) % 9, "bench") for sku, (_ref, qty) in shown.items()}
    plan = plan_stock(channel, targets, listings, None, full=True)
    pusher = _pusher(config, channel)
    try:
        with timed() as elapsed:
            records = pusher.push(plan.run_id, plan.changes, plan.planned_at)
        seconds = elapsed()
        client_stats = pusher.client.stats.snapshot()
    finally:
        pusher.client.close()
    applied = sum(1 for r in records if r.status == "applied")
    after = _shown(running, channel)
    converged = sum(1 for sku, t in targets.items() if after[sku][1] == t.target_quantity)
    throttled = _rate_limited(client_stats)
    achieved = len(plan.changes) / seconds if seconds > 0 else 0.0
    speed = 1.0 if channel == "shopify" else speed  # Shopify runs at its real rates in both modes
    ceiling = CEILING_SKUS_PER_S[channel] * speed
    fraction = achieved / ceiling
    beyond_first = max(0, throttled - 1)
    details = {"skus": len(plan.changes), "applied": applied, "converged": converged, "seconds": round(seconds, 2),
               "skus_per_s": round(achieved, 1), "ceiling_skus_per_s": round(ceiling, 1), "speed": speed,
               "http_429": throttled, "http_429_beyond_first": beyond_first, "client_requests": client_stats.requests,
               "client_retries": dict(client_stats.retry_reasons)}
    return Result(NAME.format(channel=channel), fraction, "of ceiling", (">=", 0.9),
                  notes=f"{len(plan.changes):,} SKUs in {seconds:.1f} s = {achieved:,.1f}/s vs ceiling "
                        f"{ceiling:,.0f}/s{' (×' + format(speed, 'g') + ' time compression)' if speed != 1 else ''}"
                        f"; {applied:,} applied; {throttled} × 429 ({beyond_first} beyond the first)",
                  details=details, also=(("≤ 1 × 429", throttled <= 1),))


def run(scale: Scale, channels: tuple[str, ...] = CHANNELS) -> list[Result]:
    from ingestion.ratelimit import reset_channel_limiters
    from sandbox import start_world
    from sandbox.amazon import AmazonSettings
    from sandbox.rakuten import RakutenSettings

    size = SIZES[scale]
    speed = size["speed"]
    base = Path(tempfile.mkdtemp(prefix="ichigen-bench-resync-"))
    reset_channel_limiters()
    try:
        with start_world(data_dir=base / "sandbox", seed=13, port=0, access_token=TOKEN, drop_files=False,
                         restore_rate=SHOPIFY_RESTORE_RATE, yahoo_requests_per_second=1.0 * speed,
                         rakuten=RakutenSettings(requests_per_second=1.0 * speed),
                         amazon_settings=AmazonSettings(rate_scale=speed,
                                                        feed_processing_seconds=FEED_PROCESSING_S / speed),
                         **size["world"]) as running:
            config = _config(base, running, speed)
            return [resync(running, config, channel, speed) for channel in channels]
    finally:
        reset_channel_limiters()
        shutil.rmtree(base, ignore_errors=True)
