"""Shopify connector: documents checked against Shopify's published schema; ingest over a mocked remote shop."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest
from ingestion_fakes import TOKEN, FakeShopify, check_document, make_item, make_order, make_variant, ts

import ingestion
from ichigen.config import Config
from ingestion import shopify
from ingestion.errors import ChannelAuthError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_config: Config) -> Config:
    return tmp_config.with_overrides(**{
        "channels.shopify.base_url": "http://shop.test",
        "channels.shopify.access_token": TOKEN,
        "channels.shopify.requests_per_second": 200.0,
        "channels.shopify.page_size": 100,
        "channels.shopify.bulk_threshold_days": 0,  # the fake shop pages only (bulk: test_shopify_bulk.py)
    })


def client_for(config: Config, fake: FakeShopify) -> ChannelClient:
    return ChannelClient.for_shopify(config.channels.shopify, transport=fake.transport(), backoff_base=0.01)


def orders_fixture() -> list[dict]:
    orders = [make_order(n, START + timedelta(hours=n)) for n in range(35)]
    orders[7] = make_order(7, START + timedelta(hours=7), lines=12)  # more line items than fit inline
    orders[3]["cancelledAt"] = ts(START + timedelta(hours=4))
    orders[3]["displayFinancialStatus"] = "REFUNDED"
    orders[5]["customer"] = None  # guest checkout
    orders[5]["email"] = None
    return orders


# -- the documents -------------------------------------------------------------------------------------
SAMPLE_VARIABLES = {
    "orders": {"first": 15, "after": None, "query": "updated_at:>='2026-01-01T00:00:00Z'", "lineItems": 10},
    "order_line_items": {"id": "gid://shopify/Order/1", "first": 100, "after": "abc"},
    "product_variants": {"first": 100, "after": None, "query": None},
    "inventory_levels": {"first": 28, "after": "abc", "query": None, "levels": 10},
    "inventory_item_levels": {"id": "gid://shopify/InventoryItem/1", "first": 100, "after": "abc"},
}


@pytest.mark.parametrize("name", sorted(shopify.DOCUMENTS))
def test_document_is_valid_against_shopifys_published_schema(name: str):
    assert check_document(shopify.DOCUMENTS[name], SAMPLE_VARIABLES[name]) == []


def test_requested_cost_stays_within_shopifys_single_query_limit():
    config = Config().with_overrides(**{"channels.shopify.page_size": 250})
    for entity, spec in shopify.ENTITY_SPECS.items():
        first = shopify.page_size(entity, config)
        cost = shopify.estimate_query_cost(spec.document, {"first": first, **dict(spec.fixed_variables)})
        assert cost <= shopify.MAX_QUERY_COST, (entity, first, cost)
        assert shopify.estimate_query_cost(spec.document, {"first": first + 1, **dict(spec.fixed_variables)}) > \
            shopify.MAX_QUERY_COST or first == 250
    for name in ("order_line_items", "inventory_item_levels"):
        assert shopify.estimate_query_cost(shopify.DOCUMENTS[name], {"first": shopify.FOLLOW_UP_FIRST}) <= 1000
    # Shopify's documented example: products(first: 10) { title variants(first: 5) { price } } costs 82.
    assert shopify.estimate_query_cost(
        "{ products(first: 10) { edges { node { title variants(first: 5) { edges { node { price } } } } } } }"
    ) == 2 + 10 * (1 + 2 + 5)
    # Smaller page sizes from the config are kept.
    assert shopify.page_size("product_variants", Config().with_overrides(**{"channels.shopify.page_size": 7})) == 7


# -- pure mappers ----------------------------------------------------------------------------------------
def test_order_row_types():
    row = shopify.order_row(make_order(1, START, lines=2))
    assert row["order_id"] == "gid://shopify/Order/1001" and row["order_name"] == "#1001"
    assert row["updated_at"] == START and row["created_at"] == START - timedelta(hours=1)
    assert row["cancelled_at"] is None and row["total_price"] == "4378.0" and row["total_tax"] == "398.0"
    assert row["customer_id"] == "gid://shopify/Customer/9001" and row["payment_gateway_names"] == ["shopify_payments"]
    assert row["line_items"][1] == {
        "line_item_id": "gid://shopify/LineItem/101", "sku": "TS-001-1", "quantity": 2, "current_quantity": 2,
        "unit_price": "2080.0", "variant_id": "gid://shopify/ProductVariant/501",
        "inventory_item_id": "gid://shopify/InventoryItem/701", "title": "オーガニックコットンTシャツ 1",
    }
    assert json.loads(row["_raw"])["name"] == "#1001"


@pytest.mark.parametrize(("change", "problem"), [
    ({"id": None}, "id is missing"),
    ({"updatedAt": "yesterday"}, "updatedAt 'yesterday' is not an ISO-8601 timestamp"),
    ({"updatedAt": "2026-11-20T10:00:00"}, "has no UTC offset"),
    ({"totalPriceSet": {"shopMoney": {"amount": "4,378", "currencyCode": "JPY"}}}, "is not a decimal amount"),
])
def test_order_row_refuses_what_cannot_land(change, problem):
    with pytest.raises(shopify.RecordError, match=problem):
        shopify.order_row({**make_order(1, START), **change})


# -- ingest over the mocked shop -------------------------------------------------------------------------
def test_orders_land_every_order_once_over_several_pages(config: Config):
    fake = FakeShopify(orders=orders_fixture())
    zone = LandingZone(config.landing_dir)
    result = shopify.ingest(config, "orders", landing=zone, client=client_for(config, fake), now=NOW)

    assert fake.problems == []
    page_calls = [c for c in fake.calls if "orders(" in c["query"]]
    assert len(page_calls) == 3 and result.pages == 3  # 35 orders at 15 a page
    assert all(c["variables"]["query"] == "updated_at:>='2025-01-01T00:00:00Z'" for c in page_calls)
    assert [c["variables"]["id"] for c in fake.calls if "order(id:" in c["query"]] == ["gid://shopify/Order/1007"]

    assert (result.source, result.entity, result.rows_landed, result.rows_quarantined) == ("shopify", "orders", 35, 0)
    assert result.cursor_from == datetime(2025, 1, 1, tzinfo=UTC)
    assert result.cursor_to == START + timedelta(hours=34)
    assert result.path is not None and result.path.parent.name == "date=2026-11-23"

    frame = zone.landed("shopify", "orders").collect()
    assert frame.height == 35 and frame.get_column("order_id").n_unique() == 35
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC")
    assert frame.schema["line_items"] == pl.List(pl.Struct({
        "line_item_id": pl.String, "sku": pl.String, "quantity": pl.Int64, "current_quantity": pl.Int64,
        "unit_price": pl.String, "variant_id": pl.String, "inventory_item_id": pl.String, "title": pl.String,
    }))
    by_id = {r["order_id"]: r for r in frame.to_dicts()}
    big = by_id["gid://shopify/Order/1007"]
    assert len(big["line_items"]) == 12 and len(json.loads(big["_raw"])["lineItems"]["nodes"]) == 12
    cancelled = by_id["gid://shopify/Order/1003"]
    assert cancelled["cancelled_at"] == START + timedelta(hours=4)
    assert cancelled["display_financial_status"] == "REFUNDED"
    guest = by_id["gid://shopify/Order/1005"]
    assert guest["customer_id"] is None and guest["email"] is None
    assert frame.get_column("_batch_id").unique().to_list() == [result.batch_id]
    assert frame.get_column("_fetched_at").unique().to_list() == [NOW]


def test_next_run_starts_at_the_landed_cursor_minus_the_look_back(config: Config):
    orders = orders_fixture()
    fake = FakeShopify(orders=orders)
    zone = LandingZone(config.landing_dir)
    shopify.ingest(config, "orders", landing=zone, client=client_for(config, fake), now=NOW)

    orders.append(make_order(99, START + timedelta(hours=40)))
    fake.calls.clear()
    second = shopify.ingest(config, "orders", landing=zone, client=client_for(config, fake),
                            now=NOW + timedelta(minutes=5))
    since = START + timedelta(hours=34) - timedelta(minutes=10)
    assert second.cursor_from == since
    assert fake.calls[0]["variables"]["query"] == f"updated_at:>='{ts(since)}'"
    # The look-back re-lands the last order (a duplicate by design; staging keeps the latest) and the new one.
    assert second.rows_landed == 2 and second.cursor_to == START + timedelta(hours=40)
    landed = zone.landed("shopify", "orders").collect()
    assert landed.height == 37 and landed.get_column("order_id").n_unique() == 36


def test_bad_records_are_quarantined_and_the_rest_lands(config: Config):
    orders = orders_fixture()[:5]
    orders[1]["updatedAt"] = "not-a-date"
    orders[2]["id"] = None
    orders[3]["totalPriceSet"] = {"shopMoney": {"amount": "¥4,378", "currencyCode": "JPY"}}
    fake = FakeShopify(orders=orders)
    zone = LandingZone(config.landing_dir)
    result = shopify.ingest(config, "orders", landing=zone, client=client_for(config, fake), now=NOW)

    assert result.rows_landed == 2 and result.rows_quarantined == 3
    assert sorted(zone.landed("shopify", "orders").collect().get_column("order_id")) == [
        "gid://shopify/Order/1000", "gid://shopify/Order/1004"]
    bad = zone.quarantined("shopify", "orders").collect().sort("reason")
    assert bad.get_column("batch_id").unique().to_list() == [result.batch_id]
    reasons = bad.get_column("reason").to_list()
    assert "shopify/orders (no id): id is missing" in reasons
    assert "shopify/orders gid://shopify/Order/1001: updatedAt 'not-a-date' is not an ISO-8601 timestamp" in reasons
    assert any(r.startswith("shopify/orders gid://shopify/Order/1003: totalPriceSet.shopMoney.amount '¥4,378'")
               for r in reasons)
    raw = {json.loads(r)["name"] for r in bad.get_column("raw")}
    assert raw == {"#1001", "#1002", "#1003"}


def test_throttled_answer_is_retried_and_everything_lands(config: Config):
    def script(call_no: int, body: dict) -> httpx.Response | None:
        if call_no == 1:
            return httpx.Response(200, json={
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {"cost": {"requestedQueryCost": 977, "actualQueryCost": None, "throttleStatus": {
                    "maximumAvailable": 2000.0, "currentlyAvailable": 957.0, "restoreRate": 100.0}}}})
        return None

    fake = FakeShopify(orders=orders_fixture(), script=script)
    result = shopify.ingest(config, "orders", landing=LandingZone(config.landing_dir),
                            client=client_for(config, fake), now=NOW)
    assert result.retries == 1 and result.rows_landed == 35


def test_page_bound_truncates_orders_and_the_next_run_continues(config: Config):
    fake = FakeShopify(orders=orders_fixture())
    zone = LandingZone(config.landing_dir)
    first = shopify.ingest(config, "orders", landing=zone, client=client_for(config, fake), now=NOW, max_pages=1)
    assert first.truncated and first.rows_landed == 15
    for minute in range(1, 6):
        result = shopify.ingest(config, "orders", landing=zone, client=client_for(config, fake),
                                now=NOW + timedelta(minutes=minute), max_pages=1)
        if not result.truncated:
            break
    assert zone.landed("shopify", "orders").collect().get_column("order_id").n_unique() == 35


def test_product_variants(config: Config):
    variants = [make_variant(n, START + timedelta(minutes=n)) for n in range(5)]
    variants[2]["barcode"] = None
    fake = FakeShopify(variants=variants)
    zone = LandingZone(config.landing_dir)
    result = shopify.ingest(config, "product_variants", landing=zone, client=client_for(config, fake), now=NOW)
    assert fake.problems == [] and result.rows_landed == 5
    row = zone.landed("shopify", "product_variants").collect().sort("variant_id").row(0, named=True)
    assert {k: row[k] for k in ("variant_id", "sku", "barcode", "price", "inventory_item_id", "product_id",
                                "product_title", "variant_title", "updated_at")} == {
        "variant_id": "gid://shopify/ProductVariant/500", "sku": "TS-000", "barcode": "4900000000000",
        "price": "1980.00", "inventory_item_id": "gid://shopify/InventoryItem/700",
        "product_id": "gid://shopify/Product/300", "product_title": "オーガニックコットンTシャツ",
        "variant_title": "M / ネイビー", "updated_at": START}
    assert fake.calls[0]["variables"]["query"] == "updated_at:>='2025-01-01T00:00:00Z'"


def test_inventory_levels_land_one_row_per_item_and_location(config: Config):
    items = [make_item(n, START, locations=1) for n in range(4)] + [make_item(9, START, locations=12)]
    fake = FakeShopify(items=items)
    zone = LandingZone(config.landing_dir)
    result = shopify.ingest(config, "inventory_levels", landing=zone, client=client_for(config, fake), now=NOW)
    assert fake.problems == []
    assert result.rows_landed == 4 + 12 and result.cursor_from is None  # a full snapshot
    assert fake.calls[0]["variables"]["query"] is None
    frame = zone.landed("shopify", "inventory_levels").collect()
    assert frame.select("inventory_item_id", "location_id").n_unique() == 16
    row = frame.filter(pl.col("inventory_item_id") == "gid://shopify/InventoryItem/702").row(0, named=True)
    assert (row["location_id"], row["sku"], row["variant_id"], row["available"], row["on_hand"]) == (
        "gid://shopify/Location/80", "TS-002", "gid://shopify/ProductVariant/502", 2, 4)
    assert frame.schema["available"] == pl.Int64


def test_wrong_token_is_an_auth_error_and_lands_nothing(config: Config):
    fake = FakeShopify(orders=orders_fixture())
    wrong = config.with_overrides(**{"channels.shopify.access_token": "shpat_wrong"})
    zone = LandingZone(config.landing_dir)
    with pytest.raises(ChannelAuthError, match=r"shopify: orders \(POST /admin/api/2026-10/graphql.json\) → HTTP 401"):
        shopify.ingest(wrong, "orders", landing=zone, client=client_for(wrong, fake), now=NOW)
    assert zone.batch_files("shopify", "orders") == [] and fake.requests == 1


def test_registry_dispatches_to_the_connector(config: Config):
    assert ingestion.ENTITIES["shopify"] == ("orders", "product_variants", "inventory_levels", "customers")
    assert ingestion.ENTITIES["erp"] == ("products", "warehouses", "stock", "bundles", "customers",
                                         "purchase_orders", "order_intake")
    fake = FakeShopify(orders=orders_fixture()[:3])
    result = ingestion.ingest(config, "shopify", "orders", client=client_for(config, fake), now=NOW)
    assert result.rows_landed == 3 and result.path is not None and config.landing_dir in result.path.parents
    with pytest.raises(ValueError, match="unknown shopify entity 'refunds'"):
        ingestion.ingest(config, "shopify", "refunds")
    with pytest.raises(ValueError, match="unknown source 'ebay'"):
        ingestion.ingest(config, "ebay", "orders")
    # a channel switched off lands nothing and does not fail (its connector is never called)
    off = config.with_overrides(**{"channels.rakuten.enabled": False})
    skipped = ingestion.ingest(off, "rakuten", "orders")
    assert skipped.rows_landed == 0 and skipped.batch_id is None
