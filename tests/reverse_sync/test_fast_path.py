"""The stock fast path (reverse_sync.fast_path) against the sandbox's four channels over real HTTP.

GIVEN a published serving copy (targets, listing match, the orders it counted) and every channel converged on it
WHEN orders arrive on a channel and the FastPathWorker ticks
THEN the other channels show the new stock within a few ticks, a tick with nothing new pushes nothing, a sale
     on a target channel between our read and our push stays sold, and nothing is pushed below 0.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from bench.stock_lag import (
    CHANNELS,
    four_channel_config,
    land_channel_state,
    publish_snapshot,
    shown_quantities,
    start_four_channel_world,
)
from ingestion.ratelimit import reset_channel_limiters
from ingestion.throttle import reset_shared_throttles
from reverse_sync.fast_path import FastPathWorker, PublishedState, UnpublishedSale, adjusted_targets
from reverse_sync.push_log import read_push_log
from reverse_sync.stock import sync_stock

TARGET = 5


@pytest.fixture
def running(tmp_path):
    reset_channel_limiters()
    reset_shared_throttles()
    with start_four_channel_world(tmp_path / "sandbox", seed=8, skus=12, customers=10, history_days=1,
                                  orders_per_day=3) as running:
        yield running
    reset_channel_limiters()
    reset_shared_throttles()


def converge(config, world, targets: dict[str, int]) -> None:
    """The scheduled cycle before the test: land, publish `targets`, sync every channel to them."""
    land_channel_state(config)
    publish_snapshot(config, world, targets)
    for channel in CHANNELS:
        result = sync_stock(config, channel)
        assert result.verdict.allowed and result.failed == 0, (channel, result.verdict.reasons)
    time.sleep(1.05)  # orders below are stamped (to the second) after our pushes


@pytest.fixture
def world_and_config(tmp_path, running):
    config = four_channel_config(tmp_path, running)
    world = running.world
    skus = [p.sku for p in world.erp_products]
    converge(config, world, dict.fromkeys(skus, TARGET))
    return world, config


def shown(world, sku: str) -> dict[str, list[int]]:
    with world.lock:
        return shown_quantities(world, sku)


def sku_on_every_channel(world) -> str:
    return next(p.sku for p in world.erp_products if set(shown(world, p.sku)) == set(CHANNELS))


def tick_until(worker: FastPathWorker, done, ticks: int = 4):
    """Tick at most `ticks` times (each bounded by its own calls' timeouts) until `done()`."""
    results = []
    for _ in range(ticks):
        results.append(worker.tick())
        if done():
            break
    return results


def test_an_order_on_rakuten_lowers_the_stock_every_other_channel_shows(world_and_config):
    world, config = world_and_config
    sku = sku_on_every_channel(world)
    other = next(p.sku for p in world.erp_products if p.sku != sku and set(shown(world, p.sku)) == set(CHANNELS))
    listing = world.mall_listing_for_sku("rakuten", sku)
    assert world.place_mall_order("rakuten", [(listing.listing_id, 2)]) is not None
    worker = FastPathWorker(config, tick_seconds=0.2)

    results = tick_until(worker, lambda: all(max(q) == TARGET - 2 for q in shown(world, sku).values()))

    assert {c: set(q) for c, q in shown(world, sku).items()} == {c: {TARGET - 2} for c in CHANNELS}
    assert {c: set(q) for c, q in shown(world, other).items()} == {c: {TARGET} for c in CHANNELS}
    assert len(results) <= 3 and not results[-1].errors
    pushed = {c for r in results for c, p in r.pushes.items() if p.applied}
    assert pushed == {"shopify", "amazon", "yahoo"}  # Rakuten took the units off itself
    for channel in pushed:
        log = read_push_log(config.push_log_dir, channel)
        fast = log.filter(log["run_id"].str.contains("fastpath"))
        assert fast["sku"].to_list() == [sku] and fast["new_value"].to_list() == [TARGET - 2]

    again = worker.tick()

    assert again.planned == 0 and again.pushes == {} and again.unpublished_orders == 1
    assert {c: set(q) for c, q in shown(world, sku).items()} == {c: {TARGET - 2} for c in CHANNELS}


def test_a_sale_on_a_target_channel_between_read_and_push_is_not_undone(world_and_config):
    world, config = world_and_config
    sku = sku_on_every_channel(world)
    listing = world.mall_listing_for_sku("rakuten", sku)
    assert world.place_mall_order("rakuten", [(listing.listing_id, 1)]) is not None
    # Shopify sells one after the worker's last look: the worker lands only Rakuten, so it plans Shopify from
    # the quantity it pushed (5) while the shop shows 4; its compare-and-swap must keep that sale.
    assert world.place_order([(sku, 1)]) is not None
    worker = FastPathWorker(config, land_from=("rakuten",), tick_seconds=0.2)

    results = tick_until(worker, lambda: max(shown(world, sku)["amazon"]) == TARGET - 1)

    after = shown(world, sku)
    assert after["shopify"] == [TARGET - 2], "the unit Shopify sold after our read must stay sold"
    assert after["amazon"] == [TARGET - 1] and after["yahoo"] == [TARGET - 1] and after["rakuten"] == [TARGET - 1]
    assert not any(r.errors for r in results)


def test_the_worker_never_pushes_below_zero(tmp_path, running):
    config = four_channel_config(tmp_path, running)
    world = running.world
    skus = [p.sku for p in world.erp_products]
    sku = sku_on_every_channel(world)
    converge(config, world, {s: (1 if s == sku else TARGET) for s in skus})
    # Rakuten and Yahoo both sell the last unit (an oversell the worker cannot prevent, only stop spreading).
    assert world.place_mall_order("rakuten", [(world.mall_listing_for_sku("rakuten", sku).listing_id, 1)])
    assert world.place_mall_order("yahoo", [(world.mall_listing_for_sku("yahoo", sku).listing_id, 1)])
    worker = FastPathWorker(config, tick_seconds=0.2)

    tick_until(worker, lambda: all(max(q) == 0 for q in shown(world, sku).values()))

    assert {c: set(q) for c, q in shown(world, sku).items()} == {c: {0} for c in CHANNELS}
    for channel in CHANNELS:
        log = read_push_log(config.push_log_dir, channel)
        assert log.filter(log["new_value"] < 0).height == 0


def test_adjusted_targets_take_bundles_to_their_components_and_stop_at_zero():
    published = PublishedState(
        targets={"shopify": {"A": 5, "B": 4, "SET": 2}, "amazon": {"A": 1, "SET": 1}},
        manifest=None, sku_of_listing={}, components={"SET": [("A", 1), ("B", 2)]}, order_keys=frozenset())
    at = datetime(2026, 11, 23, tzinfo=UTC)
    sold = [UnpublishedSale("rakuten", "o1", "SET", 1, at), UnpublishedSale("yahoo", "o2", "A", 1, at)]

    adjusted = adjusted_targets(published, sold)

    # SET: 2 − 1 = 1 (and B's 4 − 2 = 2 allows 1 set); A: 5 − 1 (in the set) − 1 = 3; B: 4 − 2 = 2
    assert adjusted["shopify"] == {"SET": 1, "A": 3, "B": 2}
    assert adjusted["amazon"] == {"SET": 0, "A": 0}  # never below 0


def test_a_shopify_order_arrives_by_webhook_and_reaches_the_malls_without_a_poll(world_and_config, running):
    from ingestion import webhooks
    from sandbox.webhooks import DEFAULT_SECRET

    world, config = world_and_config
    sku = sku_on_every_channel(world)
    worker = FastPathWorker(config, land_from=("shopify",), shopify_webhooks=True, tick_seconds=0.2,
                            poll_every={"shopify": 3600.0})
    worker.tick()  # the one poll of the hour: nothing new
    with webhooks.serve_receiver(config.landing_dir, DEFAULT_SECRET, world.shop_domain) as receiver:
        webhooks.subscribe(config, receiver.webhook_url, ["ORDERS_CREATE"])
        assert world.place_order([(sku, 2)]) is not None
        assert running.webhooks.wait_idle(15)

        results = tick_until(worker, lambda: max(shown(world, sku)["yahoo"]) == TARGET - 2)
    worker.close()

    assert {c: set(q) for c, q in shown(world, sku).items()} == {c: {TARGET - 2} for c in CHANNELS}
    assert all("shopify/orders" not in r.landed for r in results)  # no poll: the webhook's follow-up landed it
    assert sum(r.landed.get("shopify/webhook-followups", 0) for r in results) >= 1


def test_a_switched_off_channel_is_neither_landed_nor_pushed_to(tmp_config):
    config = tmp_config.with_overrides(**{"channels.yahoo.enabled": False})
    worker = FastPathWorker(config, max_ticks=1)
    try:
        assert "yahoo" not in worker.channels and "yahoo" not in worker.land_from
        assert set(worker.land_from) == {"shopify", "rakuten", "amazon"}
    finally:
        worker.close()


def test_a_channel_with_no_landed_orders_yet_has_no_unpublished_sales(tmp_path):
    from ingestion.landing import LandingZone
    from reverse_sync.fast_path import unpublished_sales

    published = PublishedState({"yahoo": {}}, None, {}, {}, frozenset())
    assert unpublished_sales(LandingZone(tmp_path), published, ["yahoo", "shopify"]) == []
