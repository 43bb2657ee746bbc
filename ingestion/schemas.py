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

# Customers (identity resolution in dbt); names as Shopify keeps them, address = the default address.
SHOPIFY_CUSTOMERS = EntitySchema(
    "shopify",
    "customers",
    key=("customer_id",),
    cursor_field="updated_at",
    columns={
        "customer_id": pl.String(),  # GID, gid://shopify/Customer/…
        "first_name": pl.String(),
        "last_name": pl.String(),
        "email": pl.String(),  # defaultEmailAddress.emailAddress
        "phone": pl.String(),  # defaultPhoneNumber.phoneNumber (E.164)
        "zip": pl.String(),
        "province": pl.String(),
        "city": pl.String(),
        "address1": pl.String(),
        "created_at": UTC_TS,
        "updated_at": UTC_TS,
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
        "is_bundle": pl.Boolean(),  # a set sold as one SKU; its components are in erp/bundles (D35)
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

# -- ERP order intake markers (受注連携, DECISIONS.md D40): what reverse_sync.erp_intake posted and how far the
# ERP took it. A full snapshot every run (the ERP moves status new → taken → shipped in place).
ERP_ORDER_INTAKE = EntitySchema(
    "erp",
    "order_intake",
    key=("channel", "channel_order_id", "order_version"),
    cursor_field="posted_at",
    columns={
        "intake_id": pl.Int64(),
        "channel": pl.String(),
        "channel_order_id": pl.String(),
        "order_version": pl.String(),
        "event": pl.String(),  # 'order' | 'cancel'
        "status": pl.String(),  # 'new' | 'taken' | 'shipped'
        "erp_order_no": pl.String(),
        "posted_at": UTC_TS,
        "taken_at": UTC_TS,
    },
)

# ERP master data beyond the catalogue (DECISIONS.md D35). Column names are the ERP's own: a contract.
ERP_BUNDLES = EntitySchema(
    "erp",
    "bundles",
    key=("bundle_sku", "component_sku"),
    cursor_field="updated_at",
    columns={
        "bundle_sku": pl.String(),
        "component_sku": pl.String(),
        "quantity": pl.Int64(),  # units of the component in one bundle
        "updated_at": UTC_TS,
    },
)

ERP_CUSTOMERS = EntitySchema(
    "erp",
    "customers",
    key=("customer_code",),
    cursor_field="updated_at",
    columns={
        "customer_code": pl.String(),  # B2B-0001
        "company_name": pl.String(),
        "company_name_kana": pl.String(),
        "contact_name": pl.String(),
        "contact_name_kana": pl.String(),
        "email": pl.String(),
        "phone": pl.String(),
        "postal_code": pl.String(),
        "prefecture": pl.String(),
        "address1": pl.String(),
        "erp_rank": pl.String(),  # S / A / B / C
        "updated_at": UTC_TS,
    },
)

ERP_PURCHASE_ORDERS = EntitySchema(
    "erp",
    "purchase_orders",
    key=("po_number", "sku"),
    cursor_field="updated_at",
    columns={
        "po_number": pl.String(),
        "sku": pl.String(),
        "warehouse_code": pl.String(),
        "quantity": pl.Int64(),
        "expected_date": pl.Date(),  # the JST calendar date the goods are due
        "status": pl.String(),  # open | received
        "received_at": UTC_TS,
        "updated_at": UTC_TS,
    },
)

SCHEMAS: dict[tuple[str, str], EntitySchema] = {
    (s.source, s.entity): s
    for s in (SHOPIFY_ORDERS, SHOPIFY_PRODUCT_VARIANTS, SHOPIFY_INVENTORY_LEVELS, SHOPIFY_WEBHOOK_EVENTS,
              SHOPIFY_CUSTOMERS,
              ERP_PRODUCTS, ERP_WAREHOUSES, ERP_STOCK, ERP_ORDER_INTAKE,
              ERP_BUNDLES, ERP_CUSTOMERS, ERP_PURCHASE_ORDERS)
}

# -- rakuten (RMS Web Service; ingestion.rakuten) ------------------------------------------------------------
RAKUTEN_ORDER_ITEM = pl.Struct(
    {
        "item_detail_id": pl.Int64(),
        "basket_id": pl.Int64(),
        "manage_number": pl.String(),  # 商品管理番号
        "item_number": pl.String(),  # 商品番号
        "item_name": pl.String(),
        "variant_id": pl.String(),  # SKU管理番号
        "merchant_defined_sku_id": pl.String(),  # the shop's own SKU
        "sku_info": pl.String(),
        "price": pl.Int64(),  # unit price as shown (JPY)
        "price_tax_incl": pl.Int64(),  # unit price, tax included (JPY)
        "tax_rate": pl.Float64(),  # 0.1 / 0.08
        "units": pl.Int64(),
    }
)

RAKUTEN_ORDERS = EntitySchema(
    "rakuten",
    "orders",
    key=("order_number",),
    cursor_field="update_datetime",
    columns={
        "order_number": pl.String(),  # 386371-20261123-0000012345
        "order_progress": pl.Int64(),  # 100 … 900
        "sub_status_id": pl.Int64(),
        "order_datetime": UTC_TS,
        "update_datetime": UTC_TS,
        "shop_order_cfm_datetime": UTC_TS,
        "shipping_cmpl_rpt_datetime": UTC_TS,
        "payment_date": pl.String(),  # JST date as sent (yyyy-MM-dd); null while unpaid
        "delivery_date": pl.String(),
        "settlement_method": pl.String(),  # クレジットカード, 銀行振込, コンビニ決済, 代金引換, …
        "goods_price": pl.Int64(),
        "postage_price": pl.Int64(),
        "delivery_price": pl.Int64(),
        "payment_charge": pl.Int64(),
        "total_price": pl.Int64(),
        "request_price": pl.Int64(),
        "coupon_all_total_price": pl.Int64(),
        "used_point": pl.Int64(),
        "orderer_family_name": pl.String(),
        "orderer_first_name": pl.String(),
        "orderer_family_name_kana": pl.String(),
        "orderer_first_name_kana": pl.String(),
        "orderer_email_address": pl.String(),
        "orderer_phone_number": pl.String(),  # phoneNumber1-2-3 joined with '-' (as sent, parts kept)
        "orderer_zip_code": pl.String(),  # zipCode1-zipCode2
        "orderer_prefecture": pl.String(),
        "orderer_city": pl.String(),
        "orderer_sub_address": pl.String(),
        "change_reason_details": pl.List(pl.Int64()),  # ChangeReasonModelList[].changeReasonDetail
        "items": pl.List(RAKUTEN_ORDER_ITEM),
    },
)

RAKUTEN_LISTINGS = EntitySchema(
    "rakuten",
    "listings",
    key=("listing_id",),
    cursor_field="updated_at",
    columns={
        "listing_id": pl.String(),  # manageNumber:variantId
        "manage_number": pl.String(),
        "variant_id": pl.String(),
        "item_number": pl.String(),
        "title": pl.String(),
        "merchant_defined_sku_id": pl.String(),
        "jan": pl.String(),  # articleNumber.value
        "standard_price": pl.String(),  # tax-included JPY as sent (a decimal string)
        "updated_at": UTC_TS,  # the item's `updated`
    },
)

RAKUTEN_STOCK = EntitySchema(
    "rakuten",
    "stock",
    key=("listing_id",),
    cursor_field="updated_at",
    columns={
        "listing_id": pl.String(),
        "manage_number": pl.String(),
        "variant_id": pl.String(),
        "quantity": pl.Int64(),
        "created_at": UTC_TS,
        "updated_at": UTC_TS,
    },
)

SCHEMAS.update({(s.source, s.entity): s for s in (RAKUTEN_ORDERS, RAKUTEN_LISTINGS, RAKUTEN_STOCK)})

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
        "package_status": pl.String(),  # packages[0].packageStatus.status (D154)
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
