"""stock_lag_p95_s (target < 30 s) and oversells (target 0): ichigen's stock fast path (reverse_sync.fast_path)
against the plain scheduled sync every 5 minutes, on the sandbox world with its order simulator on all four
channels (Shopify, Rakuten, Amazon, Yahoo), measured from the world's physical truth (sandbox.truth).

Each arm runs in its own world from the same seed, one after the other (the machine has 2 shared cores):
- **baseline**: every `period` seconds a build is published and `sync_stock` runs for every channel;
- **fast path**: the same scheduled build + sync every `period` (it reconciles), plus a FastPathWorker ticking
  every second (order polls on every channel at `poll_every`, pushes of the SKUs that changed).

Time is compressed: the 5-minute schedule runs every `period` seconds (full: 60 s = 5× faster) and the
simulator places orders 5× as often as a busy day's bursts would — everything compressed equally, so the
ratio holds; the lags are reported in wall seconds as measured (not rescaled), which favours the baseline's
absolute numbers by 5×. The fast path hears Amazon orders through ORDER_CHANGE notifications on a moto SQS
queue (Amazon's searchOrders only returns orders updated at least 2 minutes ago, as the real API) and Shopify,
Rakuten and Yahoo orders through their incremental polls (Shopify's webhooks are exercised in
tests/reverse_sync/test_fast_path.py, not here). Channel rate limits are raised (Rakuten and Yahoo 10 requests/s instead of 1, Amazon's
documented rates × 20, Shopify Plus) because the real ones would make the bench take hours; the fast path still
polls Rakuten and Yahoo no more than every 2 s.

The "build" here is a stand-in (the dbt build is measured by incremental_cycle_s): the published serving copy
holds targets = the world's physical available at publish time (shared pool, no buffers) and fct_orders = every
order the world had then — so both arms get a perfect build, and the measure is the push path alone.

Stock lag: for each accepted order line (SKU X on channel A), the time until every other channel's listing of X
shows no more than X's physical available right after the order (immediately when it already did); lines still
waiting at the end count with the time they waited (censored). Oversells and stock-out-while-available minutes
come from `world.truth` (world time = wall time here, so minutes are compressed minutes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import Result, Scale
from bench.incremental_cycle import TOKEN  # the same shop token as the cycle bench

NAME = "stock_lag_p95_s"
OVERSELLS = "oversells"
CHANNELS = ("shopify", "rakuten", "amazon", "yahoo")
SIZES: dict[str, dict[str, Any]] = {
    "full": {"world": {"skus": 40, "customers": 60, "history_days": 2, "orders_per_day": 10},
             "period": 60.0, "periods": 3, "simulate_every": 5.0, "max_orders": 1},
    "quick": {"world": {"skus": 20, "customers": 20, "history_days": 1, "orders_per_day": 4},
              "period": 12.0, "periods": 1, "simulate_every": 2.0, "max_orders": 2},
}
# Amazon's poll is only the backstop (it sees orders ≥ 2 min old); its notifications come every tick.
POLL_EVERY = {"shopify": 1.0, "rakuten": 2.0, "yahoo": 2.0, "amazon": 30.0}


# ------------------------------------------------------------------------------------------- the world
@dataclass(frozen=True)
class ChannelRates:
    """What the sandbox allows and what the client asks for: the malls' requests per second and Amazon's scale
    of its documented per-operation rates."""

    mall_server_rps: float
    mall_client_rps: float
    amazon_rate_scale: float


# Raised rates so a stock-lag run takes minutes (module docstring); DOCUMENTED: as channels.md and ichigen.toml.
BENCH_RATES = ChannelRates(mall_server_rps=10.0, mall_client_rps=9.0, amazon_rate_scale=20.0)
DOCUMENTED_RATES = ChannelRates(mall_server_rps=1.0, mall_client_rps=0.9, amazon_rate_scale=1.0)


def start_four_channel_world(data_dir: Path, seed: int = 7, *, simulate_every: float | None = None,
                             sqs_endpoint: str | None = None, rates: ChannelRates = BENCH_RATES, **world: Any):
    """The sandbox with all four channels served at `rates` (default: test/bench speed, see the module
    docstring); Amazon publishes ORDER_CHANGE notifications to the SQS server at `sqs_endpoint` when given."""
    from sandbox import start_world
    from sandbox.amazon import AmazonSettings
    from sandbox.rakuten import RakutenSettings

    return start_world(data_dir=data_dir, seed=seed, port=0, access_token=TOKEN, restore_rate=1000.0,
                       yahoo_requests_per_second=rates.mall_server_rps,
                       rakuten=RakutenSettings(requests_per_second=rates.mall_server_rps),
                       amazon_settings=AmazonSettings(rate_scale=rates.amazon_rate_scale, sqs_endpoint=sqs_endpoint),
                       drop_files=False, simulate_every=simulate_every, **world)


@contextlib.contextmanager
def amazon_order_queue(region: str = "us-west-2"):
    """A moto SQS server on 127.0.0.1 with one queue; yields (endpoint, queue URL, queue ARN).
    Amazon's searchOrders only sees orders updated ≥ 2 minutes ago (as the real API), so the fast path needs
    the notifications to hear of Amazon orders in seconds."""
    import boto3
    from moto.server import ThreadedMotoServer

    # ingestion's SQS client takes credentials from boto3's usual chain; moto accepts any.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "sandbox")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every SQS request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region,
                           aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
        url = sqs.create_queue(QueueName="ichigen-amazon-orders")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield endpoint, url, arn
    finally:
        server.stop()


def four_channel_config(base: Path, running, rates: ChannelRates = BENCH_RATES):
    """The project's configuration with every path in `base`, pointed at the running world's four channels
    (the cycle bench's configuration plus Yahoo and the request rates of `rates`)."""
    from bench.incremental_cycle import _config as cycle_config

    return cycle_config(base, running).with_overrides(**{
        "channels.rakuten.service_secret": "SP_sandbox",
        "channels.rakuten.license_key": "SL_sandbox",
        "channels.rakuten.requests_per_second": rates.mall_client_rps,
        "channels.amazon.rate_scale": rates.amazon_rate_scale,
        "channels.yahoo.enabled": True,
        "channels.yahoo.base_url": running.yahoo_url,
        "channels.yahoo.requests_per_second": rates.mall_client_rps,
    })


def land_channel_state(config) -> None:
    """Land what the scheduled cycle would: every channel's shown stock and its orders."""
    from ingestion import ingest

    for channel, entity in (("shopify", "inventory_levels"), ("rakuten", "stock"), ("amazon", "listings"),
                            ("yahoo", "stock")):
        ingest(config, channel, entity)
    for channel in CHANNELS:
        ingest(config, channel, "orders")


def channel_listings(world) -> list[tuple[str, str, str]]:
    """(channel, listing_id, ERP SKU) as dbt's int_products__channel_listings matches them."""
    from sandbox.world import gid
    from sandbox.yahoo import item_code

    rows = [("shopify", gid("ProductVariant", item.variant_id), item.sku) for item in world.inventory_items]
    for channel in ("rakuten", "amazon"):
        rows += [(channel, s.listing_id, s.erp_sku) for s in world.mall(channel).listings if s.erp_sku]
    rows += [("yahoo", item_code(s), s.erp_sku) for s in world.mall("yahoo").listings if s.erp_sku]
    return rows


def publish_snapshot(config, world, targets: dict[str, int] | None = None) -> None:
    """Publish a serving copy as a build would (the stand-in above): targets for every channel (default: the
    physical available now), the listing match, bundle components and the keys of every order counted."""
    import duckdb

    from ichigen.publish import BuildReport, publish

    with world.lock:
        truth = world.truth
        if targets is None:
            targets = {p.sku: max(truth.available(p.sku), 0) for p in world.erp_products}
        orders = [("shopify", o.gid) for o in world.orders]
        orders += [(c, o.order_id) for c, mall in world.malls.items() for o in mall.orders]
        bundles = [(b.bundle_sku, b.component_sku, b.quantity) for b in world.bundles]
        listings = channel_listings(world)
    config.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(config.warehouse_path))
    try:
        con.execute("create or replace table mart_channel_stock_targets "
                    "(channel varchar, sku varchar, target_quantity bigint, explain varchar)")
        con.executemany("insert into mart_channel_stock_targets values (?, ?, ?, 'bench snapshot')",
                        [(c, sku, qty) for c in CHANNELS for sku, qty in targets.items()])
        con.execute("create or replace table fct_orders (channel varchar, order_id varchar)")
        con.executemany("insert into fct_orders values (?, ?)", orders)
        con.execute("create schema if not exists intermediate")
        con.execute("create or replace table intermediate.int_products__channel_listings "
                    "(channel varchar, listing_id varchar, sku varchar)")
        con.executemany("insert into intermediate.int_products__channel_listings values (?, ?, ?)", listings)
        con.execute("create or replace table intermediate.int_products__bundle_components "
                    "(bundle_sku varchar, component_sku varchar, component_quantity bigint)")
        if bundles:
            con.executemany("insert into intermediate.int_products__bundle_components values (?, ?, ?)", bundles)
    finally:
        con.close()
    publish(config.warehouse_path, config.serving_path, BuildReport(success=True))


def shown_quantities(world, sku: str) -> dict[str, list[int]]:
    """channel → the quantities its listings of `sku` show now (call under world.lock)."""
    out: dict[str, list[int]] = {}
    for item in world.inventory_items:
        if item.sku == sku:
            out.setdefault("shopify", []).extend(level.available for level in world.levels_of(item.id))
    for channel, mall in world.malls.items():
        quantities = [s.quantity for s in mall.listings if s.erp_sku == sku]
        if quantities:
            out[channel] = quantities
    return out


# ------------------------------------------------------------------------------------------- measuring
@dataclass
class _Waiting:
    channel: str
    sku: str
    available: int
    at: float
    channels: set[str] = field(default_factory=set)
    reached: dict[str, float] = field(default_factory=dict)  # target channel → seconds until it showed it


class LagProbe:
    """Listens to the world's accepted orders and samples the channels until they show the new stock."""

    def __init__(self, world, sample_every: float = 0.2):
        self.world = world
        self.sample_every = sample_every
        self.waiting: list[_Waiting] = []
        self.lags: list[float] = []
        self.by_target: dict[str, list[float]] = {}  # per target channel: seconds until it showed the stock
        self.censored = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-lag-probe", daemon=True)
        world.listeners.append(self._on_shop)  # after the truth's listener: available already counts the order
        for mall in world.malls.values():
            mall.listeners.append(self._on_mall)

    def _watch(self, channel: str, skus: list[str]) -> None:
        now = time.monotonic()
        for sku in skus:
            others = set(shown_quantities(self.world, sku)) - {channel}
            if others:
                self.waiting.append(_Waiting(channel, sku, self.world.truth.available(sku), now, others))

    def _on_shop(self, kind: str, record: Any) -> None:
        if kind == "order_created":
            self._watch("shopify", [li.sku for li in record.lines])

    def _on_mall(self, kind: str, record: Any) -> None:
        if kind == "order_created":
            self._watch(record.channel, [li.erp_sku for li in record.lines if li.erp_sku])

    def sample(self) -> None:
        with self.world.lock:
            now = time.monotonic()
            still = []
            for wait in self.waiting:
                shown = shown_quantities(self.world, wait.sku)
                for channel in [c for c in wait.channels if max(shown.get(c, [0])) <= wait.available]:
                    wait.channels.discard(channel)
                    self.by_target.setdefault(channel, []).append(now - wait.at)
                if wait.channels:
                    still.append(wait)
                else:
                    self.lags.append(now - wait.at)
            self.waiting = still

    def _run(self) -> None:
        while not self._stop.wait(self.sample_every):
            self.sample()

    def start(self) -> LagProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()
        now = time.monotonic()
        self.censored = len(self.waiting)
        self.lags += [now - w.at for w in self.waiting]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# ------------------------------------------------------------------------------------------- one arm
def scheduled_sync(config, world) -> list[str]:
    """One scheduled cycle as the bench stands it in: land channel state, publish, sync every channel."""
    from reverse_sync.stock import sync_stock

    errors = []
    land_channel_state(config)
    publish_snapshot(config, world)
    for channel in CHANNELS:
        try:
            sync_stock(config, channel)
        except Exception as exc:  # noqa: BLE001 — reported in the details, the arm goes on
            errors.append(f"{channel}: {type(exc).__name__}: {exc}")
    return errors


def run_arm(size: dict[str, Any], fast: bool, seed: int = 7) -> dict[str, Any]:
    from ingestion.ratelimit import reset_channel_limiters
    from ingestion.throttle import reset_shared_throttles
    from reverse_sync.fast_path import FastPathWorker

    reset_channel_limiters()
    reset_shared_throttles()
    base = Path(tempfile.mkdtemp(prefix="ichigen-bench-lag-"))
    worker = None
    try:
        with contextlib.ExitStack() as stack:
            sqs_endpoint = queue_url = arn = None
            if fast:  # the baseline polls only, as the scheduled cycle does
                sqs_endpoint, queue_url, arn = stack.enter_context(amazon_order_queue())
            running = stack.enter_context(
                start_four_channel_world(base / "sandbox", seed, sqs_endpoint=sqs_endpoint, **size["world"]))
            world = running.world
            config = four_channel_config(base, running)
            if fast:
                config = config.with_overrides(**{
                    "channels.amazon.notifications_queue_url": queue_url,
                    "channels.amazon.sqs_endpoint_url": sqs_endpoint})
                from ingestion import amazon

                with amazon.make_client(config) as client:
                    amazon.subscribe_order_changes(client, arn)
            errors = scheduled_sync(config, world)  # the start: every channel shows the truth
            from sandbox.runner import Simulator

            probe = LagProbe(world).start()
            simulator = Simulator(world, size["simulate_every"], max_orders=size["max_orders"]).start()
            if fast:
                worker = FastPathWorker(config, tick_seconds=1.0, poll_every=POLL_EVERY,
                                        max_seconds=size["period"] * size["periods"] + 60).start()
            started = time.monotonic()
            try:
                for n in range(1, size["periods"] + 1):
                    time.sleep(max(0.0, started + n * size["period"] - time.monotonic()))
                    errors += scheduled_sync(config, world)
            finally:
                simulator.stop()
                if worker is not None:
                    worker.stop()
                probe.stop()
            with world.lock:
                report = world.truth.report()["channels"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    lags = probe.lags
    fast_ticks = worker.results if worker is not None else []
    return {
        "p50_s": round(percentile(lags, 50), 2), "p95_s": round(percentile(lags, 95), 2),
        "lines_measured": len(lags), "censored": probe.censored,
        "by_target_channel": {c: {"p50_s": round(percentile(v, 50), 2), "p95_s": round(percentile(v, 95), 2),
                                  "n": len(v)} for c, v in sorted(probe.by_target.items())},
        "oversells": sum(c["oversells"] for c in report.values()),
        "stockout_minutes": round(sum(c["stockout_while_available_minutes"] for c in report.values()), 2),
        "per_channel": report, "errors": errors[:10],
        "fast_path_ticks": worker.ticks if worker is not None else 0,
        "fast_path_errors": sorted({e for t in fast_ticks for e in t.errors})[:10],
    }


def run(scale: Scale) -> list[Result]:
    size = SIZES[scale]
    fast = run_arm(size, fast=True)
    baseline = run_arm(size, fast=False)
    compression = 300.0 / size["period"]
    details = {"size": size, "compression": compression, "fast_path": fast, "baseline_5min_schedule": baseline}
    return [
        Result(NAME, float(fast["p95_s"]), "s", ("<", 30.0), peer="scheduled sync every 5 min (compressed)",
               peer_value=float(baseline["p95_s"]),
               notes=f"p50 {fast['p50_s']} s vs baseline {baseline['p50_s']} s over {fast['lines_measured']} / "
                     f"{baseline['lines_measured']} order lines; schedule compressed {compression:g}× "
                     f"(5 min → {size['period']:g} s)", details=details),
        Result(OVERSELLS, float(fast["oversells"]), "orders", ("<=", 0.0), peer="scheduled sync every 5 min",
               peer_value=float(baseline["oversells"]),
               notes=f"stock-out-while-available minutes {fast['stockout_minutes']} vs baseline "
                     f"{baseline['stockout_minutes']} (compressed minutes)", details=details),
    ]
