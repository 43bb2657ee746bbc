"""resync_fraction_of_ceiling_<channel> (target ≥ 0.9): a full stock resync (`full=True` plan, every listed SKU)
of a large catalogue to each channel at the channel's documented limits, as a fraction of the push ceiling in
../shared/design/channels.md ("Push ceilings"). Peer: none.

Per channel the sandbox serves its documented limits and the client runs at the project's configured budget:
- shopify: inventorySetQuantities ≤ 250 a call under the cost bucket (sandbox `restore_rate` as configured,
  100 points/s standard); ceiling ~2,500 SKUs/s.
- rakuten: bulk-upsert ≤ 400 a call, ~1 request/s per API; ceiling ~400 SKUs/s.
- yahoo: setStock ≤ 1,000 codes a call, ~1 request/s; ceiling ~1,000 SKUs/s.
- amazon: JSON_LISTINGS_FEED ≤ 25,000 messages, createFeed 1/120 s (burst 15); ceiling ~208 SKUs/s sustained.
  Amazon processes a feed in minutes; the sandbox's processing delay is compressed to `FEED_PROCESSING_S` (the
  figure therefore leaves out Amazon's processing time, as the ceiling's "plus processing time" does). A
  catalogue of this size is two feeds, well inside createFeed's burst of 15, so once the fresh read no longer
  binds the figure is far above the sustained ceiling.

The sandbox world runs in its own process (`python -m sandbox`), as a channel is never in ours: its simulator's
CPU does not share the client's interpreter lock, and on a loaded machine the two get a scheduler share each.
The plan is built with the real planner (`plan_stock(..., full=True)`) from what each channel shows (the
sandbox's `/_sandbox/` truth endpoints instead of an ingestion run, so the figure is the push alone), and pushed
with the channel's real pusher over real HTTP. Achieved SKUs/s counts the rows the pusher logged `applied`.
Each row reports achieved SKUs/s and the 429s the client was given;
the target is ≥ 0.9 *and* no 429 beyond the first (Shopify's THROTTLED counts as a 429). Rakuten and Yahoo
send deltas with no read before each call (D100), Shopify keeps several calls in flight under its cost bucket
(D101, each call's cost reserved while it is in flight); Amazon's push of more than `feed_fresh_read_max` SKUs
reads fresh only the SKUs that sold since the plan's read (searchOrders and landed notifications, D200) —
reading every SKU (D65) bound it at ~100 SKUs/s (D103).

Quick mode (tests/bench): a small catalogue with every mall's rate, limit and ceiling × `QUICK_SPEED` (time
compression; Shopify runs at its real rates — a small catalogue is a couple of calls), so it finishes in seconds;
full mode: 50,000 SKUs at the real rates (a few minutes, most of it Rakuten's ~1 request/s).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

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
SHOPIFY_BUCKET = 10 * SHOPIFY_RESTORE_RATE  # points the sandbox's bucket holds when full
SHOPIFY_CALL_COST = 10  # a mutation costs 10 points; a call carries up to 250 quantities
SHOPIFY_PER_CALL = 250
TOKEN = "shpat_sandbox"
WORLD_START_TIMEOUT_S = 600.0  # generating a 50k-SKU world on a loaded machine
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class World:
    """The sandbox world running in its own process: each channel's URL."""

    shopify_url: str
    rakuten_url: str
    yahoo_url: str
    amazon_url: str


@contextmanager
def world_process(base: Path, size: dict[str, Any], speed: float) -> Iterator[World]:
    """`python -m sandbox` on free ports with this size's world and limits; stopped with SIGTERM at the end."""
    ready = base / "world-urls.json"
    w = size["world"]
    args = [sys.executable, "-m", "sandbox", "--seed", "13", "--skus", str(w["skus"]),
            "--customers", str(w["customers"]), "--history-days", str(w["history_days"]),
            "--orders-per-day", str(w["orders_per_day"]), "--port", "0", "--data-dir", str(base / "sandbox"),
            "--access-token", TOKEN, "--restore-rate", str(SHOPIFY_RESTORE_RATE),
            "--rakuten-rps", str(1.0 * speed), "--yahoo-requests-per-second", str(1.0 * speed),
            "--amazon-rate-scale", str(speed), "--amazon-feed-processing-seconds", str(FEED_PROCESSING_S / speed),
            "--no-file-drops", "--ready-file", str(ready)]
    log_path = base / "sandbox.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + WORLD_START_TIMEOUT_S
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(encoding="utf-8")[-2000:]
                    raise RuntimeError(f"the sandbox world did not come up (exit {proc.poll()}):\n{tail}")
                time.sleep(0.1)
            urls = json.loads(ready.read_text(encoding="utf-8"))
            yield World(urls["shopify"], urls["rakuten"], urls["yahoo"], urls["amazon"])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _config(base: Path, running: World, speed: float):
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


def _shown(running: World, channel: str) -> dict[str, tuple[str, int]]:
    """ERP SKU → (the channel's reference, quantity shown now), from the sandbox's own truth endpoints."""
    def get(url: str) -> list[dict[str, Any]]:
        response = httpx.get(url, timeout=120)
        response.raise_for_status()
        return response.json()

    if channel == "shopify":  # the world has one location: every level is the one the push sets
        return {row["sku"]: (f"{row['inventory_item_id']}@{row['location_id']}", row["available"])
                for row in get(f"{running.shopify_url}/_sandbox/inventory") if row["sku"]}
    url = {"rakuten": f"{running.rakuten_url}/_sandbox/rakuten/stock",
           "yahoo": f"{running.yahoo_url}/_sandbox/yahoo/stock",
           "amazon": f"{running.amazon_url}/_sandbox/amazon/listings"}[channel]
    return {row["sku"]: (row["listing_id"], row["quantity"]) for row in get(url) if row["sku"]}


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

    now = datetime.now(UTC)  # before the read: what the channel showed is known as of no later than this
    shown = _shown(running, channel)
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
    achieved = applied / seconds if seconds > 0 else 0.0  # a row that failed was not pushed
    speed = 1.0 if channel == "shopify" else speed  # Shopify runs at its real rates in both modes
    ceiling = CEILING_SKUS_PER_S[channel] * speed
    fraction = achieved / ceiling
    beyond_first = max(0, throttled - 1)
    details = {"skus": len(plan.changes), "applied": applied, "converged": converged, "seconds": round(seconds, 2),
               "skus_per_s": round(achieved, 1), "ceiling_skus_per_s": round(ceiling, 1), "speed": speed,
               "http_429": throttled, "http_429_beyond_first": beyond_first, "client_requests": client_stats.requests,
               "client_retries": dict(client_stats.retry_reasons)}
    bound = ""
    if channel == "amazon":
        sales = pusher.sales
        details["fresh_reads"] = "every SKU (D65)" if sales is None else \
            f"SKUs sold since the plan's read only (D200): {len(sales.skus)} from searchOrders"
        bound = f"; {'every SKU read fresh' if sales is None else f'{len(sales.skus)} sold SKUs read fresh'}"
    if channel == "shopify":
        # The ceiling is the sustained rate; a full bucket pays for the first SHOPIFY_BUCKET points at once. The
        # best any client can do for this push: the calls' cost beyond the bucket at the restore rate.
        calls = -(-len(plan.changes) // SHOPIFY_PER_CALL)
        best = max(0.0, calls * SHOPIFY_CALL_COST - SHOPIFY_BUCKET) / SHOPIFY_RESTORE_RATE
        details.update(bucket_bound_s=round(best, 2), of_bucket_bound=round(best / seconds, 3) if seconds else None)
        bound = f"; {best / seconds:.2f} of the best time from a full cost bucket ({best:.1f} s)" if seconds else ""
    return Result(NAME.format(channel=channel), fraction, "of ceiling", (">=", 0.9),
                  notes=f"{applied:,} of {len(plan.changes):,} SKUs applied in {seconds:.1f} s = {achieved:,.1f}/s vs "
                        f"ceiling {ceiling:,.0f}/s{' (×' + format(speed, 'g') + ' time compression)' if speed != 1 else ''}"
                        f"{bound}; {throttled} × 429 ({beyond_first} beyond the first)",
                  details=details, also=(("≤ 1 × 429", throttled <= 1),))


def run(scale: Scale, only: set[str] | None = None) -> list[Result]:
    """One row per channel; `only`: the benchmark names asked for (`python -m bench --only …`)."""
    from ingestion.ratelimit import reset_channel_limiters
    from ingestion.throttle import reset_shared_throttles

    channels = tuple(c for c in CHANNELS if only is None or NAME.format(channel=c) in only)
    size = SIZES[scale]
    speed = size["speed"]
    base = Path(tempfile.mkdtemp(prefix="ichigen-bench-resync-"))
    reset_channel_limiters()
    reset_shared_throttles()
    try:
        with world_process(base, size, speed) as running:
            config = _config(base, running, speed)
            return [resync(running, config, channel, speed) for channel in channels]
    finally:
        reset_channel_limiters()
        reset_shared_throttles()
        shutil.rmtree(base, ignore_errors=True)
