"""`ichigen demo` starts the product as it runs in a shop: besides Dagster and the dashboards, the Shopify webhook
receiver (`ichigen webhooks serve`, subscribed to the shop) and the fast-path sync worker following its events.

The demo itself runs until Ctrl-C, so its process list is checked as data, and the receiver command it starts is
run for real against a sandbox shop: it subscribes itself, lands a sale's webhook, and stops on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from ichigen.cli import _connect_sandbox_yahoo, _point_at_world, demo_processes, sandbox_command
from ichigen.config import load_config
from ingestion.landing import LandingZone
from sandbox import start_world

BIN = Path(sys.executable).parent


def test_the_demo_starts_the_webhook_receiver_and_the_fast_path_worker_beside_dagster_and_the_dashboards():
    procs = dict(demo_processes(load_config(), BIN))

    assert list(procs) == ["webhooks", "worker", "dagster", "dashboards"]
    assert procs["webhooks"][1:] == ["webhooks", "serve"]
    assert procs["worker"][1:] == ["sync", "worker", "--shopify-webhooks"]  # it follows the receiver's events
    assert all(Path(cmd[0]).exists() for cmd in procs.values()), "every command is an installed executable"
    with_config = dict(demo_processes(load_config(), BIN, Path("other.toml")))
    assert with_config["webhooks"][-2:] == with_config["worker"][-2:] == ["--config", "other.toml"]


def test_the_sandbox_keeps_its_erp_in_postgres_too_when_the_product_reads_the_erp_there():
    sqlite_only = sandbox_command(load_config(), "python", 8701, 10)
    on_postgres = load_config().with_overrides(**{"erp.kind": "postgres",
                                                  "erp.postgres_dsn": "postgresql://erp@127.0.0.1:5432/shop_erp"})

    command = sandbox_command(on_postgres, "python", 8701, 10)

    assert "--erp-postgres-dsn" not in sqlite_only
    assert command[:3] == ["python", "-m", "sandbox"] and command[command.index("--port") + 1] == "8701"
    assert command[command.index("--erp-postgres-dsn") + 1] == "postgresql://erp@127.0.0.1:5432/shop_erp"
    assert command[:-2] == sqlite_only  # everything else as on SQLite


def test_once_and_the_demo_connect_the_sandbox_yahoo_store_at_the_limit_it_serves(monkeypatch):
    monkeypatch.delenv("ICHIGEN_YAHOO_ENABLED", raising=False)
    monkeypatch.delenv("ICHIGEN_YAHOO_REQUESTS_PER_SECOND", raising=False)
    config = load_config().with_overrides(**{"sandbox.yahoo_requests_per_second": 12.5})
    world = SimpleNamespace(shopify_url="http://127.0.0.1:1", rakuten_url="http://127.0.0.1:2",
                            amazon_url="http://127.0.0.1:3", yahoo_url="http://127.0.0.1:4",
                            erp_sqlite_path=Path("erp.sqlite"), inbox=Path("inbox"))

    pointed = _point_at_world(config, world)  # `ichigen once`
    command = sandbox_command(config, "python", 8701, 10)  # `ichigen demo`'s world
    for name, value in _connect_sandbox_yahoo(config).items():
        monkeypatch.setenv(name, value)
    demo = load_config()  # what the demo's processes read from their environment

    assert not config.channels.yahoo.enabled, "a real store stays off until it is connected"
    assert pointed.channels.yahoo.enabled and pointed.channels.yahoo.base_url == "http://127.0.0.1:4"
    assert pointed.channels.yahoo.requests_per_second == 12.5
    assert command[command.index("--yahoo-requests-per-second") + 1] == "12.5"
    assert demo.channels.yahoo.enabled and demo.channels.yahoo.requests_per_second == 12.5


def test_a_user_who_switched_yahoo_off_keeps_it_off_in_once(monkeypatch):
    monkeypatch.setenv("ICHIGEN_YAHOO_ENABLED", "false")
    url = "http://127.0.0.1:1"
    world = SimpleNamespace(shopify_url=url, rakuten_url=url, amazon_url=url, yahoo_url=url,
                            erp_sqlite_path=Path("erp.sqlite"), inbox=Path("inbox"))

    assert not _point_at_world(load_config(), world).channels.yahoo.enabled


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_receiver_command_subscribes_itself_lands_a_sale_and_stops_on_sigterm(tmp_path: Path):
    port = _free_port()
    with start_world(data_dir=tmp_path / "sandbox", seed=5, skus=8, customers=8, history_days=1, orders_per_day=2,
                     port=0, yahoo_port=None, drop_files=False) as running:
        config_file = tmp_path / "ichigen.toml"
        config_file.write_text(f'[paths]\nlanding = "landing"\n\n[channels.shopify]\nbase_url = '
                               f'"{running.shopify_url}"\nwebhook_port = {port}\n', encoding="utf-8")
        proc = subprocess.Popen([str(BIN / "ichigen"), "webhooks", "serve", "--config", str(config_file),
                                 "--max-seconds", "120"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        address = f"http://127.0.0.1:{port}/webhooks/shopify"
        landing = LandingZone(tmp_path / "landing")
        try:
            deadline = time.monotonic() + 60
            while not any(s["uri"] == address for s in running.webhooks.summary()["subscriptions"]):
                assert proc.poll() is None and time.monotonic() < deadline, "the receiver never subscribed"
                time.sleep(0.2)
            (order,) = running.world.place_orders(1)
            while not landing.batch_files("shopify", "webhook_events"):
                assert time.monotonic() < deadline, "the sale's webhook never landed"
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    topics = {s["topic"] for s in running.webhooks.summary()["subscriptions"] if s["uri"] == address}
    assert topics == {"ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "INVENTORY_LEVELS_UPDATE",
                      "BULK_OPERATIONS_FINISH"}  # the bulk finish ends bulk waits early (D142)
    events = landing.landed("shopify", "webhook_events").collect()
    assert order.gid in events.get_column("resource_gid").to_list()
    assert f"subscribed {address}" in out and "landed" in out
