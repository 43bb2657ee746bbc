"""Running the sandbox: background servers, start_world for the product's CLI, and `python -m sandbox`."""

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from sandbox_testkit import NOW, TOKEN, SandboxProcess, small_world

from sandbox import start_world
from sandbox.runner import Simulator
from sandbox.server import serve_shopify

REPO = Path(__file__).resolve().parents[2]


def test_servers_start_fast_on_free_ports_run_side_by_side_and_stop_cleanly():
    world = small_world()
    started = time.monotonic()
    a = serve_shopify(world, port=0, access_token=TOKEN)
    b = serve_shopify(world, port=0, access_token=TOKEN)
    assert time.monotonic() - started < 1.0, "the schema is cached: starting two servers takes well under 1 s"
    try:
        assert a.port != b.port and a.url == f"http://127.0.0.1:{a.port}"
        for handle in (a, b):
            assert httpx.get(f"{handle.url}/_sandbox/health", timeout=5).json()["status"] == "ok"
    finally:
        stopping = time.monotonic()
        a.stop()
        b.stop()
        assert time.monotonic() - stopping < 3.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{a.url}/_sandbox/health", timeout=1)


def test_a_busy_port_is_an_error_not_a_hang():
    world = small_world()
    with serve_shopify(world, port=0) as first, pytest.raises(OSError):
        serve_shopify(world, port=first.port)


def test_start_world_writes_the_erp_and_serves_the_shop(tmp_path):
    with start_world(data_dir=tmp_path / "sandbox", seed=11, skus=20, customers=20, history_days=3,
                     orders_per_day=10, port=0, access_token=TOKEN, now=NOW) as running:
        assert running.erp_sqlite_path == tmp_path / "sandbox" / "erp.sqlite"
        con = sqlite3.connect(running.erp_sqlite_path)
        try:
            assert con.execute("select count(*) from products where not is_bundle").fetchone()[0] == 20  # + gift sets
        finally:
            con.close()
        response = httpx.post(f"{running.shopify_url}/admin/api/2026-10/graphql.json",
                              json={"query": "{ orders(first: 5) { nodes { id } } }"},
                              headers={"X-Shopify-Access-Token": TOKEN}, timeout=5)
        assert len(response.json()["data"]["orders"]["nodes"]) == 5
        assert len(running.world.orders) > 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.shopify_url}/_sandbox/health", timeout=1)


def test_the_simulator_places_orders_and_moves_old_ones_on():
    world = small_world(seed=4)
    before = len(world.orders)
    sim = Simulator(world, every=60.0, max_orders=3)
    for _ in range(3):
        sim.tick()  # driven by hand: no sleeping in tests
    assert before + 3 <= len(world.orders) <= before + 9
    sim.start()
    sim.stop(timeout=2)
    assert not sim._thread.is_alive()


def test_python_dash_m_sandbox_serves_until_sigterm_and_exits_zero(tmp_path):
    data_dir = tmp_path / "world"
    log = tmp_path / "traffic.jsonl"
    args = ["--seed", "3", "--skus", "12", "--customers", "10", "--history-days", "2", "--orders-per-day", "5",
            "--port", "0", "--data-dir", str(data_dir), "--traffic-log", str(log), "--simulate-every", "0.2"]
    with SandboxProcess(args) as sandbox:
        url = sandbox.url
        assert (data_dir / "erp.sqlite").is_file()
        before = httpx.get(f"{url}/_sandbox/health", timeout=5).json()["orders"]
        grew = False
        for _ in range(50):  # the simulator places orders every 0.2 s
            time.sleep(0.1)
            if httpx.get(f"{url}/_sandbox/health", timeout=5).json()["orders"] > before:
                grew = True
                break
        assert grew, "the simulator placed no order"
        r = httpx.post(f"{url}/admin/api/2026-10/graphql.json", json={"query": "{ shop { name } }"},
                       headers={"X-Shopify-Access-Token": "shpat_sandbox"}, timeout=5)
        assert r.status_code == 200
    assert sandbox.exit_code == 0
    assert "shpat_sandbox" not in log.read_text(encoding="utf-8"), "the token is never recorded"


def test_python_dash_m_sandbox_writes_every_channels_url_to_the_ready_file(tmp_path):
    """A program that starts the world on free ports learns each channel's address from --ready-file; with
    --no-file-drops the inbox stays empty."""
    data_dir = tmp_path / "world"
    ready = tmp_path / "ready" / "urls.json"
    args = ["--seed", "3", "--skus", "12", "--customers", "10", "--history-days", "2", "--orders-per-day", "5",
            "--port", "0", "--data-dir", str(data_dir), "--ready-file", str(ready), "--no-file-drops",
            "--amazon-feed-processing-seconds", "0.5"]
    with SandboxProcess(args) as sandbox:
        urls = json.loads(ready.read_text(encoding="utf-8"))
        assert urls["shopify"] == sandbox.url
        assert sorted(urls) == ["amazon", "rakuten", "shopify", "yahoo"]
        assert len(set(urls.values())) == 4
        assert httpx.get(f"{urls['rakuten']}/_sandbox/rakuten/stock", timeout=5).status_code == 200
        assert httpx.get(f"{urls['yahoo']}/_sandbox/yahoo/stock", timeout=5).status_code == 200
        assert httpx.get(f"{urls['amazon']}/_sandbox/amazon/listings", timeout=5).json()
        inbox = data_dir / "inbox"
        assert not inbox.exists() or not any(p.is_file() for p in inbox.rglob("*"))
    assert sandbox.exit_code == 0
