"""The sandbox shop's bulk query operations behave like Shopify's 2026-10 ones.

GIVEN a served shop WHEN a client runs bulkOperationRunQuery and polls bulkOperation(id:) THEN the operation goes
CREATED → RUNNING → COMPLETED with a growing objectCount and a JSONL url; nested connection nodes are their own
lines with `__parentId`; at most five bulk queries run at once per shop (one with concurrency 1, the older rule);
refused queries say why; a failed operation has an errorCode and a partialDataUrl; the exchanges pass the shared
conformance tool while the download is not recorded. The work is asynchronous: the run answers CREATED before
the query has read anything, the operation stays RUNNING until its work is done, and a cancel drops it. A query
reads a snapshot of the shop taken under the world's lock and exports it without the lock: other calls are
answered while a large export runs, and what changes meanwhile does not show in its file.
"""

import json
from datetime import timedelta

import httpx
import pytest
from sandbox_testkit import NOW, SET_QUANTITIES, TOKEN, Gate, poll_until_done, set_input, small_world

RUN = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status type objectCount url createdAt }
    userErrors { code field message }
  }
}
"""
POLL = """
query Poll($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl completedAt query type
  }
}
"""
CURRENT = "query { currentBulkOperation { id status } }"
ORDERS_WITH_LINES = """
{ orders(sortKey: UPDATED_AT) { edges { node { id name updatedAt
    lineItems { edges { node { id sku quantity variant { id } } } } } } } }
"""
VARIANTS = "{ productVariants { edges { node { id sku } } } }"


def run(shop, query: str) -> dict:
    return shop.data(RUN, {"query": query})["bulkOperationRunQuery"]


def test_lifecycle_and_jsonl_parent_linkage(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.5)
    started = run(shop, ORDERS_WITH_LINES)
    assert started["userErrors"] == []
    op = started["bulkOperation"]
    assert (op["status"], op["type"], op["url"], op["objectCount"]) == ("CREATED", "QUERY", None, "0")

    seen = poll_until_done(shop, POLL, op["id"])
    statuses = [s["status"] for s in seen]
    assert "RUNNING" in statuses and statuses[-1] == "COMPLETED"
    counts = [int(s["objectCount"]) for s in seen]
    assert counts == sorted(counts)  # a running count
    done = seen[-1]
    assert done["url"] and done["completedAt"] and done["errorCode"] is None and done["partialDataUrl"] is None

    body = httpx.get(done["url"], timeout=10)  # a pre-signed URL: no access token needed
    assert body.status_code == 200
    lines = [json.loads(line) for line in body.text.splitlines()]
    assert int(done["fileSize"]) == len(body.content) and int(done["objectCount"]) == len(lines)
    orders = [line for line in lines if "__parentId" not in line]
    children = [line for line in lines if "__parentId" in line]
    world = shop.world
    assert len(orders) == len(world.orders) == int(done["rootObjectCount"])
    assert all("lineItems" not in o for o in orders)  # the nested connection is not inline
    parents = {o["id"] for o in orders}
    assert {c["__parentId"] for c in children} <= parents
    for order in world.orders:  # every line item once, linked to its own order, in order
        assert [c["id"] for c in children if c["__parentId"] == order.gid] == [li.gid for li in order.lines]
    assert [o["updatedAt"] for o in orders] == sorted(o["updatedAt"] for o in orders)  # sortKey honoured
    assert children[0]["variant"]["id"].startswith("gid://shopify/ProductVariant/")  # objects stay inline

    assert shop.data(CURRENT)["currentBulkOperation"] == {"id": op["id"], "status": "COMPLETED"}


CANCEL = "mutation C($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }"


def test_the_run_answers_before_the_work_and_stays_running_until_it_is_done(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.0)  # only the work keeps it RUNNING
    gate = shop.handle.api.bulk.execution_gate = Gate()
    op = run(shop, ORDERS_WITH_LINES)["bulkOperation"]  # answered while the worker has not read anything
    assert op["status"] == "CREATED" and op["objectCount"] == "0"
    assert gate.entered.wait(10) and gate.held == [op["id"]]

    for _ in range(3):  # however often it is polled, the unfinished work keeps it RUNNING without a url
        held = shop.data(POLL, {"id": op["id"]})["bulkOperation"]
        assert (held["status"], held["objectCount"], held["url"], held["completedAt"]) == ("RUNNING", "0", None, None)
    assert [o["id"] for o in shop.data("{ bulkOperations(first: 5, query: \"status:running\") { nodes { id } } }")
            ["bulkOperations"]["nodes"]] == [op["id"]]

    gate.open()
    done = poll_until_done(shop, POLL, op["id"])[-1]
    assert done["status"] == "COMPLETED"
    lines = httpx.get(done["url"], timeout=10).text.splitlines()
    world = shop.world
    assert int(done["rootObjectCount"]) == len(world.orders)
    assert int(done["objectCount"]) == len(lines) == len(world.orders) + sum(len(o.lines) for o in world.orders)


def test_a_cancel_before_the_work_is_done_leaves_no_output(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.0)
    gate = shop.handle.api.bulk.execution_gate = Gate()
    gid = run(shop, ORDERS_WITH_LINES)["bulkOperation"]["id"]
    assert gate.entered.wait(10)
    canceled = shop.data(CANCEL, {"id": gid})["bulkOperationCancel"]
    assert canceled == {"bulkOperation": {"status": "CANCELED"}, "userErrors": []}
    gate.open()
    assert shop.handle.api.bulk.join(10)  # the worker has ended …
    after = shop.data(POLL, {"id": gid})["bulkOperation"]  # … without producing anything
    assert (after["status"], after["objectCount"], after["url"], after["partialDataUrl"]) == ("CANCELED", "0", None, None)
    assert run(shop, VARIANTS)["userErrors"] == []  # and it no longer counts against the limit


def test_at_most_five_bulk_queries_run_at_once_per_shop(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=4.0)  # long enough to start six on a loaded machine
    ids = [run(shop, VARIANTS)["bulkOperation"]["id"] for _ in range(5)]
    assert len(set(ids)) == 5
    refused = run(shop, VARIANTS)
    assert refused["bulkOperation"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["LIMIT_REACHED"]
    poll_until_done(shop, POLL, ids[0])
    assert run(shop, VARIANTS)["userErrors"] == []  # a slot is free again


def test_one_at_a_time_when_the_shop_allows_one(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=3.0, bulk_concurrency=1)
    first = run(shop, VARIANTS)["bulkOperation"]["id"]
    refused = run(shop, VARIANTS)
    assert refused["bulkOperation"] is None
    assert refused["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS" and first in refused["userErrors"][0]["message"]
    poll_until_done(shop, POLL, first)
    assert run(shop, VARIANTS)["userErrors"] == []


@pytest.mark.parametrize("query, says", [
    ("{ shop { name } }", "at least one connection"),
    ("{ nodes(ids: [\"gid://shopify/Order/1\"]) { id } }", "top level `node` or `nodes`"),
    ("{ orders { edges { node { name lineItems { edges { node { id } } } } } } }", "must select the 'id'"),
    ("{ orders { edges { node { id nope } } } }", "Invalid bulk query"),
    ("mutation { bulkOperationCancel(id: \"x\") { userErrors { message } } }", "exactly one query operation"),
])
def test_refused_queries_say_why_and_start_nothing(shop, query, says):
    refused = run(shop, query)
    assert refused["bulkOperation"] is None
    assert refused["userErrors"][0]["code"] == "INVALID" and refused["userErrors"][0]["field"] == ["query"]
    assert says in refused["userErrors"][0]["message"]
    assert shop.data(CURRENT)["currentBulkOperation"] is None


def test_a_failed_operation_has_an_error_code_and_partial_data(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.1)
    shop.handle.api.bulk.fail_next("TIMEOUT")
    gid = run(shop, ORDERS_WITH_LINES)["bulkOperation"]["id"]
    done = poll_until_done(shop, POLL, gid)[-1]
    assert (done["status"], done["errorCode"], done["url"]) == ("FAILED", "TIMEOUT", None)
    partial = httpx.get(done["partialDataUrl"], timeout=10)
    assert partial.status_code == 200 and 0 < len(partial.text.splitlines()) == int(done["objectCount"])
    assert httpx.get(shop.url + "/bulk-operation-outputs/unknown.jsonl", timeout=10).status_code == 404


def test_bulk_calls_need_the_token_and_their_traffic_passes_conformance(serve, tmp_path, conformance):
    log = tmp_path / "traffic.jsonl"
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.1, traffic_log=log)
    assert shop.post(RUN, {"query": VARIANTS}, token="shpat_wrong").status_code == 401
    gid = run(shop, ORDERS_WITH_LINES)["bulkOperation"]["id"]
    done = poll_until_done(shop, POLL, gid)[-1]
    run(shop, "{ shop { name } }")
    assert httpx.get(done["url"], timeout=10).status_code == 200
    recorded = [json.loads(line) for line in log.read_text().splitlines()]
    assert recorded and all(e["path"].endswith("/graphql.json") for e in recorded)  # the download is not
    assert TOKEN not in log.read_text()
    conformance(log)


ORDERS_WITH_STATE = """
{ orders { edges { node { id updatedAt displayFulfillmentStatus displayFinancialStatus
    lineItems { edges { node { id currentQuantity } } } } } } }
"""


def test_other_calls_are_answered_while_a_large_bulk_query_exports_its_snapshot(serve):
    # GIVEN a shop with months of orders, and a bulk query whose worker has taken its snapshot and is held before
    # the export (the execution over the snapshot and the JSONL)
    world = small_world(seed=9, history_days=120, orders_per_day=40)
    shop = serve(world, restore_rate=1000.0, bulk_processing_seconds=0.0)
    gate = shop.handle.api.bulk.export_gate = Gate()
    op = run(shop, ORDERS_WITH_STATE)["bulkOperation"]
    assert gate.entered.wait(10) and gate.held == [op["id"]]
    assert world.lock.acquire(timeout=10), "the worker holds the world's lock during the export"
    try:
        at_snapshot = {o.gid: (o.fulfillment_status, [li.current_quantity for li in o.lines]) for o in world.orders}
    finally:
        world.lock.release()
    assert len(at_snapshot) > 3000

    # WHEN other calls come in meanwhile: an orders poll, a stock push, new sales, the world moving on (each
    # bounded by the client's 10 s timeout: a call waiting for the world's lock would fail here)
    page = shop.data("{ orders(first: 5, sortKey: UPDATED_AT, reverse: true) { nodes { id } } }")
    level = next(iter(world.levels.values()))
    pushed = shop.data(SET_QUANTITIES, {"input": set_input([(f"gid://shopify/InventoryItem/{level.inventory_item_id}",
                                                             f"gid://shopify/Location/{level.location_id}", 7, None)]),
                                        "key": "export-running"})
    placed = shop.client.post("/_sandbox/orders", json={"count": 3})
    moved = shop.client.post("/_sandbox/advance", json={"to": (NOW + timedelta(days=12)).isoformat()})
    held = shop.data(POLL, {"id": op["id"]})["bulkOperation"]

    # THEN each is answered while the operation is still RUNNING without output
    assert len(page["orders"]["nodes"]) == 5 and pushed["inventorySetQuantities"]["userErrors"] == []
    assert placed.status_code == 200 and len(placed.json()) >= 1 and moved.status_code == 200
    assert (held["status"], held["url"]) == ("RUNNING", None)

    # AND once the export runs, its file holds the shop as it was at the snapshot, not what changed since
    gate.open()
    done = poll_until_done(shop, POLL, op["id"], timeout=60)[-1]
    assert done["status"] == "COMPLETED"
    lines = [json.loads(line) for line in httpx.get(done["url"], timeout=30).text.splitlines()]
    orders = {line["id"]: line for line in lines if "__parentId" not in line}
    quantities: dict[str, list[int]] = {gid: [] for gid in orders}
    for line in lines:
        if "__parentId" in line:
            quantities[line["__parentId"]].append(line["currentQuantity"])
    exported = {gid: (o["displayFulfillmentStatus"], quantities[gid]) for gid, o in orders.items()}
    assert exported == at_snapshot
    with world.lock:
        now = {o.gid: (o.fulfillment_status, [li.current_quantity for li in o.lines]) for o in world.orders}
    assert len(now) > len(at_snapshot) and any(now[g] != at_snapshot[g] for g in at_snapshot), \
        "the world did move on during the export"
