"""The sandbox's recorded traffic passes the shared conformance checker (Shopify's published schema decides).

GIVEN a shop recording a traffic log WHEN a well-behaved client uses every supported query and the mutation
(successes, userErrors, throttling, cost refusals, a wrong token) THEN `../shared/tools/conformance` finds 0
problems: every document validates, variables coerce, and every `data` has exactly the shape asked for.
"""

import json
import subprocess
from datetime import timedelta

import pytest
from sandbox_testkit import (
    ITEMS,
    LOCATIONS,
    NOW,
    ORDER_IDS,
    ORDERS,
    SET_QUANTITIES,
    SHARED_TOOLS,
    TOKEN,
    VARIANTS,
    page_all,
    set_input,
)

from sandbox.world import iso_z

CONFORMANCE = SHARED_TOOLS / "conformance"

ORDER_WITH_LINES = """
query OrderLines($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    id
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id sku quantity variant { id sku } } }
    }
  }
}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Order { name totalPriceSet { shopMoney { amount } } }
    ... on ProductVariant { sku }
  }
}
"""
CUSTOMERS = """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id firstName lastName email phone updatedAt numberOfOrders amountSpent { amount currencyCode }
            defaultAddress { zip province city address1 } }
  }
}
"""
SHOP = "query { shop { id name currencyCode ianaTimezone myshopifyDomain taxesIncluded } }"
ITEM_LEVEL = """
query ItemLevel($id: ID!, $location: ID!) {
  inventoryItem(id: $id) {
    id sku
    inventoryLevel(locationId: $location) { id quantities(names: ["available", "on_hand", "committed"]) { name quantity } }
  }
}
"""


@pytest.mark.skipif(not CONFORMANCE.exists(), reason=f"the shared conformance tool is not at {CONFORMANCE}")
def test_the_traffic_of_a_client_session_passes_conformance(serve, tmp_path):
    log = tmp_path / "shopify-traffic.jsonl"
    shop = serve(traffic_log=log, restore_rate=1000.0)
    world = shop.world
    since = iso_z(NOW - timedelta(days=2))

    # reads: every root the sandbox models, paged across boundaries
    page_all(shop, ORDERS, "orders", {"first": 20, "sortKey": "UPDATED_AT", "query": f"updated_at:>='{since}'"},
             max_pages=20)
    page_all(shop, ORDER_IDS, "orders", {"first": 50, "sortKey": "CREATED_AT", "reverse": True,
                                         "query": f"created_at:>={since}"})
    shop.data(ORDER_WITH_LINES, {"id": world.orders[-1].gid, "first": 2})
    shop.data(NODE, {"id": world.orders[0].gid})
    shop.data(NODE, {"id": world.variants[0].gid})
    page_all(shop, CUSTOMERS, "customers", {"first": 25, "query": "updated_at:>='2020-01-01T00:00:00Z'"})
    page_all(shop, VARIANTS, "productVariants", {"first": 10})
    items = page_all(shop, ITEMS, "inventoryItems", {"first": 10, "query": "updated_at:>='2020-01-01'"})
    shop.data(LOCATIONS)
    shop.data(SHOP)
    level = items[0]["inventoryLevels"]["nodes"][0]
    shop.data(ITEM_LEVEL, {"id": items[0]["id"], "location": level["location"]["id"]})

    # writes: applied, stale, negative, compare skipped, replayed
    q = {x["name"]: x["quantity"] for x in level["quantities"]}
    item, loc, avail = items[0]["id"], level["location"]["id"], q["available"]
    for key, rows in [("a", [(item, loc, avail + 3, avail)]), ("b", [(item, loc, 1, avail)]),
                      ("c", [(item, loc, -2, None)]), ("d", [(item, loc, avail, None)]),
                      ("d", [(item, loc, avail, None)])]:
        shop.gql(SET_QUANTITIES, {"input": set_input(rows), "key": key})

    # refusals a client must handle: a wrong token, a cost above the single-query limit, an empty bucket
    assert shop.post(SHOP, token="shpat_wrong").status_code == 401
    assert shop.gql("{ orders(first: 250) { nodes { id lineItems(first: 50) { nodes { id } } } } }")["errors"]
    shop.handle.api.bucket(TOKEN).drain()  # refills at 1,000 points/s: a page of 20 orders (802) must wait
    throttled = shop.gql(ORDERS, {"first": 20, "query": None})
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"

    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 20
    exchanges = [json.loads(line) for line in lines]
    assert all(e["channel"] == "shopify" and e["path"] == "/admin/api/2026-10/graphql.json" for e in exchanges)
    assert not any(TOKEN in line for line in lines), "the access token is never recorded"
    assert {e["status"] for e in exchanges} == {200, 401}

    result = subprocess.run([str(CONFORMANCE), str(log)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"shopify: {len(lines)} exchanges, 0 with problems" in result.stdout, result.stdout
