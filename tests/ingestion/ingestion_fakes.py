"""A stand-in for the remote Shopify Admin GraphQL API, for httpx.MockTransport.

It checks what a real shop checks (path, access token, the document against Shopify's published schema, the
variables against the document) and answers the way Shopify does: Relay connections with opaque cursors,
`updated_at:>='…'` filtering, UPDATED_AT / ID ordering, `extensions.cost` on every answer.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from graphql import GraphQLSchema, OperationDefinitionNode, build_client_schema, parse, validate
from graphql.execution.values import get_variable_values

from ichigen.config import PROJECT_ROOT

SCHEMA_CANDIDATES = (
    PROJECT_ROOT / "var" / "reference" / "shopify" / "admin_2026-10.json.gz",
    PROJECT_ROOT.parent / "shared" / "reference" / "shopify" / "admin_2026-10.json.gz",
)
TOKEN = "shpat_test_token"
API_PATH = "/admin/api/2026-10/graphql.json"
_SCHEMA: GraphQLSchema | None = None


def shopify_schema() -> GraphQLSchema:
    global _SCHEMA
    if _SCHEMA is None:
        for path in SCHEMA_CANDIDATES:
            if path.exists():
                _SCHEMA = build_client_schema(json.load(gzip.open(path))["data"], assume_valid=True)
                break
        else:
            raise FileNotFoundError(
                "Shopify's Admin schema admin_2026-10.json.gz is in neither "
                + " nor ".join(str(p) for p in SCHEMA_CANDIDATES) + "; run `make install`."
            )
    return _SCHEMA


def check_document(document: str, variables: dict[str, Any]) -> list[str]:
    """Problems Shopify would report for this document and these variables ([] when valid)."""
    schema = shopify_schema()
    ast = parse(document)
    problems = [e.message for e in validate(schema, ast)]
    operation = next(d for d in ast.definitions if isinstance(d, OperationDefinitionNode))
    coerced = get_variable_values(schema, operation.variable_definitions or [], variables)
    if isinstance(coerced, list):
        problems += [e.message for e in coerced]
    return problems


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(amount: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": "JPY"}}


def make_order(n: int, updated_at: datetime, *, lines: int = 2, **overrides: Any) -> dict[str, Any]:
    """An Order node shaped exactly as the connector's query returns it (all line items; the fake pages)."""
    items = []
    for i in range(lines):
        items.append({
            "id": f"gid://shopify/LineItem/{n * 100 + i}",
            "sku": f"TS-{n:03d}-{i}",
            "title": f"オーガニックコットンTシャツ {i}",
            "quantity": i + 1,
            "currentQuantity": i + 1,
            "originalUnitPriceSet": money(f"{1980 + i * 100}.0"),
            "variant": {"id": f"gid://shopify/ProductVariant/{500 + i}",
                        "inventoryItem": {"id": f"gid://shopify/InventoryItem/{700 + i}"}},
        })
    node = {
        "id": f"gid://shopify/Order/{1000 + n}",
        "name": f"#{1000 + n}",
        "createdAt": ts(updated_at - timedelta(hours=1)),
        "updatedAt": ts(updated_at),
        "processedAt": ts(updated_at - timedelta(hours=1)),
        "cancelledAt": None,
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED",
        "currencyCode": "JPY",
        "totalPriceSet": money("4378.0"),
        "subtotalPriceSet": money("4060.0"),
        "totalShippingPriceSet": money("318.0"),
        "totalDiscountsSet": money("0.0"),
        "totalTaxSet": money("398.0"),
        "email": f"yamada.taro{n}@example.jp",
        "paymentGatewayNames": ["shopify_payments"],
        "customer": {"id": f"gid://shopify/Customer/{9000 + n}"},
        "lineItems": {"nodes": items},
    }
    node.update(overrides)
    return node


def make_variant(n: int, updated_at: datetime, **overrides: Any) -> dict[str, Any]:
    node = {
        "id": f"gid://shopify/ProductVariant/{500 + n}",
        "sku": f"TS-{n:03d}",
        "barcode": f"49{n:011d}",
        "price": "1980.00",
        "title": "M / ネイビー",
        "updatedAt": ts(updated_at),
        "inventoryItem": {"id": f"gid://shopify/InventoryItem/{700 + n}"},
        "product": {"id": f"gid://shopify/Product/{300 + n}", "title": "オーガニックコットンTシャツ"},
    }
    node.update(overrides)
    return node


def make_item(n: int, updated_at: datetime, locations: int = 1) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/InventoryItem/{700 + n}",
        "sku": f"TS-{n:03d}",
        "updatedAt": ts(updated_at),
        "variant": {"id": f"gid://shopify/ProductVariant/{500 + n}"},
        "inventoryLevels": {"nodes": [
            {"updatedAt": ts(updated_at + timedelta(minutes=loc)),
             "location": {"id": f"gid://shopify/Location/{80 + loc}"},
             "quantities": [{"name": "available", "quantity": n + loc}, {"name": "on_hand", "quantity": n + loc + 2}]}
            for loc in range(locations)
        ]},
    }


def _cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"last_index": index}).encode()).decode()


def _index(cursor: str | None) -> int:
    return -1 if cursor is None else json.loads(base64.b64decode(cursor))["last_index"]


def _page(nodes: list[dict[str, Any]], first: int, after: str | None) -> dict[str, Any]:
    start = _index(after) + 1
    chunk = nodes[start:start + first]
    end = start + len(chunk) - 1
    return {"pageInfo": {"hasNextPage": start + first < len(nodes), "endCursor": _cursor(end) if chunk else None},
            "nodes": chunk}


class FakeShopify:
    """`handler` for httpx.MockTransport. `script` can override answers: a callable(call_no, body) returning an
    httpx.Response (or None to answer normally)."""

    def __init__(self, *, orders: list[dict[str, Any]] | None = None, variants: list[dict[str, Any]] | None = None,
                 items: list[dict[str, Any]] | None = None,
                 script: Callable[[int, dict[str, Any]], httpx.Response | None] | None = None):
        self.orders = orders or []
        self.variants = variants or []
        self.items = items or []
        self.script = script
        self.calls: list[dict[str, Any]] = []  # bodies of authorised requests
        self.requests = 0  # every request, authorised or not
        self.problems: list[str] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    @staticmethod
    def _since(query: str | None) -> str | None:
        if not query:
            return None
        match = re.fullmatch(r"updated_at:>='([^']+)'", query)
        assert match, f"unexpected search query {query!r}"
        return match.group(1)

    def _answer(self, data: dict[str, Any], requested: int) -> httpx.Response:
        return httpx.Response(200, json={"data": data, "extensions": {"cost": {
            "requestedQueryCost": requested, "actualQueryCost": max(1, requested // 4),
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990.0, "restoreRate": 100.0}}}})

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        assert request.method == "POST" and request.url.path == API_PATH, request.url
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return httpx.Response(401, json={"errors": "[API] Invalid API key or access token"})
        body = json.loads(request.content)
        self.calls.append(body)
        if self.script is not None:
            scripted = self.script(len(self.calls), body)
            if scripted is not None:
                return scripted
        query, variables = body["query"], body.get("variables") or {}
        problems = check_document(query, variables)
        if problems:
            self.problems.extend(problems)
            return httpx.Response(200, json={"errors": [{"message": p} for p in problems]})
        since = self._since(variables.get("query"))

        def fresh(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [n for n in nodes if since is None or n["updatedAt"] >= since]

        if "orders(" in query:
            nodes = sorted(fresh(self.orders), key=lambda n: (n["updatedAt"], n["id"]))
            page = _page(deepcopy(nodes), variables["first"], variables.get("after"))
            for node in page["nodes"]:
                node["lineItems"] = _page(node["lineItems"]["nodes"], variables["lineItems"], None)
            return self._answer({"orders": page}, 2 + 65 * variables["first"])
        if "order(id:" in query:
            order = next(o for o in self.orders if o["id"] == variables["id"])
            return self._answer({"order": {"lineItems": _page(order["lineItems"]["nodes"], variables["first"],
                                                              variables.get("after"))}}, 500)
        if "productVariants(" in query:
            nodes = sorted(fresh(self.variants), key=lambda n: int(n["id"].rsplit("/", 1)[1]))
            return self._answer({"productVariants": _page(nodes, variables["first"], variables.get("after"))},
                                2 + 3 * variables["first"])
        if "inventoryItems(" in query:
            nodes = deepcopy(fresh(self.items))
            page = _page(nodes, variables["first"], variables.get("after"))
            for node in page["nodes"]:
                node["inventoryLevels"] = _page(node["inventoryLevels"]["nodes"], variables["levels"], None)
            return self._answer({"inventoryItems": page}, 2 + 35 * variables["first"])
        if "inventoryItem(id:" in query:
            item = next(i for i in self.items if i["id"] == variables["id"])
            return self._answer({"inventoryItem": {"inventoryLevels": _page(
                item["inventoryLevels"]["nodes"], variables["first"], variables.get("after"))}}, 300)
        raise AssertionError(f"the fake does not know this query: {query[:80]}")

