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

from ichigen.cli import demo_processes
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
