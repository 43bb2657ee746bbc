"""Stock sync to the sandbox Shopify shop through a bulk mutation, over real HTTP, with hand-published targets.

GIVEN the shop's stock landed by ingestion, published targets and a push larger than
      `channels.shopify.push_bulk_threshold`
WHEN reverse sync plans and applies
THEN the push runs as stagedUploadsCreate → upload → bulkOperationRunMutation → result JSONL instead of direct
     calls, the shop converges and a second apply pushes nothing; a row the shop refuses is logged failed with its
     userError and heals next cycle; a sale between our read and the bulk push is not undone (the stale line is
     re-read and pushed directly, as the direct path's next round); an operation that fails half-way logs the
     rest failed and the next cycle converges; a large push runs file after file; a running webhook receiver
     ends the wait; the recorded GraphQL traffic passes the shared conformance tool.
"""

import json
from contextlib import contextmanager

import pytest
from sync_testkit import publish_stock_targets, shopify_shop, targets_from
from sync_testkit import shopify_shown as shown

from ichigen.config import Config
from ingestion import ingest, shopify_bulk
from ingestion.http import ChannelClient
from ingestion.webhooks import serve_receiver, subscribe
from reverse_sync.push_log import read_push_log
from reverse_sync.shopify_bulk import ShopifyBulkStockPusher
from reverse_sync.stock import apply_plan, plan_channel_stock, sync_stock

THRESHOLD = 5  # the small world's 24 SKUs are "very large" for these tests


@pytest.fixture
def traffic(tmp_config: Config):
    return tmp_config.base_dir / "shopify-traffic.jsonl"


@pytest.fixture
def shop(tmp_config: Config, traffic):
    with shopify_shop(tmp_config, seed=5, skus=24, customers=10, history_days=2, orders_per_day=5,
                      traffic_log=traffic) as running:
        yield running


@pytest.fixture
def config(tmp_config: Config, shop) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.shopify.base_url": shop.shopify_url,
        "channels.shopify.access_token": "shpat_sandbox",
        "channels.shopify.push_bulk_threshold": THRESHOLD,
        "guard_rails.max_zeroed_fraction": 0.5,
    })
    assert ingest(config, "shopify", "inventory_levels").rows_landed > 0
    return config


def documents(traffic) -> list[str]:
    return [json.loads(line)["request_body"]["query"] for line in traffic.read_text().splitlines()]


def direct_calls(traffic) -> int:
    return sum(1 for q in documents(traffic) if "mutation SetAvailable" in q)


def bulk_runs(traffic) -> int:
    return sum(1 for q in documents(traffic) if "bulkOperationRunMutation(" in q)


@contextmanager
def not_stocked(world, sku: str):
    """The item is briefly not stocked at the location (a merchant disconnected it): the shop refuses its row."""
    variant = next(v for v in world.variants if v.sku == sku)
    key = next(k for k in world.levels if k[0] == variant.inventory_item_id)
    with world.lock:
        level = world.levels.pop(key)
    try:
        yield
    finally:
        with world.lock:
            world.levels[key] = level


def test_a_push_above_the_threshold_runs_as_one_bulk_mutation_and_converges(config, shop, traffic, conformance):
    targets = targets_from(shown(shop))
    publish_stock_targets(config, "shopify", targets)

    first = sync_stock(config)

    assert first.verdict.allowed and first.planned > THRESHOLD
    assert first.applied == first.planned and first.failed == 0
    assert shown(shop) == targets
    assert bulk_runs(traffic) == 1 and direct_calls(traffic) == 0
    assert {r.attempt for r in first.records} == {1}
    assert sync_stock(config).planned == 0  # the push log is the newest known state
    log = read_push_log(config.push_log_dir, "shopify")
    assert log.height == first.planned and set(log["status"]) == {"applied"}
    assert all(r.old_value != r.new_value for r in first.records)
    conformance(traffic)


def test_a_push_at_the_threshold_still_uses_direct_calls(config, shop, traffic):
    before = shown(shop)
    targets = dict(before)
    for sku in sorted(before)[:THRESHOLD]:
        targets[sku] = before[sku] + 1
    publish_stock_targets(config, "shopify", targets)

    result = sync_stock(config)

    assert result.planned == THRESHOLD and result.applied == THRESHOLD
    assert bulk_runs(traffic) == 0 and direct_calls(traffic) >= 1
    assert shown(shop) == targets


def test_a_refused_row_is_logged_with_its_user_error_and_heals_next_cycle(config, shop):
    targets = targets_from(shown(shop))
    publish_stock_targets(config, "shopify", targets)
    refused = sorted(targets)[3]

    with not_stocked(shop.world, refused):
        first = sync_stock(config)

    [bad] = [r for r in first.records if r.sku == refused]
    assert bad.status == "failed" and "INVALID_LOCATION" in bad.error
    assert first.applied == first.planned - 1
    assert shown(shop)[refused] != targets[refused]

    second = sync_stock(config)  # the failed row is planned again (a failed push is not a known state)

    assert second.planned == 1 and second.applied == 1
    assert shown(shop) == targets
    log = read_push_log(config.push_log_dir, "shopify")
    assert list(log.filter(log["sku"] == refused).sort("pushed_at")["status"]) == ["failed", "applied"]


def test_a_sale_between_our_read_and_the_bulk_push_is_not_undone(config, shop, traffic):
    before = shown(shop)
    targets = targets_from(before)
    sku = next(s for s, q in sorted(before.items()) if q >= 2 and targets[s] >= 2)
    publish_stock_targets(config, "shopify", targets)
    assert shop.world.place_order([(sku, 1)]) is not None  # sold after ingestion read the shop

    result = sync_stock(config)

    assert result.failed == 0 and result.applied == result.planned
    after = shown(shop)
    assert after[sku] == targets[sku] - 1, "the unit sold after our read must stay sold"
    assert {s: q for s, q in after.items() if s != sku} == {s: q for s, q in targets.items() if s != sku}
    pushed = next(r for r in result.records if r.sku == sku)
    # the bulk line met CHANGE_FROM_QUANTITY_STALE and changed nothing; round 2 went direct from a fresh read
    assert (pushed.old_value, pushed.new_value, pushed.attempt) == (before[sku] - 1, targets[sku] - 1, 2)
    assert {r.attempt for r in result.records if r.sku != sku} == {1}
    assert bulk_runs(traffic) == 1 and direct_calls(traffic) == 1


def test_an_operation_that_fails_half_way_logs_the_rest_failed_and_the_next_cycle_converges(config, shop):
    targets = targets_from(shown(shop))
    publish_stock_targets(config, "shopify", targets)
    shop.shopify.api.bulk.fail_next("INTERNAL_SERVER_ERROR")

    first = sync_stock(config)

    failed = [r for r in first.records if r.status == "failed"]
    assert first.applied == first.planned // 2 and len(failed) == first.planned - first.applied
    assert all("INTERNAL_SERVER_ERROR" in r.error and "no result for line" in r.error for r in failed)
    assert shown(shop) != targets
    second = sync_stock(config)
    assert second.planned == len(failed) and second.applied == second.planned
    assert shown(shop) == targets


def test_a_large_push_runs_file_after_file(config, shop, traffic):
    targets = targets_from(shown(shop))
    publish_stock_targets(config, "shopify", targets)
    client = ChannelClient.for_shopify(config.channels.shopify)
    pusher = ShopifyBulkStockPusher(client, config, max_file_bytes=2_000)  # ~7 lines a file

    result = apply_plan(config, plan_channel_stock(config, "shopify"), pushers={"shopify": lambda c, cl: pusher})
    client.close()

    assert len(pusher.bulk_runs) == bulk_runs(traffic) >= 3
    assert result.applied == result.planned and shown(shop) == targets


def test_a_running_receiver_ends_the_wait_with_the_finish_webhook(config, shop, monkeypatch):
    monkeypatch.setattr(shopify_bulk, "FIRST_POLL_SECONDS", 30.0)  # only the webhook can end it sooner
    targets = targets_from(shown(shop))
    publish_stock_targets(config, "shopify", targets)
    secret = config.channels.shopify.webhook_secret
    with serve_receiver(config.landing_dir, secret) as receiver:
        subscribe(config, receiver.webhook_url, topics=("BULK_OPERATIONS_FINISH",))
        client = ChannelClient.for_shopify(config.channels.shopify)
        pusher = ShopifyBulkStockPusher(client, config)
        result = apply_plan(config, plan_channel_stock(config, "shopify"), pushers={"shopify": lambda c, cl: pusher})
        client.close()

    assert [run.ended_by for run in pusher.bulk_runs] == ["webhook"]
    assert receiver.app.state.stats["landed"] == 1
    assert result.applied == result.planned and shown(shop) == targets
