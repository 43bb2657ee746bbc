"""Large Amazon stock pushes go through a JSON_LISTINGS_FEED, against the sandbox over real HTTP (D65).

GIVEN Amazon's listings landed by ingestion and a published serving copy with targets for more SKUs than
channels.amazon.feed_threshold
WHEN reverse sync applies
THEN one feed carries them (no per-SKU PATCH), Amazon converges, a message Amazon rejects is logged failed with
its issue while the rest are applied, a sale after the plan's read stays sold, and the recorded traffic passes
the shared conformance tool.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_testkit import targets_from
from test_amazon_stock_sync import config as listings_landed  # noqa: F401 (a fixture: needs `mall` below)
from test_amazon_stock_sync import publish_targets, shown

from ichigen.config import Config
from ingestion.ratelimit import reset_channel_limiters
from reverse_sync import amazon as amazon_push
from reverse_sync.push_log import read_push_log
from reverse_sync.stock import sync_stock
from sandbox import start_world
from sandbox.amazon import AmazonSettings

FEED_THRESHOLD = 20


@pytest.fixture
def traffic(tmp_path: Path) -> Path:
    return tmp_path / "amazon-traffic.jsonl"


@pytest.fixture
def mall(tmp_config: Config, traffic: Path):
    reset_channel_limiters()
    settings = AmazonSettings(rate_scale=1000.0, feed_processing_seconds=0.5, traffic_log=traffic)
    with start_world(data_dir=tmp_config.sandbox_dir, seed=5, skus=80, customers=10, history_days=2,
                     orders_per_day=5, port=0, amazon_settings=settings) as running:
        yield running
    reset_channel_limiters()


@pytest.fixture
def config(listings_landed: Config) -> Config:  # noqa: F811 (the fixture parameter)
    """test_amazon_stock_sync's configuration (listings landed) with feeds above FEED_THRESHOLD, polled fast."""
    return listings_landed.with_overrides(**{
        "channels.amazon.feed_threshold": FEED_THRESHOLD,
        "channels.amazon.feed_poll_seconds": 0.1,
        "channels.amazon.feed_wait_seconds": 20.0,
    })


def test_a_large_push_converges_through_one_feed(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)
    api = mall.amazon.api

    result = sync_stock(config, "amazon")

    assert result.verdict.allowed, result.verdict.reasons
    assert result.planned > FEED_THRESHOLD
    assert result.applied == result.planned and result.failed == 0
    assert shown(mall) == targets
    assert api.stats["requests:createFeed"] == 1 and api.stats["requests:patchListingsItem"] == 0
    assert api.feeds.applied == result.planned
    log = read_push_log(config.push_log_dir, "amazon")
    assert log.filter(log["status"] == "applied").height == result.planned
    # What the feed applied is the channel's state for the next plan: nothing is left to do.
    assert sync_stock(config, "amazon").planned == 0


def test_a_rejected_message_is_logged_failed_with_its_issue_and_the_rest_apply(config, mall, monkeypatch):
    before = shown(mall)
    targets = targets_from(before)
    publish_targets(config, mall, targets)
    amazon_mall = mall.world.mall("amazon")
    gone = next(s.listing_id for s in sorted(amazon_mall.listings, key=lambda s: s.listing_id)
                if s.erp_sku and targets[s.erp_sku] != s.quantity)
    read = amazon_push.AmazonStockPusher.current_quantities

    def read_then_listing_removed(self, skus):
        shown_now = read(self, skus)
        with mall.world.lock:  # the seller deletes the listing in Seller Central while our feed is on its way
            amazon_mall.by_listing.pop(gone)
        return shown_now

    monkeypatch.setattr(amazon_push.AmazonStockPusher, "current_quantities", read_then_listing_removed)

    result = sync_stock(config, "amazon")

    failed = [r for r in result.records if r.status == "failed"]
    assert [r.target_ref for r in failed] == [gone]
    assert "does not exist" in failed[0].error and "message" in failed[0].error
    assert result.applied == result.planned - 1
    after = shown(mall)
    erp_gone = next(s.erp_sku for s in amazon_mall.listings if s.listing_id == gone)
    assert {s: q for s, q in after.items() if s != erp_gone} == {s: q for s, q in targets.items() if s != erp_gone}
    assert after[erp_gone] == before[erp_gone]


def test_a_sale_after_the_plans_read_stays_sold_through_a_feed(config, mall):
    before = shown(mall)
    targets = targets_from(before)
    sku = next(s for s, q in sorted(before.items()) if q >= 2 and targets[s] >= 2)
    listing = mall.world.mall_listing_for_sku("amazon", sku)
    publish_targets(config, mall, targets)
    assert mall.world.place_mall_order("amazon", [(listing.listing_id, 1)]) is not None

    result = sync_stock(config, "amazon")

    assert result.failed == 0 and mall.amazon.api.stats["requests:createFeed"] == 1
    assert shown(mall)[sku] == targets[sku] - 1, "the unit sold after our read must stay sold"
    pushed = next(r for r in result.records if r.sku == sku)
    assert (pushed.old_value, pushed.new_value) == (before[sku] - 1, targets[sku] - 1)


def test_a_feed_that_outlives_the_wait_is_logged_failed_and_not_resent(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)
    mall.amazon.api.feeds.processing_seconds = 3.0
    slow = config.with_overrides(**{"channels.amazon.feed_wait_seconds": 0.5})

    result = sync_stock(slow, "amazon")

    assert result.planned > FEED_THRESHOLD and result.failed == result.planned
    assert all("still IN_" in (r.error or "") for r in result.records if r.status == "failed")
    assert mall.amazon.api.stats["requests:createFeed"] == 1


def test_feed_traffic_passes_conformance(config, mall, traffic, conformance):
    publish_targets(config, mall, targets_from(shown(mall)))
    assert sync_stock(config, "amazon").applied > FEED_THRESHOLD

    text = traffic.read_text()
    assert "/feeds/2021-06-30/feeds" in text and "/_s3/feed-documents/" in text
    conformance(traffic)
