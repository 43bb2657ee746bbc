"""GIVEN a small sandbox world's Rakuten mall and ERP, landed by the real connectors, WHEN `dbt build` runs, THEN
Rakuten's orders, lines and listings reach the unified models and marts, equal to the mall's truth."""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from ichigen_dbt_helpers import DbtResult, run_dbt

import ingestion
from ichigen.config import Config
from ingestion import rakuten
from ingestion.landing import LandingZone
from sandbox.erp import write_sqlite
from sandbox.malls import BANK, KONBINI, ORDERED
from sandbox.server import serve_rakuten
from sandbox.world import World

VARS = '{stock_channel_buffers: {rakuten: 1}, default_safety_stock: 0}'


@pytest.fixture(scope="module")
def landed_world(tmp_path_factory) -> tuple[World, Path]:
    world = World.generate(seed=8, skus=20, customers=25, history_days=4, orders_per_day=20)
    root = tmp_path_factory.mktemp("rakuten_dbt")
    config = Config().with_overrides(**{
        "base_dir": str(root), "paths.landing": "landing", "erp.kind": "sqlite", "erp.sqlite_path": "erp.sqlite",
        "channels.rakuten.service_secret": "SP_d", "channels.rakuten.license_key": "SL_d",
        "channels.rakuten.requests_per_second": 100.0,
    })
    write_sqlite(world, root / "erp.sqlite")
    landing = LandingZone(config.landing_dir)
    for entity in ("products", "warehouses", "stock"):
        ingestion.ingest(config, "erp", entity, landing=landing)
    with serve_rakuten(world, port=0, service_secret="SP_d", license_key="SL_d", requests_per_second=200) as mall:
        config = config.with_overrides(**{"channels.rakuten.base_url": mall.url})
        with rakuten.make_client(config, api=rakuten.ORDER_API) as client:  # the sandbox here allows 200/s
            for entity in ingestion.ENTITIES["rakuten"]:
                ingestion.ingest(config, "rakuten", entity, landing=landing, client=client)
            # The look-back lands recent orders again: staging must keep one version per order.
            ingestion.ingest(config, "rakuten", "orders", landing=landing, client=client)
    return world, root


@pytest.fixture(scope="module")
def build(landed_world) -> DbtResult:
    _, root = landed_world
    result = run_dbt(root / "dbt", "build", "--vars", VARS, landing=root / "landing")
    assert result.returncode == 0, result.output[-6000:]
    return result


def test_every_rakuten_model_and_test_ran_and_passed(build):
    statuses = build.statuses()
    rakuten_nodes = {k: v for k, v in statuses.items() if "rakuten" in k}
    assert any(k.startswith("test.ichigen.known_status_code_stg_rakuten__orders") for k in rakuten_nodes)
    assert len([k for k in rakuten_nodes if k.startswith("model.")]) == 4
    assert set(statuses.values()) <= {"success", "pass", "no-op"}  # no-op: exposures


def test_orders_equal_the_malls_truth_with_unified_statuses(build, landed_world):
    world, _ = landed_world
    truth = {o.order_id: o for o in world.mall("rakuten").orders}
    rows = build.query("select f.order_id, f.total_jpy, s.shipping_jpy, s.discounts_jpy, f.status "
                       "from main.fct_orders as f join staging.stg_rakuten__orders as s using (order_id) "
                       "where f.channel = 'rakuten'")
    assert len(rows) == len(truth)
    for order_id, total, shipping, discount, status in rows:
        order = truth[order_id]
        assert (total, shipping, discount) == (order.total, order.shipping, order.discount), order_id
        expected = order.state
        if order.state == ORDERED:  # 注文確認待ち: open, not yet confirmed; a bank or konbini order is unpaid too
            expected = "pending_payment" if order.payment_method in (BANK, KONBINI) else "awaiting_shipment"
        assert status == expected, (order_id, order.state, order.payment_method, status)
    assert Counter(r[4] for r in rows)["cancelled"] == sum(o.state == "cancelled" for o in truth.values())


def test_buyer_columns_contract(build, landed_world):
    world, _ = landed_world
    columns = {name for (name,) in build.query(
        "select column_name from information_schema.columns where table_name = 'stg_rakuten__orders'")}
    contract = {"buyer_name", "buyer_name_kana", "buyer_email", "buyer_phone", "buyer_postal_code",
                "buyer_prefecture", "buyer_address1", "order_id", "created_at", "updated_at", "status_code",
                "total_jpy", "shipping_jpy", "discounts_jpy", "payment_method"}
    assert contract <= columns
    order = world.mall("rakuten").orders[0]
    (row,) = build.query(f"select buyer_name, buyer_email, buyer_phone, buyer_postal_code, buyer_prefecture "
                         f"from staging.stg_rakuten__orders where order_id = '{order.order_id}'")
    assert row[0] == f"{order.buyer.family_name} {order.buyer.given_name}"
    assert row[1] == order.buyer.email
    assert row[2] == unicodedata.normalize("NFKC", order.buyer.phone)
    assert "０" not in (row[3] or "") and row[4] == order.buyer.prefecture


def test_lines_listings_and_stock_targets_include_rakuten(build, landed_world):
    world, _ = landed_world
    mall = world.mall("rakuten")
    matched = dict(build.query("select listing_id, sku from intermediate.int_products__channel_listings "
                               "where channel = 'rakuten'"))
    assert matched == {s.listing_id: s.erp_sku for s in mall.listings}
    units = build.query("select sum(quantity) from intermediate.int_order_lines__unified where channel = 'rakuten'")
    assert units == [(sum(li.quantity for o in mall.orders for li in o.lines),)]
    unmatched_lines = build.query("select count(*) from intermediate.int_order_lines__unified "
                                  "where channel = 'rakuten' and erp_sku is null")
    assert unmatched_lines == [(sum(1 for o in mall.orders for li in o.lines if li.erp_sku is None),)]
    targets = dict(build.query("select sku, channel_buffer from main.mart_channel_stock_targets "
                               "where channel = 'rakuten'"))
    assert set(targets) == {s.erp_sku for s in mall.listings if s.erp_sku}
    assert set(targets.values()) == {1}
    daily = build.query("select sum(orders) from main.fct_daily_sales where channel = 'rakuten'")
    assert daily[0][0] == sum(1 for o in mall.orders if o.state != "cancelled")
