"""Shopify Admin GraphQL connector: orders, product variants, inventory levels, customers → the landing zone.

Endpoint `POST <base_url>/admin/api/<api_version>/graphql.json`, header `X-Shopify-Access-Token`; every
document is checked against Shopify's published schema in the tests.

Incremental entities fetch `query: "updated_at:>='<cursor − look-back>'"` (first run: `backfill_start`):
- orders: `sortKey: UPDATED_AT`, so what a run lands is always a prefix in cursor order and a run stopped by
  the page bound is continued by the next one (`IngestResult.truncated`);
- product_variants: `ProductVariantSortKeys` has no UPDATED_AT, so they come in id order with the same filter;
  the run must fetch the whole filtered set before landing (a page-bound hit raises instead of truncating).
inventory_levels is a full snapshot every run: a quantity change updates the *level*, and Shopify filters
`inventoryItems` by the *item's* `updated_at` only, so an incremental fetch would miss stock moves.

Page sizes come from `channels.shopify.page_size` (≤ 250), lowered per entity so the query's requested cost
stays within Shopify's single-query limit of 1,000 points (`estimate_query_cost`; a connection costs 2 +
first × its node). That is why an order fetches its first 10 line items inline; an order with more is
completed by follow-up `order(id:)` queries before it lands, so `line_items` and `_raw` are always whole.

Webhook follow-ups (`ingest_by_ids`, used by `ingestion.webhooks.fetch_changed`) run the same orders / inventory
items query narrowed by `query: "id:… OR id:…"` (≤ 250 ids a search) and land through the same mappers, as
batches marked `mode="targeted"` that do not move the incremental cursor (DECISIONS.md D13).

The mapping from a GraphQL node to landed rows is a pure function per entity (`order_row`, `variant_row`,
`inventory_rows`). A node without its key or with a value that does not parse (timestamp, money, integer)
goes to the quarantine with a reason; the rest of the batch lands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import polars as pl
import pyarrow as pa
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)

from ichigen.config import Config
from ingestion.columnar import Field, Nested, NodeMapping, map_pages
from ingestion.common import (
    IngestResult,
    RecordError,
    decimal_text,
    format_utc,
    parse_utc,
    raw_json,
    require,
    to_int,
    utcnow,
)
from ingestion.errors import require_enabled
from ingestion.http import ChannelClient
from ingestion.landing import TARGETED, LandingZone, QuarantineRecord, incremental_since, land_and_report
from ingestion.paging import GraphQLCursor, Page, Pager, PageRequest, paginate
from ingestion.schemas import (
    SHOPIFY_CUSTOMERS,
    SHOPIFY_INVENTORY_LEVELS,
    SHOPIFY_ORDERS,
    SHOPIFY_PRODUCT_VARIANTS,
    EntitySchema,
)

SOURCE = "shopify"
Rows = list[dict[str, Any]] | pl.DataFrame | pa.Table
MAX_QUERY_COST = 1000  # Shopify refuses a single query whose requested cost exceeds this
ORDER_LINE_ITEMS_FIRST = 10  # inline per order; more are fetched by ORDER_LINE_ITEMS_QUERY
FOLLOW_UP_FIRST = 100
INVENTORY_LEVELS_FIRST = 10
MAX_FOLLOW_UP_PAGES = 50

LINE_ITEM_FIELDS = """
fragment IchigenLineItem on LineItem {
  id
  sku
  title
  quantity
  currentQuantity
  originalUnitPriceSet { shopMoney { amount currencyCode } }
  variant { id inventoryItem { id } }
}
"""

# The order fields landed, shared by the paged query and the bulk query (one selection, two transports).
ORDER_FIELDS = """
      id
      name
      createdAt
      updatedAt
      processedAt
      cancelledAt
      displayFinancialStatus
      displayFulfillmentStatus
      currencyCode
      totalPriceSet { shopMoney { amount currencyCode } }
      subtotalPriceSet { shopMoney { amount currencyCode } }
      totalShippingPriceSet { shopMoney { amount currencyCode } }
      totalDiscountsSet { shopMoney { amount currencyCode } }
      totalTaxSet { shopMoney { amount currencyCode } }
      email
      paymentGatewayNames
      customer { id }
"""

ORDERS_QUERY = """
query IchigenOrders($first: Int!, $after: String, $query: String, $lineItems: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {""" + ORDER_FIELDS + """
      lineItems(first: $lineItems) {
        pageInfo { hasNextPage endCursor }
        nodes { ...IchigenLineItem }
      }
    }
  }
}
""" + LINE_ITEM_FIELDS

ORDER_LINE_ITEMS_QUERY = """
query IchigenOrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...IchigenLineItem }
    }
  }
}
""" + LINE_ITEM_FIELDS

VARIANT_FIELDS = """
      id
      sku
      barcode
      price
      title
      updatedAt
      inventoryItem { id }
      product { id title }
"""

PRODUCT_VARIANTS_QUERY = """
query IchigenProductVariants($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {""" + VARIANT_FIELDS + """    }
  }
}
"""

INVENTORY_LEVEL_FIELDS = """
fragment IchigenInventoryLevel on InventoryLevel {
  updatedAt
  location { id }
  quantities(names: ["available", "on_hand"]) { name quantity }
}
"""

INVENTORY_ITEMS_QUERY = """
query IchigenInventoryItems($first: Int!, $after: String, $query: String, $levels: Int!) {
  inventoryItems(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      sku
      updatedAt
      variant { id }
      inventoryLevels(first: $levels) {
        pageInfo { hasNextPage endCursor }
        nodes { ...IchigenInventoryLevel }
      }
    }
  }
}
""" + INVENTORY_LEVEL_FIELDS

INVENTORY_ITEM_LEVELS_QUERY = """
query IchigenInventoryItemLevels($id: ID!, $first: Int!, $after: String) {
  inventoryItem(id: $id) {
    inventoryLevels(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...IchigenInventoryLevel }
    }
  }
}
""" + INVENTORY_LEVEL_FIELDS

DOCUMENTS = {
    "orders": ORDERS_QUERY,
    "order_line_items": ORDER_LINE_ITEMS_QUERY,
    "product_variants": PRODUCT_VARIANTS_QUERY,
    "inventory_levels": INVENTORY_ITEMS_QUERY,
    "inventory_item_levels": INVENTORY_ITEM_LEVELS_QUERY,
}


# -- query cost ------------------------------------------------------------------------------------------
def estimate_query_cost(document: str, variables: dict[str, Any] | None = None) -> int:
    """Shopify's requested cost of a query, by its published rules: scalars and enums 0, an object 1, a
    connection 2 + first × (its node's cost). Conservative where the rules are vague (pageInfo counts 1)."""
    ast = parse(document)
    fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
    variables = variables or {}

    def fields(selection_set: SelectionSetNode | None) -> Iterator[FieldNode]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, FragmentSpreadNode):
                yield from fields(fragments[selection.name.value].selection_set)
            elif isinstance(selection, InlineFragmentNode):
                yield from fields(selection.selection_set)

    def count(node: FieldNode) -> int | None:
        for argument in node.arguments:
            if argument.name.value in ("first", "last"):
                value = argument.value
                if isinstance(value, IntValueNode):
                    return int(value.value)
                if isinstance(value, VariableNode):
                    return int(variables.get(value.name.value) or 0)
        return None

    def cost(selection_set: SelectionSetNode | None) -> int:
        total = 0
        for node in fields(selection_set):
            if node.selection_set is None:
                continue
            n = count(node)
            if n is None:
                total += 1 + cost(node.selection_set)
                continue
            per_node, other = 0, 0
            for child in fields(node.selection_set):
                if child.name.value == "nodes":
                    per_node += 1 + cost(child.selection_set)
                elif child.name.value == "edges":
                    per_node += cost(child.selection_set)
                elif child.selection_set is not None:
                    other += 1 + cost(child.selection_set)
            total += 2 + n * per_node + other
        return total

    operation = next(d for d in ast.definitions if isinstance(d, OperationDefinitionNode))
    return cost(operation.selection_set)


@cache
def max_page_size(document: str, fixed: tuple[tuple[str, int], ...] = ()) -> int:
    """The largest `$first` whose requested cost stays within MAX_QUERY_COST (cost is linear in first)."""
    base = dict(fixed)
    at0 = estimate_query_cost(document, {**base, "first": 0})
    at1 = estimate_query_cost(document, {**base, "first": 1})
    per = at1 - at0
    return 250 if per <= 0 else max(1, min(250, math.floor((MAX_QUERY_COST - at0) / per)))


# -- pure mappers: GraphQL node → landed rows --------------------------------------------------------------
def _gid(node: Any, *path: str) -> str | None:
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node if isinstance(node, str) else None


def _money(node: dict[str, Any], name: str) -> str | None:
    bag = node.get(name)
    if bag is None:
        return None
    amount = ((bag or {}).get("shopMoney") or {}).get("amount")
    return decimal_text(amount, field=f"{name}.shopMoney.amount")


def _nodes(connection: Any) -> list[dict[str, Any]]:
    if not connection:
        return []
    if connection.get("nodes") is not None:
        return connection["nodes"]
    return [edge["node"] for edge in connection.get("edges") or []]


def order_row(node: dict[str, Any]) -> dict[str, Any]:
    """One shopify/orders row (D4) from an `Order` node; raises RecordError for what cannot be landed."""
    order_id = require(node.get("id"), field="id")
    lines = []
    for index, line in enumerate(_nodes(node.get("lineItems"))):
        where = f"lineItems[{index}]"
        lines.append({
            "line_item_id": require(line.get("id"), field=f"{where}.id"),
            "sku": line.get("sku"),
            "quantity": to_int(line.get("quantity"), field=f"{where}.quantity"),
            "current_quantity": to_int(line.get("currentQuantity"), field=f"{where}.currentQuantity"),
            "unit_price": _money(line, "originalUnitPriceSet"),
            "variant_id": _gid(line, "variant", "id"),
            "inventory_item_id": _gid(line, "variant", "inventoryItem", "id"),
            "title": line.get("title"),
        })
    gateways = node.get("paymentGatewayNames")
    if gateways is not None and not (isinstance(gateways, list) and all(isinstance(g, str) for g in gateways)):
        raise RecordError(f"paymentGatewayNames {gateways!r} is not a list of strings")
    return {
        "order_id": order_id,
        "order_name": node.get("name"),
        "created_at": require(parse_utc(node.get("createdAt"), field="createdAt"), field="createdAt"),
        "updated_at": require(parse_utc(node.get("updatedAt"), field="updatedAt"), field="updatedAt"),
        "processed_at": parse_utc(node.get("processedAt"), field="processedAt"),
        "cancelled_at": parse_utc(node.get("cancelledAt"), field="cancelledAt"),
        "display_financial_status": node.get("displayFinancialStatus"),
        "display_fulfillment_status": node.get("displayFulfillmentStatus"),
        "currency_code": node.get("currencyCode"),
        "total_price": _money(node, "totalPriceSet"),
        "subtotal_price": _money(node, "subtotalPriceSet"),
        "total_shipping_price": _money(node, "totalShippingPriceSet"),
        "total_discounts": _money(node, "totalDiscountsSet"),
        "total_tax": _money(node, "totalTaxSet"),
        "customer_id": _gid(node, "customer", "id"),
        "email": node.get("email"),
        "payment_gateway_names": gateways,
        "line_items": lines,
        "_raw": raw_json(node),
    }


def variant_row(node: dict[str, Any]) -> dict[str, Any]:
    """One shopify/product_variants row (D4) from a `ProductVariant` node."""
    return {
        "variant_id": require(node.get("id"), field="id"),
        "sku": node.get("sku"),
        "barcode": node.get("barcode"),
        "price": decimal_text(node.get("price"), field="price"),
        "inventory_item_id": _gid(node, "inventoryItem", "id"),
        "product_id": _gid(node, "product", "id"),
        "product_title": (node.get("product") or {}).get("title"),
        "variant_title": node.get("title"),
        "updated_at": require(parse_utc(node.get("updatedAt"), field="updatedAt"), field="updatedAt"),
        "_raw": raw_json(node),
    }


def inventory_rows(node: dict[str, Any]) -> list[dict[str, Any]]:
    """shopify/inventory_levels rows (D4), one per location, from an `InventoryItem` node. Each row's `_raw`
    is the whole item node as Shopify sent it (with all its levels)."""
    item_id = require(node.get("id"), field="id")
    raw = raw_json(node)
    rows = []
    for index, level in enumerate(_nodes(node.get("inventoryLevels"))):
        where = f"inventoryLevels[{index}]"
        quantities: dict[str, int | None] = {}
        for entry in level.get("quantities") or []:
            name = entry.get("name")
            quantities[name] = to_int(entry.get("quantity"), field=f"{where}.quantities[{name}]")
        rows.append({
            "inventory_item_id": item_id,
            "location_id": require(_gid(level, "location", "id"), field=f"{where}.location.id"),
            "sku": node.get("sku"),
            "variant_id": _gid(node, "variant", "id"),
            "available": quantities.get("available"),
            "on_hand": quantities.get("on_hand"),
            "updated_at": require(parse_utc(level.get("updatedAt"), field=f"{where}.updatedAt"),
                                  field=f"{where}.updatedAt"),
            "_raw": raw,
        })
    return rows


# -- columnar mapping (ingestion.columnar): the same rows as order_row, vectorised over whole pages ---------
def _money_field(column: str, bag: str) -> Field:
    return Field(column, f"{bag}.shopMoney.amount", "money")


ORDER_MAPPING = NodeMapping(("data", "orders"), label=f"{SOURCE}/orders", fields=(
    Field("order_id", "id", required=True),
    Field("order_name", "name"),
    Field("created_at", "createdAt", "timestamp", required=True),
    Field("updated_at", "updatedAt", "timestamp", required=True),
    Field("processed_at", "processedAt", "timestamp"),
    Field("cancelled_at", "cancelledAt", "timestamp"),
    Field("display_financial_status", "displayFinancialStatus"),
    Field("display_fulfillment_status", "displayFulfillmentStatus"),
    Field("currency_code", "currencyCode"),
    _money_field("total_price", "totalPriceSet"),
    _money_field("subtotal_price", "subtotalPriceSet"),
    _money_field("total_shipping_price", "totalShippingPriceSet"),
    _money_field("total_discounts", "totalDiscountsSet"),
    _money_field("total_tax", "totalTaxSet"),
    Field("customer_id", "customer.id", "gid"),
    Field("email", "email"),
    Field("payment_gateway_names", "paymentGatewayNames", "text_list"),
    Nested("line_items", "lineItems", fields=(
        Field("line_item_id", "id", required=True),
        Field("sku", "sku"),
        Field("quantity", "quantity", "int"),
        Field("current_quantity", "currentQuantity", "int"),
        _money_field("unit_price", "originalUnitPriceSet"),
        Field("variant_id", "variant.id", "gid"),
        Field("inventory_item_id", "variant.inventoryItem.id", "gid"),
        Field("title", "title"),
    )),
))


# -- fetching --------------------------------------------------------------------------------------------
def graphql_path(api_version: str) -> str:
    return f"/admin/api/{api_version}/graphql.json"


class Fetch:
    """Pages of one entity's fetch (iterate once). After iterating: `pages`, `truncated`.

    `complete(page)` fetches what a page's nodes left out (nested connections beyond their first page) into
    the nodes and says whether it changed any; `rewritten` holds the numbers of such pages, whose body no
    longer equals the response text."""

    def __init__(self, pager: Pager, complete: Callable[[Page], bool] | None = None):
        self._pager = pager
        self._complete = complete
        self.rewritten: set[int] = set()

    def __iter__(self) -> Iterator[Page]:
        for page in self._pager:
            if self._complete is not None and self._complete(page):
                self.rewritten.add(page.number)
            yield page

    def texts(self) -> Iterator[str | bytes]:
        """Each page as JSON text: the response as received, or the completed body re-serialised."""
        for page in self:
            yield raw_json(page.body) if page.number in self.rewritten else page.response.content

    @property
    def pages(self) -> int:
        return self._pager.pages

    @property
    def truncated(self) -> bool:
        return self._pager.truncated


def _search(since: datetime | None) -> str | None:
    # Shopify's search syntax takes whole seconds: flooring keeps `>=` inclusive of `since`.
    return None if since is None else f"updated_at:>='{format_utc(since)}'"


def _complete_connection(client: ChannelClient, config: Config, node: dict[str, Any], field_name: str,
                         document: str, root: str, operation: str) -> bool:
    """Fetch the rest of `node[field_name]` (a connection whose first page came inline) into its nodes.
    True when there was more (the node changed)."""
    connection = node.get(field_name) or {}
    info = connection.get("pageInfo") or {}
    if not info.get("hasNextPage") or not node.get("id"):
        return False
    collected = list(_nodes(connection))
    request = PageRequest("POST", graphql_path(config.channels.shopify.api_version), json={
        "query": document,
        "variables": {"id": node["id"], "first": FOLLOW_UP_FIRST, "after": info.get("endCursor")},
    })
    pager = paginate(client, request, GraphQLCursor(("data", root, field_name)), operation=operation,
                     max_pages=MAX_FOLLOW_UP_PAGES)
    for page in pager:
        collected.extend(page.items)
    node[field_name] = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": collected}
    return True


def _completer(client: ChannelClient, config: Config, field_name: str, document: str, root: str,
               operation: str) -> Callable[[Page], bool]:
    """Fetch.complete for a page whose nodes carry the nested connection `field_name`."""

    def complete(page: Page) -> bool:
        changed = [_complete_connection(client, config, node, field_name, document, root, operation)
                   for node in page.items if isinstance(node, dict)]
        return any(changed)

    return complete


def _first_page(config: Config, document: str, variables: dict[str, Any]) -> PageRequest:
    return PageRequest("POST", graphql_path(config.channels.shopify.api_version),
                       json={"query": document, "variables": variables})


def page_size(entity: str, config: Config) -> int:
    spec = ENTITY_SPECS[entity]
    return max(1, min(config.channels.shopify.page_size, max_page_size(spec.document, spec.fixed_variables)))


# nested connection completed per entity: (field, follow-up document, its root field, operation)
_NESTED = {
    "orders": ("lineItems", ORDER_LINE_ITEMS_QUERY, "order", "order_line_items"),
    "inventory_levels": ("inventoryLevels", INVENTORY_ITEM_LEVELS_QUERY, "inventoryItem", "inventory_item_levels"),
}


def fetch_orders(client: ChannelClient, config: Config, since: datetime | None, *,
                 max_pages: int | None = None) -> Fetch:
    """Orders updated at or after `since`, oldest update first; each order's line items complete."""
    spec = ENTITY_SPECS["orders"]
    variables = {"first": page_size("orders", config), "after": None, "query": _search(since),
                 **dict(spec.fixed_variables)}
    pager = paginate(client, _first_page(config, ORDERS_QUERY, variables), GraphQLCursor(("data", "orders")),
                     operation="orders", max_pages=max_pages or spec.max_pages, on_limit="stop")
    return Fetch(pager, _completer(client, config, *_NESTED["orders"]))


def fetch_product_variants(client: ChannelClient, config: Config, since: datetime | None, *,
                           max_pages: int | None = None) -> Fetch:
    """Variants updated at or after `since` (all when None), in id order."""
    return _fetch_flat("product_variants", "productVariants", client, config, since, max_pages, on_limit="raise")


def _fetch_flat(entity: str, root: str, client: ChannelClient, config: Config, since: datetime | None,
                max_pages: int | None, *, on_limit: str) -> Fetch:
    """One paged connection `root` of flat nodes (no nested connection to complete), filtered by updated_at."""
    spec = ENTITY_SPECS[entity]
    variables = {"first": page_size(entity, config), "after": None, "query": _search(since)}
    pager = paginate(client, _first_page(config, spec.document, variables), GraphQLCursor(("data", root)),
                     operation=entity, max_pages=max_pages or spec.max_pages, on_limit=on_limit)
    return Fetch(pager)


def fetch_inventory_levels(client: ChannelClient, config: Config, since: datetime | None = None, *,
                           max_pages: int | None = None) -> Fetch:
    """Inventory items with their levels. `since` narrows by the *item's* updated_at (ingest passes None:
    a full snapshot, see the module docstring)."""
    spec = ENTITY_SPECS["inventory_levels"]
    variables = {"first": page_size("inventory_levels", config), "after": None, "query": _search(since),
                 **dict(spec.fixed_variables)}
    pager = paginate(client, _first_page(config, INVENTORY_ITEMS_QUERY, variables),
                     GraphQLCursor(("data", "inventoryItems")), operation="inventory_levels",
                     max_pages=max_pages or spec.max_pages, on_limit="raise")
    return Fetch(pager, _completer(client, config, *_NESTED["inventory_levels"]))


@dataclass(frozen=True)
class ShopifyEntity:
    schema: EntitySchema
    document: str
    incremental: bool
    to_rows: Callable[[dict[str, Any]], list[dict[str, Any]]]
    fetch: Callable[..., Fetch]
    max_pages: int
    fixed_variables: tuple[tuple[str, int], ...] = field(default=())
    columnar: NodeMapping | None = None  # when set, pages are mapped by ingestion.columnar, not to_rows


ENTITY_SPECS: dict[str, ShopifyEntity] = {
    "orders": ShopifyEntity(SHOPIFY_ORDERS, ORDERS_QUERY, True, lambda n: [order_row(n)],
                            fetch_orders, max_pages=1000,
                            fixed_variables=(("lineItems", ORDER_LINE_ITEMS_FIRST),), columnar=ORDER_MAPPING),
    "product_variants": ShopifyEntity(SHOPIFY_PRODUCT_VARIANTS, PRODUCT_VARIANTS_QUERY, True,
                                      lambda n: [variant_row(n)], fetch_product_variants,
                                      max_pages=1000),
    "inventory_levels": ShopifyEntity(SHOPIFY_INVENTORY_LEVELS, INVENTORY_ITEMS_QUERY, False, inventory_rows,
                                      fetch_inventory_levels, max_pages=2000,
                                      fixed_variables=(("levels", INVENTORY_LEVELS_FIRST),)),
}

# -- customers (identity for the unified customer model, dbt int_customers__identity) ---------------------
# Incremental by updated_at, sorted UPDATED_AT like orders, so a page-bound stop leaves a landed prefix.
# `email`/`phone` are deprecated on Customer since 2024-07: read defaultEmailAddress / defaultPhoneNumber.
CUSTOMERS_QUERY = """
query IchigenCustomers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      firstName
      lastName
      defaultEmailAddress { emailAddress }
      defaultPhoneNumber { phoneNumber }
      defaultAddress { zip province city address1 }
      createdAt
      updatedAt
    }
  }
}
"""


def customer_row(node: dict[str, Any]) -> dict[str, Any]:
    """One shopify/customers row from a `Customer` node; raises RecordError for what cannot be landed."""
    address = node.get("defaultAddress") or {}
    return {
        "customer_id": require(node.get("id"), field="id"),
        "first_name": node.get("firstName"),
        "last_name": node.get("lastName"),
        "email": (node.get("defaultEmailAddress") or {}).get("emailAddress"),
        "phone": (node.get("defaultPhoneNumber") or {}).get("phoneNumber"),
        "zip": address.get("zip"),
        "province": address.get("province"),
        "city": address.get("city"),
        "address1": address.get("address1"),
        "created_at": parse_utc(node.get("createdAt"), field="createdAt"),
        "updated_at": require(parse_utc(node.get("updatedAt"), field="updatedAt"), field="updatedAt"),
        "_raw": raw_json(node),
    }


def fetch_customers(client: ChannelClient, config: Config, since: datetime | None, *,
                    max_pages: int | None = None) -> Fetch:
    """Customers updated at or after `since` (all when None), oldest update first."""
    return _fetch_flat("customers", "customers", client, config, since, max_pages, on_limit="stop")


ENTITY_SPECS["customers"] = ShopifyEntity(SHOPIFY_CUSTOMERS, CUSTOMERS_QUERY, True, lambda n: [customer_row(n)],
                                          fetch_customers, max_pages=1000)
ENTITIES = tuple(ENTITY_SPECS)


def make_client(config: Config, **options: Any) -> ChannelClient:
    return ChannelClient.for_shopify(config.channels.shopify, **options)


def _since(config: Config, landing: LandingZone, spec: ShopifyEntity) -> datetime | None:
    if not spec.incremental:
        return None
    shop = config.channels.shopify
    return incremental_since(landing, spec.schema, lookback_minutes=shop.lookback_minutes,
                             backfill_start=shop.backfill_start)


BULK_CAPABLE = ("orders", "product_variants")


def use_bulk(config: Config, entity: str, since: datetime | None, now: datetime) -> bool:
    """A backfill window longer than `bulk_threshold_days` goes through a bulk operation (D110)."""
    threshold = config.channels.shopify.bulk_threshold_days
    if entity not in BULK_CAPABLE or threshold <= 0:
        return False
    return since is None or (now - since).total_seconds() > threshold * 86_400


def ingest(
    config: Config,
    entity: str,
    *,
    landing: LandingZone | None = None,
    client: ChannelClient | None = None,
    now: datetime | None = None,
    max_pages: int | None = None,
) -> IngestResult:
    """Fetch what changed since the landed cursor (minus look-back) and land it as one batch.

    Records that cannot be landed are quarantined first (so a crash between the two writes can duplicate a
    quarantine entry but never lose one), then the batch is written atomically.
    """
    if entity not in ENTITY_SPECS:
        raise ValueError(f"unknown shopify entity {entity!r}; known: {', '.join(ENTITY_SPECS)}")
    shop = config.channels.shopify
    require_enabled(SOURCE, shop.enabled)
    spec = ENTITY_SPECS[entity]
    landing = landing or LandingZone(config.landing_dir)
    fetched_at = now or utcnow()
    since = _since(config, landing, spec)

    own_client = client is None
    client = client or make_client(config)
    retries_before = client.stats.retries
    try:
        if entity == "orders" and shop.orders_api == "rest":
            from ingestion import shopify_rest  # D116: the legacy REST orders connector

            fetch = shopify_rest.ORDERS.fetch(client, config, since, operation="orders_rest", max_pages=max_pages)
            rows, bad = shopify_rest.map_orders(fetch)
        elif max_pages is None and use_bulk(config, entity, since, fetched_at):
            from ingestion.shopify_bulk import bulk_fetch  # imports this module

            fetch = bulk_fetch(client, config, entity, since, landing)
            rows, bad = _map_fetches([fetch], spec, entity)
            bad = [*fetch.bad, *bad]
        else:
            fetch = spec.fetch(client, config, since, max_pages=max_pages)
            rows, bad = _map_fetches([fetch], spec, entity)
    finally:
        if own_client:
            client.close()

    return land_and_report(landing, spec.schema, rows, bad, fetched_at=fetched_at, since=since,
                           pages=fetch.pages, retries=client.stats.retries - retries_before,
                           truncated=fetch.truncated)



def _map_fetches(fetches: Iterable[Fetch], spec: ShopifyEntity, entity: str) -> tuple[Rows, list[QuarantineRecord]]:
    """Every node of these fetches as landed rows plus the quarantine: columnar when the entity declares a
    mapping (whole pages at once), else node by node through `to_rows`."""
    if spec.columnar is not None:
        return map_page_texts(spec, [text for fetch in fetches for text in fetch.texts()])
    rows: list[dict[str, Any]] = []
    bad: list[QuarantineRecord] = []
    for fetch in fetches:
        for page in fetch:
            for node in page.items:
                key = node.get("id") if isinstance(node, dict) else None
                try:
                    if not isinstance(node, dict):
                        raise RecordError(f"node is {type(node).__name__}, not an object")
                    rows.extend(spec.to_rows(node))
                except RecordError as exc:
                    bad.append(QuarantineRecord(key, f"{SOURCE}/{entity} {key or '(no id)'}: {exc}", node))
    return rows, bad


def map_page_texts(spec: ShopifyEntity, texts: Sequence[str | bytes]) -> tuple[pa.Table, list[QuarantineRecord]]:
    """Whole GraphQL answers (JSON text or the response bytes) of a columnar entity → (landed rows as an Arrow
    table, which `write_batch` lands as it is; quarantine)."""
    if spec.columnar is None:
        raise ValueError(f"{spec.schema.entity} has no columnar mapping")
    mapped = map_pages(spec.columnar, texts)
    return mapped.table, mapped.bad


# -- targeted fetches (webhook follow-ups, DECISIONS.md D13) ------------------------------------------------
MAX_IDS_PER_SEARCH = 250
_BY_ID_ROOT = {"orders": ("Order", "orders"), "inventory_levels": ("InventoryItem", "inventoryItems")}


def _id_search(kind: str, gids: list[str]) -> str:
    """`id:1 OR id:2 …` from GIDs of one kind (Shopify's search takes the numeric id)."""
    numbers = []
    for value in gids:
        prefix = f"gid://shopify/{kind}/"
        number = value[len(prefix):].split("?", 1)[0] if value.startswith(prefix) else ""
        if not number.isdigit():
            raise ValueError(f"{value!r} is not a {kind} GID")
        numbers.append(number)
    return " OR ".join(f"id:{n}" for n in numbers)


def fetch_by_ids(client: ChannelClient, config: Config, entity: str, gids: list[str]) -> Iterator[Fetch]:
    """The `orders` / `inventory_levels` query of the poll, narrowed to these GIDs (≤ 250 per search, paged
    within the cost limit, nested connections completed): one Fetch per chunk."""
    kind, root = _BY_ID_ROOT[entity]
    spec = ENTITY_SPECS[entity]
    for start in range(0, len(gids), MAX_IDS_PER_SEARCH):
        chunk = gids[start:start + MAX_IDS_PER_SEARCH]
        variables = {"first": page_size(entity, config), "after": None, "query": _id_search(kind, chunk),
                     **dict(spec.fixed_variables)}
        pager = paginate(client, _first_page(config, spec.document, variables), GraphQLCursor(("data", root)),
                         operation=f"{entity}_by_id", max_pages=len(chunk) + 1, on_limit="raise")
        yield Fetch(pager, _completer(client, config, *_NESTED[entity]))


def ingest_by_ids(
    config: Config,
    entity: str,
    gids: list[str],
    *,
    landing: LandingZone | None = None,
    client: ChannelClient | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Fetch exactly these orders (Order GIDs) or these inventory items' levels (InventoryItem GIDs) and land
    them as one ordinary batch of the entity — same schema, same mapper as the poll — marked targeted, so it
    never moves the incremental cursor (the poll stays the backstop)."""
    if entity not in _BY_ID_ROOT:
        raise ValueError(f"targeted fetches exist for {', '.join(_BY_ID_ROOT)}, not {entity!r}")
    shop = config.channels.shopify
    require_enabled(SOURCE, shop.enabled)
    spec = ENTITY_SPECS[entity]
    landing = landing or LandingZone(config.landing_dir)
    fetched_at = now or utcnow()
    own_client = client is None
    client = client or make_client(config)
    retries_before = client.stats.retries
    try:
        fetches = list(fetch_by_ids(client, config, entity, sorted(set(gids))))
        rows, bad = _map_fetches(fetches, spec, entity)  # iterates (fetches) every page
        pages = sum(fetch.pages for fetch in fetches)
    finally:
        if own_client:
            client.close()
    return land_and_report(landing, spec.schema, rows, bad, fetched_at=fetched_at, since=None, mode=TARGETED,
                           pages=pages, retries=client.stats.retries - retries_before)
