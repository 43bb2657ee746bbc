"""Price sync to the Yahoo!ショッピング sandbox over real HTTP: updateItems, one price per item code (D92).

GIVEN the store's items landed by ingestion (myItemList, price per sub code) and a published serving copy
holding price targets and the listing match
WHEN reverse sync plans and applies prices
THEN the store shows the targets (and the next ingest reads them), a second apply pushes nothing, a dry run and
     a refused plan touch nothing, an item the store answers NG fails alone inside the bulk answer and is healed
     next cycle, and sub codes of one item with different targets are refused with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from sync_testkit import MAX_MOVE, publish_price_targets, raised, unlisted

from ichigen.config import Config
from ingestion import yahoo
from ingestion.ratelimit import reset_channel_limiters
from ingestion.throttle import reset_shared_throttles
from reverse_sync.prices import sync_prices, yahoo_price_state
from reverse_sync.push_log import read_push_log
from sandbox.server import serve_yahoo
from sandbox.world import World
from sandbox.yahoo import item_code

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
def store():
    reset_channel_limiters()
    reset_shared_throttles()
    world = World.generate(seed=5, skus=40, customers=10, history_days=2, orders_per_day=5, now=NOW)
    with serve_yahoo(world, port=0, requests_per_second=300.0, burst=30) as handle:
        handle.world = world
        yield handle
    reset_channel_limiters()
    reset_shared_throttles()


@pytest.fixture
def config(tmp_config: Config, store) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.yahoo.enabled": True, "channels.yahoo.base_url": store.url,
        "channels.yahoo.requests_per_second": 200.0, "guard_rails.max_price_change_fraction": MAX_MOVE})
    assert yahoo.ingest(config, "listings").rows_landed > 0
    return config


def listings(store):
    return store.world.mall("yahoo").listings


def prices(store) -> dict[str, int]:
    """item code (code:sub) → the price the store shows."""
    with store.world.lock:
        return {item_code(s): s.price for s in listings(store)}


def publish(config: Config, store, targets: dict[str, int]) -> None:
    publish_price_targets(config, "yahoo", targets, [(item_code(s), s.erp_sku) for s in listings(store)])


def raised_targets(store) -> dict[str, int]:
    """One new price per item (Yahoo keeps the price per item code): every sub code of an item gets the same."""
    by_item: dict[str, int] = {}
    for s in listings(store):
        by_item[s.parent_code] = max(by_item.get(s.parent_code, 0), s.price)
    return {s.erp_sku: raised(by_item[s.parent_code]) for s in listings(store) if s.erp_sku}


def test_apply_converges_the_next_ingest_sees_it_and_a_second_apply_pushes_nothing(config, store):
    targets = raised_targets(store)
    publish(config, store, targets)

    first = sync_prices(config, "yahoo")

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned > 0 and first.failed == 0
    shown = prices(store)
    assert all(shown[r.target_ref] == r.new_value == targets[r.sku] for r in first.records)
    assert sync_prices(config, "yahoo").planned == 0
    assert yahoo.ingest(config, "listings").rows_landed > 0
    landed = dict(yahoo_price_state(config).select("sku", "quantity").iter_rows())
    assert {sku: landed[sku] for sku in targets} == targets
    log = read_push_log(config.push_log_dir, "yahoo")
    assert set(log["field"]) == {"price"} and log.height == first.planned


def test_a_dry_run_changes_nothing(config, store):
    before = prices(store)
    publish(config, store, raised_targets(store))

    dry = sync_prices(config, "yahoo", dry_run=True)

    assert dry.planned > 0 and {r.status for r in dry.records} == {"dry_run"}
    assert prices(store) == before


def test_a_move_beyond_the_guard_is_refused_whole(config, store):
    before = prices(store)
    targets = raised_targets(store)
    jumped = sorted(targets)[0]
    targets[jumped] = targets[jumped] * 2

    publish(config, store, targets)
    refused = sync_prices(config, "yahoo")

    assert not refused.verdict.allowed
    assert any("max_price_change_fraction" in r and jumped in r for r in refused.verdict.reasons)
    assert refused.refused == refused.planned > 1 and prices(store) == before


def test_an_ng_item_fails_alone_inside_the_bulk_answer_and_the_next_cycle_heals_it(config, store):
    targets = raised_targets(store)
    publish(config, store, targets)
    gone_item = next(s.parent_code for s in listings(store) if s.erp_sku)
    gone = [s for s in listings(store) if s.parent_code == gone_item]

    with unlisted(store.world, "yahoo", gone):
        first = sync_prices(config, "yahoo")

    failed = {r.target_ref: r.error for r in first.records if r.status == "failed"}
    assert set(failed) == {item_code(s) for s in gone if s.erp_sku} and first.applied > 0
    assert all(f"item {gone_item}: ed-00003" in error for error in failed.values())
    healed = sync_prices(config, "yahoo")
    assert healed.planned == healed.applied == len(failed)
    assert all(prices(store)[item_code(s)] == targets[s.erp_sku] for s in gone if s.erp_sku)


def test_sub_codes_of_one_item_with_different_targets_are_refused_with_the_reason(config, store):
    item = next(code for code in {s.parent_code for s in listings(store)}
                if sum(1 for s in listings(store) if s.parent_code == code and s.erp_sku) >= 2)
    subs = [s for s in listings(store) if s.parent_code == item and s.erp_sku]
    targets = raised_targets(store)
    targets[subs[0].erp_sku] += 10
    publish(config, store, targets)
    before = prices(store)

    result = sync_prices(config, "yahoo")

    failed = {r.target_ref: r.error for r in result.records if r.status == "failed"}
    assert set(failed) == {item_code(s) for s in subs}
    assert all("one price per item code" in e for e in failed.values())
    assert all(prices(store)[item_code(s)] == before[item_code(s)] for s in subs)


def test_a_sibling_already_at_its_target_is_not_moved_by_the_item_price(config, store):
    item = next(code for code in {s.parent_code for s in listings(store)}
                if sum(1 for s in listings(store) if s.parent_code == code and s.erp_sku) >= 2)
    subs = [s for s in listings(store) if s.parent_code == item and s.erp_sku]
    targets = raised_targets(store)
    targets |= {s.erp_sku: s.price for s in subs[1:]}  # the siblings stay where they are: not in the plan
    publish(config, store, targets)
    before = prices(store)

    result = sync_prices(config, "yahoo")

    failed = {r.target_ref: r.error for r in result.records if r.status == "failed"}
    assert set(failed) == {item_code(subs[0])} and item_code(subs[1]) in failed[item_code(subs[0])]
    assert all(prices(store)[item_code(s)] == before[item_code(s)] for s in subs)
    assert result.applied == result.planned - 1


def test_the_sandbox_answers_updateitems_per_item(store):
    sub = next(s for s in listings(store) if s.parent_code != s.variant_code)
    auth = {"Authorization": "Bearer yahoo_sandbox_token"}
    form = {"seller_id": "ichigen-select",
            "item1": urlencode({"item_code": sub.parent_code, "price": "2480"}),
            "item2": urlencode({"item_code": sub.parent_code, "price": "12.5"}),
            "item3": urlencode({"item_code": "no-such-item", "price": "100"}),
            "item4": urlencode({"item_code": item_code(sub), "price": "100"})}

    answer = httpx.post(f"{store.url}/ShoppingWebService/V1/updateItems", headers=auth, data=form)

    assert answer.status_code == 200
    statuses = [part.split("</Status>")[0] for part in answer.text.split("<Status>")[1:]]
    assert statuses == ["OK", "NG", "NG", "NG"]
    assert all(s.price == 2480 for s in listings(store) if s.parent_code == sub.parent_code)
    missing = httpx.post(f"{store.url}/ShoppingWebService/V1/updateItems", headers=auth, data={"item1": "x"})
    assert missing.status_code == 400 and "px-04001" in missing.text
