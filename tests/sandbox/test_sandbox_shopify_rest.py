"""The sandbox shop's REST Admin subset behaves like Shopify's legacy REST API.

GIVEN a served shop WHEN a client pages orders.json by the Link header THEN each order comes exactly once across
the pages (forwards, and backwards by rel="previous"); every answer carries X-Shopify-Shop-Api-Call-Limit; a full
bucket answers 429 with Retry-After; a wrong token gets Shopify's 401 body; page_info refuses other filters;
inventory_levels/set.json sets the absolute quantity; the traffic passes the shared conformance tool.
"""

import time
from datetime import timedelta

import httpx
import pytest
from sandbox_testkit import NOW, TOKEN

from sandbox.shopify_rest import INVALID_TOKEN, RestSettings

ORDERS = "/admin/api/2026-10/orders.json"
SET = "/admin/api/2026-10/inventory_levels/set.json"
HEADERS = {"X-Shopify-Access-Token": TOKEN}
FAST = RestSettings(bucket_size=400, leak_per_second=200.0)


def get(shop, path=ORDERS, params=None, token=TOKEN, url=None) -> httpx.Response:
    headers = {"X-Shopify-Access-Token": token} if token else {}
    return shop.client.get(url or path, params=params, headers=headers)


def page_through(shop, params: dict, max_pages: int = 100) -> tuple[list[httpx.Response], list[int]]:
    responses, ids = [], []
    response = get(shop, params=params)
    for _ in range(max_pages):
        assert response.status_code == 200, response.text
        responses.append(response)
        ids += [o["id"] for o in response.json()["orders"]]
        following = response.links.get("next")
        if not following:
            return responses, ids
        response = get(shop, url=following["url"])
    raise AssertionError("paging did not end")


def test_link_paging_returns_each_order_exactly_once(serve):
    shop = serve(rest=FAST)
    shop.world.advance(NOW + timedelta(days=8))  # cancellations exist now
    responses, ids = page_through(shop, {"status": "any", "limit": 7})
    world = shop.world
    assert len(responses) > 3 and all(len(r.json()["orders"]) <= 7 for r in responses)
    assert sorted(ids) == ids == sorted(o.id for o in world.orders)  # each once, id order
    assert "previous" not in responses[0].links and "next" not in responses[-1].links
    assert all(r.links["next"]["url"].startswith(shop.url) for r in responses[:-1])

    # backwards from the last page by rel="previous" gives the same pages in reverse
    back, response = [], responses[-1]
    while "previous" in response.links:
        response = get(shop, url=response.links["previous"]["url"])
        back.append([o["id"] for o in response.json()["orders"]])
    assert back == [[o["id"] for o in r.json()["orders"]] for r in reversed(responses[:-1])]

    # default status=open leaves cancelled orders out; updated_at_min filters, in updated order
    _, open_ids = page_through(shop, {"limit": 50})
    assert set(open_ids) == {o.id for o in world.orders if o.cancelled_at is None and o.closed_at is None}
    since = NOW - timedelta(days=2)
    _, recent = page_through(shop, {"status": "any", "limit": 9, "order": "updated_at asc",
                                    "updated_at_min": since.isoformat()})
    expected = sorted((o for o in world.orders if o.updated_at >= since), key=lambda o: (o.updated_at, o.id))
    assert recent == [o.id for o in expected]


def test_orders_are_rest_shaped(serve):
    shop = serve(rest=FAST)
    order = get(shop, params={"status": "any", "limit": 1}).json()["orders"][0]
    truth = shop.world.order(order["id"])
    assert order["admin_graphql_api_id"] == truth.gid and order["name"] == truth.name
    assert order["total_price"] == str(truth.total) and order["created_at"].endswith("+09:00")
    assert [li["sku"] for li in order["line_items"]] == [li.sku for li in truth.lines]


@pytest.mark.parametrize("params, field", [
    ({"limit": 251}, "limit"),
    ({"limit": 0}, "limit"),
    ({"page_info": "bm9wZQ"}, "page_info"),
    ({"status": "weird"}, "status"),
    ({"updated_at_min": "yesterday"}, "updated_at_min"),
])
def test_bad_parameters_are_refused_with_400(serve, params, field):
    shop = serve(rest=FAST)
    response = get(shop, params=params)
    assert response.status_code == 400 and field in response.json()["errors"]


def test_page_info_carries_the_filters_and_refuses_new_ones(serve):
    shop = serve(rest=FAST)
    first = get(shop, params={"status": "any", "limit": 3})
    next_url = httpx.URL(first.links["next"]["url"])
    refused = get(shop, url=str(next_url.copy_add_param("status", "open")))
    assert refused.status_code == 400 and "page_info" in refused.json()["errors"]


def test_call_limit_header_and_429_with_retry_after(serve):
    shop = serve(rest=RestSettings(bucket_size=40, leak_per_second=2.0))
    seen = []
    for _ in range(45):
        response = get(shop, params={"limit": 1})
        seen.append(response)
        if response.status_code == 429:
            break
    ok = [r for r in seen if r.status_code == 200]
    assert [r.headers["X-Shopify-Shop-Api-Call-Limit"] for r in ok[:3]] == ["1/40", "2/40", "3/40"]
    refused = seen[-1]
    assert refused.status_code == 429 and len(ok) >= 39
    assert refused.json() == {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                                        "resume uninterrupted service."}
    wait = float(refused.headers["Retry-After"])
    assert 0 < wait <= 1.0 and refused.headers["X-Shopify-Shop-Api-Call-Limit"] == "40/40"
    time.sleep(wait + 0.05)
    assert get(shop, params={"limit": 1}).status_code == 200  # the wait asked for was enough


def test_auth_is_enforced_with_shopifys_401_body(serve):
    shop = serve(rest=FAST)
    for token in (None, "shpat_wrong"):
        response = get(shop, token=token)
        assert response.status_code == 401 and response.json() == {"errors": INVALID_TOKEN}
        assert shop.client.post(SET, json={}, headers={"X-Shopify-Access-Token": token or ""}).status_code == 401


def test_inventory_levels_set_is_absolute(serve):
    shop = serve(rest=FAST)
    level = next(iter(shop.world.levels.values()))
    body = {"inventory_item_id": level.inventory_item_id, "location_id": level.location_id, "available": 17}
    response = shop.client.post(SET, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["inventory_level"]["available"] == 17 == level.available
    assert "X-Shopify-Shop-Api-Call-Limit" in response.headers
    bad = shop.client.post(SET, json={**body, "available": "x"}, headers=HEADERS)
    assert bad.status_code == 400 and "available" in bad.json()["errors"]
    unknown = shop.client.post(SET, json={**body, "location_id": 1}, headers=HEADERS)
    assert unknown.status_code == 422


def test_rest_traffic_passes_conformance(serve, tmp_path, conformance):
    log = tmp_path / "traffic.jsonl"
    shop = serve(rest=FAST, traffic_log=log)
    page_through(shop, {"status": "any", "limit": 50})
    get(shop, token="shpat_wrong")
    level = next(iter(shop.world.levels.values()))
    shop.client.post(SET, json={"inventory_item_id": level.inventory_item_id, "location_id": level.location_id,
                                "available": 3}, headers=HEADERS)
    assert TOKEN not in log.read_text() and "orders.json" in log.read_text()
    conformance(log)
