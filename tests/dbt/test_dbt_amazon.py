"""GIVEN a small world whose ERP and Amazon mall were landed by the real connectors (the Amazon sandbox over
HTTP), WHEN dbt builds the Amazon staging models and everything downstream of them, THEN staging equals the
mall's truth (orders, totals, statuses, buyer columns), listings resolve to the ERP SKU they sell (seller SKU,
else JAN; deliberate unmatched listings stay null), and the unified marts include Amazon."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from ichigen_dbt_helpers import run_dbt

import ingestion
from ichigen.config import load_config
from ingestion import amazon
from ingestion.landing import LandingZone
from ingestion.ratelimit import reset_channel_limiters
from sandbox import malls
from sandbox.amazon import AmazonSettings, serve_amazon
from sandbox.erp import write_sqlite
from sandbox.world import World

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
UNIFIED = {malls.CANCELLED: "cancelled", malls.DELIVERED: "delivered", malls.RETURNED: "delivered",
           malls.SHIPPED: "shipped", malls.AWAITING_SHIPMENT: "awaiting_shipment",
           malls.ORDERED: "pending_payment", malls.PENDING_PAYMENT: "pending_payment"}


@pytest.fixture(scope="module")
def amazon_build(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("amazon_dbt")
    world = World.generate(seed=7, skus=24, customers=30, history_days=5, orders_per_day=20, now=NOW)
    write_sqlite(world, root / "erp.sqlite")
    config = load_config().with_overrides(**{"base_dir": str(root), "paths.landing": "landing",
                                             "erp.sqlite_path": "erp.sqlite"})
    landing = LandingZone(config.landing_dir)
    for entity in ("products", "warehouses", "stock"):
        ingestion.ingest(config, "erp", entity, landing=landing, now=NOW)
    reset_channel_limiters()
    with serve_amazon(world, settings=AmazonSettings(rate_scale=1000.0)) as handle:
        config = config.with_overrides(**{"channels.amazon.base_url": handle.url,
                                          "channels.amazon.token_url": f"{handle.url}/auth/o2/token",
                                          "channels.amazon.rate_scale": 1000.0,
                                          "channels.amazon.requests_per_second": 500.0,
                                          "channels.amazon.backfill_start": "2026-10-01T00:00:00Z"})
        for entity in amazon.ENTITIES:
            amazon.ingest(config, entity, landing=landing)
    reset_channel_limiters()
    # cautious: a test is built only when every model it reads is selected (a relationship test from a staging
    # model outside the selection to a selected one would otherwise fail for want of its table)
    result = run_dbt(root / "dbt", "build", "--select",
                     "@stg_amazon__orders", "@stg_amazon__order_lines", "@stg_amazon__listings",
                     "--indirect-selection", "cautious", landing=config.landing_dir)
    return world, result


def test_build_passes_every_test(amazon_build):
    _world, result = amazon_build
    assert result.returncode == 0, result.output[-3000:]
    statuses = result.statuses()
    assert any("known_status_code_stg_amazon__orders" in k for k in statuses)
    failed = [k for k, s in statuses.items() if s not in ("success", "pass") and not k.startswith("exposure.")]
    assert not failed
    assert "unit_test.ichigen.int_orders__unified.test_int_orders__unified_amazon_status_mapping" in statuses


def test_staged_orders_equal_the_mall_truth(amazon_build):
    world, result = amazon_build
    truth = {o.order_id: o for o in world.mall("amazon").orders}
    rows = result.query("select order_id, total_jpy, shipping_jpy, discounts_jpy, buyer_email, buyer_name, "
                        "buyer_postal_code, buyer_prefecture, buyer_address1, buyer_phone from staging.stg_amazon__orders")
    assert {r[0] for r in rows} == set(truth)
    for order_id, total, shipping, discount, email, name, postal, prefecture, address1, phone in rows:
        order = truth[order_id]
        assert (total, shipping, discount) == (order.total, order.shipping, order.discount)
        assert email == order.buyer.email and name == f"{order.buyer.family_name} {order.buyer.given_name}"
        assert prefecture == order.buyer.prefecture and phone and postal and address1
        assert "０" not in postal and "－" not in (phone or "")  # NFKC
    unified = dict(result.query("select order_id, status from main.fct_orders where channel = 'amazon'"))
    assert unified == {order_id: UNIFIED[o.state] for order_id, o in truth.items()}


def test_lines_and_listings_resolve_to_the_erp_sku(amazon_build):
    world, result = amazon_build
    mall = world.mall("amazon")
    listed = dict(result.query("select listing_id, sku from intermediate.int_products__channel_listings where channel = 'amazon'"))
    assert listed == {s.listing_id: s.erp_sku for s in mall.listings}
    assert any(s.seller_sku != s.erp_sku and s.erp_sku for s in mall.listings)  # some matched by JAN only
    units = dict(result.query("select erp_sku, sum(quantity) from intermediate.int_order_lines__unified "
                              "where channel = 'amazon' group by 1"))
    expected: dict[str | None, int] = {}
    for order in mall.orders:
        for line in order.lines:
            expected[line.erp_sku] = expected.get(line.erp_sku, 0) + line.quantity
    assert units == expected
    targets = result.query("select count(*) from main.mart_channel_stock_targets where channel = 'amazon'")[0][0]
    assert targets == len({s.erp_sku for s in mall.listings if s.erp_sku})
    daily = result.query("select sum(orders) from main.fct_daily_sales where channel = 'amazon'")[0][0]
    assert daily == sum(1 for o in mall.orders if o.state != malls.CANCELLED)


def test_package_status_is_landed_and_older_batches_without_it_still_build(amazon_build, tmp_path):
    """The package status is a landed column (D154): it equals packages[0].packageStatus.status of `_raw`, and a
    landing zone whose batches predate the column (rewritten here without it) stages the same statuses from
    `_raw`."""
    world, result = amazon_build
    landing = result.warehouse.parent.parent / "landing"  # the fixture's root: <root>/dbt/warehouse.duckdb
    landed = landing / "amazon" / "orders"
    files = sorted(landed.rglob("*.parquet"))
    assert files
    con = duckdb.connect()
    mismatched = con.execute(
        "select count(*) from read_parquet(?, union_by_name=true) "
        "where package_status is distinct from json_extract_string(_raw, '$.packages[0].packageStatus.status')",
        [[str(f) for f in files]]).fetchone()[0]
    assert mismatched == 0
    compiled = (result.warehouse.parent / "dbt_target" / "compiled" / "ichigen" / "models" / "staging" / "amazon"
                / "stg_amazon__orders.sql").read_text(encoding="utf-8")
    assert "json_extract_string(_raw" not in compiled  # every batch has the column: _raw is not read
    staged = dict(result.query("select order_id, package_status from staging.stg_amazon__orders"))
    assert {"DELIVERED", "RETURNED"} & set(staged.values())  # the column carries real statuses

    old_landing = tmp_path / "landing"
    shutil.copytree(landing, old_landing)
    for path in sorted((old_landing / "amazon" / "orders").rglob("*.parquet")):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["package_status"]), path)
    rebuilt = run_dbt(tmp_path / "dbt", "run", "--select", "stg_amazon__orders", landing=old_landing)
    assert rebuilt.returncode == 0, rebuilt.output[-3000:]
    assert dict(rebuilt.query("select order_id, package_status from staging.stg_amazon__orders")) == staged
