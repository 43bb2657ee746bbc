"""The root value the sandbox executes Shopify Admin GraphQL documents against.

Every object is a plain dict keyed by the GraphQL field names; a field that takes arguments (or is costly) is a
callable `(info, **args)`, which graphql-core's default resolver calls. Objects are built per request from the
world under its lock, so one response is one consistent snapshot.

Supported (everything else in Shopify's schema validates but answers with a clear "not implemented" error):
QueryRoot: orders, order, productVariants, productVariant, inventoryItems, inventoryItem, inventoryLevel,
locations, location, customers, customer, shop, node, nodes. MutationRoot: inventorySetQuantities.
(webhookSubscriptionCreate and webhookSubscriptions are sandbox.webhooks', merged into the root by ShopifyAPI.)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, get_directive_values

from sandbox.shopify_search import Field, SortedIndex, build_filter, paginate, parse_search
from sandbox.shopify_snapshot import ShopSnapshot
from sandbox.world import (
    CURRENCY,
    Customer,
    InventoryItem,
    InventoryLevel,
    LineItem,
    Location,
    Order,
    ShopProduct,
    Variant,
    World,
    gid,
    iso_z,
)

MAX_INPUT_ARRAY = 250
QUANTITY_NAMES = ("available", "on_hand", "committed", "incoming", "reserved", "damaged", "safety_stock",
                  "quality_control")
SETTABLE_NAMES = ("available", "on_hand")
REASONS = {"correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
           "movement_received", "movement_canceled", "other", "promotion", "quality_control", "received",
           "reservation_created", "reservation_deleted", "reservation_updated", "restock", "safety_stock",
           "shrinkage"}
GID_RE = re.compile(r"^gid://shopify/(?P<kind>[A-Za-z]+)/(?P<num>\d+)(?:\?.*)?$")
URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//)?\S+$")


def money(amount: int) -> dict[str, Any]:
    """A yen amount as Shopify's MoneyV2: a decimal string (JPY has no minor unit: "1980.0")."""
    return {"amount": f"{amount}.0", "currencyCode": CURRENCY}


def money_bag(amount: int) -> dict[str, Any]:
    m = money(amount)
    return {"shopMoney": m, "presentmentMoney": dict(m)}


def parse_gid(value: str, kind: str | None = None) -> int | None:
    m = GID_RE.match(value or "")
    if m is None or (kind is not None and m.group("kind") != kind):
        return None
    return int(m.group("num"))


def _opt_iso(ts: datetime | None) -> str | None:
    return iso_z(ts) if ts is not None else None


class Resolvers:
    """Builds the root value for one request. Holds the idempotency record across requests."""

    def __init__(self, world: World | ShopSnapshot, shop_id: int = 68_000_000_000):
        self.world = world  # a ShopSnapshot for a bulk query's execution: read-only, no lock needed
        self.shop_id = shop_id
        self._idempotency: dict[str, tuple[str, dict[str, Any]]] = {}
        self._sorted: dict[tuple[str, str], tuple[int, SortedIndex]] = {}
        self.search_warnings: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------- roots
    def root(self, search_warnings: list[dict[str, Any]]) -> dict[str, Any]:
        self.search_warnings = search_warnings
        return {
            "orders": self.orders,
            "order": lambda info, id: self._by_gid(id, "Order", self.world.order, self.order_node),
            "productVariants": self.product_variants,
            "productVariant": lambda info, id: self._by_gid(id, "ProductVariant", self.world.variant,
                                                            self.variant_node),
            "inventoryItems": self.inventory_items,
            "inventoryItem": lambda info, id: self._by_gid(id, "InventoryItem", self.world.inventory_item,
                                                           self.item_node),
            "inventoryLevel": lambda info, id: self._level_by_gid(id),
            "locations": self.locations,
            "location": self._location_root,
            "customers": self.customers,
            "customer": lambda info, id: self._by_gid(id, "Customer", self.world.customer, self.customer_node),
            "shop": self.shop_node,
            "node": lambda info, id: self.node_by_gid(id),
            "nodes": lambda info, ids: [self.node_by_gid(i) for i in ids],
            "inventorySetQuantities": self.inventory_set_quantities,
            "productVariantsBulkUpdate": self.product_variants_bulk_update,
        }

    def _by_gid(self, value: str, kind: str, lookup: Callable[[int], Any], build: Callable[[Any], dict]):
        num = parse_gid(value, kind)
        record = lookup(num) if num is not None else None
        return build(record) if record is not None else None

    def _level_by_gid(self, value: str):
        num = parse_gid(value, "InventoryLevel")
        for level in self.world.levels.values():
            if level.id == num:
                return self.level_node(level)
        return None

    def _location_root(self, info, id: str | None = None):
        if id is None:
            return self.location_node(self.world.locations[0])
        return self._by_gid(id, "Location", self.world.location, self.location_node)

    def node_by_gid(self, value: str):
        m = GID_RE.match(value or "")
        if m is None:
            return None
        kind = m.group("kind")
        table = {
            "Order": (self.world.order, self.order_node),
            "ProductVariant": (self.world.variant, self.variant_node),
            "InventoryItem": (self.world.inventory_item, self.item_node),
            "Location": (self.world.location, self.location_node),
            "Customer": (self.world.customer, self.customer_node),
            "Product": (self.world.shop_product, self.product_node),
        }
        if kind == "InventoryLevel":
            return self._level_by_gid(value)
        if kind not in table:
            return None
        lookup, build = table[kind]
        record = lookup(int(m.group("num")))
        return build(record) if record is not None else None

    def _sorted_index(self, name: str, sort_name: str, records: list, sort_value: Callable[[Any], Any],
                      record_id: Callable[[Any], int]) -> SortedIndex:
        """The collection sorted once per world version (the world bumps its version on every change)."""
        cached = self._sorted.get((name, sort_name))
        if cached is not None and cached[0] == self.world.version and len(cached[1].keys) == len(records):
            return cached[1]
        index = SortedIndex(records, sort_value, record_id)
        self._sorted[(name, sort_name)] = (self.world.version, index)
        return index

    def _search(self, info: GraphQLResolveInfo, query: str | None, fields: dict[str, Field],
                default_text: Callable[[Any], str]):
        search = parse_search(query)
        pred = build_filter(search, fields, default_text, self.world.clock(), info.field_name)
        if search.warnings:
            self.search_warnings.append({"path": [str(p) for p in info.path.as_list()], "query": query,
                                         "warnings": search.warnings})
        return pred

    # ------------------------------------------------------------------------------------------- orders
    ORDER_SORTS: dict[str, Callable[[Order], Any]] = {
        "PROCESSED_AT": lambda o: o.processed_at,
        "CREATED_AT": lambda o: o.created_at,
        "UPDATED_AT": lambda o: o.updated_at,
        "ID": lambda o: o.id,
        "ORDER_NUMBER": lambda o: o.number,
        "TOTAL_PRICE": lambda o: o.total,
        "CURRENT_TOTAL_PRICE": lambda o: 0 if o.cancelled_at else o.total - _refunded(o),
        "FINANCIAL_STATUS": lambda o: o.financial_status,
        "FULFILLMENT_STATUS": lambda o: o.fulfillment_status,
        "TOTAL_ITEMS_QUANTITY": lambda o: sum(li.quantity for li in o.lines),
    }

    def orders(self, info, sortKey: str = "PROCESSED_AT", query: str | None = None, **args):
        w = self.world
        status = {"open": lambda o: o.closed_at is None and o.cancelled_at is None,
                  "closed": lambda o: o.closed_at is not None, "cancelled": lambda o: o.cancelled_at is not None,
                  "not_closed": lambda o: o.closed_at is None}
        fields = {
            "updated_at": Field("time", lambda o: o.updated_at),
            "created_at": Field("time", lambda o: o.created_at),
            "processed_at": Field("time", lambda o: o.processed_at),
            "id": Field("id", lambda o: o.id),
            "name": Field("text", lambda o: (o.name, str(o.number))),
            "email": Field("text", lambda o: o.email),
            "sku": Field("text", lambda o: [li.sku for li in o.lines]),
            "customer_id": Field("id", lambda o: o.customer_id),
            "financial_status": Field("text", lambda o: o.financial_status.lower()),
            "fulfillment_status": Field("text", lambda o: _fulfillment_search_values(o)),
            "gateway": Field("text", lambda o: o.gateway),
            "status": Field("text", lambda o: [k for k, f in status.items() if f(o)]),
            "test": Field("text", lambda o: "false"),
        }
        pred = self._search(info, query, fields, lambda o: f"{o.name} {o.email or ''}")
        sort_name = sortKey if sortKey in self.ORDER_SORTS else "ID"
        sort = self.ORDER_SORTS[sort_name]
        index = self._sorted_index("orders", sort_name, w.orders, sort, lambda o: o.id)
        return paginate(index, sort, lambda o: o.id, args, self.order_node, "orders", predicate=pred)

    def order_node(self, o: Order) -> dict[str, Any]:
        w = self.world
        refunded = _refunded(o)
        current_total = 0 if o.cancelled_at else o.total - refunded
        current_lines = [li for li in o.lines if li.current_quantity > 0]
        paid = o.financial_status in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")
        outstanding = 0 if paid or o.cancelled_at else o.total
        lines_by_pos = {li.id: i for i, li in enumerate(o.lines)}
        return {
            "__typename": "Order",
            "id": o.gid,
            "legacyResourceId": str(o.id),
            "name": o.name,
            "number": o.number,
            "createdAt": iso_z(o.created_at),
            "updatedAt": iso_z(o.updated_at),
            "processedAt": iso_z(o.processed_at),
            "cancelledAt": _opt_iso(o.cancelled_at),
            "cancelReason": o.cancel_reason,
            "closed": o.closed_at is not None,
            "closedAt": _opt_iso(o.closed_at),
            "confirmed": True,
            "test": False,
            "displayFinancialStatus": o.financial_status,
            "displayFulfillmentStatus": o.fulfillment_status,
            "returnStatus": "NO_RETURN",
            "currencyCode": CURRENCY,
            "presentmentCurrencyCode": CURRENCY,
            "taxesIncluded": True,
            "taxExempt": False,
            "estimatedTaxes": False,
            "email": o.email,
            "phone": o.phone,
            "note": None,
            "tags": [],
            "sourceName": "web",
            "customerLocale": "ja",
            "paymentGatewayNames": [o.gateway],
            "discountCode": o.discount_code,
            "discountCodes": [o.discount_code] if o.discount_code else [],
            "fullyPaid": paid,
            "unpaid": not paid and o.cancelled_at is None,
            "requiresShipping": True,
            "capturable": False,
            "refundable": paid and refunded < o.total,
            "subtotalLineItemsQuantity": sum(li.quantity for li in o.lines),
            "currentSubtotalLineItemsQuantity": sum(li.current_quantity for li in o.lines),
            "totalPriceSet": money_bag(o.total),
            "originalTotalPriceSet": money_bag(o.total),
            "subtotalPriceSet": money_bag(o.subtotal),
            "totalShippingPriceSet": money_bag(o.shipping),
            "totalDiscountsSet": money_bag(o.discount),
            "cartDiscountAmountSet": money_bag(o.discount),
            "totalTaxSet": money_bag(o.tax),
            "totalRefundedSet": money_bag(refunded),
            "totalReceivedSet": money_bag(o.total if paid else 0),
            "netPaymentSet": money_bag((o.total if paid else 0) - refunded),
            "totalOutstandingSet": money_bag(outstanding),
            "totalCapturableSet": money_bag(0),
            "currentTotalPriceSet": money_bag(current_total),
            "currentSubtotalPriceSet": money_bag(0 if o.cancelled_at else max(0, o.subtotal - refunded)),
            "currentTotalTaxSet": money_bag(0 if o.cancelled_at else _tax_of(current_lines, o)),
            "currentTotalDiscountsSet": money_bag(0 if o.cancelled_at else o.discount),
            "currentShippingPriceSet": money_bag(0 if o.cancelled_at else o.shipping),
            "customer": (lambda info: self.customer_node(c) if (c := w.customer(o.customer_id)) else None)
            if o.customer_id else None,
            "shippingAddress": self.address_node(o.shipping_address, o.id),
            "billingAddress": self.address_node(o.shipping_address, o.id),
            "billingAddressMatchesShippingAddress": True,
            "lineItems": lambda info, **args: paginate(o.lines, lambda li: lines_by_pos[li.id], lambda li: li.id,
                                                       args, lambda li: self.line_node(li, o), "lineItems"),
        }

    def line_node(self, li: LineItem, o: Order) -> dict[str, Any]:
        w = self.world
        total = li.unit_price * li.quantity
        unfulfilled = li.current_quantity if o.fulfillment_status == "UNFULFILLED" else 0
        return {
            "__typename": "LineItem",
            "id": li.gid,
            "name": f"{li.title} - {li.variant_title}" if li.variant_title else li.title,
            "title": li.title,
            "variantTitle": li.variant_title,
            "sku": li.sku,
            "vendor": w.shop_name,
            "quantity": li.quantity,
            "currentQuantity": li.current_quantity,
            "unfulfilledQuantity": unfulfilled,
            "refundableQuantity": li.current_quantity if o.financial_status != "PENDING" else 0,
            "nonFulfillableQuantity": li.quantity - li.current_quantity,
            "requiresShipping": True,
            "taxable": True,
            "isGiftCard": False,
            "merchantEditable": o.cancelled_at is None,
            "originalUnitPriceSet": money_bag(li.unit_price),
            "discountedUnitPriceSet": money_bag(li.unit_price),
            "discountedUnitPriceAfterAllDiscountsSet": money_bag(li.unit_price),
            "originalTotalSet": money_bag(total),
            "discountedTotalSet": lambda info, **_: money_bag(total),
            "totalDiscountSet": money_bag(0),
            "unfulfilledOriginalTotalSet": money_bag(li.unit_price * unfulfilled),
            "unfulfilledDiscountedTotalSet": money_bag(li.unit_price * unfulfilled),
            "taxLines": lambda info, **_: [{
                "title": "消費税",
                "rate": li.tax_percent / 100,
                "ratePercentage": float(li.tax_percent),
                "priceSet": money_bag(total * li.tax_percent // (100 + li.tax_percent)),
                "source": None,
                "channelLiable": False,
            }],
            "variant": (lambda info: self.variant_node(v) if (v := w.variant(li.variant_id)) else None),
            "product": (lambda info: self.product_node(p) if (p := w.shop_product(li.product_id)) else None),
        }

    def address_node(self, a: dict[str, Any], owner_id: int) -> dict[str, Any]:
        lines = [f"〒{a['zip']}", f"{a['province']}{a['city']}{a['address1']}"] + ([a["address2"]] if a.get("address2") else [])
        return {
            "__typename": "MailingAddress",
            "id": f"gid://shopify/MailingAddress/{owner_id}?model_name=Address",
            **{k: a.get(k) for k in ("firstName", "lastName", "name", "company", "address1", "address2", "city",
                                     "province", "provinceCode", "zip", "country", "countryCodeV2", "phone")},
            "formatted": lambda info, withName=False, withCompany=True: ([a["name"]] if withName else []) + lines,
            "formattedArea": f"{a['city']}, {a['province']}, Japan",
            "timeZone": "Asia/Tokyo",
            "coordinatesValidated": False,
            "latitude": None,
            "longitude": None,
        }

    # ------------------------------------------------------------------------------------------- customers
    def customers(self, info, sortKey: str = "ID", query: str | None = None, **args):
        fields = {
            "updated_at": Field("time", lambda c: c.updated_at),
            "created_at": Field("time", lambda c: c.created_at),
            "id": Field("id", lambda c: c.id),
            "email": Field("text", lambda c: c.email),
            "phone": Field("text", lambda c: c.phone),
            "first_name": Field("text", lambda c: c.first_name),
            "last_name": Field("text", lambda c: c.last_name),
        }
        pred = self._search(info, query, fields, lambda c: f"{c.last_name}{c.first_name} {c.email}")
        sorts = {"ID": lambda c: c.id, "UPDATED_AT": lambda c: c.updated_at,
                 "CREATED_AT": lambda c: c.created_at, "NAME": lambda c: f"{c.last_name}{c.first_name}"}
        sort_name = sortKey if sortKey in sorts else "ID"
        index = self._sorted_index("customers", sort_name, self.world.customers, sorts[sort_name], lambda c: c.id)
        return paginate(index, sorts[sort_name], lambda c: c.id, args, self.customer_node, "customers",
                        predicate=pred)

    def customer_node(self, c: Customer) -> dict[str, Any]:
        w = self.world

        def mine() -> list[Order]:
            return [o for o in w.orders if o.customer_id == c.id]

        return {
            "__typename": "Customer",
            "id": c.gid,
            "legacyResourceId": str(c.id),
            "firstName": c.first_name,
            "lastName": c.last_name,
            "displayName": f"{c.last_name} {c.first_name}",
            "email": c.email,
            "phone": c.phone,
            "defaultEmailAddress": {"emailAddress": c.email},
            "defaultPhoneNumber": {"phoneNumber": c.phone} if c.phone else None,
            "createdAt": iso_z(c.created_at),
            "updatedAt": iso_z(c.updated_at),
            "locale": "ja",
            "note": None,
            "tags": [],
            "state": "ENABLED",
            "taxExempt": False,
            "verifiedEmail": True,
            "validEmailAddress": True,
            "numberOfOrders": lambda info: str(len(mine())),
            "amountSpent": lambda info: money(sum(o.total - _refunded(o) for o in mine() if o.cancelled_at is None)),
            "defaultAddress": self.address_node(c.address, c.id),
            "addresses": lambda info, **_: [self.address_node(c.address, c.id)],
        }

    # ------------------------------------------------------------------------------------------- catalogue
    VARIANT_SORTS: dict[str, Callable[[Variant], Any]] = {
        "ID": lambda v: v.id,
        "SKU": lambda v: v.sku,
        "TITLE": lambda v: v.title,
        "NAME": lambda v: v.title,
        "POSITION": lambda v: v.position,
    }

    def product_variants(self, info, sortKey: str = "ID", query: str | None = None, **args):
        w = self.world
        fields = {
            "updated_at": Field("time", lambda v: v.updated_at),
            "created_at": Field("time", lambda v: v.created_at),
            "id": Field("id", lambda v: v.id),
            "sku": Field("text", lambda v: v.sku),
            "barcode": Field("text", lambda v: v.barcode),
            "product_id": Field("id", lambda v: v.product_id),
            "title": Field("text", lambda v: v.title),
            "inventory_quantity": Field("number", lambda v: self._available(v.inventory_item_id)),
            "location_id": Field("id", lambda v: [lv.location_id for lv in w.levels_of(v.inventory_item_id)][0]),
        }
        pred = self._search(info, query, fields, lambda v: f"{v.sku} {v.title} {v.barcode}")
        sort_name = sortKey if sortKey in self.VARIANT_SORTS else "ID"
        sort = self.VARIANT_SORTS[sort_name]
        if sortKey in ("INVENTORY_QUANTITY", "INVENTORY_LEVELS_AVAILABLE"):
            sort_name, sort = sortKey, lambda v: self._available(v.inventory_item_id)
        elif sortKey == "FULL_TITLE":
            sort_name, sort = sortKey, lambda v: f"{w.shop_product(v.product_id).title} {v.title}"
        index = self._sorted_index("variants", sort_name, w.variants, sort, lambda v: v.id)
        return paginate(index, sort, lambda v: v.id, args, self.variant_node, "productVariants", predicate=pred)

    def _available(self, item_id: int) -> int:
        return sum(lv.available for lv in self.world.levels_of(item_id))

    def variant_node(self, v: Variant) -> dict[str, Any]:
        w = self.world
        product = w.shop_product(v.product_id)
        available = self._available(v.inventory_item_id)
        return {
            "__typename": "ProductVariant",
            "id": v.gid,
            "legacyResourceId": str(v.id),
            "sku": v.sku,
            "barcode": v.barcode,
            "title": v.title,
            "displayName": f"{product.title} - {v.title}" if product else v.title,
            "price": f"{v.price}.0",
            "compareAtPrice": None,
            "taxable": True,
            "taxCode": None,
            "position": v.position,
            "createdAt": iso_z(v.created_at),
            "updatedAt": iso_z(v.updated_at),
            "inventoryQuantity": available,
            "sellableOnlineQuantity": max(0, available),
            "availableForSale": available > 0,
            "inventoryPolicy": "DENY",
            "requiresComponents": False,
            "showUnitPrice": False,
            "selectedOptions": [{"name": n, "value": val} for n, val in v.options],
            "inventoryItem": lambda info: self.item_node(w.inventory_item(v.inventory_item_id)),
            "product": lambda info: self.product_node(product),
        }

    def product_node(self, p: ShopProduct) -> dict[str, Any]:
        w = self.world
        variants = [v for v in w.variants if v.product_id == p.id]
        return {
            "__typename": "Product",
            "id": p.gid,
            "legacyResourceId": str(p.id),
            "title": p.title,
            "handle": p.handle,
            "productType": p.product_type,
            "vendor": p.vendor,
            "status": "ACTIVE",
            "tags": [],
            "createdAt": iso_z(p.created_at),
            "updatedAt": iso_z(p.updated_at),
            "publishedAt": iso_z(p.created_at),
            "hasOnlyDefaultVariant": False,
            "tracksInventory": True,
            "totalInventory": lambda info: sum(self._available(v.inventory_item_id) for v in variants),
            "variants": lambda info, **args: paginate(variants, lambda v: v.position, lambda v: v.id, args,
                                                      self.variant_node, "variants"),
        }

    # ------------------------------------------------------------------------------------------- inventory
    def inventory_items(self, info, query: str | None = None, **args):
        fields = {
            "updated_at": Field("time", lambda i: i.updated_at),
            "created_at": Field("time", lambda i: i.created_at),
            "id": Field("id", lambda i: i.id),
            "sku": Field("text", lambda i: i.sku),
        }
        pred = self._search(info, query, fields, lambda i: i.sku)
        index = self._sorted_index("items", "ID", self.world.inventory_items, lambda i: i.id, lambda i: i.id)
        return paginate(index, lambda i: i.id, lambda i: i.id, args, self.item_node, "inventoryItems",
                        predicate=pred)

    def item_node(self, item: InventoryItem | None) -> dict[str, Any] | None:
        if item is None:
            return None
        w = self.world

        def levels(info, query: str | None = None, includeInactive: bool = False, **args):
            fields = {"updated_at": Field("time", lambda lv: lv.updated_at),
                      "location_id": Field("id", lambda lv: lv.location_id)}
            pred = self._search(info, query, fields, lambda lv: "")
            rows = [lv for lv in w.levels_of(item.id) if pred is None or pred(lv)]
            return paginate(rows, lambda lv: lv.id, lambda lv: lv.id, args, self.level_node, "inventoryLevels")

        def level(info, locationId: str, includeInactive: bool = False):
            loc = parse_gid(locationId, "Location")
            lv = w.levels.get((item.id, loc)) if loc is not None else None
            return self.level_node(lv) if lv is not None else None

        return {
            "__typename": "InventoryItem",
            "id": item.gid,
            "legacyResourceId": str(item.id),
            "sku": item.sku,
            "tracked": item.tracked,
            "requiresShipping": True,
            "createdAt": iso_z(item.created_at),
            "updatedAt": iso_z(item.updated_at),
            "duplicateSkuCount": 0,
            "countryCodeOfOrigin": None,
            "provinceCodeOfOrigin": None,
            "harmonizedSystemCode": None,
            "unitCost": None,
            "variant": lambda info: self.variant_node(w.variant(item.variant_id)),
            "inventoryLevels": levels,
            "inventoryLevel": level,
        }

    def level_node(self, lv: InventoryLevel) -> dict[str, Any]:
        w = self.world

        def quantities(info, names: list[str]):
            unknown = [n for n in names if n not in QUANTITY_NAMES]
            if unknown:
                raise GraphQLError(f"Invalid quantity names: {', '.join(unknown)}. Valid names are: "
                                   + ", ".join(QUANTITY_NAMES), extensions={"code": "BAD_REQUEST"})
            values = {"available": lv.available, "on_hand": lv.on_hand, "committed": lv.committed}
            return [{
                "__typename": "InventoryQuantity",
                "id": f"gid://shopify/InventoryQuantity/{lv.id}?inventory_item_id={lv.inventory_item_id}&name={n}",
                "name": n,
                "quantity": values.get(n, 0),
                "updatedAt": iso_z(lv.updated_at) if n in values else None,
            } for n in names]

        return {
            "__typename": "InventoryLevel",
            "id": lv.gid,
            "createdAt": iso_z(lv.created_at),
            "updatedAt": iso_z(lv.updated_at),
            "isActive": True,
            "canDeactivate": False,
            "deactivationAlert": None,
            "item": lambda info: self.item_node(w.inventory_item(lv.inventory_item_id)),
            "location": lambda info: self.location_node(w.location(lv.location_id)),
            "quantities": quantities,
        }

    def locations(self, info, sortKey: str = "NAME", query: str | None = None, includeInactive: bool = False,
                  includeLegacy: bool = False, **args):
        fields = {"id": Field("id", lambda loc: loc.id), "name": Field("text", lambda loc: loc.name),
                  "active": Field("text", lambda loc: str(loc.is_active).lower())}
        pred = self._search(info, query, fields, lambda loc: loc.name)
        rows = [loc for loc in self.world.locations
                if (includeInactive or loc.is_active) and (pred is None or pred(loc))]
        sort = (lambda loc: loc.name) if sortKey == "NAME" else (lambda loc: loc.id)
        return paginate(rows, sort, lambda loc: loc.id, args, self.location_node, "locations")

    def location_node(self, loc: Location) -> dict[str, Any]:
        w = self.world
        a = loc.address

        def levels(info, query: str | None = None, includeInactive: bool = False, **args):
            rows = [lv for (i, lid), lv in w.levels.items() if lid == loc.id]
            return paginate(rows, lambda lv: lv.id, lambda lv: lv.id, args, self.level_node, "inventoryLevels")

        def level(info, inventoryItemId: str, includeInactive: bool = False):
            item = parse_gid(inventoryItemId, "InventoryItem")
            lv = w.levels.get((item, loc.id)) if item is not None else None
            return self.level_node(lv) if lv is not None else None

        return {
            "__typename": "Location",
            "id": loc.gid,
            "legacyResourceId": str(loc.id),
            "name": loc.name,
            "isActive": loc.is_active,
            "isPrimary": True,
            "isFulfillmentService": False,
            "fulfillsOnlineOrders": True,
            "shipsInventory": True,
            "hasActiveInventory": True,
            "hasUnfulfilledOrders": any(o.fulfillment_status == "UNFULFILLED" and not o.cancelled_at
                                        for o in w.orders),
            "activatable": False,
            "deactivatable": False,
            "deletable": False,
            "addressVerified": True,
            "deactivatedAt": None,
            "createdAt": iso_z(loc.created_at),
            "updatedAt": iso_z(loc.updated_at),
            "address": {
                "address1": a["address1"], "address2": None, "city": a["city"], "province": a["province"],
                "provinceCode": a["provinceCode"], "zip": a["zip"], "country": a["country"],
                "countryCode": a["countryCode"], "phone": None, "latitude": None, "longitude": None,
                "formatted": [f"〒{a['zip']}", f"{a['province']}{a['city']}{a['address1']}", "Japan"],
            },
            "inventoryLevels": levels,
            "inventoryLevel": level,
        }

    def shop_node(self, info=None) -> dict[str, Any]:
        w = self.world
        return {
            "__typename": "Shop",
            "id": gid("Shop", self.shop_id),
            "name": w.shop_name,
            "email": f"shop@{w.shop_domain}",
            "contactEmail": f"support@{w.shop_domain}",
            "myshopifyDomain": w.shop_domain,
            "url": f"https://{w.shop_domain}",
            "currencyCode": CURRENCY,
            "enabledPresentmentCurrencies": [CURRENCY],
            "ianaTimezone": "Asia/Tokyo",
            "timezoneAbbreviation": "JST",
            "timezoneOffset": "+0900",
            "timezoneOffsetMinutes": 540,
            "taxesIncluded": True,
            "taxShipping": True,
            "weightUnit": "KILOGRAMS",
            "orderNumberFormatPrefix": "#",
            "orderNumberFormatSuffix": "",
            "shopOwnerName": "一元 太郎",
            "checkoutApiSupported": True,
            "setupRequired": False,
            "createdAt": iso_z(w.locations[0].created_at),
            "updatedAt": iso_z(w.locations[0].updated_at),
        }

    # ------------------------------------------------------------------------------------------- mutation
    def inventory_set_quantities(self, info: GraphQLResolveInfo, input: dict[str, Any]):
        key = _idempotency_key(info)
        quantities = input.get("quantities") or []
        if len(quantities) > MAX_INPUT_ARRAY:
            raise GraphQLError(
                f"The input array size of {len(quantities)} is greater than the maximum allowed of {MAX_INPUT_ARRAY}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        fingerprint = hashlib.sha256(json.dumps(input, sort_keys=True, default=str).encode()).hexdigest()
        if key in self._idempotency:
            seen_fingerprint, payload = self._idempotency[key]
            if seen_fingerprint != fingerprint:
                return self._payload(None, [{
                    "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "field": None,
                    "message": "The same idempotency key cannot be used with different operation parameters.",
                }])
            return payload  # a retry of a call already answered: the same answer, nothing applied again
        payload = self._set_quantities(input, quantities)
        self._idempotency[key] = (fingerprint, payload)
        return payload

    def _set_quantities(self, input: dict[str, Any], quantities: list[dict[str, Any]]) -> dict[str, Any]:
        w = self.world
        name, reason, uri = input.get("name"), input.get("reason"), input.get("referenceDocumentUri")
        errors: list[dict[str, Any]] = []

        def err(code: str | None, path: list[str], message: str) -> None:
            errors.append({"code": code, "field": path, "message": message})

        if name not in SETTABLE_NAMES:
            err("INVALID_NAME", ["input", "name"], "The quantity name must be either 'available' or 'on_hand'.")
        if reason not in REASONS:
            err("INVALID_REASON", ["input", "reason"], "The specified reason is invalid.")
        if uri is not None and not URI_RE.match(uri):
            err("INVALID_REFERENCE_DOCUMENT", ["input", "referenceDocumentUri"],
                "The specified reference document is invalid.")
        seen: set[tuple[int, int]] = set()
        rows: list[tuple[InventoryLevel, int]] = []
        for i, q in enumerate(quantities):
            at = ["input", "quantities", str(i)]
            if "changeFromQuantity" not in q:
                err(None, at + ["changeFromQuantity"],
                    "changeFromQuantity is required: pass the quantity you expect at this location, "
                    "or null to skip the compare-and-swap check.")
                continue
            item_id = parse_gid(q["inventoryItemId"], "InventoryItem")
            location_id = parse_gid(q["locationId"], "Location")
            if item_id is None or w.inventory_item(item_id) is None:
                err("INVALID_INVENTORY_ITEM", at + ["inventoryItemId"], "The specified inventory item could not be found.")
                continue
            if location_id is None or w.location(location_id) is None:
                err("INVALID_LOCATION", at + ["locationId"], "The specified location could not be found.")
                continue
            level = w.levels.get((item_id, location_id))
            if level is None:
                err("INVALID_LOCATION", at + ["locationId"],
                    "The specified inventory item is not stocked at the specified location.")
                continue
            if (item_id, location_id) in seen:
                err("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", at,
                    "The combination of inventoryItemId and locationId must be unique.")
                continue
            seen.add((item_id, location_id))
            qty = q["quantity"]
            if qty < 0:
                err("INVALID_QUANTITY_NEGATIVE", at + ["quantity"], "The quantity can't be negative.")
                continue
            if qty > 1_000_000_000:
                err("INVALID_QUANTITY_TOO_HIGH", at + ["quantity"],
                    "The total quantity can't be higher than 1,000,000,000.")
                continue
            current = level.available if name == "available" else level.on_hand
            expected = q["changeFromQuantity"]
            if expected is not None and expected != current:
                err("CHANGE_FROM_QUANTITY_STALE", at + ["changeFromQuantity"],
                    "The changeFromQuantity value does not match persisted value.")
                continue
            rows.append((level, qty))
        if errors:
            return self._payload(None, errors)  # atomic: nothing of the call is applied

        now = w.clock()
        changes = []
        for level, qty in rows:
            delta = qty - level.available if name == "available" else qty - level.on_hand
            level.available += delta  # on_hand = available + committed moves with it
            w.touch_inventory(level.inventory_item_id, level, now)
            for changed in (name, "on_hand" if name == "available" else "available"):
                after = level.available if changed == "available" else level.on_hand
                changes.append({"name": changed, "delta": delta, "quantityAfterChange": after,
                                "item_id": level.inventory_item_id, "location_id": level.location_id})
        w.adjustment_groups += 1
        group_id = 9_000_000_000 + w.adjustment_groups

        def changes_field(info, inventoryItemIds=None, locationIds=None, quantityNames=None):
            items = {parse_gid(i, "InventoryItem") for i in inventoryItemIds} if inventoryItemIds else None
            locs = {parse_gid(i, "Location") for i in locationIds} if locationIds else None
            return [{
                "name": c["name"], "delta": c["delta"], "quantityAfterChange": c["quantityAfterChange"],
                "ledgerDocumentUri": None,
                "item": lambda info, c=c: self.item_node(w.inventory_item(c["item_id"])),
                "location": lambda info, c=c: self.location_node(w.location(c["location_id"])),
            } for c in changes
                if (items is None or c["item_id"] in items) and (locs is None or c["location_id"] in locs)
                and (quantityNames is None or c["name"] in quantityNames)]

        group = {
            "__typename": "InventoryAdjustmentGroup",
            "id": gid("InventoryAdjustmentGroup", group_id),
            "createdAt": iso_z(now),
            "reason": reason,
            "referenceDocumentUri": uri,
            "app": None,
            "staffMember": None,
            "changes": changes_field,
        }
        return self._payload(group, [])

    def product_variants_bulk_update(self, info: GraphQLResolveInfo, productId: str, variants: list[dict[str, Any]],
                                     allowPartialUpdates: bool | None = None, media: Any = None):
        """Prices of a product's variants. Without allowPartialUpdates one bad row fails the whole call, as Shopify.
        Only `price` (and `compareAtPrice` null) is modelled; other inputs answer SANDBOX_NOT_IMPLEMENTED."""
        w = self.world
        if len(variants) > MAX_INPUT_ARRAY:
            raise GraphQLError(
                f"The input array size of {len(variants)} is greater than the maximum allowed of {MAX_INPUT_ARRAY}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        product_num = parse_gid(productId, "Product")
        product = w.shop_product(product_num) if product_num is not None else None
        if product is None:
            return {"product": None, "productVariants": None, "userErrors": [
                {"code": "PRODUCT_DOES_NOT_EXIST", "field": ["productId"], "message": "Product does not exist"}]}
        errors: list[dict[str, Any]] = []
        updates: list[tuple[Variant, int]] = []
        for i, row in enumerate(variants):
            at = ["variants", str(i)]
            unsupported = sorted(set(row) - {"id", "price", "compareAtPrice"})
            if unsupported or row.get("compareAtPrice") is not None:
                raise GraphQLError(f"productVariantsBulkUpdate: {', '.join(unsupported) or 'compareAtPrice'} is not "
                                   "modelled by the sandbox", extensions={"code": "SANDBOX_NOT_IMPLEMENTED"})
            if row.get("id") is None:
                errors.append({"code": "PRODUCT_VARIANT_ID_MISSING", "field": at + ["id"],
                               "message": "Product variant is missing ID attribute"})
                continue
            num = parse_gid(row["id"], "ProductVariant")
            variant = w.variant(num) if num is not None else None
            if variant is None or variant.product_id != product.id:
                errors.append({"code": "PRODUCT_VARIANT_DOES_NOT_EXIST", "field": at + ["id"],
                               "message": "Product variant does not exist"})
                continue
            if "price" not in row:
                continue
            try:
                price = Decimal(str(row["price"]))
            except InvalidOperation:
                errors.append({"code": "INVALID_VALUE", "field": at + ["price"], "message": "Price is invalid"})
                continue
            if price < 0:
                errors.append({"code": "NEGATIVE_PRICE_VALUE", "field": at + ["price"],
                               "message": "Price must be greater than or equal to 0"})
                continue
            if price != price.to_integral_value():  # JPY has no minor unit (the sandbox's wording)
                errors.append({"code": "INVALID_VALUE", "field": at + ["price"],
                               "message": "JPY prices cannot have a fractional part"})
                continue
            updates.append((variant, int(price)))
        if errors and not allowPartialUpdates:
            return {"product": self.product_node(product), "productVariants": [], "userErrors": errors}
        now = w.clock()
        for variant, price in updates:
            if variant.price != price:
                variant.price = price
                variant.updated_at = max(variant.updated_at, now)
                product.updated_at = max(product.updated_at, now)
                w.version += 1
        return {"product": self.product_node(product),
                "productVariants": [self.variant_node(v) for v, _ in updates], "userErrors": errors}

    @staticmethod
    def _payload(group, errors) -> dict[str, Any]:
        return {"inventoryAdjustmentGroup": group, "userErrors": errors}


def _idempotency_key(info: GraphQLResolveInfo) -> str:
    directive = info.schema.get_directive("idempotent")
    values = get_directive_values(directive, info.field_nodes[0], info.variable_values) if directive else None
    key = (values or {}).get("key")
    if key is None:
        raise GraphQLError(
            f"The @idempotent directive is required for {info.field_name} since API version 2026-04: "
            f"add @idempotent(key: \"<a unique key per logical request>\") to the mutation field.",
            extensions={"code": "BAD_REQUEST"},
        )
    if not key.strip():
        raise GraphQLError("The idempotency key cannot be an empty string or whitespace only.",
                           extensions={"code": "BAD_REQUEST"})
    return key


def _refunded(o: Order) -> int:
    if o.financial_status == "REFUNDED":
        return o.total
    if o.financial_status == "PARTIALLY_REFUNDED":
        return sum(li.unit_price * (li.quantity - li.current_quantity) for li in o.lines)
    return 0


def _tax_of(lines: list[LineItem], o: Order) -> int:
    if not lines:
        return 0
    if all(li.current_quantity == li.quantity for li in o.lines):
        return o.tax
    return sum(li.unit_price * li.current_quantity * li.tax_percent // (100 + li.tax_percent) for li in lines)


def _fulfillment_search_values(o: Order) -> list[str]:
    if o.fulfillment_status == "FULFILLED":
        return ["shipped", "fulfilled"]
    return ["unshipped", "unfulfilled"]
