"""Stock sync to the sandbox shop through the REST fallback (`channels.shopify.push_via = "rest"`, D114–D115).

GIVEN a shop whose REST call limit is small enough to be met WHEN reverse sync applies through
`inventory_levels/set.json` THEN the shop converges, the request loop paces on `X-Shopify-Shop-Api-Call-Limit`,
a sale between the plan's read and the push is not undone (the pre-set re-read), and the recorded traffic passes
the shared conformance tool.
"""


import pytest
from sync_testkit import shopify_shop
from test_shopify_stock_sync import publish_targets, shown, targets_from

from ichigen.config import Config
from ingestion import ingest
from reverse_sync.stock import sync_stock
from sandbox.shopify_rest import RestSettings


@pytest.fixture
def shop(tmp_config: Config, tmp_path):
    with shopify_shop(tmp_config, seed=5, skus=12, customers=10, history_days=2, orders_per_day=5,
                      traffic_log=tmp_path / "traffic.jsonl",
                      shopify_rest=RestSettings(bucket_size=8, leak_per_second=0.4)) as running:
        yield running


@pytest.fixture
def config(tmp_config: Config, shop) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.shopify.base_url": shop.shopify_url,
        "channels.shopify.access_token": "shpat_sandbox",
        "channels.shopify.requests_per_second": 200.0,
        "channels.shopify.push_via": "rest",
        "guard_rails.max_zeroed_fraction": 0.5,
    })
    assert ingest(config, "shopify", "inventory_levels").rows_landed > 0
    return config


def test_rest_push_converges_paces_on_the_call_limit_and_does_not_undo_a_sale(config, shop, tmp_path, conformance):
    before = shown(shop)
    targets = targets_from(before)
    sku = next(s for s, q in sorted(before.items()) if q >= 2 and targets[s] >= 2)
    publish_targets(config, targets)
    assert shop.world.place_order([(sku, 1)]) is not None  # sold after ingestion read the shop

    result = sync_stock(config)

    assert result.failed == 0 and result.applied == result.planned > 4
    after = shown(shop)
    assert after[sku] == targets[sku] - 1, "the unit sold after our read must stay sold"
    assert {s: q for s, q in after.items() if s != sku} == {s: q for s, q in targets.items() if s != sku}
    # More sets than the 8-call bucket holds went through without a 429: the loop paced on the call-limit header
    # (the 429 + Retry-After path itself: tests/ingestion/test_shopify_rest.py).
    assert shop.shopify.app.state.rest.refused == 0

    assert "inventory_levels/set.json" in (tmp_path / "traffic.jsonl").read_text()
    conformance(*sorted(tmp_path.glob("traffic.jsonl*")))
