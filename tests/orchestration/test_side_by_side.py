"""The landing and reverse-sync steps run their sources/channels side by side (D171, D174): one thread per group,
a group's items in order, an item's failure reported without stopping the rest."""

from __future__ import annotations

import threading

import dagster as dg

import ingestion
from orchestration.assets import LANDING_STEP, build_landing_asset, run_side_by_side


def test_budgets_run_at_the_same_time_and_items_of_one_budget_in_order():
    both_started = threading.Barrier(2, timeout=10)  # only passes when the two budgets run concurrently
    seen: list[tuple[str, str]] = []

    def work(item: tuple[str, str]) -> str:
        if item[1] == "first":
            both_started.wait()
        seen.append(item)
        return "/".join(item)

    wanted = [("shopify", "first"), ("shopify", "second"), ("rakuten", "first"), ("rakuten", "second")]
    results = list(run_side_by_side(wanted, budget=lambda item: item[0], work=work))

    assert all(seconds >= 0 for _, _, seconds in results)
    assert sorted(r[1] for r in results) == ["rakuten/first", "rakuten/second", "shopify/first", "shopify/second"]
    for group in ("shopify", "rakuten"):
        assert [item for g, item in seen if g == group] == ["first", "second"]


def test_rakuten_entities_draw_on_one_budget_per_rms_api_and_other_sources_on_their_own():
    assert {ingestion.budget("rakuten", e) for e in ingestion.ENTITIES["rakuten"]} == {
        "rakuten/order", "rakuten/items", "rakuten/inventory"}
    assert {ingestion.budget("shopify", e) for e in ingestion.ENTITIES["shopify"]} == {"shopify"}
    assert ingestion.budget("yahoo", "stock") == ingestion.budget("yahoo", "orders") == "yahoo"  # one store budget


def test_a_failing_item_is_reported_and_the_others_still_run():
    def work(item: tuple[str, str]) -> str:
        if item == ("amazon", "orders"):
            raise RuntimeError("amazon searchOrders: 503 after 5 attempts")
        return "landed"

    wanted = [("amazon", "orders"), ("amazon", "listings"), ("erp", "stock")]
    results = {item: r for item, r, _ in run_side_by_side(wanted, budget=lambda item: item[0], work=work)}

    assert isinstance(results[("amazon", "orders")], RuntimeError)
    assert results[("amazon", "listings")] == "landed" and results[("erp", "stock")] == "landed"


def test_the_landing_step_records_what_landed_and_fails_naming_what_did_not(tmp_config):
    # the ERP's SQLite file exists with its tables; the Shopify shop is configured at a port nobody listens on
    from sandbox.erp import write_sqlite
    from sandbox.world import World

    write_sqlite(World.generate(seed=3, skus=5, customers=5, history_days=1, orders_per_day=2),
                 tmp_config.erp_sqlite_path)
    config = tmp_config.with_overrides(**{"channels.shopify.base_url": "http://127.0.0.1:9",
                                          "channels.shopify.max_retries": 0})
    landing = build_landing_asset(config)
    selection = [dg.AssetKey(["erp", "warehouses"]), dg.AssetKey(["shopify", "customers"])]

    result = dg.materialize([landing], selection=selection, raise_on_error=False)

    assert not result.success
    landed = [m.asset_key for m in result.asset_materializations_for_node(LANDING_STEP)]
    assert landed == [dg.AssetKey(["erp", "warehouses"])]
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "shopify/customers" in failure.event_specific_data.error.message
