"""Rakuten connector against the Rakuten sandbox (RMS Web Service) on a random port, with injected faults."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest

import ingestion
from ichigen.config import Config
from ingestion import rakuten
from ingestion.errors import ChannelAuthError
from ingestion.landing import LandingZone
from sandbox.rakuten import RakutenFaults
from sandbox.server import serve_rakuten
from sandbox.world import World

FAULTS = RakutenFaults(rate=0.2, seed=11, burst=2, slow_seconds=0.05,
                       kinds=("throttle_burst", "server_error", "unavailable", "slow", "truncated", "repeat_page"))


@pytest.fixture
def world() -> World:
    # A live world (orders stamped at the wall clock), a few days of history, tens of SKUs.
    return World.generate(seed=5, skus=24, customers=30, history_days=4, orders_per_day=25)


@pytest.fixture
def mall(world):
    with serve_rakuten(world, port=0, service_secret="SP_t", license_key="SL_t", requests_per_second=80.0,
                       faults=FAULTS) as handle:
        yield handle


@pytest.fixture
def config(tmp_config: Config, mall) -> Config:
    return tmp_config.with_overrides(**{
        "channels.rakuten.base_url": mall.url,
        "channels.rakuten.service_secret": "SP_t",
        "channels.rakuten.license_key": "SL_t",
        "channels.rakuten.requests_per_second": 60.0,
        "channels.rakuten.page_size": 3,  # many pages per window
        "channels.rakuten.max_retries": 8,
        "channels.rakuten.backfill_start": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
    })


def client(config: Config, api: str = rakuten.ORDER_API, **kw):
    """One client for any entity: the tests' sandbox is not held to ~1 request/s, so one API's budget serves all."""
    return rakuten.make_client(config, api=api, backoff_base=0.01, backoff_max=0.1, **kw)


def latest_orders(landing: LandingZone) -> pl.DataFrame:
    """Staging-style de-duplication: the latest version per order number."""
    return (landing.landed("rakuten", "orders").collect()
            .sort("update_datetime", "_fetched_at").group_by("order_number", maintain_order=True).last())


def assert_equals_truth(landing: LandingZone, mall) -> None:
    truth = {o["order_id"]: o for o in httpx.get(f"{mall.url}/_sandbox/rakuten/orders").json()}
    landed = latest_orders(landing)
    assert landed.height == len(truth)
    assert set(landed["order_number"]) == set(truth)
    for row in landed.iter_rows(named=True):
        order = truth[row["order_number"]]
        assert row["total_price"] - row["coupon_all_total_price"] == order["total_jpy"], row["order_number"]
        assert row["postage_price"] == order["shipping_jpy"]
        assert sum(i["price_tax_incl"] * i["units"] for i in row["items"]) == \
            sum(li["unit_price_jpy"] * li["quantity"] for li in order["lines"])
        assert row["update_datetime"] == datetime.fromisoformat(order["updated_at"].replace("Z", "+00:00"))


def test_orders_land_equal_to_the_truth_through_faults_and_increments(config, mall, world):
    landing = LandingZone(config.landing_dir)
    with client(config) as c:
        first = ingestion.ingest(config, "rakuten", "orders", landing=landing, client=c)
        assert first.rows_landed > 20 and first.rows_quarantined == 0
        assert_equals_truth(landing, mall)
        # The mall moves on: new orders, payments, shipments, cancellations; the next run is incremental.
        world.place_mall_orders("rakuten", 6)
        world.advance(datetime.now(UTC) + timedelta(days=3))  # the world's clock is now 3 days ahead
        second = ingestion.ingest(config, "rakuten", "orders", landing=landing, client=c, now=world.clock())
        assert second.cursor_from is not None and second.cursor_from > first.cursor_from
        assert_equals_truth(landing, mall)
        assert c.stats.retries > 0  # the faults were met and survived
    injected = httpx.get(f"{mall.url}/_sandbox/rakuten/faults").json()
    assert injected["faults"] >= 0.1 * injected["requests"] - 2
    assert injected["injected"].get("repeat_page", 0) > 0 and injected["injected"].get("truncated", 0) > 0
    # Every field RMS returned is kept.
    raw = json.loads(latest_orders(landing)["_raw"][0])
    assert {"OrdererModel", "PackageModelList", "SettlementModel", "PointModel"} <= set(raw)


class DropKey(httpx.HTTPTransport):
    """Real HTTP; getOrder answers lose the orderNumber of their first order (a broken record)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != rakuten.GET_ORDER_PATH or response.status_code != 200:
            return response
        response.read()
        try:
            body = response.json()
        except json.JSONDecodeError:
            return response
        if body.get("OrderModelList"):
            body["OrderModelList"][0].pop("orderNumber")
        return httpx.Response(200, json=body, request=request)


def test_an_order_without_its_key_is_quarantined_and_the_rest_lands(config, mall):
    landing = LandingZone(config.landing_dir)
    with client(config, transport=DropKey()) as c:
        result = ingestion.ingest(config, "rakuten", "orders", landing=landing, client=c)
    assert result.rows_quarantined >= 1 and result.rows_landed > 10
    bad = landing.quarantined("rakuten", "orders").collect()
    assert bad.height == result.rows_quarantined
    assert bad["reason"][0].startswith("rakuten/orders (no key): orderNumber is missing")
    assert "PackageModelList" in bad["raw"][0]
    truth = httpx.get(f"{mall.url}/_sandbox/rakuten/orders").json()
    assert result.rows_landed + result.rows_quarantined == len(truth)


def test_listings_map_channel_sku_to_seller_sku_and_jan_and_stock_lands(config, mall, world):
    landing = LandingZone(config.landing_dir)
    with client(config) as c:
        listed = ingestion.ingest(config, "rakuten", "listings", landing=landing, client=c)
        stocked = ingestion.ingest(config, "rakuten", "stock", landing=landing, client=c)
    listings = world.mall("rakuten").listings
    assert listed.rows_landed == stocked.rows_landed == len(listings)
    rows = {r["listing_id"]: r for r in landing.landed("rakuten", "listings").collect().iter_rows(named=True)}
    stock = {r["listing_id"]: r["quantity"] for r in landing.landed("rakuten", "stock").collect().iter_rows(named=True)}
    for listing in listings:
        assert rows[listing.listing_id]["merchant_defined_sku_id"] == listing.seller_sku
        assert rows[listing.listing_id]["jan"] == listing.jan
        assert stock[listing.listing_id] == listing.quantity


def test_wrong_credentials_fail_with_rakutens_auth_error(config):
    wrong = config.with_overrides(**{"channels.rakuten.license_key": "nope"})
    with client(wrong) as c, pytest.raises(ChannelAuthError, match="ES01-01"):
        ingestion.ingest(wrong, "rakuten", "orders", client=c)


def test_search_windows_stay_within_63_days_and_the_backfill_within_730():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    end = datetime(2025, 12, 31, 12, 0, 30, tzinfo=UTC)
    windows = list(rakuten._windows(start, end))
    assert windows[0][0] == start and windows[-1][1] == end
    assert all(upper - lower <= timedelta(days=63) for lower, upper in windows)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert rakuten.rms_datetime(start) == "2025-01-01T09:00:00+0900"
    old = Config().with_overrides(**{"channels.rakuten.backfill_start": "2020-01-01T00:00:00Z"})
    now = datetime(2026, 11, 23, tzinfo=UTC)
    since = rakuten._since(old, LandingZone(__import__("pathlib").Path("/nonexistent")),
                           rakuten.ENTITY_SPECS["orders"], now)
    assert now - timedelta(days=730) < since < now - timedelta(days=729)
