"""Price sync to the Amazon sandbox over real HTTP: patchListingsItem of purchasable_offer for small sets, a
JSON_LISTINGS_FEED of purchasable_offer PATCH messages above channels.amazon.feed_threshold (D93).

GIVEN Amazon's listings landed by ingestion (the offer price) and a published serving copy holding price targets
and the listing match
WHEN reverse sync plans and applies prices
THEN Amazon shows the targets (and the next ingest reads them), a second apply pushes nothing, a dry run and a
     refused plan touch nothing, a message Amazon rejects inside a feed fails alone and is healed next cycle,
     and the recorded traffic passes the shared conformance tool.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sync_testkit import MAX_MOVE, publish_price_targets, raised, unlisted

from ichigen.config import Config
from ingestion import ingest
from ingestion.ratelimit import reset_channel_limiters
from reverse_sync.prices import amazon_price_state, sync_prices
from reverse_sync.push_log import read_push_log
from sandbox import start_world
from sandbox.amazon import AmazonSettings

FEED_THRESHOLD = 10


@pytest.fixture
def traffic(tmp_path: Path) -> Path:
    return tmp_path / "amazon-traffic.jsonl"


@pytest.fixture
def mall(tmp_config: Config, traffic: Path):
    reset_channel_limiters()
    settings = AmazonSettings(rate_scale=1000.0, feed_processing_seconds=0.5, traffic_log=traffic)
    with start_world(data_dir=tmp_config.sandbox_dir, seed=5, skus=40, customers=10, history_days=2,
                     orders_per_day=5, port=0, amazon_settings=settings) as running:
        yield running
    reset_channel_limiters()


@pytest.fixture
def config(tmp_config: Config, mall) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.amazon.base_url": mall.amazon_url,
        "channels.amazon.token_url": f"{mall.amazon_url}/auth/o2/token",
        "channels.amazon.rate_scale": 1000.0,
        "channels.amazon.requests_per_second": 500.0,
        "channels.amazon.feed_threshold": FEED_THRESHOLD,
        "channels.amazon.feed_poll_seconds": 0.1,
        "channels.amazon.feed_wait_seconds": 20.0,
        "guard_rails.max_price_change_fraction": MAX_MOVE,
    })
    assert ingest(config, "amazon", "listings").rows_landed > 0
    return config


def listings(mall):
    return mall.world.mall("amazon").listings


def prices(mall) -> dict[str, int]:
    """seller SKU → the price Amazon shows."""
    with mall.world.lock:
        return {s.listing_id: s.price for s in listings(mall)}


def publish(config: Config, mall, targets: dict[str, int]) -> None:
    publish_price_targets(config, "amazon", targets, [(s.listing_id, s.erp_sku) for s in listings(mall)])


def raised_targets(mall, count: int | None = None) -> dict[str, int]:
    """New prices for the first `count` matched SKUs (all by default); the rest keep what Amazon shows."""
    matched = [s for s in listings(mall) if s.erp_sku]
    return {s.erp_sku: raised(s.price) if count is None or i < count else s.price for i, s in enumerate(matched)}


def test_a_small_set_is_patched_per_sku_converges_and_a_second_apply_pushes_nothing(config, mall):
    targets = raised_targets(mall, count=FEED_THRESHOLD // 2)
    publish(config, mall, targets)

    first = sync_prices(config, "amazon")

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned == FEED_THRESHOLD // 2 and first.failed == 0
    assert mall.amazon.api.stats["requests:createFeed"] == 0
    assert mall.amazon.api.stats["requests:patchListingsItem"] == first.planned
    shown = prices(mall)
    assert all(shown[r.target_ref] == r.new_value == targets[r.sku] for r in first.records)
    assert sync_prices(config, "amazon").planned == 0
    assert ingest(config, "amazon", "listings").rows_landed > 0
    landed = dict(amazon_price_state(config).select("sku", "quantity").iter_rows())
    assert {sku: landed[sku] for sku in targets} == targets


def test_a_large_set_goes_through_one_feed_and_converges(config, mall):
    targets = raised_targets(mall)
    publish(config, mall, targets)

    result = sync_prices(config, "amazon")

    assert result.planned > FEED_THRESHOLD and result.applied == result.planned and result.failed == 0
    assert mall.amazon.api.stats["requests:createFeed"] == 1
    assert mall.amazon.api.stats["requests:patchListingsItem"] == 0
    shown = prices(mall)
    assert all(shown[r.target_ref] == targets[r.sku] for r in result.records)
    assert sync_prices(config, "amazon").planned == 0
    log = read_push_log(config.push_log_dir, "amazon")
    assert set(log["field"]) == {"price"} and log.filter(log["status"] == "applied").height == result.planned


def test_a_dry_run_and_a_refused_plan_change_nothing(config, mall):
    before = prices(mall)
    targets = raised_targets(mall)
    publish(config, mall, targets)
    dry = sync_prices(config, "amazon", dry_run=True)
    assert dry.planned > 0 and {r.status for r in dry.records} == {"dry_run"} and prices(mall) == before

    jumped = sorted(targets)[0]
    publish(config, mall, targets | {jumped: targets[jumped] * 2})
    refused = sync_prices(config, "amazon")

    assert not refused.verdict.allowed
    assert any("max_price_change_fraction" in r and jumped in r for r in refused.verdict.reasons)
    assert refused.refused == refused.planned and prices(mall) == before
    assert mall.amazon.api.stats["requests:createFeed"] == 0


def test_a_rejected_feed_message_fails_alone_and_the_next_cycle_heals_it(config, mall):
    targets = raised_targets(mall)
    publish(config, mall, targets)
    gone = next(s for s in listings(mall) if s.erp_sku)

    with unlisted(mall.world, "amazon", [gone]):
        first = sync_prices(config, "amazon")

    failed = {r.target_ref: r.error for r in first.records if r.status == "failed"}
    assert list(failed) == [gone.listing_id] and first.applied == first.planned - 1
    assert "message" in failed[gone.listing_id] and mall.amazon.api.stats["requests:createFeed"] == 1
    healed = sync_prices(config, "amazon")
    assert healed.planned == healed.applied == 1  # below the threshold: one PATCH
    assert prices(mall)[gone.listing_id] == targets[gone.erp_sku]


def test_the_sandbox_refuses_an_offer_without_jpy_and_the_marketplace(config, mall):
    from ingestion.amazon import make_client

    sku = next(s.listing_id for s in listings(mall) if s.erp_sku)
    before = prices(mall)[sku]
    client = make_client(config)
    body = {"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/purchasable_offer",
            "value": [{"currency": "USD", "marketplace_id": "ATVPDKIKX0DER",
                       "our_price": [{"schedule": [{"value_with_tax": 1980}]}]}]}]}
    answer = client.request("PATCH", f"/listings/2021-08-01/items/{config.channels.amazon.seller_id}/{sku}",
                            operation="patchListingsItem", params={"marketplaceIds": "A1VC38T7YXB528"},
                            json=body).json()
    assert answer["status"] == "INVALID" and answer["issues"][0]["attributeNames"] == ["purchasable_offer"]
    assert prices(mall)[sku] == before
    assert httpx.get(f"{mall.amazon_url}/_sandbox/amazon/listings", timeout=10).status_code == 200


def test_price_traffic_passes_conformance(config, mall, traffic, conformance):
    """Per-SKU PATCHes and a feed of purchasable_offer messages, checked against Amazon's published schemas."""
    publish(config, mall, raised_targets(mall, count=3))
    assert sync_prices(config, "amazon").applied == 3
    publish(config, mall, {sku: raised(p) for sku, p in raised_targets(mall).items()})
    assert sync_prices(config, "amazon").applied > FEED_THRESHOLD

    text = traffic.read_text()
    assert "purchasable_offer" in text and "/feeds/2021-06-30/feeds" in text
    conformance(traffic)
