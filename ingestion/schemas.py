"""The landed schemas (DECISIONS.md D4): explicit polars types per source/entity, so every batch of an entity
has the same column types whatever the data (timestamps UTC microseconds, nested line items as
list<struct>). Besides these typed columns every row carries `_batch_id`, `_fetched_at` and `_raw`.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

META_COLUMNS: dict[str, pl.DataType] = {
    "_batch_id": pl.String(),
    "_fetched_at": UTC_TS,
    "_raw": pl.String(),
}


@dataclass(frozen=True)
class EntitySchema:
    source: str
    entity: str
    key: tuple[str, ...]
    cursor_field: str
    columns: dict[str, pl.DataType]

    @property
    def landed_columns(self) -> dict[str, pl.DataType]:
        """Typed columns then the three `_` columns, in file order."""
        return {**self.columns, **META_COLUMNS}


LINE_ITEM = pl.Struct(
    {
        "line_item_id": pl.String(),
        "sku": pl.String(),
        "quantity": pl.Int64(),
        "current_quantity": pl.Int64(),
        "unit_price": pl.String(),  # decimal string as sent
        "variant_id": pl.String(),
        "inventory_item_id": pl.String(),
        "title": pl.String(),
    }
)

SHOPIFY_ORDERS = EntitySchema(
    "shopify",
    "orders",
    key=("order_id",),
    cursor_field="updated_at",
    columns={
        "order_id": pl.String(),  # GID, gid://shopify/Order/…
        "order_name": pl.String(),
        "created_at": UTC_TS,
        "updated_at": UTC_TS,
        "processed_at": UTC_TS,
        "cancelled_at": UTC_TS,
        "display_financial_status": pl.String(),
        "display_fulfillment_status": pl.String(),
        "currency_code": pl.String(),
        "total_price": pl.String(),
        "subtotal_price": pl.String(),
        "total_shipping_price": pl.String(),
        "total_discounts": pl.String(),
        "total_tax": pl.String(),
        "customer_id": pl.String(),
        "email": pl.String(),
        "payment_gateway_names": pl.List(pl.String()),
        "line_items": pl.List(LINE_ITEM),
    },
)

SHOPIFY_PRODUCT_VARIANTS = EntitySchema(
    "shopify",
    "product_variants",
    key=("variant_id",),
    cursor_field="updated_at",
    columns={
        "variant_id": pl.String(),
        "sku": pl.String(),
        "barcode": pl.String(),
        "price": pl.String(),  # decimal string as sent
        "inventory_item_id": pl.String(),
        "product_id": pl.String(),
        "product_title": pl.String(),
        "variant_title": pl.String(),
        "updated_at": UTC_TS,
    },
)

SHOPIFY_INVENTORY_LEVELS = EntitySchema(
    "shopify",
    "inventory_levels",
    key=("inventory_item_id", "location_id"),
    cursor_field="updated_at",
    columns={
        "inventory_item_id": pl.String(),
        "location_id": pl.String(),
        "sku": pl.String(),
        "variant_id": pl.String(),
        "available": pl.Int64(),
        "on_hand": pl.Int64(),
        "updated_at": UTC_TS,  # the inventory level's updatedAt
    },
)

# One row per webhook delivery received (DECISIONS.md D13); `_raw` is the body exactly as it was signed.
SHOPIFY_WEBHOOK_EVENTS = EntitySchema(
    "shopify",
    "webhook_events",
    key=("webhook_id",),
    cursor_field="received_at",
    columns={
        "webhook_id": pl.String(),  # X-Shopify-Webhook-Id: the same on every redelivery
        "event_id": pl.String(),  # X-Shopify-Event-Id
        "topic": pl.String(),  # X-Shopify-Topic, e.g. orders/create
        "shop_domain": pl.String(),
        "api_version": pl.String(),
        "triggered_at": UTC_TS,  # X-Shopify-Triggered-At
        "received_at": UTC_TS,
        "resource_gid": pl.String(),  # what to fetch: the Order, or the InventoryItem of a level
        "location_gid": pl.String(),  # inventory_levels/*: the level's Location
        "resource_updated_at": UTC_TS,  # the payload's updated_at
    },
)

ERP_PRODUCTS = EntitySchema(
    "erp",
    "products",
    key=("sku",),
    cursor_field="updated_at",
    columns={
        "sku": pl.String(),
        "jan": pl.String(),
        "name": pl.String(),
        "name_kana": pl.String(),
        "category": pl.String(),
        "size": pl.String(),
        "color": pl.String(),
        "list_price": pl.Int64(),  # tax-exclusive JPY
        "tax_class": pl.String(),  # 'standard' (10 %) | 'reduced' (8 %)
        "safety_stock": pl.Int64(),
        "updated_at": UTC_TS,
    },
)

ERP_WAREHOUSES = EntitySchema(
    "erp",
    "warehouses",
    key=("warehouse_code",),
    cursor_field="updated_at",
    columns={
        "warehouse_code": pl.String(),
        "name": pl.String(),
        "sellable": pl.Boolean(),
        "updated_at": UTC_TS,
    },
)

ERP_STOCK = EntitySchema(
    "erp",
    "stock",
    key=("sku", "warehouse_code"),
    cursor_field="updated_at",
    columns={
        "sku": pl.String(),
        "warehouse_code": pl.String(),
        "on_hand": pl.Int64(),
        "updated_at": UTC_TS,
    },
)

SCHEMAS: dict[tuple[str, str], EntitySchema] = {
    (s.source, s.entity): s
    for s in (SHOPIFY_ORDERS, SHOPIFY_PRODUCT_VARIANTS, SHOPIFY_INVENTORY_LEVELS, SHOPIFY_WEBHOOK_EVENTS,
              ERP_PRODUCTS, ERP_WAREHOUSES, ERP_STOCK)
}

# Amazon SP-API (DECISIONS.md D25): orders with their items nested, listings with the displayed quantity.
AMAZON_ORDER_ITEM = pl.Struct(
    {
        "order_item_id": pl.String(),
        "seller_sku": pl.String(),
        "asin": pl.String(),
        "title": pl.String(),
        "quantity_ordered": pl.Int64(),
        "quantity_fulfilled": pl.Int64(),
        "quantity_unfulfilled": pl.Int64(),
        "unit_price": pl.String(),  # decimal string as sent (tax-inclusive JPY)
        "proceeds_total": pl.String(),
    }
)

AMAZON_ORDERS = EntitySchema(
    "amazon",
    "orders",
    key=("order_id",),
    cursor_field="updated_at",
    columns={
        "order_id": pl.String(),  # 3-7-7 digits
        "created_at": UTC_TS,
        "updated_at": UTC_TS,  # lastUpdatedTime
        "fulfillment_status": pl.String(),
        "fulfilled_by": pl.String(),
        "marketplace_id": pl.String(),
        "buyer_name": pl.String(),
        "buyer_email": pl.String(),  # Amazon's masked relay address
        "recipient_name": pl.String(),
        "recipient_phone": pl.String(),
        "recipient_postal_code": pl.String(),
        "recipient_state_or_region": pl.String(),
        "recipient_city": pl.String(),
        "recipient_address_line1": pl.String(),
        "recipient_address_line2": pl.String(),
        "currency_code": pl.String(),
        "grand_total": pl.String(),  # decimal strings as sent
        "item_total": pl.String(),
        "shipping_total": pl.String(),
        "discount_total": pl.String(),  # the DISCOUNT breakdown (negative)
        "payment_method": pl.String(),
        "order_items": pl.List(AMAZON_ORDER_ITEM),
    },
)

AMAZON_LISTINGS = EntitySchema(
    "amazon",
    "listings",
    key=("sku",),
    cursor_field="updated_at",
    columns={
        "sku": pl.String(),  # the seller SKU (Amazon's key for the listing)
        "asin": pl.String(),
        "parent_sku": pl.String(),
        "product_type": pl.String(),
        "item_name": pl.String(),
        "statuses": pl.List(pl.String()),
        "jan": pl.String(),
        "price": pl.String(),  # decimal string (tax-inclusive JPY)
        "quantity": pl.Int64(),  # fulfillmentAvailability DEFAULT: the stock Amazon shows
        "created_at": UTC_TS,
        "updated_at": UTC_TS,  # summaries.lastUpdatedDate
    },
)

# One row per ORDER_CHANGE notification received from the SQS queue (D27); `_raw` is the message body.
AMAZON_NOTIFICATIONS = EntitySchema(
    "amazon",
    "notifications",
    key=("notification_id",),
    cursor_field="received_at",
    columns={
        "notification_id": pl.String(),  # NotificationMetadata.NotificationId (the same on a duplicate)
        "message_id": pl.String(),  # the SQS MessageId
        "order_id": pl.String(),  # Payload.OrderChangeNotification.AmazonOrderId
        "order_status": pl.String(),  # Summary.OrderStatus
        "event_time": UTC_TS,
        "received_at": UTC_TS,
    },
)

SCHEMAS.update({(s.source, s.entity): s for s in (AMAZON_ORDERS, AMAZON_LISTINGS, AMAZON_NOTIFICATIONS)})

QUARANTINE_COLUMNS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "entity": pl.String(),
    "batch_id": pl.String(),
    "record_key": pl.String(),
    "reason": pl.String(),
    "raw": pl.String(),
    "quarantined_at": UTC_TS,
}


def schema_for(source: str, entity: str) -> EntitySchema:
    try:
        return SCHEMAS[(source, entity)]
    except KeyError:
        known = ", ".join(f"{s}/{e}" for s, e in SCHEMAS)
        raise KeyError(f"no landed schema for {source}/{entity}; known: {known}") from None
