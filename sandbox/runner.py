"""One call that brings a whole sandbox world up: generate it, write the ERP, serve the shop.

    with start_world(data_dir=Path("var/sandbox"), seed=42) as running:
        running.shopify_url, running.erp_sqlite_path, running.world
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.amazon import AmazonSettings, serve_amazon
from sandbox.erp import ErpMirror, create_postgres_database, write_postgres, write_sqlite
from sandbox.erp_intake import post_world_orders, take_intake
from sandbox.files import FileDrops
from sandbox.rakuten import RakutenSettings
from sandbox.server import ServerHandle, serve_rakuten, serve_shopify, serve_yahoo
from sandbox.shopify_rest import RestSettings
from sandbox.webhooks import DEFAULT_SECRET, WebhookHub, WebhookSettings
from sandbox.world import World

log = logging.getLogger("sandbox")


class Simulator:
    """Every `every` seconds: place 1–`max_orders` orders and apply what is due (payments, shipments, …), and
    play the ERP's staff in each ERP database the world keeps (`erp_sqlite`, `erp_postgres_dsn`): whatever an
    integration posted to the intake is taken (allocated, sandbox.erp_intake.take_intake); the world's shipments
    end those allocations (sandbox.erp.ErpMirror)."""

    def __init__(self, world: World, every: float, max_orders: int = 3, files: FileDrops | None = None,
                 erp_sqlite: Path | None = None, erp_postgres_dsn: str | None = None,
                 erp_intake_fallback: bool = False):
        if every <= 0:
            raise ValueError("every must be > 0 seconds")
        self.world = world
        self.erp_sqlite = erp_sqlite
        self.erp_postgres_dsn = erp_postgres_dsn
        # The simulator posts its own orders into the ERP intake when no integration does (off by default).
        self.erp_intake_fallback = erp_intake_fallback
        self.every = every
        self.max_orders = max_orders
        self.files = files  # file drops (sandbox.files): each ended JST day's POS, B2B and carrier files
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-simulator", daemon=True)
        self.ticks = 0

    def start(self) -> Simulator:
        self._thread.start()
        return self

    def tick(self) -> None:
        placed, changed = self.world.simulate_tick(self.max_orders)
        if self.files is not None:
            self.files.tick()
        self.take_posted_orders()
        self.ticks += 1
        log.info("simulator: %d orders placed, %d orders moved on", len(placed), len(changed))

    def _erp_connections(self) -> list[Callable[[], Any]]:
        """A connect function per ERP database, SQLite first. Each pass opens its own connection (the mirror's
        is autocommit and shared under the world's lock; a pass is one transaction of its own)."""
        connects: list[Callable[[], Any]] = []
        if self.erp_sqlite is not None:
            connects.append(lambda: sqlite3.connect(self.erp_sqlite, timeout=10))
        if self.erp_postgres_dsn is not None:
            import psycopg

            connects.append(lambda: psycopg.connect(self.erp_postgres_dsn, connect_timeout=10))
        return connects

    def take_posted_orders(self) -> int:
        """The ERP staff's pass in each ERP database (with the fallback: after posting the shop's orders
        themselves). Returns the intake rows taken, all databases together."""
        taken = 0
        truth = self.world.truth
        orders = self.world.orders_truth() if self.erp_intake_fallback else None  # once for every database
        for connect in self._erp_connections():
            con = connect()
            try:
                if orders is not None:
                    post_world_orders(con, orders)
                # Under the world's lock: no shipment (and its ERP write) can pass between the check of an order's
                # state and its allocation. The mirror only writes under this lock, so this cannot deadlock.
                with self.world.lock:
                    taken += take_intake(con, still_open=lambda channel, order_id: (channel, order_id)
                                         in truth.open_orders)
            finally:
                con.close()
        return taken

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
                 simulator: Simulator | None = None, yahoo: ServerHandle | None = None,
                 files: FileDrops | None = None, erp_mirror: ErpMirror | None = None,
                 rakuten: ServerHandle | None = None, amazon: ServerHandle | None = None,
                 erp_postgres_dsn: str | None = None):
        self.world = world
        self.amazon = amazon
        self.shopify = shopify
        self.yahoo = yahoo
        self.rakuten = rakuten
        self.erp_sqlite_path = erp_sqlite_path
        self.erp_postgres_dsn = erp_postgres_dsn  # the ERP's PostgreSQL copy, when the world keeps one
        self.simulator = simulator
        self.erp_mirror = erp_mirror
        self.files = files

    @property
    def inbox(self) -> Path | None:
        """Where the file sources (POS, B2B, carrier) drop their files: `<inbox>/<slug>/<entity>/`."""
        return self.files.inbox if self.files is not None else None

    @property
    def shopify_url(self) -> str:
        return self.shopify.url

    @property
    def yahoo_url(self) -> str | None:
        return self.yahoo.url if self.yahoo is not None else None

    @property
    def rakuten_url(self) -> str | None:
        return self.rakuten.url if self.rakuten is not None else None


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
        if self.yahoo is not None:
            self.yahoo.stop()
        if self.rakuten is not None:
            self.rakuten.stop()
        self.shopify.stop()
        if self.amazon is not None:
            self.amazon.stop()
        if self.erp_mirror is not None:
            with self.world.lock:
                self.world.truth.mirror = None
                self.erp_mirror.close()

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
    yahoo_port: int | None = 0,
    yahoo_access_token: str = "yahoo_sandbox_token",
    yahoo_seller_id: str = "ichigen-select",
    yahoo_requests_per_second: float = 1.0,
    yahoo_faults: object = None,
    inbox: str | os.PathLike[str] | None = None,
    inbox_history_days: int = 2,
    drop_files: bool = True,
    erp_intake_fallback: bool = False,
    sell_bundles: bool = False,
    rakuten: RakutenSettings | None = None,
    amazon_port: int = 0,
    amazon_settings: AmazonSettings | None = None,
    shopify_rest: RestSettings | None = None,
) -> RunningWorld:
    """Generate the world, write the ERP into `<data_dir>/erp.sqlite` and, with `erp_postgres_dsn`, into that
    PostgreSQL database too (created when missing; its ERP tables replaced), keep both in step with the world's
    physical truth (sandbox.truth), serve the Shopify shop on 127.0.0.1:`port` (0 = a free port), and optionally
    run the order simulator, whose ERP staff take posted orders in both.

    Webhooks (sandbox.webhooks) are signed with `webhook_secret` (the app's client secret); pass
    `webhook_settings` for the retry schedule and injected faults (its `secret` is replaced by webhook_secret
    unless webhook_secret is left at the default).

    Yahoo!ショッピング's store API (sandbox.yahoo) is served on `yahoo_port` (0 = a free port, None = not served)
    with its own token, store account, per-store rate limit and optional `YahooFaults`.

    Unless `drop_files` is false, the file sources (sandbox.files) drop the last `inbox_history_days` days'
    files into `inbox` (default `<data_dir>/inbox`) at once and, with the simulator, each JST day's files
    when the day ends.

    `erp_intake_fallback`: the simulator posts its own orders into the ERP intake of each ERP database (only
    when no ichigen integration posts; off by default). Either way its ERP staff take what was posted (Simulator):
    an integration posts into one of the databases, and the staff work wherever it did.

    `sell_bundles`: the shop lists the ERP's gift sets too. The ERP files follow the physical truth (sandbox.truth)
    as it changes (`ErpMirror`).

    The Rakuten mall (RMS Web Service, sandbox.rakuten) is served on its own port with `rakuten` settings
    (credentials, rate, faults; default: sandbox credentials, a free port).

    Amazon (sandbox.amazon) is served on 127.0.0.1:`amazon_port`; `amazon_settings` carries its LWA
    credentials (sandbox defaults), rate scale, faults and traffic log."""
    world = World.generate(seed=seed, skus=skus, customers=customers, history_days=history_days,
                           orders_per_day=orders_per_day, now=now, sell_bundles=sell_bundles)
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    sqlite_path = write_sqlite(world, data / "erp.sqlite")
    if erp_postgres_dsn:
        create_postgres_database(erp_postgres_dsn)
        write_postgres(world, erp_postgres_dsn)
    # The physical truth (sandbox.truth) writes on-hand changes and received POs into the ERP as they happen.
    mirror = world.truth.mirror = ErpMirror(sqlite_path, erp_postgres_dsn)
    settings = webhook_settings or WebhookSettings(seed=seed, secret=webhook_secret)
    if webhook_secret != DEFAULT_SECRET:
        settings = dataclasses.replace(settings, secret=webhook_secret)
    shop = serve_shopify(world, port=port, access_token=access_token, traffic_log=traffic_log,
                         restore_rate=restore_rate, schema_path=schema_path, webhooks=settings, rest=shopify_rest)
    try:
        yahoo = None if yahoo_port is None else serve_yahoo(
            world, port=yahoo_port, access_token=yahoo_access_token, seller_id=yahoo_seller_id,
            requests_per_second=yahoo_requests_per_second, faults=yahoo_faults, traffic_log=traffic_log)
    except BaseException:
        shop.stop()
        raise
    mall = rakuten or RakutenSettings()
    try:
        rakuten_server = serve_rakuten(world, port=mall.port, service_secret=mall.service_secret,
                                       license_key=mall.license_key, requests_per_second=mall.requests_per_second,
                                       faults=mall.faults,
                                       traffic_log=Path(traffic_log).with_suffix(".rakuten.jsonl")
                                       if traffic_log else None)
    except BaseException:
        shop.stop()
        if yahoo is not None:
            yahoo.stop()
        raise
    try:
        amazon = serve_amazon(world, port=amazon_port, settings=amazon_settings)
    except BaseException:
        shop.stop()
        rakuten_server.stop()
        if yahoo is not None:
            yahoo.stop()
        raise
    files = FileDrops(world, inbox if inbox is not None else data / "inbox") if drop_files else None
    if files is not None:
        files.drop_history(inbox_history_days)
    simulator = Simulator(world, simulate_every, files=files, erp_sqlite=sqlite_path,
                          erp_postgres_dsn=erp_postgres_dsn, erp_intake_fallback=erp_intake_fallback
                          ).start() if simulate_every else None
    return RunningWorld(world, shop, sqlite_path, simulator, yahoo=yahoo, files=files, erp_mirror=mirror,
                        rakuten=rakuten_server, amazon=amazon, erp_postgres_dsn=erp_postgres_dsn)
