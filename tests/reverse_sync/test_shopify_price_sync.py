"""Price sync to the sandbox Shopify shop over real HTTP (productVariantsBulkUpdate), targets published by hand.

GIVEN the shop's variants landed by ingestion and a published serving copy holding price targets
WHEN reverse sync plans and applies prices
THEN the shop shows the targets, a second apply pushes nothing, a dry run and a refused plan touch nothing,
     and a variant the shop rejects fails alone while the rest of the product is updated.
"""

from datetime import UTC, datetime

import pytest
from sync_testkit import publish_price_targets, shopify_shop

from ichigen.config import Config
from ingestion import ingest
from ingestion.http import ChannelClient
from reverse_sync.plan import PlannedChange
from reverse_sync.prices import sync_prices
from reverse_sync.push_log import read_push_log
from reverse_sync.shopify import ShopifyPricePusher


@pytest.fixture
def shop(tmp_config: Config):
    with shopify_shop(tmp_config, seed=8, skus=20, customers=10, history_days=1, orders_per_day=2) as running:
        yield running


@pytest.fixture
def config(tmp_config: Config, shop) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.shopify.base_url": shop.shopify_url,
        "channels.shopify.access_token": "shpat_sandbox",
        "guard_rails.max_price_change_fraction": 0.3,
    })
    assert ingest(config, "shopify", "product_variants").rows_landed > 0
    return config


def shop_prices(shop) -> dict[str, int]:
    with shop.world.lock:
        return {v.sku: v.price for v in shop.world.variants}


def test_apply_sets_every_price_and_a_second_apply_pushes_nothing(config, shop):
    before = shop_prices(shop)
    targets = {sku: price + 110 for sku, price in before.items()}  # every price moves, well inside the 30 % cap
    publish_price_targets(config, "shopify", targets)

    first = sync_prices(config)

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned == len(targets) and first.failed == 0
    assert shop_prices(shop) == targets
    second = sync_prices(config)
    assert second.planned == 0 and second.unchanged == len(targets)
    log = read_push_log(config.push_log_dir, "shopify")
    assert set(log["field"]) == {"price"} and log.height == len(targets)
    assert dict(zip(log["sku"], log["new_value"], strict=True)) == targets


def test_full_resends_every_listed_price(config, shop):
    targets = shop_prices(shop)
    publish_price_targets(config, "shopify", targets)
    assert sync_prices(config).planned == 0
    full = sync_prices(config, full=True)
    assert full.planned == full.applied == len(targets)
    assert shop_prices(shop) == targets


def test_dry_run_and_refused_plans_leave_the_shop_untouched(config, shop):
    before = shop_prices(shop)
    first_sku = sorted(before)[0]
    publish_price_targets(config, "shopify", {sku: p + 10 for sku, p in before.items()})
    dry = sync_prices(config, dry_run=True)
    assert dry.planned == len(before) and shop_prices(shop) == before
    assert {r.status for r in dry.records} == {"dry_run"}

    jump = {sku: p + 10 for sku, p in before.items()} | {first_sku: before[first_sku] * 2}
    publish_price_targets(config, "shopify", jump)
    refused = sync_prices(config)
    assert not refused.verdict.allowed and shop_prices(shop) == before
    assert any("max_price_change_fraction" in r and first_sku in r for r in refused.verdict.reasons)
    assert refused.refused == len(before)

    publish_price_targets(config, "shopify", {sku: p + 10 for sku, p in before.items()} | {first_sku: 0})
    free = sync_prices(config)
    assert not free.verdict.allowed and any("0 JPY" in r for r in free.verdict.reasons)
    assert shop_prices(shop) == before


def test_a_rejected_variant_fails_alone(config, shop):
    with shop.world.lock:
        product = shop.world.shop_products[0]
        variants = [v for v in shop.world.variants if v.product_id == product.id]
        other = next(v for v in shop.world.variants if v.product_id != product.id)
    changes = [PlannedChange("shopify", "price", v.sku, f"{v.gid}@{product.gid}", v.price, v.price + 20, "t")
               for v in variants]
    # a variant of another product, pushed under this product: Shopify answers PRODUCT_VARIANT_DOES_NOT_EXIST
    changes.append(PlannedChange("shopify", "price", other.sku, f"{other.gid}@{product.gid}", other.price,
                                 other.price + 20, "t"))
    pusher = ShopifyPricePusher(ChannelClient.for_shopify(config.channels.shopify), "2026-10")
    records = pusher.push("run-1", changes, datetime.now(UTC))
    statuses = {r.sku: (r.status, r.error) for r in records}
    assert statuses[other.sku][0] == "failed" and "PRODUCT_VARIANT_DOES_NOT_EXIST" in statuses[other.sku][1]
    assert all(statuses[v.sku] == ("applied", None) for v in variants)
    prices = shop_prices(shop)
    assert {c.sku: prices[c.sku] for c in changes[:-1]} == {c.sku: c.old_value + 20 for c in changes[:-1]}
    assert prices[other.sku] == changes[-1].old_value
