"""Amazon connector against the SP-API sandbox on a random port, with faults on 15 % of requests."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest

import ingestion
from ichigen.config import Config
from ingestion import amazon
from ingestion.errors import ChannelAuthError, ChannelRateLimited
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.ratelimit import ChannelRateLimiter, RateSpec
from sandbox.amazon import AmazonFaults, AmazonSettings, serve_amazon
from sandbox.world import World

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
FAULTS = AmazonFaults(rate=0.15, seed=11, burst=2, slow_seconds=0.05)


@pytest.fixture
def world() -> World:
    return World.generate(seed=7, skus=24, customers=30, history_days=5, orders_per_day=20, now=NOW)


@pytest.fixture
def served(world):
    handles = []

    def start(**settings):
        settings.setdefault("rate_scale", 1000.0)
        settings.setdefault("faults", FAULTS)
        handle = serve_amazon(world, settings=AmazonSettings(**settings))
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


def config_for(tmp_config: Config, url: str, **extra) -> Config:
    return tmp_config.with_overrides(**{
        "channels.amazon.base_url": url,
        "channels.amazon.token_url": f"{url}/auth/o2/token",
        "channels.amazon.rate_scale": 1000.0,
        "channels.amazon.requests_per_second": 500.0,
        "channels.amazon.page_size": 10,
        "channels.amazon.listings_page_size": 5,
        "channels.amazon.backfill_start": "2026-10-01T00:00:00Z",
        **extra,
    })


def client(config: Config):
    return amazon.make_client(config, backoff_base=0.01, backoff_max=0.2)


def latest_orders(landing: LandingZone) -> pl.DataFrame:
    """Staging-style de-duplication: the latest version of each order."""
    frame = landing.landed("amazon", "orders").collect()
    return frame.sort("updated_at", "_fetched_at").unique("order_id", keep="last")


def assert_equals_truth(frame: pl.DataFrame, world: World, skip: set[str] = frozenset()) -> None:
    truth = {o.order_id: o for o in world.mall("amazon").orders if o.order_id not in skip}
    landed = {r["order_id"]: r for r in frame.iter_rows(named=True)}
    assert set(landed) == set(truth)
    for order_id, order in truth.items():
        row = landed[order_id]
        assert int(row["grand_total"]) == order.total, order_id
        assert int(row["shipping_total"]) == order.shipping
        assert -int(row["discount_total"] or 0) == order.discount
        assert sum(i["quantity_ordered"] for i in row["order_items"]) == sum(li.quantity for li in order.lines)
        assert row["updated_at"] == order.updated_at


def test_orders_backfill_then_incremental_equal_the_truth_despite_faults(world, served, tmp_config):
    handle = served()
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    with client(config) as c:
        first = amazon.ingest(config, "orders", landing=landing, client=c)
        assert first.rows_landed >= len(world.mall("amazon").orders)
        assert first.pages > 3 and first.retries > 0  # faults happened and were retried
        assert_equals_truth(latest_orders(landing), world)

        # New orders and lifecycle moves, then the next run picks them up from the landed cursor − look-back.
        with world.lock:
            world.place_mall_orders("amazon", 4, at=NOW + timedelta(minutes=5))
            world.advance(NOW + timedelta(hours=6))
        second = amazon.ingest(config, "orders", landing=landing, client=c)
        assert second.cursor_from == first.cursor_to - timedelta(minutes=config.channels.amazon.lookback_minutes)
        assert second.rows_landed < first.rows_landed
    assert_equals_truth(latest_orders(landing), world)
    stats = handle.api.stats
    assert sum(v for k, v in stats.items() if k.startswith("fault:")) > 0


def test_order_without_its_key_is_quarantined_with_a_reason(world, served, tmp_config):
    handle = served(faults=AmazonFaults())
    with world.lock:
        keyless = world.mall("amazon").orders[3]
        real_id, keyless.order_id = keyless.order_id, ""
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    with client(config) as c:
        result = amazon.ingest(config, "orders", landing=landing, client=c)
    assert result.rows_quarantined == 1
    quarantined = landing.quarantined("amazon", "orders").collect().row(0, named=True)
    assert quarantined["source"] == "amazon" and quarantined["entity"] == "orders"
    assert "amazon/orders" in quarantined["reason"] and "orderId is missing" in quarantined["reason"]
    assert json.loads(quarantined["raw"])["orderItems"]
    assert_equals_truth(latest_orders(landing), world, skip={""})
    assert real_id not in set(latest_orders(landing)["order_id"])


def test_listings_carry_the_sku_jan_mapping_and_the_displayed_stock(world, served, tmp_config):
    handle = served()
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    result = ingestion.ingest(config, "amazon", "listings", landing=landing, client=client(config))
    mall = world.mall("amazon")
    assert result.rows_quarantined == 0
    frame = landing.landed("amazon", "listings").collect().unique("sku")
    assert frame.height == len(mall.listings)
    for row in frame.iter_rows(named=True):
        listing = mall.by_listing[row["sku"]]
        assert row["quantity"] == listing.quantity
        assert row["jan"] == listing.jan and row["asin"] == listing.asin
        assert row["parent_sku"] == listing.parent_code
        assert int(row["price"]) == listing.price


def test_wrong_credentials_fail_with_an_auth_error_naming_the_keys(served, tmp_config):
    handle = served(faults=AmazonFaults())
    config = config_for(tmp_config, handle.url, **{"channels.amazon.refresh_token": "Atzr|wrong"})
    with pytest.raises(ChannelAuthError, match="refresh_token"):
        amazon.ingest(config, "orders", landing=LandingZone(config.landing_dir))


def test_expired_access_token_is_renewed_once(world, served, tmp_config):
    handle = served(faults=AmazonFaults(), token_ttl=0.0)  # every token the sandbox issues has expired
    config = config_for(tmp_config, handle.url)
    with client(config) as c, pytest.raises(ChannelAuthError, match="403"):
        amazon.ingest(config, "orders", landing=LandingZone(config.landing_dir), client=c)
    assert handle.api.stats["tokens_issued"] == 2  # the first and one renewal, no loop


def test_orders_by_id_land_as_a_targeted_batch(world, served, tmp_config):
    handle = served()
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    wanted = [o.order_id for o in world.mall("amazon").orders[:3]]
    with client(config) as c:
        result = amazon.ingest_orders_by_id(config, wanted + wanted[:1], landing=landing, client=c)
    assert result.rows_landed == 3
    assert landing.cursor("amazon", "orders", "updated_at") is None  # a targeted batch never moves the cursor


def test_our_bucket_one_token_short_of_amazons_absorbs_arrival_jitter():
    """Amazon meters an operation where requests arrive (here 10/s, burst 5, refill checked on arrival); a
    request after a slow one travels fast and arrives early. At the documented (rate, burst) our bucket lets
    Amazon's run dry and the early arrival meets a 429; one token held back (`operation_spec`) absorbs it."""
    def refused(spec: RateSpec) -> int:
        bucket = {"tokens": 5.0, "at": time.monotonic()}
        sent = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal sent
            sent += 1
            time.sleep(0.05 if sent % 2 else 0.0)  # transit: every other request is slow
            now = time.monotonic()
            bucket["tokens"] = min(5.0, bucket["tokens"] + (now - bucket["at"]) * 10.0)
            bucket["at"] = now
            if bucket["tokens"] < 1:
                return httpx.Response(429, json={"errors": [{"code": "QuotaExceeded", "message": "You exceeded "
                                                                                                   "your quota"}]})
            bucket["tokens"] -= 1
            return httpx.Response(200, json={"items": []})

        limiter = ChannelRateLimiter("jitter", RateSpec(1000.0, 1000), {"searchListingsItems": spec})
        client = ChannelClient("jitter", "http://api.test", None, limiter, 2.0, 0, httpx.MockTransport(handler))
        count = 0
        for _ in range(30):
            try:
                client.request("GET", "/listings", operation="searchListingsItems")
            except ChannelRateLimited:
                count += 1
        return count

    assert amazon.operation_spec(5.0, 5, 2.0) == RateSpec(10.0, 4)
    assert refused(amazon.operation_spec(5.0, 5, 2.0)) == 0
    assert refused(RateSpec(10.0, 5)) > 0  # the documented burst in our bucket too: Amazon's runs dry
