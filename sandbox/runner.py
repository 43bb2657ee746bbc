"""One call that brings a whole sandbox world up: generate it, write the ERP, serve the shop.

    with start_world(data_dir=Path("var/sandbox"), seed=42) as running:
        running.shopify_url, running.erp_sqlite_path, running.world
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from datetime import datetime
from pathlib import Path

from sandbox.amazon import AmazonSettings, serve_amazon
from sandbox.erp import write_postgres, write_sqlite
from sandbox.server import ServerHandle, serve_shopify
from sandbox.webhooks import DEFAULT_SECRET, WebhookHub, WebhookSettings
from sandbox.world import World

log = logging.getLogger("sandbox")


class Simulator:
    """Every `every` seconds: place 1–`max_orders` orders and apply what is due (payments, shipments, …)."""

    def __init__(self, world: World, every: float, max_orders: int = 3):
        if every <= 0:
            raise ValueError("every must be > 0 seconds")
        self.world = world
        self.every = every
        self.max_orders = max_orders
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-simulator", daemon=True)
        self.ticks = 0

    def start(self) -> Simulator:
        self._thread.start()
        return self

    def tick(self) -> None:
        placed, changed = self.world.simulate_tick(self.max_orders)
        self.ticks += 1
        log.info("simulator: %d orders placed, %d orders moved on", len(placed), len(changed))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 — a simulator hiccup must not kill the server
                log.exception("simulator tick failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


class RunningWorld:
    """A generated world with its ERP written and its shop served. `.stop()` or use it as a context manager."""

    def __init__(self, world: World, shopify: ServerHandle, erp_sqlite_path: Path,
                 simulator: Simulator | None = None, amazon: ServerHandle | None = None):
        self.world = world
        self.amazon = amazon
        self.shopify = shopify
        self.erp_sqlite_path = erp_sqlite_path
        self.simulator = simulator

    @property
    def shopify_url(self) -> str:
        return self.shopify.url

    @property
    def amazon_url(self) -> str | None:
        return self.amazon.url if self.amazon is not None else None

    @property
    def webhooks(self) -> WebhookHub:
        """Subscriptions and deliveries (`.summary()`, `.wait_idle()`)."""
        return self.shopify.webhooks

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
        self.shopify.stop()
        if self.amazon is not None:
            self.amazon.stop()

    def __enter__(self) -> RunningWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_world(
    data_dir: str | os.PathLike[str],
    seed: int = 42,
    skus: int = 60,
    customers: int = 200,
    history_days: int = 30,
    orders_per_day: int = 40,
    port: int = 0,
    access_token: str = "shpat_sandbox",
    traffic_log: str | os.PathLike[str] | None = None,
    restore_rate: float = 100.0,
    now: datetime | None = None,
    simulate_every: float | None = None,
    erp_postgres_dsn: str | None = None,
    schema_path: str | os.PathLike[str] | None = None,
    webhook_secret: str = DEFAULT_SECRET,
    webhook_settings: WebhookSettings | None = None,
    amazon_port: int = 0,
    amazon_settings: AmazonSettings | None = None,
) -> RunningWorld:
    """Generate the world, write `<data_dir>/erp.sqlite` (and the ERP into PostgreSQL when a DSN is given),
    serve the Shopify shop on 127.0.0.1:`port` (0 = a free port), and optionally run the order simulator.

    Webhooks (sandbox.webhooks) are signed with `webhook_secret` (the app's client secret); pass
    `webhook_settings` for the retry schedule and injected faults (its `secret` is replaced by webhook_secret
    unless webhook_secret is left at the default).

    Amazon (sandbox.amazon) is served on 127.0.0.1:`amazon_port`; `amazon_settings` carries its LWA
    credentials (sandbox defaults), rate scale, faults and traffic log."""
    world = World.generate(seed=seed, skus=skus, customers=customers, history_days=history_days,
                           orders_per_day=orders_per_day, now=now)
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    sqlite_path = write_sqlite(world, data / "erp.sqlite")
    if erp_postgres_dsn:
        write_postgres(world, erp_postgres_dsn)
    settings = webhook_settings or WebhookSettings(seed=seed, secret=webhook_secret)
    if webhook_secret != DEFAULT_SECRET:
        settings = dataclasses.replace(settings, secret=webhook_secret)
    shop = serve_shopify(world, port=port, access_token=access_token, traffic_log=traffic_log,
                         restore_rate=restore_rate, schema_path=schema_path, webhooks=settings)
    try:
        amazon = serve_amazon(world, port=amazon_port, settings=amazon_settings)
    except BaseException:
        shop.stop()
        raise
    simulator = Simulator(world, simulate_every).start() if simulate_every else None
    return RunningWorld(world, shop, sqlite_path, simulator, amazon=amazon)
