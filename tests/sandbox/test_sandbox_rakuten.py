"""Contract tests of the Rakuten sandbox (RMS Web Service) over real HTTP on a random port."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from sandbox_testkit import small_world

from sandbox.rakuten import (
    JST,
    MAX_BULK_UPSERT,
    ORDER_DATE_TYPE,
    UPDATE_DATE_TYPE,
    RakutenFaults,
    esa_header,
    jst,
)
from sandbox.server import serve_rakuten

AUTH = {"Authorization": esa_header("SP_test", "SL_test")}
SEARCH, GET = "/es/2.0/order/searchOrder/", "/es/2.0/order/getOrder/"


@pytest.fixture
def mall():
    """A small world's Rakuten mall on a random port, fast enough never to throttle a test."""
    started = []

    def start(world=None, **kw):
        kw.setdefault("requests_per_second", 1000.0)
        world = world or small_world()
        handle = serve_rakuten(world, port=0, service_secret="SP_test", license_key="SL_test", **kw)
        client = httpx.Client(base_url=handle.url, timeout=10)
        started.append((handle, client))
        return world, handle, client

    yield start
    for handle, client in started:
        client.close()
        handle.stop()


def search_all(client, date_type, start, end, amount):
    numbers, page, pages = [], 1, None
    while pages is None or page <= pages:
        assert page < 200
        body = client.post(SEARCH, headers=AUTH, json={
            "dateType": date_type, "startDatetime": jst(start), "endDatetime": jst(end),
            "PaginationRequestModel": {"requestRecordsAmount": amount, "requestPage": page}}).json()
        assert body["MessageModelList"][0]["messageType"] == "INFO"
        assert body["PaginationResponseModel"]["requestPage"] == page
        pages = body["PaginationResponseModel"]["totalPages"]
        numbers += body["orderNumberList"]
        page += 1
    return numbers


def test_paging_returns_every_order_once_across_pages_and_windows(mall):
    world, _, client = mall()
    orders = world.mall("rakuten").orders
    assert len(orders) > 20
    first = min(o.created_at for o in orders) - timedelta(seconds=1)
    last = max(o.updated_at for o in orders) + timedelta(seconds=1)
    middle = first + (last - first) / 3
    # Two adjacent windows (the end second is inclusive: the second starts one second later) and 7 per page.
    seen = search_all(client, UPDATE_DATE_TYPE, first, middle, 7) + \
        search_all(client, UPDATE_DATE_TYPE, middle + timedelta(seconds=1), last, 7)
    assert sorted(seen) == sorted(o.order_id for o in orders)
    assert len(seen) == len(set(seen))
    by_created = search_all(client, ORDER_DATE_TYPE, first, last, 1000)
    assert sorted(by_created) == sorted(seen)


def test_get_order_renders_the_order_in_rakuten_shape(mall):
    world, _, client = mall()
    order = world.mall("rakuten").orders[0]
    body = client.post(GET, headers=AUTH, json={"orderNumberList": [order.order_id, "386371-20000101-0"],
                                                 "version": 7}).json()
    model = body["OrderModelList"][0]
    assert model["orderNumber"] == order.order_id
    assert model["orderProgress"] in (100, 300, 500, 700, 900)
    assert model["orderDatetime"].endswith("+0900")
    assert model["totalPrice"] - model["couponAllTotalPrice"] == order.total
    items = [i for p in model["PackageModelList"] for i in p["ItemModelList"]]
    assert sum(i["priceTaxIncl"] * i["units"] for i in items) == order.lines_total
    assert items[0]["SkuModelList"][0]["variantId"]
    assert model["OrdererModel"]["familyName"] == order.buyer.family_name
    errors = [m for m in body["MessageModelList"] if m["messageType"] == "ERROR"]
    assert errors and errors[0]["orderNumber"] == "386371-20000101-0"
    too_many = client.post(GET, headers=AUTH, json={"orderNumberList": ["x"] * 101})
    assert too_many.status_code == 400 and too_many.json()["MessageModelList"][0]["messageType"] == "ERROR"


def test_search_window_and_page_size_limits(mall):
    world, _, client = mall()
    now = world.clock()
    long = client.post(SEARCH, headers=AUTH, json={"dateType": 1, "startDatetime": jst(now - timedelta(days=64)),
                                                    "endDatetime": jst(now)})
    assert long.status_code == 400
    assert long.json()["MessageModelList"][0]["messageType"] == "ERROR"
    big = client.post(SEARCH, headers=AUTH, json={
        "dateType": 1, "startDatetime": jst(now - timedelta(days=3)), "endDatetime": jst(now),
        "PaginationRequestModel": {"requestRecordsAmount": 1001, "requestPage": 1}})
    assert big.status_code == 400
    utc_text = client.post(SEARCH, headers=AUTH, json={"dateType": 1, "startDatetime": "2026-11-01T00:00:00Z",
                                                        "endDatetime": jst(now)})
    assert utc_text.status_code == 400


def test_auth_is_enforced_with_rakutens_error(mall):
    _, _, client = mall()
    for headers in ({}, {"Authorization": esa_header("SP_test", "wrong")}, {"Authorization": "Bearer x"}):
        response = client.post(SEARCH, headers=headers, json={})
        assert response.status_code == 401
        assert response.json() == {"Results": {"errorCode": "ES01-01", "message": "Un-Authorised"}}
    assert client.post("/es/2.1/inventories/bulk-upsert", json={}).status_code == 401


def test_rate_limit_answers_429_over_the_budget(mall):
    _, _, client = mall(requests_per_second=1.0)
    statuses = [client.post("/es/2.0/inventories/bulk-get", headers=AUTH,
                            json={"inventories": [{"manageNumber": "x", "variantId": "y"}]}).status_code
                for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses[1:]
    refused = client.post("/es/2.0/inventories/bulk-get", headers=AUTH,
                          json={"inventories": [{"manageNumber": "x", "variantId": "y"}]})
    assert refused.status_code == 429 and refused.json()["Results"]["errorCode"] == "ES04-02"
    # Each API has its own budget: the order API is still free.
    assert client.post(GET, headers=AUTH, json={"orderNumberList": ["x"]}).status_code == 200
    time.sleep(1.05)
    assert client.post("/es/2.0/inventories/bulk-get", headers=AUTH,
                       json={"inventories": [{"manageNumber": "x", "variantId": "y"}]}).status_code == 200


def test_inventory_bulk_get_and_upsert(mall):
    world, _, client = mall()
    listing = world.mall("rakuten").listings[0]
    key = {"manageNumber": listing.parent_code, "variantId": listing.variant_code}
    before = client.post("/es/2.0/inventories/bulk-get", headers=AUTH, json={"inventories": [key]}).json()
    assert before["inventories"][0]["quantity"] == listing.quantity
    ok = client.post("/es/2.1/inventories/bulk-upsert", headers=AUTH,
                     json={"inventories": [{**key, "mode": "ABSOLUTE", "quantity": 10}]})
    assert ok.status_code == 204
    assert client.post("/es/2.1/inventories/bulk-upsert", headers=AUTH,
                       json={"inventories": [{**key, "mode": "RELATIVE", "quantity": -3}]}).status_code == 204
    assert listing.quantity == 7
    too_many = client.post("/es/2.1/inventories/bulk-upsert", headers=AUTH,
                           json={"inventories": [{**key, "mode": "ABSOLUTE", "quantity": 1}] * (MAX_BULK_UPSERT + 1)})
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["code"] == "IE0003"
    bad = client.post("/es/2.1/inventories/bulk-upsert", headers=AUTH,
                      json={"inventories": [{**key, "mode": "ABSOLUTE", "quantity": 5},
                                            {**key, "mode": "SET", "quantity": 1}]})
    assert bad.status_code == 400 and bad.json()["errors"][0]["metadata"]["propertyPath"] == "inventories[1].mode"
    assert listing.quantity == 7  # a refused request applies nothing


def test_items_search_pages_every_variant_once(mall):
    world, _, client = mall()
    seen = []
    for offset in range(0, 1000, 5):
        body = client.get("/es/2.0/items/search", headers=AUTH, params={"hits": 5, "offset": offset}).json()
        for result in body["results"]:
            item = result["item"]
            seen += [f"{item['manageNumber']}:{variant}" for variant in item["variants"]]
        if offset + 5 >= body["numFound"]:
            break
    assert sorted(seen) == sorted(s.listing_id for s in world.mall("rakuten").listings)


def test_faults_happen_at_the_configured_rate(mall):
    world, handle, client = mall(faults=RakutenFaults(rate=0.2, seed=3, burst=1))
    now = world.clock()
    statuses = []
    for _ in range(300):
        response = client.post(SEARCH, headers=AUTH, json={
            "dateType": 1, "startDatetime": jst(now - timedelta(days=10)), "endDatetime": jst(now)})
        try:
            response.json()
            statuses.append(response.status_code)
        except json.JSONDecodeError:
            statuses.append("truncated")
    summary = client.get("/_sandbox/rakuten/faults").json()
    assert summary["requests"] == 300
    assert 0.13 * 300 <= summary["faults"] <= 0.27 * 300
    assert {"throttle_burst", "server_error", "unavailable", "truncated"} <= set(summary["injected"])
    assert statuses.count("truncated") == summary["injected"]["truncated"]
    assert statuses.count(500) == summary["injected"]["server_error"]


def test_truth_endpoints_and_jst_timestamps(mall):
    world, _, client = mall()
    truth = client.get("/_sandbox/rakuten/orders").json()
    assert len(truth) == len(world.mall("rakuten").orders)
    listing = world.mall("rakuten").listings[0]
    placed = client.post("/_sandbox/rakuten/orders",
                         json={"lines": [{"listing_id": listing.listing_id, "quantity": 1}]}).json()
    assert len(placed) in (0, 1)
    stock = {s["listing_id"]: s["quantity"] for s in client.get("/_sandbox/rakuten/stock").json()}
    assert stock[listing.listing_id] == listing.quantity
    assert jst(world.clock()).endswith("+0900") and JST.utcoffset(None) == timedelta(hours=9)


def test_traffic_log_records_exchanges_without_secrets(tmp_path):
    log = tmp_path / "traffic.jsonl"
    world = small_world()
    with serve_rakuten(world, port=0, service_secret="SP_secret", license_key="SL_secret",
                       requests_per_second=100, traffic_log=log) as handle:
        httpx.post(f"{handle.url}{GET}", headers={"Authorization": esa_header("SP_secret", "SL_secret")},
                   json={"orderNumberList": [world.mall("rakuten").orders[0].order_id]})
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["channel"] == "rakuten" and lines[0]["path"] == GET and lines[0]["status"] == 200
    assert "SL_secret" not in log.read_text() and "ESA" not in log.read_text()
