"""ERP order intake (受注連携) against a sandbox world after a real full cycle (ingest → dbt → publish → post).

GIVEN a sandbox world (Shopify over real HTTP, the ERP in SQLite; in PostgreSQL for some tests) and one full cycle
WHEN the intake plans, guards and applies
THEN every bookable order reaches the ERP intake exactly once with its lines, a second apply posts nothing,
     a dry run posts nothing, a cancelled order posts a cancel, an unknown SKU is held with a reason (and
     posts once it maps), a kill -9 mid-apply then a rerun posts each order exactly once, and once the ERP
     has taken the orders they stop reserving channel-side stock in the next build — on SQLite and on PostgreSQL,
     where the sandbox's ERP staff take the posted orders the same way.
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import psycopg
import pytest

from ichigen.config import PROJECT_ROOT, Config, load_config
from ichigen.cycle import run_full_cycle
from ingestion import ingest
from reverse_sync.erp_intake import sync_intake
from reverse_sync.push_log import read_push_log
from sandbox import start_world
from sandbox.erp import write_postgres, write_sqlite
from sandbox.erp_intake import take_intake
from sandbox.runner import Simulator

pytestmark = [pytest.mark.e2e]
INTAKE_SQL = "SELECT channel_order_id, order_version, event, total_jpy FROM order_intake ORDER BY intake_id"


@pytest.fixture(scope="module")
def cycled(tmp_path_factory):
    """One world and one full cycle for the module (the cycle's erp/intake_post asset posts once)."""
    base = tmp_path_factory.mktemp("intake")
    with start_world(data_dir=base / "sandbox", seed=7, skus=15, customers=20, history_days=3, orders_per_day=20,
                     port=0, access_token="shpat_sandbox", restore_rate=1000.0) as world:
        config = load_config().with_overrides(**{
            "base_dir": str(base), "paths.landing": "landing", "paths.warehouse": "warehouse/warehouse.duckdb",
            "paths.serving": "serving/ichigen.duckdb", "paths.push_log": "push_log",
            "paths.dagster_home": "dagster", "paths.sandbox": "sandbox", "erp.kind": "sqlite",
            "erp.sqlite_path": str(world.erp_sqlite_path), "channels.shopify.base_url": world.shopify_url,
            "channels.shopify.access_token": "shpat_sandbox",
            "channels.shopify.backfill_start": "2020-01-01T00:00:00Z", "guard_rails.max_zeroed_fraction": 1.0,
            # the truth these tests compare with is the shop's; the malls' orders post the same way (channel-agnostic)
            "channels.rakuten.enabled": False, "channels.amazon.enabled": False, "channels.yahoo.enabled": False,
        })
        summary = run_full_cycle(config)
        assert summary.success, summary.failure
        yield world, config


def bookable_truth(world) -> dict[str, dict]:
    """The sandbox's own orders that the ERP must book: not cancelled, with units left."""
    orders = httpx.get(f"{world.shopify_url}/_sandbox/orders", timeout=30).json()
    return {o["order_id"]: o for o in orders
            if not o["cancelled"] and any(line["current_quantity"] > 0 for line in o["lines"])}


def fresh_sqlite_erp(config: Config, world, tmp_path: Path) -> Config:
    path = write_sqlite(world.world, tmp_path / "erp.sqlite")
    return config.with_overrides(**{"erp.sqlite_path": str(path), "paths.push_log": str(tmp_path / "push_log")})


def sqlite_rows(config: Config, sql: str) -> list[tuple]:
    con = sqlite3.connect(config.erp_sqlite_path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def serving_variant(config: Config, tmp_path: Path, *statements: str) -> Config:
    """A copy of the published serving copy (with its manifest) changed by SQL: a later published state."""
    folder = tmp_path / "serving"
    shutil.copytree(config.serving_path.parent, folder)
    con = duckdb.connect(str(folder / config.serving_path.name))
    for sql in statements:
        con.execute(sql)
    con.close()
    return config.with_overrides(**{"paths.serving": str(folder / config.serving_path.name)})


def test_the_cycle_posts_every_order_exactly_once_with_its_lines(cycled):
    world, config = cycled
    truth = bookable_truth(world)

    rows = sqlite_rows(config, INTAKE_SQL)

    assert len(truth) > 20
    assert sorted(r[0] for r in rows) == sorted(truth), "each bookable order once, nothing else"
    assert {r[0]: r[3] for r in rows} == {oid: o["total_jpy"] for oid, o in truth.items()}
    assert {r[2] for r in rows} == {"order"}
    lines = sqlite_rows(config, "SELECT i.channel_order_id, l.erp_sku, l.quantity, l.unit_price_jpy, l.tax_percent "
                                "FROM order_intake_lines l JOIN order_intake i USING (intake_id)")
    expected = sorted((oid, li["sku"], li["current_quantity"], li["unit_price_jpy"], li["tax_percent"])
                      for oid, o in truth.items() for li in o["lines"] if li["current_quantity"] > 0)
    assert sorted(lines) == expected
    details = sqlite_rows(config, "SELECT channel_order_id, shipping_jpy, discount_jpy, payment_method "
                                  "FROM order_intake")
    assert {d[0]: d[1:] for d in details} == {
        oid: (o["shipping_jpy"], o["discount_jpy"], o["payment_gateway"]) for oid, o in truth.items()}
    assert sqlite_rows(config, "SELECT count(*) FROM customer_intake")[0][0] > 0

    again = sync_intake(config)

    assert again.verdict.allowed and again.plan.orders == [] and again.posted == []
    assert again.plan.already_posted == len(truth)
    assert sqlite_rows(config, INTAKE_SQL) == rows
    log = read_push_log(config.push_log_dir, "shopify").filter(field="erp_intake")
    assert log.filter(status="applied").height == len(truth)


def test_every_order_reaches_a_postgres_erp_exactly_once(cycled, pg_database, tmp_path):
    world, config = cycled
    write_postgres(world.world, pg_database)
    config = config.with_overrides(**{"erp.kind": "postgres", "erp.postgres_dsn": pg_database,
                                      "paths.landing": str(tmp_path / "landing"),
                                      "paths.push_log": str(tmp_path / "push_log")})  # the module's log stays as is
    truth = bookable_truth(world)

    first = sync_intake(config)
    second = sync_intake(config)

    assert first.verdict.allowed and len(first.posted) == len(truth) and not first.failed
    assert second.posted == [] and second.plan.already_posted == len(truth)
    with psycopg.connect(pg_database) as con:
        ids = [r[0] for r in con.execute("SELECT channel_order_id FROM order_intake").fetchall()]
        orphans = con.execute("SELECT count(*) FROM order_intake i WHERE event = 'order' AND NOT EXISTS "
                              "(SELECT 1 FROM order_intake_lines l WHERE l.intake_id = i.intake_id)").fetchone()[0]
    assert sorted(ids) == sorted(truth) and orphans == 0
    markers = ingest(config, "erp", "order_intake")  # what dbt reads back: one marker per posted version
    assert markers.rows_landed == len(truth) and markers.rows_quarantined == 0


def test_a_dry_run_posts_nothing(cycled, tmp_path):
    world, config = cycled
    config = fresh_sqlite_erp(config, world, tmp_path)

    dry = sync_intake(config, dry_run=True)

    assert len(dry.plan.orders) == len(bookable_truth(world)) and dry.posted == []
    assert sqlite_rows(config, "SELECT count(*) FROM order_intake")[0][0] == 0
    assert {r.status for r in dry.records} == {"dry_run"}
    assert len(sync_intake(config, dry_run=True).plan.orders) == len(dry.plan.orders)


def test_a_stale_serving_copy_is_refused_and_posts_nothing(cycled, tmp_path):
    world, config = cycled
    config = fresh_sqlite_erp(config, world, tmp_path).with_overrides(**{"guard_rails.max_target_age_minutes": 1})

    refused = sync_intake(config, now=refused_time(config))

    assert not refused.verdict.allowed and "stale" in refused.verdict.reasons[0]
    assert sqlite_rows(config, "SELECT count(*) FROM order_intake")[0][0] == 0
    assert {r.status for r in refused.records} == {"refused"}


def refused_time(config: Config):
    from datetime import datetime, timedelta

    from ichigen.publish import published_version

    return datetime.fromisoformat(published_version(config.serving_path)["published_at"]) + timedelta(hours=1)


def test_a_cancelled_order_posts_one_cancel(cycled, tmp_path):
    world, config = cycled
    config = fresh_sqlite_erp(config, world, tmp_path)
    sync_intake(config)
    order_id = sorted(bookable_truth(world))[0]
    cancelled = serving_variant(config, tmp_path, f"update main.fct_orders set status = 'cancelled', is_open = false "
                                                  f"where order_id = '{order_id}'")

    first = sync_intake(cancelled)
    second = sync_intake(cancelled)

    assert [(o.channel_order_id, o.event) for o in first.posted] == [(order_id, "cancel")]
    assert second.posted == []
    rows = sqlite_rows(config, f"SELECT event FROM order_intake WHERE channel_order_id = '{order_id}' "
                               "ORDER BY intake_id")
    assert rows == [("order",), ("cancel",)]


def test_an_order_with_an_unknown_sku_is_held_with_a_reason_then_posts_once_mapped(cycled, tmp_path):
    world, config = cycled
    config = fresh_sqlite_erp(config, world, tmp_path)
    order_id = sorted(bookable_truth(world))[1]
    # int_order_lines__unified is a view (DECISIONS.md D191): the order's staged lines get a seller SKU and a
    # variant that match nothing, so the published lines resolve to no ERP SKU.
    unmapped = serving_variant(
        config, tmp_path,
        "update staging.stg_shopify__order_lines set sku = 'NO-SUCH-SKU', variant_id = 'no-such-variant' "
        f"where order_id = '{order_id}'")

    held = sync_intake(unmapped)

    assert [h.channel_order_id for h in held.plan.held] == [order_id]
    assert "NO-SUCH-SKU" in held.plan.held[0].reason and "matches no ERP SKU" in held.plan.held[0].reason
    assert order_id not in {r[0] for r in sqlite_rows(config, INTAKE_SQL)}
    log = read_push_log(config.push_log_dir, "shopify").filter(status="held")
    assert log["target_ref"].to_list() == [order_id] and "NO-SUCH-SKU" in log["error"][0]

    mapped = sync_intake(config)  # the listing is fixed: the next published state maps the line

    assert [o.channel_order_id for o in mapped.posted] == [order_id]


KILLABLE_APPLY = """
import json, sys, time
from ichigen.config import load_config
from reverse_sync.erp_intake import sync_intake
config = load_config().with_overrides(**json.loads(sys.argv[1]))
sync_intake(config, chunk_size=1, on_chunk=lambda done, total: time.sleep(0.15))
"""


def test_kill_9_mid_apply_then_a_rerun_posts_every_order_exactly_once(cycled, tmp_path):
    world, config = cycled
    config = fresh_sqlite_erp(config, world, tmp_path)
    total = len(bookable_truth(world))
    overrides = {"base_dir": str(config.base_dir), "erp.sqlite_path": str(config.erp_sqlite_path),
                 "paths.serving": str(config.serving_path), "paths.warehouse": str(config.warehouse_path),
                 "paths.push_log": str(config.push_log_dir)}
    import json

    proc = subprocess.Popen([sys.executable, "-c", KILLABLE_APPLY, json.dumps(overrides)], cwd=PROJECT_ROOT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if sqlite_rows(config, "SELECT count(*) FROM order_intake")[0][0] >= 5:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the apply ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    before = sqlite_rows(config, "SELECT count(*) FROM order_intake")[0][0]
    assert 5 <= before < total

    rerun = sync_intake(config)

    assert len(rerun.posted) == total - before and not rerun.failed
    ids = [r[0] for r in sqlite_rows(config, INTAKE_SQL)]
    assert len(ids) == len(set(ids)) == total
    orphans = sqlite_rows(config, "SELECT count(*) FROM order_intake i WHERE NOT EXISTS "
                                  "(SELECT 1 FROM order_intake_lines l WHERE l.intake_id = i.intake_id)")
    assert orphans == [(0,)], "a chunk is one transaction: no header without its lines"


def reserved_units(config: Config) -> int:
    serving = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        return serving.execute("select coalesce(sum(open_order_units), 0) from "
                               "intermediate.int_stock__open_reservations").fetchone()[0]
    finally:
        serving.close()


def landed_intake_statuses(config: Config) -> list[tuple]:
    serving = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        return serving.execute("select distinct status from staging.stg_erp__order_intakes").fetchall()
    finally:
        serving.close()


def test_orders_the_erp_has_taken_stop_reserving_on_the_channel_side(cycled, tmp_path):
    # on copies (the cycle's own ERP with what it posted included): the module's other tests keep reading the
    # state the first cycle left, whichever order xdist runs them in
    world, config = cycled
    erp_copy = tmp_path / "erp" / config.erp_sqlite_path.name
    erp_copy.parent.mkdir()
    shutil.copy2(config.erp_sqlite_path, erp_copy)
    config = on_its_own(config, tmp_path).with_overrides(**{"erp.sqlite_path": str(erp_copy)})
    assert reserved_units(config) > 0
    con = sqlite3.connect(config.erp_sqlite_path)
    on_hand_before = con.execute("SELECT sum(on_hand) FROM stock").fetchone()[0]
    taken = take_intake(con)
    on_hand_after = con.execute("SELECT sum(on_hand) FROM stock").fetchone()[0]
    con.close()
    assert taken == len(bookable_truth(world)) and on_hand_after < on_hand_before  # the ERP allocated them

    summary = run_full_cycle(config)

    assert summary.success, summary.failure
    assert reserved_units(config) == 0 and landed_intake_statuses(config) == [("taken",)]
    assert sqlite_rows(config, "SELECT count(*) FROM order_intake")[0][0] == taken, "the cycle posted nothing new"


def on_its_own(config: Config, tmp_path: Path) -> Config:
    """This module's landing, warehouse, published copy and push log copied to tmp: a cycle run on the copy
    changes nothing the module's other tests read."""
    paths = {"paths.landing": config.landing_dir, "paths.warehouse": config.warehouse_path,
             "paths.serving": config.serving_path, "paths.push_log": config.push_log_dir}
    overrides = {}
    for key, path in paths.items():
        folder = path if path.is_dir() else path.parent
        copy = tmp_path / key.split(".")[1] / folder.name
        shutil.copytree(folder, copy)
        overrides[key] = str(copy if path.is_dir() else copy / path.name)
    return config.with_overrides(**overrides, **{"paths.dagster_home": str(tmp_path / "dagster")})


def test_a_postgres_erp_s_staff_take_the_posted_orders_and_they_stop_reserving(cycled, pg_database, tmp_path):
    # GIVEN the world's ERP in PostgreSQL, the product configured to read it and post its intake there
    world, config = cycled
    write_postgres(world.world, pg_database)
    config = on_its_own(config, tmp_path).with_overrides(**{"erp.kind": "postgres", "erp.postgres_dsn": pg_database})
    assert reserved_units(config) > 0
    posted = sync_intake(config)
    assert len(posted.posted) == len(bookable_truth(world)) and not posted.failed

    # WHEN the sandbox's ERP staff (the simulator's) take what was posted there
    with psycopg.connect(pg_database, autocommit=True) as pg:
        on_hand_before = pg.execute("SELECT sum(on_hand) FROM stock").fetchone()[0]
        taken = Simulator(world.world, every=1.0, erp_postgres_dsn=pg_database).take_posted_orders()
        on_hand_after = pg.execute("SELECT sum(on_hand) FROM stock").fetchone()[0]
        statuses = pg.execute("SELECT DISTINCT status FROM order_intake").fetchall()
        allocated = pg.execute("SELECT coalesce(sum(quantity), 0) FROM stock_allocations").fetchone()[0]

    # THEN every posted order is taken and the open ones' units are allocated out of on_hand
    assert taken == len(posted.posted) and statuses == [("taken",)]
    assert on_hand_before - on_hand_after == allocated > 0

    summary = run_full_cycle(config)  # the next cycle reads the ERP's markers from PostgreSQL

    # AND they stop reserving channel-side stock, and the cycle posts nothing new
    assert summary.success, summary.failure
    assert reserved_units(config) == 0 and landed_intake_statuses(config) == [("taken",)]
    with psycopg.connect(pg_database) as pg:
        assert pg.execute("SELECT count(*) FROM order_intake").fetchone()[0] == taken


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_sandbox_fallback_posts_its_own_orders_once_when_no_integration_runs(kind, request, tmp_path):
    from sandbox.world import World

    world = World.generate(seed=3, skus=8, customers=5, history_days=2, orders_per_day=8)
    if kind == "sqlite":
        path = write_sqlite(world, tmp_path / "erp.sqlite")
        simulator = Simulator(world, every=1.0, erp_sqlite=path, erp_intake_fallback=True)
        connect = lambda: sqlite3.connect(path)  # noqa: E731
    else:
        dsn = request.getfixturevalue("pg_database")
        write_postgres(world, dsn)
        simulator = Simulator(world, every=1.0, erp_postgres_dsn=dsn, erp_intake_fallback=True)
        connect = lambda: psycopg.connect(dsn)  # noqa: E731

    simulator.tick()
    simulator.tick()

    con = connect()
    rows = con.execute("SELECT channel_order_id, event, status FROM order_intake").fetchall()
    con.close()
    truth = world.orders_truth()
    bookable = {o["order_id"] for o in truth if any(li["current_quantity"] > 0 for li in o["lines"])}
    ordered = [r[0] for r in rows if r[1] == "order"]
    assert len(ordered) == len(set(ordered)) and set(ordered) <= bookable
    assert {o["order_id"] for o in truth if not o["cancelled"]} & bookable <= set(ordered)
    assert {r[2] for r in rows} == {"taken"}
    assert Simulator(world, every=1.0).erp_intake_fallback is False  # off unless asked for


def test_the_cli_dry_run_and_apply(cycled, tmp_path):
    from typer.testing import CliRunner

    from ichigen.cli import app

    world, config = cycled
    config = fresh_sqlite_erp(config, world, tmp_path)
    toml = tmp_path / "ichigen.toml"
    toml.write_text(
        f'[paths]\nserving = "{config.serving_path}"\nwarehouse = "{config.warehouse_path}"\n'
        f'push_log = "{config.push_log_dir}"\n[erp]\nkind = "sqlite"\nsqlite_path = "{config.erp_sqlite_path}"\n',
        encoding="utf-8")
    total = len(bookable_truth(world))

    dry = CliRunner().invoke(app, ["sync", "intake", "--dry-run", "--config", str(toml)])
    assert dry.exit_code == 0, dry.output
    assert f"planned {total}, posted 0" in " ".join(dry.output.split())  # rich wraps long lines
    assert sqlite_rows(config, "SELECT count(*) FROM order_intake") == [(0,)]

    applied = CliRunner().invoke(app, ["sync", "intake", "--config", str(toml)])
    assert applied.exit_code == 0, applied.output
    assert f"posted {total}," in " ".join(applied.output.split())
    assert sqlite_rows(config, "SELECT count(*) FROM order_intake") == [(total,)]
