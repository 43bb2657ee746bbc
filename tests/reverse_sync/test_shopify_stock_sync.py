"""Stock sync to the sandbox Shopify shop over real HTTP, with targets published by hand (no dbt here).

GIVEN the shop's stock landed by ingestion and a published serving copy holding targets
WHEN reverse sync plans and applies
THEN the shop converges, a second apply pushes nothing, a dry run and a refused plan touch nothing,
     a sale between our read and our push is not undone, and a lost response is not applied twice.
"""

import json
from datetime import UTC, datetime

import httpx
import pytest
from sync_testkit import publish_stock_targets, shopify_shop, targets_from
from sync_testkit import shopify_shown as shown

from ichigen.config import Config
from ingestion import ingest
from ingestion.http import ChannelClient
from reverse_sync.push_log import read_push_log
from reverse_sync.stock import sync_stock


@pytest.fixture
def shop(tmp_config: Config):
    with shopify_shop(tmp_config, seed=5, skus=24, customers=10, history_days=2, orders_per_day=5) as running:
        yield running


@pytest.fixture
def config(tmp_config: Config, shop) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.shopify.base_url": shop.shopify_url,
        "channels.shopify.access_token": "shpat_sandbox",
        "guard_rails.max_zeroed_fraction": 0.5,
    })
    assert ingest(config, "shopify", "inventory_levels").rows_landed > 0
    return config


def publish_targets(config: Config, targets: dict[str, int]) -> None:
    """A serving copy with only the mart reverse sync reads, published through the real publish step."""
    publish_stock_targets(config, "shopify", targets)


def test_apply_converges_and_a_second_apply_pushes_nothing(config, shop):
    targets = targets_from(shown(shop))
    publish_targets(config, targets)

    first = sync_stock(config)

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned > 0 and first.failed == 0
    assert shown(shop) == targets
    second = sync_stock(config)
    assert second.planned == 0 and second.records == []
    log = read_push_log(config.push_log_dir, "shopify")
    assert log.filter(log["status"] == "applied").height == first.applied


def test_a_dry_run_touches_nothing_and_advances_no_state(config, shop):
    before = shown(shop)
    publish_targets(config, targets_from(before))

    dry = sync_stock(config, dry_run=True)

    assert dry.planned > 0 and {r.status for r in dry.records} == {"dry_run"}
    assert shown(shop) == before
    assert sync_stock(config, dry_run=True).planned == dry.planned  # nothing counted as pushed


def test_a_plan_that_zeroes_most_of_the_shop_is_refused_whole(config, shop):
    before = shown(shop)
    publish_targets(config, dict.fromkeys(before, 0))

    refused = sync_stock(config)

    assert not refused.verdict.allowed
    assert "max_zeroed_fraction" in refused.verdict.reasons[0]
    assert refused.refused == refused.planned > 0 and refused.applied == 0
    assert shown(shop) == before


def test_a_sale_between_our_read_and_our_push_is_not_undone(config, shop):
    before = shown(shop)
    targets = targets_from(before)
    sku = next(s for s, q in sorted(before.items()) if q >= 2 and targets[s] >= 2)
    publish_targets(config, targets)
    # The shop sells one unit after ingestion read it: the plan still believes `before[sku]`.
    assert shop.world.place_order([(sku, 1)]) is not None
    assert shown(shop)[sku] == before[sku] - 1

    result = sync_stock(config)

    assert result.failed == 0
    after = shown(shop)
    assert after[sku] == targets[sku] - 1, "the unit sold after our read must stay sold"
    others = {s: q for s, q in after.items() if s != sku}
    assert others == {s: q for s, q in targets.items() if s != sku}
    pushed = next(r for r in result.records if r.sku == sku)
    assert (pushed.old_value, pushed.new_value, pushed.attempt) == (before[sku] - 1, targets[sku] - 1, 2)


class LoseFirstResponse(httpx.BaseTransport):
    """The shop processes the first mutation, but its answer is lost on the way back (a timeout)."""

    def __init__(self):
        self.inner = httpx.HTTPTransport()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if b"inventorySetQuantities" in request.content and not self.lost:
            response.read()
            self.lost += 1
            raise httpx.ReadTimeout("response lost", request=request)
        return response


def test_a_retried_push_after_a_lost_response_is_applied_once(config, shop):
    targets = targets_from(shown(shop))
    publish_targets(config, targets)
    transport = LoseFirstResponse()
    client = ChannelClient.for_shopify(config.channels.shopify, transport=transport, backoff_base=0.01)

    result = sync_stock(config, client=client)

    assert transport.lost == 1 and client.stats.retries >= 1
    # Without the idempotency key the retry would meet CHANGE_FROM_QUANTITY_STALE (the first call already
    # moved the quantities) and go round the re-read loop; with it, the shop replays its recorded answer.
    assert {r.attempt for r in result.records} == {1}
    assert result.applied == result.planned and shown(shop) == targets


def test_stale_targets_are_refused(config, shop):
    publish_targets(config, targets_from(shown(shop)))
    manifest = config.serving_path.parent / "published.json"
    data = json.loads(manifest.read_text())
    data["published_at"] = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    manifest.write_text(json.dumps(data))
    before = shown(shop)

    stale = sync_stock(config)

    assert not stale.verdict.allowed and "stale" in stale.verdict.reasons[0]
    assert shown(shop) == before
