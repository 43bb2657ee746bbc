"""The REST orders connector (`channels.shopify.orders_api = "rest"`, D116) against the sandbox over real HTTP.

GIVEN one sandbox world WHEN orders land through REST orders.json (Link paging) and through GraphQL THEN the rows
agree; a client that does not pace meets 429s and the request loop waits out each Retry-After, landing every order
once; a wrong token fails with the channel, endpoint and 401; the REST traffic passes the conformance tool.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import ingestion
from ichigen.config import Config
from ingestion.errors import ChannelAuthError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.throttle import ThrottleStrategy
from sandbox.server import serve_shopify
from sandbox.shopify_rest import RestSettings
from sandbox.world import World

AMOUNTS = ("total_price", "subtotal_price", "total_shipping_price", "total_discounts", "total_tax")
META = ("_batch_id", "_fetched_at", "_source", "_raw")


@pytest.fixture
def world() -> World:
    return World.generate(seed=33, skus=20, customers=30, history_days=6, orders_per_day=15)


def configured(tmp_config: Config, url: str, landing: str, api: str, **extra) -> Config:
    return tmp_config.with_overrides(**{
        "channels.shopify.base_url": url,
        "channels.shopify.access_token": "shpat_sandbox",
        "channels.shopify.requests_per_second": 500.0,
        "channels.shopify.page_size": 15,
        "channels.shopify.backfill_start": "2020-01-01T00:00:00Z",
        "channels.shopify.bulk_threshold_days": 0,
        "channels.shopify.orders_api": api,
        "paths.landing": landing,
        **extra,
    })


def normalised(frame) -> list[dict]:
    rows = []
    for row in frame.drop([c for c in frame.columns if c in META]).sort("order_id").to_dicts():
        for name in AMOUNTS:
            row[name] = Decimal(row[name]) if row[name] is not None else None
        row["line_items"] = [{**li, "unit_price": Decimal(li["unit_price"]), "inventory_item_id": None}
                             for li in row["line_items"]]
        rows.append(row)
    return rows


def test_rest_orders_land_the_same_rows_as_graphql(tmp_config, world, tmp_path, conformance):
    log = tmp_path / "traffic.jsonl"
    with serve_shopify(world, port=0, restore_rate=1000.0, traffic_log=log,
                       rest=RestSettings(bucket_size=400, leak_per_second=200.0)) as shop:
        rest = configured(tmp_config, shop.url, "landing-rest", "rest")
        graphql = configured(tmp_config, shop.url, "landing-graphql", "graphql")
        via_rest = ingestion.ingest(rest, "shopify", "orders")
        via_graphql = ingestion.ingest(graphql, "shopify", "orders")

    assert via_rest.rows_landed == via_graphql.rows_landed == len(world.orders)
    assert via_rest.pages > 3 and via_rest.rows_quarantined == 0
    a = LandingZone(rest.landing_dir).landed("shopify", "orders").collect()
    b = LandingZone(graphql.landing_dir).landed("shopify", "orders").collect()
    assert normalised(a) == normalised(b)
    paths = {json.loads(line)["path"] for line in log.read_text().splitlines()}
    assert "/admin/api/2026-10/orders.json" in paths
    conformance(log)


def test_429_and_retry_after_are_honoured_and_every_order_lands_once(tmp_config, world):
    with serve_shopify(world, port=0, rest=RestSettings(bucket_size=2, leak_per_second=5.0)) as shop:
        config = configured(tmp_config, shop.url, "landing", "rest", **{"channels.shopify.page_size": 5})
        # No proactive pacing: the shop's 429s are met and only Retry-After keeps the run going.
        client = ChannelClient.for_shopify(config.channels.shopify, throttle=ThrottleStrategy(), max_retry_time=60)
        result = ingestion.ingest(config, "shopify", "orders", client=client)
        refused = shop.app.state.rest.refused

    assert refused >= 1 and client.stats.retry_reasons["http_429"] == refused
    assert client.stats.waited_seconds >= 0.1 * refused  # each wait at least the Retry-After asked for
    landed = LandingZone(config.landing_dir).landed("shopify", "orders").collect()
    assert result.rows_landed == landed.height == len(world.orders)
    assert landed["order_id"].n_unique() == landed.height


def test_a_wrong_token_is_refused_with_shopifys_401(tmp_config, world):
    with serve_shopify(world, port=0) as shop:
        config = configured(tmp_config, shop.url, "landing", "rest",
                            **{"channels.shopify.access_token": "shpat_wrong"})
        with pytest.raises(ChannelAuthError) as refused:
            ingestion.ingest(config, "shopify", "orders")
    message = str(refused.value)
    assert "HTTP 401" in message and "orders.json" in message and "Invalid API key or access token" in message
