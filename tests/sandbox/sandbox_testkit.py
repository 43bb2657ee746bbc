"""Helpers for the sandbox's tests (imported by conftest and the test modules)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from sandbox.world import World

REPO_ROOT = Path(__file__).resolve().parents[2]

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
TOKEN = "shpat_sandbox_test"
GRAPHQL = "/admin/api/2026-10/graphql.json"


def small_world(seed: int = 7, **kw) -> World:
    params = {"skus": 24, "customers": 30, "history_days": 5, "orders_per_day": 20, "now": NOW} | kw
    return World.generate(seed=seed, **params)


class Shop:
    """A served shop and a small client for it."""

    def __init__(self, handle, world: World):
        self.handle = handle
        self.world = world
        self.url = handle.url
        self.client = httpx.Client(base_url=handle.url, timeout=10)

    def post(self, query: str, variables: dict | None = None, token: str | None = TOKEN, **extra) -> httpx.Response:
        headers = {"X-Shopify-Access-Token": token} if token is not None else {}
        return self.client.post(GRAPHQL, json={"query": query, "variables": variables or {}, **extra},
                                headers=headers)

    def gql(self, query: str, variables: dict | None = None) -> dict:
        """Post and return the JSON body, asserting HTTP 200."""
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.gql(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def close(self) -> None:
        self.client.close()
        self.handle.stop()


class Gate:
    """The shop's bulk `execution_gate`: holds each operation's worker before it touches the world until
    `open()` — so a test sees an operation whose work is not done yet, however fast the machine. Bounded: a worker
    held longer than `limit` seconds goes on (its operation then fails the test's expectations, not hangs)."""

    def __init__(self, limit: float = 30.0):
        self.held: list[str] = []
        self.entered = threading.Event()
        self._open = threading.Event()
        self.limit = limit

    def __call__(self, gid: str) -> None:
        self.held.append(gid)
        self.entered.set()
        self._open.wait(self.limit)

    def open(self) -> None:
        self._open.set()


def poll_until_done(shop: Shop, poll: str, gid: str, timeout: float = 30.0) -> list[dict]:
    """Every answer of the `poll` document (`bulkOperation(id:)`) until the operation has ended."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = shop.data(poll, {"id": gid})["bulkOperation"]
        seen.append(op)
        if op["status"] not in ("CREATED", "RUNNING"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{gid} did not finish in {timeout}s: {seen[-1]}")


MONEY = "shopMoney { amount currencyCode }"
ORDERS = f"""
query Orders($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys, $reverse: Boolean) {{
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey, reverse: $reverse) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{
      cursor
      node {{
        id name createdAt updatedAt processedAt cancelledAt
        displayFinancialStatus displayFulfillmentStatus currencyCode
        totalPriceSet {{ {MONEY} }} subtotalPriceSet {{ {MONEY} }} totalShippingPriceSet {{ {MONEY} }}
        totalDiscountsSet {{ {MONEY} }} totalTaxSet {{ {MONEY} }}
        email phone paymentGatewayNames
        customer {{ id email firstName lastName phone }}
        shippingAddress {{ name zip province provinceCode city address1 address2 country countryCodeV2 phone }}
        lineItems(first: 5) {{
          nodes {{
            id sku title quantity currentQuantity
            originalUnitPriceSet {{ {MONEY} }}
            variant {{ id barcode inventoryItem {{ id }} }}
          }}
        }}
      }}
    }}
  }}
}}
"""
ORDER_IDS = """
query OrderIds($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys, $reverse: Boolean) {
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey, reverse: $reverse) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt createdAt }
  }
}
"""
VARIANTS = """
query Variants($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id sku barcode price title updatedAt inventoryItem { id } product { id title } }
  }
}
"""
ITEMS = """
query Items($first: Int!, $after: String, $query: String) {
  inventoryItems(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id sku updatedAt tracked
      variant { id }
      inventoryLevels(first: 5) {
        nodes {
          id updatedAt
          location { id name }
          quantities(names: ["available", "on_hand"]) { name quantity }
        }
      }
    }
  }
}
"""
LOCATIONS = """
query { locations(first: 10) { nodes { id name isActive } } }
"""
SET_QUANTITIES = """
mutation SetAvailable($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      createdAt reason
      changes { name delta quantityAfterChange item { id } location { id } }
    }
    userErrors { code field message }
  }
}
"""


def page_all(shop: Shop, query: str, root: str, variables: dict, max_pages: int = 500) -> list[dict]:
    """Every node of a connection, page by page (bounded)."""
    nodes, after = [], None
    for _ in range(max_pages):
        conn = shop.data(query, {**variables, "after": after})[root]
        nodes += conn["nodes"] if "nodes" in conn else [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return nodes
        after = conn["pageInfo"]["endCursor"]
    raise AssertionError(f"{root}: more than {max_pages} pages")


def set_input(rows: list[tuple[str, str, int, int | None]], name: str = "available") -> dict:
    return {"name": name, "reason": "correction", "referenceDocumentUri": "ichigen://test/1",
            "quantities": [{"inventoryItemId": i, "locationId": loc, "quantity": q, "changeFromQuantity": c}
                           for i, loc, q, c in rows]}


class SandboxProcess:
    """`python -m sandbox …` as a person runs it: started, waited for, stopped with SIGTERM."""

    def __init__(self, args: list[str]):
        self.args = args
        self.url: str | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> SandboxProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", *self.args],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while self.url is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            if line.startswith("sandbox ready at "):
                self.url = line.split()[-1]
        if self.url is None:
            self.__exit__(None, None, None)
            raise AssertionError(f"the sandbox did not come up (exit {self.proc.poll()})")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
