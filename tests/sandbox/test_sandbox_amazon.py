"""Contract tests of the Amazon SP-API sandbox (sandbox.amazon) over real HTTP on a random port."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sandbox_testkit import NOW, small_world

from sandbox.amazon import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    MARKETPLACE_ID,
    SELLER_ID,
    AmazonFaults,
    AmazonSettings,
    serve_amazon,
)

ORDERS = "/orders/2026-01-01/orders"
LISTINGS = f"/listings/2021-08-01/items/{SELLER_ID}"
LWA_FORM = {"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN, "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET}


class Amazon:
    def __init__(self, handle, world):
        self.handle, self.world = handle, world
        self.http = httpx.Client(base_url=handle.url, timeout=10)
        self.token = self.http.post("/auth/o2/token", data=LWA_FORM).json()["access_token"]

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(path, params=params, headers={"x-amz-access-token": self.token})

    def search_all(self, **params) -> list[str]:
        ids, token = [], None
        for _ in range(200):
            query = {"paginationToken": token, "marketplaceIds": MARKETPLACE_ID} if token else params
            body = self.get(ORDERS, **query).json()
            ids += [o["orderId"] for o in body["orders"]]
            token = (body.get("pagination") or {}).get("nextToken")
            if not token:
                return ids
        raise AssertionError("paging did not end within 200 pages")

    def close(self) -> None:
        self.http.close()
        self.handle.stop()


@pytest.fixture
def amazon_factory():
    started: list[Amazon] = []

    def start(**settings) -> Amazon:
        world = settings.pop("world", None) or small_world()
        settings.setdefault("rate_scale", 1000.0)
        a = Amazon(serve_amazon(world, settings=AmazonSettings(**settings)), world)
        started.append(a)
        return a

    yield start
    for a in started:
        a.close()


def test_lwa_token_and_auth_errors(amazon_factory):
    a = amazon_factory()
    bad_client = a.http.post("/auth/o2/token", data={**LWA_FORM, "client_secret": "nope"})
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    bad_grant = a.http.post("/auth/o2/token", data={**LWA_FORM, "refresh_token": "Atzr|stolen"})
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "invalid_grant"
    missing = a.http.get(ORDERS, params={"lastUpdatedAfter": "2026-11-01T00:00:00Z"})
    assert missing.status_code == 403
    assert missing.json()["errors"][0]["code"] == "Unauthorized"
    assert a.get(ORDERS, lastUpdatedAfter="2026-11-01T00:00:00Z", marketplaceIds=MARKETPLACE_ID).status_code == 200


def test_expired_token_is_refused(amazon_factory):
    a = amazon_factory(token_ttl=0.0)
    answer = a.get(ORDERS, lastUpdatedAfter="2026-11-01T00:00:00Z", marketplaceIds=MARKETPLACE_ID)
    assert answer.status_code == 403
    assert "expired" in answer.json()["errors"][0]["details"]


def test_search_orders_pages_every_order_exactly_once_across_windows(amazon_factory):
    a = amazon_factory()
    mall = a.world.mall("amazon")
    start = min(o.updated_at for o in mall.orders)
    middle = start + (NOW - start) / 2
    first = a.search_all(lastUpdatedAfter=start.isoformat(), lastUpdatedBefore=middle.isoformat(),
                         marketplaceIds=MARKETPLACE_ID, maxResultsPerPage=7)
    second = a.search_all(lastUpdatedAfter=middle.isoformat(), marketplaceIds=MARKETPLACE_ID, maxResultsPerPage=7)
    assert len(first) == len(set(first)) and len(second) == len(set(second))
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(o.order_id for o in mall.orders)


def test_search_orders_limits_and_their_errors(amazon_factory):
    a = amazon_factory()
    both = a.get(ORDERS, createdAfter="2026-11-01T00:00:00Z", lastUpdatedAfter="2026-11-01T00:00:00Z",
                 marketplaceIds=MARKETPLACE_ID)
    assert both.status_code == 400 and both.json()["errors"][0]["code"] == "InvalidInput"
    too_big = a.get(ORDERS, createdAfter="2026-11-01T00:00:00Z", maxResultsPerPage=101, marketplaceIds=MARKETPLACE_ID)
    assert too_big.status_code == 400
    too_recent = a.get(ORDERS, createdAfter="2026-11-01T00:00:00Z", marketplaceIds=MARKETPLACE_ID,
                       createdBefore=(a.world.clock() - timedelta(seconds=30)).isoformat())
    assert too_recent.status_code == 400 and "2 minutes" in too_recent.json()["errors"][0]["message"]
    page = a.get(ORDERS, createdAfter="2026-11-01T00:00:00Z", maxResultsPerPage=3, marketplaceIds=MARKETPLACE_ID)
    assert len(page.json()["orders"]) == 3 and page.json()["pagination"]["nextToken"]
    order_id = page.json()["orders"][0]["orderId"]
    assert a.get(f"{ORDERS}/{order_id}").json()["order"]["orderId"] == order_id
    assert a.get(f"{ORDERS}/000-0000000-0000000").status_code == 404


def test_rate_limit_is_a_token_bucket_with_the_documented_burst(amazon_factory):
    a = amazon_factory(rate_scale=1.0)  # documented: searchOrders 0.0056/s, burst 20
    statuses = [a.get(ORDERS, createdAfter="2026-11-20T00:00:00Z", marketplaceIds=MARKETPLACE_ID).status_code
                for _ in range(21)]
    assert statuses[:20] == [200] * 20
    assert statuses[20] == 429
    over = a.get(ORDERS, createdAfter="2026-11-20T00:00:00Z", marketplaceIds=MARKETPLACE_ID)
    assert over.json()["errors"][0]["code"] == "QuotaExceeded"
    ok = a.get(f"{ORDERS}/{a.world.mall('amazon').orders[0].order_id}")
    assert ok.status_code == 200 and ok.headers["x-amzn-RateLimit-Limit"] == "0.5"


def test_listings_search_pages_every_sku_once_and_patch_sets_absolute_quantity(amazon_factory):
    a = amazon_factory()
    skus, token = [], None
    for _ in range(100):
        params = {"marketplaceIds": MARKETPLACE_ID, "includedData": "summaries,attributes,fulfillmentAvailability",
                  "pageSize": 5} | ({"pageToken": token} if token else {})
        body = a.get(LISTINGS, **params).json()
        skus += [i["sku"] for i in body["items"]]
        token = (body.get("pagination") or {}).get("nextToken")
        if not token:
            break
    mall = a.world.mall("amazon")
    assert sorted(skus) == sorted(s.listing_id for s in mall.listings) and len(skus) == len(set(skus))
    sku = skus[0]
    patch = {"productType": "SHIRT", "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                                                  "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 11}]}]}
    answer = a.http.patch(f"{LISTINGS}/{sku}", params={"marketplaceIds": MARKETPLACE_ID}, json=patch,
                          headers={"x-amz-access-token": a.token})
    assert answer.json()["status"] == "ACCEPTED"
    assert mall.by_listing[sku].quantity == 11
    item = a.get(f"{LISTINGS}/{sku}", marketplaceIds=MARKETPLACE_ID, includedData="fulfillmentAvailability").json()
    assert item["fulfillmentAvailability"][0]["quantity"] == 11


def test_faults_happen_at_the_configured_rate(amazon_factory):
    # the rate limit far out of the way: a 429 is the limiter, not an injected fault (counted apart)
    a = amazon_factory(faults=AmazonFaults(rate=0.3, seed=5, kinds=("500", "503", "truncated"), slow_seconds=0.0),
                       rate_scale=1e6)
    order_id = a.world.mall("amazon").orders[0].order_id
    outcomes = {"ok": 0, "error": 0, "cut": 0, "throttled": 0}
    for _ in range(200):
        try:
            status = a.get(f"{ORDERS}/{order_id}").status_code
            outcomes["ok" if status == 200 else "throttled" if status == 429 else "error"] += 1
        except httpx.HTTPError:
            outcomes["cut"] += 1
    assert outcomes["throttled"] == 0, outcomes
    bad = outcomes["error"] + outcomes["cut"]
    assert 35 <= bad <= 85, outcomes  # 30 % of 200 = 60
    assert outcomes["cut"] > 0 and outcomes["error"] > 0


def test_repeated_page_repeats_items_but_paging_still_covers_everything(amazon_factory):
    a = amazon_factory(faults=AmazonFaults(rate=0.3, seed=3, kinds=("repeat",)))
    ids = a.search_all(createdAfter="2026-10-01T00:00:00Z", marketplaceIds=MARKETPLACE_ID, maxResultsPerPage=10)
    truth = {o.order_id for o in a.world.mall("amazon").orders}
    assert set(ids) == truth
    assert len(ids) > len(truth)  # some pages came twice


def test_traffic_log_passes_conformance_and_masks_secrets(amazon_factory, tmp_path, conformance):
    log = tmp_path / "amazon.jsonl"
    a = amazon_factory(traffic_log=log)
    a.search_all(lastUpdatedAfter="2026-11-01T00:00:00Z", marketplaceIds=MARKETPLACE_ID, maxResultsPerPage=50)
    a.get(f"{ORDERS}/{a.world.mall('amazon').orders[0].order_id}")
    a.get(LISTINGS, marketplaceIds=MARKETPLACE_ID, includedData="summaries,attributes,offers,fulfillmentAvailability")
    a.http.patch(f"{LISTINGS}/{a.world.mall('amazon').listings[0].listing_id}",
                 params={"marketplaceIds": MARKETPLACE_ID}, headers={"x-amz-access-token": a.token},
                 json={"productType": "SHIRT", "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                                                            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}]}]})
    text = log.read_text()
    assert DEFAULT_CLIENT_SECRET not in text and DEFAULT_REFRESH_TOKEN not in text and a.token not in text
    assert len(text.splitlines()) >= 5
    assert all(json.loads(line)["channel"] == "amazon" for line in text.splitlines())
    conformance(log)
