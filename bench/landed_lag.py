"""landed_lag_p95_s_<channel>: sale → landed latency per channel, with the order simulator on all four channels
and every channel at its documented request budget (channels.md, ichigen.toml), not the raised rates of the
stock-lag bench.

Lag of an order = from the moment a sandbox channel accepted it (the world's `order_created`, under its lock)
to the moment a landed `<channel>/orders` batch containing it appeared in the landing zone (a watcher lists
the landing folders every `scan_every` s; a batch is visible only once renamed, so what it sees is committed).
The order must be in the channel's orders entity — the rows the models read — not only in an event.

Two landings of the same world run side by side, each with its own landing zone, through `ingestion.live`:
- **live** (the product's path): Shopify through its webhook receiver (ingestion.webhooks, subscribed to the
  sandbox shop; a landed event wakes the Shopify loop, which fetches the named orders), Amazon through
  ORDER_CHANGE read from a moto SQS queue (long-polled, landed, deleted, getOrder), Rakuten and Yahoo through
  their incremental polls back to back at their budgets (Rakuten 0.95 requests/s per API, Yahoo 0.9/s per
  store: `BUDGET_POLL_EVERY`). Shopify's and Amazon's polls are off here, so their figures are the pushes'.
- **polls only** (the peer): Shopify and Amazon with their pushes off — Shopify's incremental poll every
  `peer_poll_every["shopify"]` s, Amazon's searchOrders every 180 s (its sustained budget, 0.0056/s), which
  also only returns orders updated ≥ 2 minutes ago.

Targets: Shopify and Amazon p95 < 5 s through the pushes; Rakuten and Yahoo "within the poll budget", stated as
poll interval + one poll round trip at the channel's rate (2 requests: the search and one detail call) — an
order placed just after a poll's search waits for the next one and its detail call. Orders not landed by the
end (after `drain` s without new orders) count with the time they waited (censored).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import Result, Scale
from bench.stock_lag import (
    CHANNELS,
    DOCUMENTED_RATES,
    amazon_order_queue,
    four_channel_config,
    percentile,
    start_four_channel_world,
)

NAME = "landed_lag_p95_s"
SIZES: dict[str, dict[str, Any]] = {
    "full": {"world": {"skus": 40, "customers": 60, "history_days": 1, "orders_per_day": 10},
             "seconds": 360.0, "drain": 300.0, "simulate_every": 6.0, "max_orders": 1},
    "quick": {"world": {"skus": 15, "customers": 20, "history_days": 1, "orders_per_day": 4},
              "seconds": 20.0, "drain": 10.0, "simulate_every": 2.0, "max_orders": 1},
}
PUSH_CHANNELS = ("shopify", "amazon")
PEER_POLL_EVERY = {"shopify": 2.0, "amazon": 180.0}
ORDER_KEYS = {"shopify": "order_id", "rakuten": "order_number", "yahoo": "order_id", "amazon": "order_id"}
# What one poll costs in requests once the search is incremental: the search and one detail call.
REQUESTS_PER_POLL = 2


def poll_target(channel: str, config, poll_every: float) -> float:
    """The budget-derived target for a polled channel: poll interval + one poll round trip at its rate."""
    rps = getattr(config.channels, channel).requests_per_second
    return round(poll_every + REQUESTS_PER_POLL / rps, 1)


# ------------------------------------------------------------------------------------------- measuring
class LandedWatcher:
    """Records when each order was accepted by its channel and when it first became visible in each landing
    zone (`roots`: arm → landing root), and through which kind of batch (incremental poll or targeted fetch)."""

    def __init__(self, world, roots: dict[str, Path], scan_every: float = 0.05):
        import pyarrow.parquet as pq

        self._read_table = pq.read_table
        self.world = world
        self.roots = roots
        self.scan_every = scan_every
        self.accepted: dict[tuple[str, str], float] = {}
        self.landed: dict[str, dict[tuple[str, str], tuple[float, str]]] = {arm: {} for arm in roots}
        self._files: set[Path] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-landed-watcher", daemon=True)
        world.listeners.append(self._on_shop)
        for mall in world.malls.values():
            mall.listeners.append(self._on_mall)

    def _on_shop(self, kind: str, record: Any) -> None:
        if kind == "order_created":
            self.accepted[("shopify", record.gid)] = time.monotonic()

    def _on_mall(self, kind: str, record: Any) -> None:
        if kind == "order_created":
            self.accepted[(record.channel, str(record.order_id))] = time.monotonic()

    def scan(self) -> None:
        from ingestion.landing import LandingZone

        for arm, root in self.roots.items():
            for channel in CHANNELS:
                folder = root / channel / "orders"
                if not folder.is_dir():
                    continue
                for path in folder.glob("date=*/*.parquet"):
                    if path in self._files:
                        continue
                    seen = time.monotonic()
                    self._files.add(path)
                    mode = LandingZone(root).batch_metadata(path).get("mode") or "incremental"
                    key = ORDER_KEYS[channel]
                    for order_id in self._read_table(path, columns=[key]).column(key).to_pylist():
                        self.landed[arm].setdefault((channel, str(order_id)), (seen, mode))

    def _run(self) -> None:
        while not self._stop.wait(self.scan_every):
            try:
                self.scan()
            except OSError:  # a folder appearing while listed: the next scan sees it
                continue

    def start(self) -> LandedWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.scan()

    def lags(self, arm: str, channel: str, now: float) -> dict[str, Any]:
        """p50/p95 over the orders `channel` accepted during the run; not yet landed: censored at `now`."""
        got = self.landed[arm]
        lags, censored, modes = [], 0, {}
        for (c, order_id), at in list(self.accepted.items()):
            if c != channel:
                continue
            if (c, order_id) in got:
                seen, mode = got[(c, order_id)]
                lags.append(max(seen - at, 0.0))
                modes[mode] = modes.get(mode, 0) + 1
            else:
                lags.append(now - at)
                censored += 1
        return {"p50_s": round(percentile(lags, 50), 2), "p95_s": round(percentile(lags, 95), 2),
                "max_s": round(max(lags), 2) if lags else 0.0, "orders": len(lags), "censored": censored,
                "landed_by": modes}


# ------------------------------------------------------------------------------------------- the run
def run_world(size: dict[str, Any], seed: int = 7) -> dict[str, Any]:
    from ingestion import amazon, webhooks
    from ingestion.live import BUDGET_POLL_EVERY, LiveLanding
    from ingestion.ratelimit import reset_channel_limiters
    from ingestion.throttle import reset_shared_throttles
    from sandbox.runner import Simulator
    from sandbox.webhooks import DEFAULT_SECRET

    reset_channel_limiters()
    reset_shared_throttles()
    base = Path(tempfile.mkdtemp(prefix="ichigen-bench-landed-"))
    live = peer = None
    try:
        with contextlib.ExitStack() as stack:
            sqs_endpoint, queue_url, arn = stack.enter_context(amazon_order_queue())
            running = stack.enter_context(start_four_channel_world(
                base / "sandbox", seed, sqs_endpoint=sqs_endpoint, rates=DOCUMENTED_RATES, **size["world"]))
            world = running.world
            start = (datetime.now(UTC) - timedelta(days=size["world"]["history_days"] + 1)).isoformat()
            config = four_channel_config(base / "live", running, DOCUMENTED_RATES).with_overrides(**{
                "channels.amazon.notifications_queue_url": queue_url,
                "channels.amazon.sqs_endpoint_url": sqs_endpoint,
                **{f"channels.{c}.backfill_start": start for c in CHANNELS}})
            peer_config = config.with_overrides(base_dir=str(base / "peer"))
            with amazon.make_client(config) as client:
                amazon.subscribe_order_changes(client, arn)
            poll_every = {"shopify": None, "amazon": None, "rakuten": BUDGET_POLL_EVERY["rakuten"],
                          "yahoo": BUDGET_POLL_EVERY["yahoo"]}
            live = LiveLanding(config, poll_every=poll_every, shopify_webhooks=True, wait_seconds=1,
                               max_seconds=size["seconds"] + size["drain"] + 120)
            peer = LiveLanding(peer_config, PUSH_CHANNELS, poll_every=PEER_POLL_EVERY, amazon_notifications=False,
                               max_seconds=size["seconds"] + size["drain"] + 120)
            receiver = stack.enter_context(webhooks.serve_receiver(
                config.landing_dir, DEFAULT_SECRET, world.shop_domain, on_landed=lambda _row: live.notify("shopify")))
            webhooks.subscribe(config, receiver.webhook_url)
            # The backfill first (every channel's history, both landings), so the run measures live orders.
            for channel in CHANNELS:
                live.poll_every[channel] = 0.0
                live.land(channel)
            for channel in PUSH_CHANNELS:
                peer.land(channel)
            live.poll_every.update(poll_every)
            watcher = LandedWatcher(world, {"live": config.landing_dir, "peer": peer_config.landing_dir})
            watcher.scan()  # the backfill's batches are not measured
            watcher.start()
            live.start()
            peer.start()
            simulator = Simulator(world, size["simulate_every"], max_orders=size["max_orders"]).start()
            began = time.monotonic()
            try:
                time.sleep(size["seconds"])
                simulator.stop()
                drain_until = time.monotonic() + size["drain"]
                while time.monotonic() < drain_until:  # until every order landed in both, or the drain ends
                    time.sleep(1.0)
                    if all(k in watcher.landed["live"] for k in watcher.accepted) and all(
                            k in watcher.landed["peer"] for k in watcher.accepted if k[0] in PUSH_CHANNELS):
                        break
            finally:
                simulator.stop()
                live.stop()
                peer.stop()
                watcher.stop()
            ended = time.monotonic()
            deliveries = running.webhooks.summary()["deliveries"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {
        "seconds": round(ended - began, 1), "orders_accepted": len(watcher.accepted),
        "live": {c: watcher.lags("live", c, ended) for c in CHANNELS},
        "peer_polls_only": {c: watcher.lags("peer", c, ended) for c in PUSH_CHANNELS},
        "live_steps": live.steps, "peer_steps": peer.steps,
        "live_step_seconds": {c: {"p50": round(percentile(v, 50), 3), "p95": round(percentile(v, 95), 3)}
                              for c, v in live.step_seconds.items()},
        "live_errors": sorted(set(live.errors))[:10], "peer_errors": sorted(set(peer.errors))[:10],
        "poll_targets_s": {c: poll_target(c, config, BUDGET_POLL_EVERY[c]) for c in ("rakuten", "yahoo")},
        "webhook_deliveries": {status: sum(d["status"] == status for d in deliveries)
                               for status in sorted({d["status"] for d in deliveries})},
    }


def run(scale: Scale) -> list[Result]:
    size = SIZES[scale]
    got = run_world(size)
    details = {"size": size, "load_1min": round(os.getloadavg()[0], 2), **got}
    results = []
    for channel in CHANNELS:
        mine = got["live"][channel]
        note = (f"p50 {mine['p50_s']} s over {mine['orders']} orders ({mine['censored']} censored; landed by "
                f"{', '.join(f'{k} {v}' for k, v in sorted(mine['landed_by'].items())) or 'none'})")
        if channel in PUSH_CHANNELS:
            peer = got["peer_polls_only"][channel]
            path = "webhook → follow-up fetch" if channel == "shopify" else "ORDER_CHANGE via SQS → getOrder"
            results.append(Result(
                f"{NAME}_{channel}", float(mine["p95_s"]), "s", ("<", 5.0),
                peer=f"polls only (every {PEER_POLL_EVERY[channel]:g} s)", peer_value=float(peer["p95_s"]),
                notes=f"{path}; {note}; polls only p50 {peer['p50_s']} s ({peer['censored']} censored)",
                details=details))
        else:
            target = got["poll_targets_s"][channel]
            from ingestion.live import BUDGET_POLL_EVERY

            results.append(Result(
                f"{NAME}_{channel}", float(mine["p95_s"]), "s", ("<", target),
                notes=f"poll every {BUDGET_POLL_EVERY[channel]:g} s at the documented budget; target = interval + "
                      f"{REQUESTS_PER_POLL} requests at the channel's rate; {note}", details=details))
    return results
