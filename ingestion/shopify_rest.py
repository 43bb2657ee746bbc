"""Shopify orders over the legacy REST Admin API, for old custom apps (`channels.shopify.orders_api = "rest"`, D116).

The connector is configuration over the shared parts: the one request loop (`ChannelClient.for_shopify`: token
header, the shop's budget, the call-limit pacing and 429 + Retry-After), the `LinkHeader` paginator
(`Link: <…page_info=…>; rel="next"`) and a mapper onto the same `shopify/orders` rows the GraphQL connector
lands (D4), so nothing downstream knows which API fed it.

Fetch: `GET /admin/api/<v>/orders.json?status=any&order=updated_at asc&updated_at_min=<since>&limit=<page>`; in
updated-at order, so a page-bound stop leaves a landed prefix, like the GraphQL poll.
What REST does not carry: a line item's inventory item id (`inventory_item_id` lands null; the SKU and variant
id are there), and amounts come as REST's decimal strings ("1980") rather than MoneyV2 ("1980.0") — both
normalised by `decimal_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ichigen.config import Config
from ingestion.common import RecordError, decimal_text, format_utc, parse_utc, raw_json, require, to_int
from ingestion.http import ChannelClient
from ingestion.landing import QuarantineRecord
from ingestion.paging import LinkHeader, Pager, PageRequest, paginate

MAX_LIMIT = 250
FULFILLMENT = {None: "UNFULFILLED", "fulfilled": "FULFILLED", "partial": "PARTIALLY_FULFILLED",
               "restocked": "RESTOCKED"}


@dataclass(frozen=True)
class RestListing:
    """A REST list endpoint as configuration: path, where the items are, fixed filters, the incremental one."""

    resource: str
    items_path: tuple[str, ...]
    params: dict[str, str] = field(default_factory=dict)
    since_param: str | None = None
    max_pages: int = 2000

    def first_request(self, config: Config, since: datetime | None) -> PageRequest:
        shop = config.channels.shopify
        params: dict[str, Any] = {**self.params, "limit": min(MAX_LIMIT, shop.page_size)}
        if since is not None and self.since_param:
            params[self.since_param] = format_utc(since)
        return PageRequest("GET", f"/admin/api/{shop.api_version}/{self.resource}.json", params=params)

    def fetch(self, client: ChannelClient, config: Config, since: datetime | None, *, operation: str,
              max_pages: int | None = None) -> Pager:
        return paginate(client, self.first_request(config, since), LinkHeader(self.items_path),
                        operation=operation, max_pages=max_pages or self.max_pages, on_limit="stop")


ORDERS = RestListing("orders", ("orders",), {"status": "any", "order": "updated_at asc"}, "updated_at_min")


def _gid(kind: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{kind} id {value!r} is not a number")
    return f"gid://shopify/{kind}/{value}"


def rest_order_row(node: dict[str, Any]) -> dict[str, Any]:
    """One shopify/orders row (D4) from a REST order; the same columns as `ingestion.shopify.order_row`."""
    order_id = require(node.get("admin_graphql_api_id") or _gid("Order", node.get("id")), field="id")
    lines = []
    for index, line in enumerate(node.get("line_items") or []):
        where = f"line_items[{index}]"
        lines.append({
            "line_item_id": require(line.get("admin_graphql_api_id") or _gid("LineItem", line.get("id")),
                                    field=f"{where}.id"),
            "sku": line.get("sku"),
            "quantity": to_int(line.get("quantity"), field=f"{where}.quantity"),
            "current_quantity": to_int(line.get("current_quantity"), field=f"{where}.current_quantity"),
            "unit_price": decimal_text(line.get("price"), field=f"{where}.price"),
            "variant_id": _gid("ProductVariant", line.get("variant_id")),
            "inventory_item_id": None,  # not in REST line items
            "title": line.get("title"),
        })
    status = node.get("fulfillment_status")
    if status not in FULFILLMENT:
        raise RecordError(f"fulfillment_status {status!r} is not one Shopify documents")
    gateways = node.get("payment_gateway_names")
    if gateways is not None and not (isinstance(gateways, list) and all(isinstance(g, str) for g in gateways)):
        raise RecordError(f"payment_gateway_names {gateways!r} is not a list of strings")
    customer = node.get("customer") or {}
    shipping = ((node.get("total_shipping_price_set") or {}).get("shop_money") or {}).get("amount")
    financial = node.get("financial_status")
    return {
        "order_id": order_id,
        "order_name": node.get("name"),
        "created_at": require(parse_utc(node.get("created_at"), field="created_at"), field="created_at"),
        "updated_at": require(parse_utc(node.get("updated_at"), field="updated_at"), field="updated_at"),
        "processed_at": parse_utc(node.get("processed_at"), field="processed_at"),
        "cancelled_at": parse_utc(node.get("cancelled_at"), field="cancelled_at"),
        "display_financial_status": financial.upper() if isinstance(financial, str) else None,
        "display_fulfillment_status": FULFILLMENT[status],
        "currency_code": node.get("currency"),
        "total_price": decimal_text(node.get("total_price"), field="total_price"),
        "subtotal_price": decimal_text(node.get("subtotal_price"), field="subtotal_price"),
        "total_shipping_price": decimal_text(shipping, field="total_shipping_price_set"),
        "total_discounts": decimal_text(node.get("total_discounts"), field="total_discounts"),
        "total_tax": decimal_text(node.get("total_tax"), field="total_tax"),
        "customer_id": customer.get("admin_graphql_api_id") or _gid("Customer", customer.get("id")),
        "email": node.get("email"),
        "payment_gateway_names": gateways,
        "line_items": lines,
        "_raw": raw_json(node),
    }


def map_orders(pager: Pager) -> tuple[list[dict[str, Any]], list[QuarantineRecord]]:
    rows: list[dict[str, Any]] = []
    bad: list[QuarantineRecord] = []
    for page in pager:
        for node in page.items:
            key = node.get("admin_graphql_api_id") if isinstance(node, dict) else None
            try:
                if not isinstance(node, dict):
                    raise RecordError(f"order is {type(node).__name__}, not an object")
                rows.append(rest_order_row(node))
            except RecordError as exc:
                bad.append(QuarantineRecord(key, f"shopify/orders (REST) {key or '(no id)'}: {exc}", node))
    return rows, bad
