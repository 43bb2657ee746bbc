"""ERP staging over what the connector lands from the sandbox ERP (D35): products with is_bundle, purchase orders.

The landing zone is written by the real connector (ingestion.erp) from a real SQLite ERP written by the sandbox,
then dbt builds the ERP staging models and their tests into a tmp warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ichigen_dbt_helpers import start_dbt

from ingestion import erp
from ingestion.landing import LandingZone
from sandbox.erp import ErpMirror, write_sqlite
from sandbox.world import World

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
SELECT = ("build", "--indirect-selection", "cautious", "--select", "stg_erp__products", "stg_erp__warehouses",
          "stg_erp__purchase_orders")


def test_erp_staging_keeps_bundles_and_the_latest_purchase_order_status(tmp_config, tmp_path):
    # GIVEN the sandbox ERP landed by the connector, then every open purchase order received and landed again
    world = World.generate(seed=13, skus=30, customers=40, history_days=2, orders_per_day=10, now=NOW)
    write_sqlite(world, tmp_config.erp_sqlite_path)
    zone = LandingZone(tmp_config.landing_dir)
    for entity in ("products", "warehouses", "purchase_orders"):
        erp.ingest(tmp_config, entity, landing=zone, now=NOW)
    mirror = world.truth.mirror = ErpMirror(tmp_config.erp_sqlite_path)
    with world.lock:
        received = world.truth.receive_due(NOW + timedelta(days=30))
    mirror.close()
    erp.ingest(tmp_config, "purchase_orders", landing=zone, now=NOW + timedelta(hours=1))
    assert received

    # AND a second landing zone holding only a products batch from before is_bundle existed
    old_landing = tmp_path / "old_landing"
    old_zone = LandingZone(old_landing)
    products = zone.landed("erp", "products").collect()
    old_zone.write_batch("erp", "products", products.drop("is_bundle", "_batch_id", "_fetched_at"),
                         schema={k: v for k, v in erp.ENTITY_SPECS["products"].schema.columns.items()
                                 if k != "is_bundle"}, cursor_field="updated_at", fetched_at=NOW)

    # WHEN dbt builds the ERP staging models and their tests over each
    run = start_dbt(tmp_path / "dbt", *SELECT, landing=tmp_config.landing_dir)
    old_run = start_dbt(tmp_path / "dbt_old", "build", "--indirect-selection", "cautious", "--select", "stg_erp__products",
                        landing=old_landing)
    result, old = run.result(), old_run.result()

    # THEN every model and test passed
    assert result.returncode == 0, result.output[-3000:]
    assert old.returncode == 0, old.output[-3000:]
    assert all(s in ("success", "pass") for s in result.statuses().values()), result.statuses()
    # AND the bundles are flagged, every other product is not
    flags = dict(result.query("select sku, is_bundle from staging.stg_erp__products"))
    assert {sku for sku, flag in flags.items() if flag} == {p.sku for p in world.bundle_products}
    assert len(flags) == len(world.erp_products)
    # AND each purchase-order line is there once, in its latest state
    lines = result.query("select po_number, sku, status, is_open, open_quantity, received_at is not null, "
                         "expected_date from staging.stg_erp__purchase_orders")
    assert len(lines) == len(world.purchase_orders)
    by_key = {(po.po_number, po.sku): po for po in world.purchase_orders}
    for po_number, sku, status, is_open, open_quantity, has_received_at, expected in lines:
        po = by_key[(po_number, sku)]
        assert (status, is_open, open_quantity, has_received_at, expected) == (
            po.status, False, 0, True, po.expected_date)
    # AND batches from before the column read as "not a bundle"
    assert old.query("select count(*), count(*) filter (where is_bundle) from staging.stg_erp__products") == [
        (len(world.erp_products), 0)]
