"""The sandbox shop speaks Shopify's Admin GraphQL API 2026-10: paging, search, validation, auth, cost, stock."""

import time
from datetime import timedelta

import httpx
import pytest
from sandbox_testkit import (
    ITEMS,
    LOCATIONS,
    NOW,
    ORDER_IDS,
    ORDERS,
    SET_QUANTITIES,
    TOKEN,
    VARIANTS,
    page_all,
    set_input,
    small_world,
)

from sandbox.world import iso_z

INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def assert_cost(body: dict) -> dict:
    cost = body["extensions"]["cost"]
    assert set(cost) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    return cost


# --------------------------------------------------------------------------------------------- paging
def test_paging_by_updated_at_returns_every_order_exactly_once_across_pages(shop):
    # GIVEN a shop whose recent orders include ten placed in the same second (ties on updatedAt)
    world = shop.world
    world.place_orders(10, at=NOW + timedelta(minutes=1))
    cutoff = NOW - timedelta(days=2)
    expected = {o.gid for o in world.orders if o.updated_at >= cutoff}
    assert len(expected) > 30

    # WHEN a client pages through `updated_at:>=` in pages of 7, oldest update first
    seen = page_all(shop, ORDER_IDS, "orders", {"first": 7, "sortKey": "UPDATED_AT",
                                                 "query": f"updated_at:>='{iso_z(cutoff)}'"})

    # THEN every matching order comes exactly once, in updatedAt order
    ids = [n["id"] for n in seen]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    stamps = [n["updatedAt"] for n in seen]
    assert stamps == sorted(stamps)


def test_an_order_updated_while_paging_is_not_skipped(shop):
    # GIVEN a client that has read the first page of orders by updatedAt
    world = shop.world
    cutoff = iso_z(NOW - timedelta(days=3))
    variables = {"first": 10, "sortKey": "UPDATED_AT", "query": f"updated_at:>='{cutoff}'"}
    expected = {o.gid for o in world.orders if iso_z(o.updated_at) >= cutoff}
    first = shop.data(ORDER_IDS, variables)["orders"]
    seen = [n["id"] for n in first["nodes"]]

    # WHEN orders move on (paid, shipped, cancelled: updatedAt bumps) before the next pages are read
    moved = world.advance(NOW + timedelta(days=5))
    assert moved
    rest = page_all(shop, ORDER_IDS, "orders", {**variables, "after": first["pageInfo"]["endCursor"]})

    # THEN nothing that matched at the start is missed (a moved order may come twice; staging keeps the latest)
    assert expected <= set(seen) | {n["id"] for n in rest}


def test_created_at_filter_sort_and_reverse(shop):
    world = shop.world
    since = NOW - timedelta(days=1)
    expected = sorted((o for o in world.orders if o.created_at >= since), key=lambda o: (o.created_at, o.id))
    forward = page_all(shop, ORDER_IDS, "orders", {"first": 9, "sortKey": "CREATED_AT",
                                                    "query": f"created_at:>={iso_z(since)}"})
    backward = page_all(shop, ORDER_IDS, "orders", {"first": 9, "sortKey": "CREATED_AT", "reverse": True,
                                                     "query": f"created_at:>={iso_z(since)}"})
    assert [n["id"] for n in forward] == [o.gid for o in expected]
    assert [n["id"] for n in backward] == [o.gid for o in reversed(expected)]
    # a bounded window with two terms
    until = NOW - timedelta(hours=12)
    window = page_all(shop, ORDER_IDS, "orders", {
        "first": 50, "sortKey": "ID", "query": f"created_at:>='{iso_z(since)}' created_at:<'{iso_z(until)}'"})
    assert {n["id"] for n in window} == {o.gid for o in expected if o.created_at < until}


def test_order_nodes_carry_what_shopify_sends_and_match_the_sandbox_truth(shop):
    body = shop.gql(ORDERS, {"first": 20, "sortKey": "ID", "query": None})  # 20 × 40 + 2 ≤ 1000
    assert_cost(body)
    edges = body["data"]["orders"]["edges"]
    truth = {o["order_id"]: o for o in shop.client.get("/_sandbox/orders").json()}
    assert len(edges) == 20
    for edge in edges:
        node = edge["node"]
        t = truth[node["id"]]
        assert edge["cursor"]
        assert node["name"] == t["name"] and node["name"].startswith("#")
        assert node["createdAt"] == t["created_at"] and node["createdAt"].endswith("Z")
        assert node["totalPriceSet"]["shopMoney"] == {"amount": f"{t['total_jpy']}.0", "currencyCode": "JPY"}
        assert node["displayFinancialStatus"] == t["financial_status"]
        assert node["displayFulfillmentStatus"] == t["fulfillment_status"]
        assert (node["cancelledAt"] is not None) == t["cancelled"]
        lines = node["lineItems"]["nodes"]
        assert [(li["sku"], li["quantity"]) for li in lines] == [(li["sku"], li["quantity"]) for li in t["lines"]]
        for li in lines:
            assert li["variant"]["id"].startswith("gid://shopify/ProductVariant/")
            assert li["variant"]["inventoryItem"]["id"].startswith("gid://shopify/InventoryItem/")
            assert len(li["variant"]["barcode"]) == 13
        assert node["customer"]["email"] == node["email"]
        assert node["shippingAddress"]["countryCodeV2"] == "JP"


def test_variants_items_and_locations_are_served_from_the_world(shop):
    world = shop.world
    variants = page_all(shop, VARIANTS, "productVariants", {"first": 10})
    assert [v["sku"] for v in variants] == [v.sku for v in sorted(world.variants, key=lambda v: v.id)]
    v0 = variants[0]
    assert v0["price"].endswith(".0") and v0["product"]["title"]
    assert v0["inventoryItem"]["id"].startswith("gid://shopify/InventoryItem/")

    items = page_all(shop, ITEMS, "inventoryItems", {"first": 10, "query": "updated_at:>='2020-01-01T00:00:00Z'"})
    assert len(items) == len(world.inventory_items)
    shown = {row["inventory_item_id"]: row for row in shop.client.get("/_sandbox/inventory").json()}
    for item in items:
        level = item["inventoryLevels"]["nodes"][0]
        q = {x["name"]: x["quantity"] for x in level["quantities"]}
        assert q == {"available": shown[item["id"]]["available"], "on_hand": shown[item["id"]]["on_hand"]}
        assert item["tracked"] is True and item["variant"]["id"].startswith("gid://shopify/ProductVariant/")

    locations = shop.data(LOCATIONS)["locations"]["nodes"]
    assert locations == [{"id": world.locations[0].gid, "name": world.locations[0].name, "isActive": True}]

    by_sku = shop.data(VARIANTS, {"first": 5, "query": f"sku:{world.variants[3].sku}"})["productVariants"]["nodes"]
    assert [v["sku"] for v in by_sku] == [world.variants[3].sku]


def test_an_unknown_search_field_is_ignored_with_a_warning(shop):
    body = shop.gql(VARIANTS, {"first": 3, "query": "colour:red"})
    assert len(body["data"]["productVariants"]["nodes"]) == 3
    assert body["extensions"]["search"][0]["warnings"][0]["field"] == "colour"


# --------------------------------------------------------------------------------------------- validation
def test_a_document_invalid_against_shopifys_schema_is_rejected_with_a_located_error(shop):
    body = shop.gql("{ orders(first: 5) { nodes { id totalPrice { amount } displayStatus } } }")
    assert "data" not in body
    messages = [e["message"] for e in body["errors"]]
    assert any("displayStatus" in m for m in messages)
    error = next(e for e in body["errors"] if "displayStatus" in e["message"])
    assert error["locations"][0]["line"] == 1 and error["extensions"]["code"] == "undefinedField"
    assert_cost(body)


def test_syntax_errors_wrong_variables_and_unmodelled_fields_are_reported(shop):
    syntax = shop.gql("{ orders(first: 5) { nodes { id }")
    assert syntax["errors"][0]["extensions"]["code"] == "parseError" and syntax["errors"][0]["locations"]
    wrong = shop.gql(ORDER_IDS, {"first": "ten"})
    assert wrong["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    # a field that is valid in Shopify's schema but not modelled by the sandbox says so
    unmodelled = shop.gql("{ shop { name plan { partnerDevelopment } } }")
    assert unmodelled["errors"][0]["extensions"]["code"] == "SANDBOX_NOT_IMPLEMENTED"
    assert "Shop.plan" in unmodelled["errors"][0]["message"]
    for body in (syntax, wrong, unmodelled):
        assert_cost(body)


def test_page_size_is_capped_at_250_and_first_or_last_is_required(shop):
    too_big = shop.gql("{ productVariants(first: 251) { nodes { id } } }")
    assert too_big["errors"][0]["extensions"]["code"] == "MAX_PAGE_SIZE_EXCEEDED"
    missing = shop.gql("{ productVariants { nodes { id } } }")
    assert "first or last" in missing["errors"][0]["message"]
    ok = shop.gql("{ productVariants(first: 250) { nodes { id } } }")
    assert len(ok["data"]["productVariants"]["nodes"]) == len(shop.world.variants)


# --------------------------------------------------------------------------------------------- auth
def test_a_missing_or_wrong_access_token_gets_shopifys_401(shop):
    for token in (None, "shpat_wrong"):
        response = shop.post("{ shop { name } }", token=token)
        assert response.status_code == 401
        assert response.json() == INVALID_TOKEN
    assert shop.post("{ shop { name } }").status_code == 200


def test_a_missing_query_is_a_400_and_other_api_versions_are_not_served(shop):
    response = shop.client.post("/admin/api/2026-10/graphql.json", json={"variables": {}},
                                headers={"X-Shopify-Access-Token": TOKEN})
    assert response.status_code == 400
    old = shop.client.post("/admin/api/2024-01/graphql.json", json={"query": "{ shop { name } }"},
                           headers={"X-Shopify-Access-Token": TOKEN})
    assert old.status_code == 404


# --------------------------------------------------------------------------------------------- cost
def test_cost_is_reported_on_every_response_and_an_empty_bucket_throttles(serve):
    # GIVEN a shop restoring 100 points/s (bucket 1,000) — Shopify's Standard plan
    shop = serve(restore_rate=100.0)
    cheap = "{ productVariants(first: 2) { nodes { id } } }"  # 2 + 2 × 1 = 4 points
    body = shop.gql(cheap)
    cost = assert_cost(body)
    assert cost["requestedQueryCost"] == 4 and cost["actualQueryCost"] == 4
    assert cost["throttleStatus"]["maximumAvailable"] == 1000.0 and cost["throttleStatus"]["restoreRate"] == 100.0

    # WHEN the bucket is empty
    shop.handle.api.bucket(TOKEN).drain()
    throttled = shop.gql(cheap)

    # THEN Shopify's THROTTLED error comes back with HTTP 200 and the cost, and nothing is executed
    assert throttled["errors"][0]["message"] == "Throttled"
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "data" not in throttled
    t_cost = assert_cost(throttled)
    assert t_cost["requestedQueryCost"] == 4 and t_cost["throttleStatus"]["currentlyAvailable"] < 4

    # AND once the bucket has leaked back, the same query is served (bounded wait)
    for _ in range(50):
        time.sleep(0.02)
        again = shop.gql(cheap)
        if not again.get("errors"):
            break
    assert again["data"]["productVariants"]["nodes"]


def test_requested_cost_counts_connections_and_actual_cost_counts_what_came_back(shop):
    # 2 + 100 × (1 + inventoryItem 1) = 202 requested; the shop has fewer than 100 variants
    body = shop.gql("{ productVariants(first: 100) { nodes { id inventoryItem { id } } } }")
    cost = assert_cost(body)
    assert cost["requestedQueryCost"] == 202
    assert cost["actualQueryCost"] == 2 + 2 * len(shop.world.variants)


def test_a_query_above_the_single_query_limit_is_refused(shop):
    body = shop.gql("{ orders(first: 250) { nodes { id lineItems(first: 50) { nodes { id sku } } } } }")
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["errors"][0]["extensions"]["maxCost"] == 1000
    assert assert_cost(body)["requestedQueryCost"] == 2 + 250 * (1 + 2 + 50)


# --------------------------------------------------------------------------------------------- stock push
def read_levels(shop) -> dict[str, tuple[str, int, int]]:
    """sku -> (item id, location id, available) as the shop shows them."""
    out = {}
    for item in page_all(shop, ITEMS, "inventoryItems", {"first": 50}):
        level = item["inventoryLevels"]["nodes"][0]
        q = {x["name"]: x["quantity"] for x in level["quantities"]}
        out[item["sku"]] = (item["id"], level["location"]["id"], q["available"])
    return out


def set_quantities(shop, rows, key, name="available"):
    body = shop.gql(SET_QUANTITIES, {"input": set_input(rows, name), "key": key})
    assert_cost(body)
    return body


def test_inventory_set_quantities_applies_absolute_values_and_bumps_updated_at(shop):
    levels = read_levels(shop)
    (sku_a, (item_a, loc, avail_a)), (sku_b, (item_b, _, avail_b)) = list(levels.items())[:2]
    before = NOW + timedelta(days=365)  # later than any stamp the world has made

    body = set_quantities(shop, [(item_a, loc, avail_a + 4, avail_a), (item_b, loc, 0, avail_b)], "push-1")

    payload = body["data"]["inventorySetQuantities"]
    assert payload["userErrors"] == []
    changes = {(c["item"]["id"], c["name"]): c for c in payload["inventoryAdjustmentGroup"]["changes"]}
    assert changes[(item_a, "available")]["delta"] == 4
    assert changes[(item_a, "available")]["quantityAfterChange"] == avail_a + 4
    assert changes[(item_b, "available")]["quantityAfterChange"] == 0
    shown = {row["sku"]: row for row in shop.client.get("/_sandbox/inventory").json()}
    assert shown[sku_a]["available"] == avail_a + 4 and shown[sku_b]["available"] == 0
    # the pushed items are found again by an updated_at query (how a client notices its own changes)
    since = iso_z(shop.world.clock() - timedelta(seconds=1))
    changed = page_all(shop, ITEMS, "inventoryItems", {"first": 50, "query": f"updated_at:>='{since}'"})
    assert {item_a, item_b} <= {i["id"] for i in changed}
    assert before > shop.world.clock()


def test_a_stale_change_from_quantity_rejects_the_whole_call(shop):
    # GIVEN a client that read the shop's stock, then the shop sold a unit of one SKU
    levels = read_levels(shop)
    sold_sku, (sold_item, loc, sold_avail) = next((s, v) for s, v in levels.items() if v[2] >= 2)
    other_sku, (other_item, _, other_avail) = next((s, v) for s, v in levels.items() if s != sold_sku)
    sold = shop.client.post("/_sandbox/orders", json={"lines": [{"sku": sold_sku, "quantity": 1}]}).json()
    assert sold and sold[0]["lines"][0]["sku"] == sold_sku

    # WHEN it pushes both SKUs with the quantities it read as changeFromQuantity
    body = set_quantities(shop, [(other_item, loc, other_avail + 7, other_avail),
                                 (sold_item, loc, sold_avail + 10, sold_avail)], "push-stale")

    # THEN the call fails with CHANGE_FROM_QUANTITY_STALE naming the row, and NOTHING was applied
    payload = body["data"]["inventorySetQuantities"]
    assert payload["inventoryAdjustmentGroup"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("CHANGE_FROM_QUANTITY_STALE", ["input", "quantities", "1", "changeFromQuantity"])]
    after = read_levels(shop)
    assert after[other_sku][2] == other_avail and after[sold_sku][2] == sold_avail - 1

    # AND a retry with the fresh quantity succeeds without resurrecting the sold unit
    retry = set_quantities(shop, [(sold_item, loc, sold_avail + 9, sold_avail - 1)], "push-stale-2")
    assert retry["data"]["inventorySetQuantities"]["userErrors"] == []


def test_negative_unknown_and_uncompared_quantities_are_refused(shop):
    levels = read_levels(shop)
    item, loc, avail = next(iter(levels.values()))
    negative = set_quantities(shop, [(item, loc, -1, avail)], "neg")
    assert [e["code"] for e in negative["data"]["inventorySetQuantities"]["userErrors"]] == [
        "INVALID_QUANTITY_NEGATIVE"]
    unknown = set_quantities(shop, [("gid://shopify/InventoryItem/1", loc, 3, None)], "unknown")
    assert [e["code"] for e in unknown["data"]["inventorySetQuantities"]["userErrors"]] == [
        "INVALID_INVENTORY_ITEM"]
    # changeFromQuantity must be present; an explicit null skips the compare-and-swap
    raw = set_input([(item, loc, avail + 1, None)])
    del raw["quantities"][0]["changeFromQuantity"]
    missing = shop.gql(SET_QUANTITIES, {"input": raw, "key": "missing"})
    errors = missing["data"]["inventorySetQuantities"]["userErrors"]
    assert errors[0]["field"] == ["input", "quantities", "0", "changeFromQuantity"]
    assert read_levels(shop)[next(iter(levels))][2] == avail, "refused calls change nothing"
    skip = set_quantities(shop, [(item, loc, avail + 2, None)], "null-skips")
    assert skip["data"]["inventorySetQuantities"]["userErrors"] == []
    too_many = shop.gql(SET_QUANTITIES, {"input": set_input([(item, loc, 1, None)] * 251), "key": "big"})
    assert too_many["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"


def test_the_idempotency_key_is_required_and_a_retry_is_not_applied_twice(shop):
    levels = read_levels(shop)
    sku, (item, loc, avail) = next(iter(levels.items()))
    no_key = shop.gql(SET_QUANTITIES.replace(" @idempotent(key: $key)", "").replace(", $key: String!", ""),
                      {"input": set_input([(item, loc, avail + 1, avail)])})
    assert no_key["data"]["inventorySetQuantities"] is None and "@idempotent" in no_key["errors"][0]["message"]

    first = set_quantities(shop, [(item, loc, avail + 1, avail)], "once")
    retry = set_quantities(shop, [(item, loc, avail + 1, avail)], "once")  # the response was lost; same key
    assert first["data"] == retry["data"]
    assert read_levels(shop)[sku][2] == avail + 1
    reused = set_quantities(shop, [(item, loc, avail + 5, avail + 1)], "once")
    assert reused["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"


# --------------------------------------------------------------------------------------------- /_sandbox/
def test_sandbox_endpoints_tell_the_truth_and_place_orders(shop):
    health = shop.client.get("/_sandbox/health").json()
    assert health["status"] == "ok" and health["orders"] == len(shop.world.orders)
    before = shop.client.get("/_sandbox/orders").json()
    assert len(before) == len(shop.world.orders)
    assert set(before[0]) >= {"order_id", "name", "created_at", "updated_at", "cancelled", "financial_status",
                              "fulfillment_status", "total_jpy", "lines"}
    assert set(before[0]["lines"][0]) >= {"sku", "quantity", "unit_price_jpy"}

    placed = shop.client.post("/_sandbox/orders", json={"count": 3}).json()
    assert len(placed) == 3
    after = shop.client.get("/_sandbox/orders").json()
    assert [o["order_id"] for o in after[-3:]] == [o["order_id"] for o in placed]
    # the new orders are visible through the API at once
    newest = shop.data(ORDER_IDS, {"first": 3, "sortKey": "CREATED_AT", "reverse": True})["orders"]["nodes"]
    assert {n["id"] for n in newest} == {o["order_id"] for o in placed}

    bad = shop.client.post("/_sandbox/orders", json={"lines": [{"sku": "NOPE", "quantity": 1}]})
    assert bad.status_code == 400 and "NOPE" in bad.json()["error"]
    inventory = shop.client.get("/_sandbox/inventory").json()
    assert {"inventory_item_id", "location_id", "sku", "available", "on_hand"} <= set(inventory[0])
    assert len(inventory) == len(shop.world.variants)


def test_the_api_does_not_need_the_sandbox_world_to_be_small():
    # GIVEN a bigger world, served through the transport-free API object
    from sandbox.shopify import ShopifyAPI

    world = small_world(seed=3, skus=400, customers=300, history_days=10, orders_per_day=200)
    api = ShopifyAPI(world, access_token=TOKEN, restore_rate=10_000)
    started = time.monotonic()
    status, body = api.handle(TOKEN, {"query": ORDER_IDS, "variables": {"first": 250, "sortKey": "UPDATED_AT"}})
    assert status == 200 and len(body["data"]["orders"]["nodes"]) == 250
    assert time.monotonic() - started < 2.0


def test_http_client_sees_json_content_type(shop):
    response = httpx.post(f"{shop.url}/admin/api/2026-10/graphql.json", json={"query": "{ shop { name } }"},
                          headers={"X-Shopify-Access-Token": TOKEN}, timeout=5)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"]["shop"]["name"]


def test_paging_backwards_with_last_and_before_mirrors_paging_forwards(shop):
    forward = page_all(shop, ORDER_IDS, "orders", {"first": 13, "sortKey": "ID"})
    query = """query($last: Int!, $before: String) {
      orders(last: $last, before: $before, sortKey: ID) {
        pageInfo { hasPreviousPage hasNextPage startCursor } nodes { id } } }"""
    backward, before = [], None
    for _ in range(100):
        conn = shop.data(query, {"last": 13, "before": before})["orders"]
        backward = conn["nodes"] + backward
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert [n["id"] for n in backward] == [n["id"] for n in forward]


def test_a_cursor_from_another_sort_is_refused(shop):
    by_time = shop.data(ORDER_IDS, {"first": 2, "sortKey": "UPDATED_AT"})["orders"]["pageInfo"]["endCursor"]
    body = shop.gql(ORDER_IDS, {"first": 2, "sortKey": "ID", "after": by_time})
    assert "Invalid cursor" in body["errors"][0]["message"]
    garbage = shop.gql(ORDER_IDS, {"first": 2, "after": "not-a-cursor"})
    assert "Invalid cursor" in garbage["errors"][0]["message"]


def test_the_schema_is_found_through_the_env_var_or_fails_naming_where_it_looked(monkeypatch, tmp_path):
    from sandbox.shopify_schema import ENV_VAR, SchemaNotFound, candidate_paths, schema_path

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.json.gz"))
    with pytest.raises(SchemaNotFound, match="missing.json.gz"):
        schema_path()
    monkeypatch.delenv(ENV_VAR)
    paths = [str(p) for p in candidate_paths()]
    assert paths[0].endswith("shared/reference/shopify/admin_2026-10.json.gz")
    assert paths[1].endswith("var/reference/shopify/admin_2026-10.json.gz")
    with pytest.raises(SchemaNotFound, match="nowhere"):
        schema_path(tmp_path / "nowhere.json.gz")
    # a clone with neither ../shared nor var/reference: the message names both places and the fix
    import sandbox.shopify_schema as module

    monkeypatch.setattr(module, "REPO_ROOT", tmp_path / "clone")
    with pytest.raises(SchemaNotFound) as err:
        schema_path()
    message = str(err.value)
    assert "shared/reference/shopify" in message and "var/reference/shopify" in message and ENV_VAR in message
