"""Stock sync to the sandbox Amazon mall over real HTTP (start_world serves it), targets published by hand.

GIVEN Amazon's listings landed by ingestion and a published serving copy holding targets and the listing ↔ ERP
SKU match
WHEN reverse sync plans and applies
THEN Amazon converges, a second apply pushes nothing, a dry run touches nothing, a sale between our read and
our push is not undone, and a PATCH whose answer was lost is not sent again.
"""

from __future__ import annotations

import httpx
import pytest
from sync_testkit import publish_stock_targets, targets_from

from ichigen.config import Config
from ingestion import ingest
from ingestion.ratelimit import reset_channel_limiters
from reverse_sync.push_log import read_push_log
from reverse_sync.stock import sync_stock
from sandbox import start_world
from sandbox.amazon import AmazonFaults, AmazonSettings


@pytest.fixture
def mall(tmp_config: Config):
    reset_channel_limiters()
    with start_world(data_dir=tmp_config.sandbox_dir, seed=5, skus=24, customers=10, history_days=2,
                     orders_per_day=5, port=0, amazon_settings=AmazonSettings(rate_scale=1000.0)) as running:
        yield running
    reset_channel_limiters()


@pytest.fixture
def config(tmp_config: Config, mall) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.amazon.base_url": mall.amazon_url,
        "channels.amazon.token_url": f"{mall.amazon_url}/auth/o2/token",
        "channels.amazon.rate_scale": 1000.0,
        "channels.amazon.requests_per_second": 500.0,
        "guard_rails.max_zeroed_fraction": 0.5,
    })
    assert ingest(config, "amazon", "listings").rows_landed > 0
    return config


def shown(mall) -> dict[str, int]:
    """Displayed quantity per ERP SKU (matched listings only), from the sandbox's truth."""
    rows = httpx.get(f"{mall.amazon_url}/_sandbox/amazon/listings", timeout=10).json()
    return {row["sku"]: row["quantity"] for row in rows if row["sku"]}


def publish_targets(config: Config, mall, targets: dict[str, int]) -> None:
    """A serving copy with what Amazon's reverse sync reads: the targets and dbt's listing ↔ ERP SKU match."""
    publish_stock_targets(config, "amazon", targets,
                          [(s.listing_id, s.erp_sku) for s in mall.world.mall("amazon").listings])


def test_apply_converges_and_a_second_apply_pushes_nothing(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)

    first = sync_stock(config, "amazon")

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned > 0 and first.failed == 0
    assert shown(mall) == targets
    second = sync_stock(config, "amazon")
    assert second.planned == 0 and second.records == []
    log = read_push_log(config.push_log_dir, "amazon")
    assert log.filter(log["status"] == "applied").height == first.applied


def test_a_dry_run_touches_nothing(config, mall):
    before = shown(mall)
    publish_targets(config, mall, targets_from(before))

    dry = sync_stock(config, "amazon", dry_run=True)

    assert dry.planned > 0 and {r.status for r in dry.records} == {"dry_run"}
    assert shown(mall) == before
    assert mall.amazon.api.stats["patches_applied"] == 0


def test_a_sale_between_our_read_and_our_push_is_not_undone(config, mall):
    before = shown(mall)
    targets = targets_from(before)
    sku = next(s for s, q in sorted(before.items()) if q >= 2 and targets[s] >= 2)
    listing = mall.world.mall_listing_for_sku("amazon", sku)
    publish_targets(config, mall, targets)
    # Amazon sells a unit after ingestion read the listings: the plan still believes `before[sku]`.
    assert mall.world.place_mall_order("amazon", [(listing.listing_id, 1)]) is not None
    assert shown(mall)[sku] == before[sku] - 1

    result = sync_stock(config, "amazon")

    assert result.failed == 0
    after = shown(mall)
    assert after[sku] == targets[sku] - 1, "the unit sold after our read must stay sold"
    assert {s: q for s, q in after.items() if s != sku} == {s: q for s, q in targets.items() if s != sku}
    pushed = next(r for r in result.records if r.sku == sku)
    assert (pushed.old_value, pushed.new_value) == (before[sku] - 1, targets[sku] - 1)


def test_a_patch_whose_answer_was_lost_is_not_sent_again(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)
    api = mall.amazon.api
    # Every PATCH is applied, then the connection is cut before the answer is complete.
    api.settings.faults = AmazonFaults(rate=1.0, kinds=("truncated",), operations=("patchListingsItem",))

    result = sync_stock(config, "amazon")

    assert result.planned > 0 and result.failed == result.planned
    assert api.stats["requests:patchListingsItem"] == result.planned  # one PATCH per change, never resent
    assert api.stats["patches_applied"] == result.planned
    assert shown(mall) == targets  # applied once, as sent

    # The next cycle reads again and finds nothing left to do.
    api.settings.faults = AmazonFaults()
    assert ingest(config, "amazon", "listings").rows_landed > 0
    assert sync_stock(config, "amazon").planned == 0
