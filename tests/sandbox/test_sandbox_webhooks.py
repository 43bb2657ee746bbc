"""The sandbox shop's webhooks: subscriptions over GraphQL, signed deliveries per topic, retries, faults.

Deliveries go to a small collecting receiver served over real HTTP on a random port (no product code here).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sandbox_testkit import SET_QUANTITIES, TOKEN, Gate, SandboxProcess, Shop, set_input, small_world
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.server import ServerHandle, serve_shopify
from sandbox.webhooks import WebhookSettings

SECRET = "shpss_sandbox_test_secret"
CREATE = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription {
      id legacyResourceId topic uri format createdAt updatedAt includeFields
      apiVersion { handle }
      endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }
    }
    userErrors { field message }
  }
}
"""
LIST = """
query Subs($topics: [WebhookSubscriptionTopic!], $after: String) {
  webhookSubscriptions(first: 2, topics: $topics, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}
"""
ALL_TOPICS = ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "INVENTORY_LEVELS_UPDATE")


class Collector:
    """A receiver that records every delivery; `fail_first` answers 500 to a webhook id's first attempt,
    `sleep_first` sleeps that long before answering it."""

    def __init__(self, fail_first: bool = False, sleep_first: float = 0.0):
        self.received: list[dict] = []
        self.fail_first, self.sleep_first = fail_first, sleep_first
        self._lock = threading.Lock()

        async def hook(request: Request):
            body = await request.body()
            entry = {"headers": {k.lower(): v for k, v in request.headers.items()}, "body": body}
            with self._lock:
                first = not any(e["headers"]["x-shopify-webhook-id"] == entry["headers"]["x-shopify-webhook-id"]
                                for e in self.received)
                self.received.append(entry)
            if first and self.sleep_first:
                await asyncio.sleep(self.sleep_first)  # longer than the sandbox waits: a timeout
            if first and self.fail_first:
                return JSONResponse({"error": "try again"}, status_code=500)
            return JSONResponse({"ok": True})

        self.handle = ServerHandle(Starlette(routes=[Route("/hooks", hook, methods=["POST"])]), port=0)
        self.url = self.handle.url + "/hooks"

    def topics(self) -> Counter:
        with self._lock:
            return Counter(e["headers"]["x-shopify-topic"] for e in self.received)

    def close(self) -> None:
        self.handle.stop()


@pytest.fixture
def collector():
    made: list[Collector] = []

    def make(**kw) -> Collector:
        c = Collector(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def served(settings: WebhookSettings, **kw) -> Shop:
    world = small_world()
    return Shop(serve_shopify(world, port=0, access_token=TOKEN, restore_rate=1000.0, webhooks=settings, **kw),
                world)


@pytest.fixture
def shops():
    made: list[Shop] = []

    def make(settings: WebhookSettings, **kw) -> Shop:
        s = served(settings, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def subscribe(shop: Shop, uri: str, topics=ALL_TOPICS) -> None:
    for topic in topics:
        payload = shop.data(CREATE, {"topic": topic, "sub": {"uri": uri}})["webhookSubscriptionCreate"]
        assert payload["userErrors"] == [], payload


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_webhook_subscription_create_uses_uri_and_lists_per_topic(shops):
    shop = shops(WebhookSettings(secret=SECRET))
    made = shop.data(CREATE, {"topic": "ORDERS_CREATE", "sub": {"uri": "http://127.0.0.1:9/hooks"}})
    sub = made["webhookSubscriptionCreate"]["webhookSubscription"]
    assert made["webhookSubscriptionCreate"]["userErrors"] == []
    assert sub["id"].startswith("gid://shopify/WebhookSubscription/") and sub["topic"] == "ORDERS_CREATE"
    assert sub["uri"] == sub["endpoint"]["callbackUrl"] == "http://127.0.0.1:9/hooks"
    assert sub["format"] == "JSON" and sub["apiVersion"]["handle"] == "2026-10"
    # the deprecated callbackUrl is still accepted; the same address twice for a topic is refused
    legacy = shop.data(CREATE, {"topic": "ORDERS_UPDATED", "sub": {"callbackUrl": "http://127.0.0.1:9/hooks"}})
    assert legacy["webhookSubscriptionCreate"]["userErrors"] == []
    again = shop.data(CREATE, {"topic": "ORDERS_CREATE", "sub": {"uri": "http://127.0.0.1:9/hooks"}})
    assert again["webhookSubscriptionCreate"]["webhookSubscription"] is None
    assert again["webhookSubscriptionCreate"]["userErrors"][0]["message"] == \
        "Address for this topic has already been taken"
    blank = shop.data(CREATE, {"topic": "ORDERS_CANCELLED", "sub": {}})["webhookSubscriptionCreate"]
    assert blank["userErrors"] == [{"field": ["webhookSubscription", "uri"], "message": "Address can't be blank"}]
    shop.data(CREATE, {"topic": "INVENTORY_LEVELS_UPDATE", "sub": {"uri": "http://127.0.0.1:9/other"}})
    page = shop.data(LIST, {"topics": None})["webhookSubscriptions"]
    assert len(page["nodes"]) == 2 and page["pageInfo"]["hasNextPage"]
    rest = shop.data(LIST, {"topics": None, "after": page["pageInfo"]["endCursor"]})["webhookSubscriptions"]
    assert [n["topic"] for n in page["nodes"] + rest["nodes"]] == ["ORDERS_CREATE", "ORDERS_UPDATED",
                                                                   "INVENTORY_LEVELS_UPDATE"]
    only = shop.data(LIST, {"topics": ["INVENTORY_LEVELS_UPDATE"]})["webhookSubscriptions"]["nodes"]
    assert [n["uri"] for n in only] == ["http://127.0.0.1:9/other"]


def test_deliveries_arrive_signed_for_each_topic(shops, collector):
    shop = shops(WebhookSettings(secret=SECRET))
    hooks = collector()
    subscribe(shop, hooks.url)
    world = shop.world
    order = world.place_order([(world.variants[0].sku, 1)])
    assert order is not None
    cancelled = next(o for o in world.orders if o.pending and o.pending[0].kind == "cancel")
    world.advance(cancelled.pending[0].at)
    level = world.levels[(world.variants[1].inventory_item_id, world.locations[0].id)]
    item_gid = f"gid://shopify/InventoryItem/{level.inventory_item_id}"
    shop.data(SET_QUANTITIES, {"input": set_input([(item_gid, world.locations[0].gid, level.available + 5,
                                                    level.available)]), "key": "wh-1"})
    assert shop.handle.webhooks.wait_idle(15)
    topics = hooks.topics()
    assert topics["orders/create"] == 1
    assert topics["orders/cancelled"] >= 1 and topics["orders/updated"] >= 1
    assert topics["inventory_levels/update"] >= 2  # the sale and the set
    for entry in hooks.received:
        h, body = entry["headers"], entry["body"]
        expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(h["x-shopify-hmac-sha256"], expected)
        assert h["x-shopify-shop-domain"] == world.shop_domain and h["x-shopify-api-version"] == "2026-10"
        assert h["x-shopify-webhook-id"] and h["x-shopify-event-id"] and h["x-shopify-triggered-at"]
    created = next(json.loads(e["body"]) for e in hooks.received if e["headers"]["x-shopify-topic"] == "orders/create")
    assert created["id"] == order.id and created["admin_graphql_api_id"] == order.gid
    assert created["total_price"] == str(order.total) and created["updated_at"].endswith("+09:00")
    assert [li["sku"] for li in created["line_items"]] == [world.variants[0].sku]
    setting = [json.loads(e["body"]) for e in hooks.received
               if e["headers"]["x-shopify-topic"] == "inventory_levels/update"
               and json.loads(e["body"])["inventory_item_id"] == level.inventory_item_id]
    assert setting[-1]["available"] == level.available and setting[-1]["location_id"] == world.locations[0].id
    summary = httpx.get(f"{shop.url}/_sandbox/webhooks", timeout=10).json()
    assert len(summary["subscriptions"]) == 4
    assert {d["status"] for d in summary["deliveries"]} == {"delivered"}
    assert all(d["attempts"] == 1 for d in summary["deliveries"])


def test_a_failed_or_slow_delivery_is_retried_with_the_same_webhook_id(shops, collector):
    shop = shops(WebhookSettings(secret=SECRET, timeout=0.3, retry_backoff=0.05))
    failing, slow = collector(fail_first=True), collector(sleep_first=1.0)
    subscribe(shop, failing.url, ("ORDERS_CREATE",))
    subscribe(shop, slow.url, ("ORDERS_CREATE",))
    shop.world.place_orders(2)
    assert shop.handle.webhooks.wait_idle(15)
    for hooks in (failing, slow):
        ids = Counter(e["headers"]["x-shopify-webhook-id"] for e in hooks.received)
        assert len(ids) == 2 and set(ids.values()) == {2}, ids  # each webhook sent twice: failed, then retried
    deliveries = shop.handle.webhooks.summary()["deliveries"]
    assert [(d["status"], d["attempts"]) for d in deliveries] == [("delivered", 2)] * 4


def test_a_receiver_that_never_answers_2xx_exhausts_the_bounded_retries(shops):
    shop = shops(WebhookSettings(secret=SECRET, max_attempts=3, retry_backoff=0.01, timeout=0.5))
    subscribe(shop, "http://127.0.0.1:9/nothing-listens-here", ("ORDERS_CREATE",))
    shop.world.place_orders(1)
    assert shop.handle.webhooks.wait_idle(15)
    [d] = shop.handle.webhooks.summary()["deliveries"]
    assert d["status"] == "failed" and d["attempts"] == 3 and d["last_error"]


def test_faults_are_injected_at_the_configured_rates_and_deterministically(shops, collector):
    settings = dict(secret=SECRET, seed=5, drop_rate=0.2, duplicate_rate=0.2, delay_rate=0.2, delay_seconds=0.2)
    runs = []
    for _ in range(2):
        shop = shops(WebhookSettings(**settings))
        hooks = collector()
        subscribe(shop, hooks.url, ("ORDERS_CREATE",))
        shop.world.place_orders(40, at=shop.world.now)
        assert shop.handle.webhooks.wait_idle(20)
        deliveries = shop.handle.webhooks.summary()["deliveries"]
        runs.append([(d["webhook_id"], d["status"], d["duplicated"], d["delayed"]) for d in deliveries])
        dropped = {d["webhook_id"] for d in deliveries if d["status"] == "dropped"}
        got = Counter(e["headers"]["x-shopify-webhook-id"] for e in hooks.received)
        assert not dropped & set(got), "a dropped delivery is never sent"
        assert {w for w, n in got.items() if n == 2} == {d["webhook_id"] for d in deliveries if d["duplicated"]
                                                        and d["status"] != "dropped"}
        assert 0 < len(dropped) < 40 and any(d["delayed"] for d in deliveries)
    assert runs[0] == runs[1], "same seed and same changes → the same ids and faults"


def test_subscription_traffic_passes_conformance(shops, tmp_path, conformance):
    log = tmp_path / "traffic.jsonl"
    shop = shops(WebhookSettings(secret=SECRET), traffic_log=log)
    subscribe(shop, "http://127.0.0.1:9/hooks")
    shop.data(CREATE, {"topic": "ORDERS_CREATE", "sub": {"uri": "http://127.0.0.1:9/hooks"}})  # a userError
    page = shop.data(LIST, {"topics": None})["webhookSubscriptions"]
    shop.data(LIST, {"topics": ["ORDERS_CREATE"], "after": page["pageInfo"]["endCursor"]})
    report = conformance(log)
    assert "shopify: 7 exchanges, 0 with problems" in report, report


BULK_QUERY = """
mutation Q($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) { bulkOperation { id createdAt } userErrors { code } }
}
"""
BULK_CANCEL = "mutation C($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }"


def test_a_finished_bulk_operation_is_announced_once_signed(shops, collector):
    hooks = collector()
    shop = shops(WebhookSettings(secret=SECRET), bulk_processing_seconds=0.2)
    subscribe(shop, hooks.url, topics=("BULK_OPERATIONS_FINISH",))
    started = shop.data(BULK_QUERY, {"query": "{ productVariants { edges { node { id sku } } } }"})
    op = started["bulkOperationRunQuery"]["bulkOperation"]
    shop.handle.api.bulk.processing_seconds = 30.0  # the next one runs long enough to be canceled
    long = shop.data(BULK_QUERY, {"query": "{ orders { edges { node { id } } } }"})
    other = long["bulkOperationRunQuery"]["bulkOperation"]["id"]
    assert shop.data(BULK_CANCEL, {"id": other})["bulkOperationCancel"]["userErrors"] == []

    wait_for(lambda: len(hooks.received) >= 2)
    time.sleep(0.3)  # nothing more comes: one delivery per operation, however often it is polled
    assert hooks.topics() == Counter({"bulk_operations/finish": 2})
    bodies = {}
    for entry in hooks.received:
        expected = base64.b64encode(hmac.new(SECRET.encode(), entry["body"], hashlib.sha256).digest()).decode()
        assert entry["headers"]["x-shopify-hmac-sha256"] == expected
        body = json.loads(entry["body"])
        bodies[body["admin_graphql_api_id"]] = body
    done = bodies[op["id"]]
    assert (done["status"], done["type"], done["error_code"]) == ("completed", "query", None)
    assert done["created_at"].endswith("+09:00") and done["completed_at"] >= done["created_at"]
    assert bodies[other]["status"] == "canceled"
    assert shop.data("query P($id: ID!) { bulkOperation(id: $id) { status } }",
                     {"id": op["id"]})["bulkOperation"]["status"] == "COMPLETED"


def test_the_bulk_finish_webhook_waits_for_the_work_and_goes_out_once(shops, collector):
    hooks = collector()
    shop = shops(WebhookSettings(secret=SECRET), bulk_processing_seconds=0.0)  # only the work keeps it running
    subscribe(shop, hooks.url, topics=("BULK_OPERATIONS_FINISH",))
    gate = shop.handle.api.bulk.execution_gate = Gate()
    gid = shop.data(BULK_QUERY, {"query": "{ orders { edges { node { id } } } }"}
                    )["bulkOperationRunQuery"]["bulkOperation"]["id"]
    assert gate.entered.wait(10)
    time.sleep(0.3)  # long past the processing time: nothing is announced while the work is not done
    assert hooks.received == []
    gate.open()
    wait_for(lambda: hooks.received)
    time.sleep(0.3)  # nothing more comes
    assert hooks.topics() == Counter({"bulk_operations/finish": 1})
    body = json.loads(hooks.received[0]["body"])
    assert (body["admin_graphql_api_id"], body["status"], body["error_code"]) == (gid, "completed", None)


def test_python_dash_m_sandbox_signs_with_the_webhook_secret_it_is_given(tmp_path, collector):
    hooks = collector()
    args = ["--seed", "3", "--skus", "12", "--customers", "10", "--history-days", "1", "--orders-per-day", "5",
            "--port", "0", "--data-dir", str(tmp_path / "world"), "--webhook-secret", "shpss_from_the_command_line"]
    with SandboxProcess(args) as sandbox:
        url = sandbox.url
        made = httpx.post(f"{url}/admin/api/2026-10/graphql.json", headers={"X-Shopify-Access-Token": "shpat_sandbox"},
                          json={"query": CREATE, "variables": {"topic": "ORDERS_CREATE", "sub": {"uri": hooks.url}}},
                          timeout=10).json()
        assert made["data"]["webhookSubscriptionCreate"]["userErrors"] == []
        assert httpx.post(f"{url}/_sandbox/orders", json={"count": 1}, timeout=10).status_code == 200
        wait_for(lambda: hooks.received)
    assert sandbox.exit_code == 0
    [entry] = hooks.received
    expected = base64.b64encode(hmac.new(b"shpss_from_the_command_line", entry["body"], hashlib.sha256).digest())
    assert entry["headers"]["x-shopify-hmac-sha256"] == expected.decode()


def test_the_sandbox_imports_nothing_from_the_product():
    import ast

    for path in sorted((Path(__file__).resolve().parents[2] / "sandbox").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in {"ingestion", "reverse_sync", "ichigen", "orchestration",
                                                  "dashboards"}, f"{path.name} imports {name}"
