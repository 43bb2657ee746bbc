"""The Yahoo!ショッピング connector against the sandbox store over real HTTP, with faults injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ichigen.config import Config
from ingestion import ChannelAuthError, IngestionError, ingest, yahoo
from ingestion.landing import LandingZone
from sandbox.server import serve_yahoo
from sandbox.world import World
from sandbox.yahoo import YahooFaults, item_code

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
TOKEN = "yahoo_ingest_token"


def small_world(seed: int = 7) -> World:
    return World.generate(seed=seed, skus=30, customers=40, history_days=4, orders_per_day=25, now=NOW)


@pytest.fixture
def store():
    started = []

    def start(world: World | None = None, rate: float = 0.0, **kw):
        world = world or small_world()
        handle = serve_yahoo(world, port=0, access_token=TOKEN, requests_per_second=400.0, burst=40,
                             faults=YahooFaults(rate=rate, seed=5, slow_seconds=0.02), **kw)
        started.append(handle)
        return handle, world

    yield start
    for handle in started:
        handle.stop()


def config_for(tmp_config: Config, url: str, **extra) -> Config:
    return tmp_config.with_overrides(**{
        "channels.yahoo.enabled": True, "channels.yahoo.base_url": url, "channels.yahoo.access_token": TOKEN,
        "channels.yahoo.page_size": 9, "channels.yahoo.requests_per_second": 300.0,
        "channels.yahoo.backfill_start": "2026-11-01T00:00:00Z", "channels.yahoo.max_retries": 8, **extra})


def latest_orders(landing: LandingZone) -> pl.DataFrame:
    """Staging-style de-duplication: the newest version per order."""
    return (landing.landed("yahoo", "orders", yahoo.YAHOO_ORDERS.landed_columns).collect()
            .sort("version", "_fetched_at").group_by("order_id").last())


def test_orders_land_exactly_the_store_truth_with_15_percent_faults(store, tmp_config: Config) -> None:
    handle, world = store(rate=0.15)
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    first = yahoo.ingest(config, "orders", landing=landing, now=NOW + timedelta(minutes=1))
    assert first.rows_landed > 30 and first.rows_quarantined == 0

    # The world moves on: new orders, payments and shipments; the next run takes what changed.
    with world.lock:
        world.place_mall_orders("yahoo", 6, at=NOW + timedelta(minutes=2))
        world.advance(NOW + timedelta(hours=30))
    second = yahoo.ingest(config, "orders", landing=landing, now=NOW + timedelta(hours=31))
    assert second.rows_landed > 0 and second.cursor_from is not None

    faults = handle.app.state.faults.counts
    assert sum(faults.values()) >= 0.1 * handle.app.state.faults.drawn, faults
    truth = {o.order_id: o for o in world.mall("yahoo").orders}
    landed = latest_orders(landing)
    assert landed.height == len(truth)
    for row in landed.iter_rows(named=True):
        order = truth[row["order_id"]]
        assert row["total_price"] == order.total, row["order_id"]
        assert row["version"] == order.version
        assert sum(i["unit_price"] * i["quantity"] for i in row["items"]) == order.lines_total
        assert row["bill_last_name"] == order.buyer.family_name


def test_a_third_run_refetches_only_what_changed(store, tmp_config: Config) -> None:
    handle, world = store()
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    yahoo.ingest(config, "orders", landing=landing, now=NOW + timedelta(minutes=1))
    again = yahoo.ingest(config, "orders", landing=landing, now=NOW + timedelta(minutes=2))
    assert again.rows_landed == 0  # every version in the look-back has landed already


def test_an_order_without_its_id_is_quarantined_and_the_rest_lands(store, tmp_config: Config) -> None:
    handle, world = store()
    api = handle.app.state.api
    victim = world.mall("yahoo").orders[3].order_id
    original = api.order_fields

    def without_id(order):
        values = original(order)
        if order.order_id == victim:
            values["OrderId"] = None
        return values

    api.order_fields = without_id
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    result = yahoo.ingest(config, "orders", landing=landing, now=NOW + timedelta(minutes=1))
    assert result.rows_quarantined == 1
    assert result.rows_landed == len(world.mall("yahoo").orders) - 1
    bad = landing.quarantined("yahoo", "orders").collect()
    reason = bad.get_column("reason")[0]
    assert reason.startswith("yahoo/orders (no key) at orderList Index") and "OrderId is missing" in reason
    assert bad.get_column("source")[0] == "yahoo"


def test_listings_and_stock_land_every_code_with_its_jan(store, tmp_config: Config) -> None:
    handle, world = store(rate=0.12)
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    listed = yahoo.ingest(config, "listings", landing=landing, now=NOW)
    stock = yahoo.ingest(config, "stock", landing=landing, now=NOW)
    listings = {item_code(s): s for s in world.mall("yahoo").listings}
    assert listed.rows_landed == stock.rows_landed == len(listings)
    rows = landing.landed("yahoo", "listings", yahoo.YAHOO_LISTINGS.landed_columns).collect()
    for row in rows.iter_rows(named=True):
        assert row["jan"] == listings[row["listing_code"]].jan
        assert row["sub_code"] in (None, listings[row["listing_code"]].variant_code)
    levels = landing.landed("yahoo", "stock", yahoo.YAHOO_STOCK.landed_columns).collect()
    assert {r["listing_code"]: r["quantity"] for r in levels.iter_rows(named=True)} == \
        {code: s.quantity for code, s in listings.items()}


def test_a_wrong_token_fails_fast_naming_the_credentials(store, tmp_config: Config) -> None:
    handle, _ = store()
    config = config_for(tmp_config, handle.url, **{"channels.yahoo.access_token": "wrong"})
    with pytest.raises(ChannelAuthError, match="channels.yahoo"):
        yahoo.ingest(config, "listings", now=NOW)


def test_a_disabled_store_lands_nothing(tmp_config: Config) -> None:
    """Through the registry a store not connected yet lands nothing; called directly, the connector refuses by
    name rather than reading a store the configuration says is off."""
    result = ingest(tmp_config, "yahoo", "orders", now=NOW)
    assert result.rows_landed == 0 and result.batch_id is None
    assert not list(tmp_config.landing_dir.rglob("*.parquet"))
    with pytest.raises(IngestionError, match=r"yahoo is disabled .*channels\.yahoo\.enabled"):
        yahoo.ingest(tmp_config, "orders", now=NOW)


def test_an_order_updated_while_paging_does_not_hide_another(store, tmp_config: Config) -> None:
    """orderList sorts by order time: an order that leaves the window mid-paging shifts the rest by one. The
    connector notices the missing order (fewer than TotalCount) and reads the window again."""
    handle, world = store()
    api = handle.app.state.api
    original, calls = api.order_list, []
    mall = world.mall("yahoo")

    def moving(body):
        calls.append(1)
        if len(calls) == 2:  # after the first page: the first order is updated "now", out of the window
            with world.lock:
                first = min(mall.orders, key=lambda o: (o.created_at, o.order_id))
                first.updated_at = NOW + timedelta(days=2)
                first.version += 1
        return original(body)

    api.order_list = moving
    config = config_for(tmp_config, handle.url)
    landing = LandingZone(config.landing_dir)
    yahoo.ingest(config, "orders", landing=landing, now=NOW + timedelta(hours=1))
    landed = set(latest_orders(landing).get_column("order_id"))
    moved = min(mall.orders, key=lambda o: (o.created_at, o.order_id)).order_id
    assert landed == {o.order_id for o in mall.orders} - {moved}
    assert len(calls) > -(-len(mall.orders) // 9) + 1  # the window was read again
