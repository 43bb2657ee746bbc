"""Amazon.co.jp connector (Selling Partner API): declarative parts over the one request loop in ingestion.http.

- Auth: Login with Amazon (`LwaAuth`): a refresh token is exchanged at `token_url` for an access token
  (3,600 s), sent as `x-amz-access-token`; renewed a minute before it expires, and once more when the API
  answers 403 "expired".
- Limits: each SP-API operation has its own documented token bucket (`RATE_LIMITS`, × `rate_scale`), on top
  of the channel-wide budget, all in the process-wide `amazon` limiter shared with reverse sync. 429
  `QuotaExceeded`, 5xx and cut connections are retried by the request loop.
- Entities:
  - `orders`: searchOrders (Orders API 2026-01-01) by `lastUpdatedAfter` = landed cursor − look-back (first
    run: `backfill_start`), ordered by lastUpdatedTime, `pagination.nextToken` → `paginationToken`. Items come
    inside each order. Staging keeps the latest version per order (pages may repeat).
  - `listings`: searchListingsItems (Listings Items 2021-08-01) snapshot, sorted by SKU, with summaries,
    attributes, offers and fulfillmentAvailability: the seller SKU ↔ ASIN/JAN mapping, the price and the stock
    Amazon shows (so stock is not a separate entity). The API pages through at most 1,000 SKUs; a larger
    catalogue needs the merchant listings report (not built).
  `ingest_orders_by_id` (getOrder) is the targeted fetch for named orders.
- Notifications (D27): `subscribe_order_changes` creates the SQS destination and the ORDER_CHANGE
  subscription; `ingest_notifications` reads the queue, lands the events as `amazon/notifications`, only then
  deletes the messages, then fetches the changed orders with getOrder within `notification_fetch_budget`.
  Dropped or late notifications are covered by the searchOrders poll (the backstop).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from ichigen.config import AmazonConfig, Config
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
from ingestion.errors import ChannelAuthError, IngestionError, require_enabled
from ingestion.http import ChannelClient
from ingestion.landing import TARGETED, LandingZone, QuarantineRecord, incremental_since, land_and_report
from ingestion.paging import NextToken, PageRequest, paginate
from ingestion.ratelimit import RateSpec, channel_limiter
from ingestion.schemas import AMAZON_LISTINGS, AMAZON_NOTIFICATIONS, AMAZON_ORDERS, EntitySchema

SOURCE = "amazon"
ORDERS_PATH = "/orders/2026-01-01/orders"
LISTINGS_PATH = "/listings/2021-08-01/items"
INCLUDED_ORDER_DATA = "BUYER,RECIPIENT,PROCEEDS,PAYMENT,FULFILLMENT,PACKAGES"
INCLUDED_LISTING_DATA = "summaries,attributes,offers,fulfillmentAvailability"
DEFAULT_FULFILLMENT_CHANNEL = "DEFAULT"  # merchant-fulfilled stock (FBA stock is Amazon's to count)
TOKEN_RENEW_BEFORE = 60.0  # seconds before expiry an access token is renewed

# Documented usage plans per operation: (requests per second, burst).
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "searchListingsItems": (5.0, 5),
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "createDestination": (1.0, 5),
    "createSubscription": (1.0, 5),
}


# -- auth --------------------------------------------------------------------------------------------------
class LwaAuth(httpx.Auth):
    """Login with Amazon: refresh token → access token, cached until a minute before expiry."""

    requires_response_body = True

    def __init__(self, amazon: AmazonConfig, transport: httpx.BaseTransport | None = None):
        self.amazon = amazon
        self._http = httpx.Client(transport=transport, timeout=amazon.timeout_seconds)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0

    def access_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or self._token is None or time.monotonic() >= self._expires - TOKEN_RENEW_BEFORE:
                self._token, self._expires = self._exchange()
            return self._token

    def _exchange(self) -> tuple[str, float]:
        form = {"grant_type": "refresh_token", "refresh_token": self.amazon.refresh_token,
                "client_id": self.amazon.client_id, "client_secret": self.amazon.client_secret}
        for attempt in range(3):
            try:
                answer = self._http.post(self.amazon.token_url, data=form)
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise ChannelAuthError(f"amazon: LWA token exchange at {self.amazon.token_url} failed: {exc}",
                                           channel=SOURCE, operation="lwa_token") from exc
                time.sleep(0.2 * (attempt + 1))
                continue
            if answer.status_code >= 500 and attempt < 2:
                time.sleep(0.2 * (attempt + 1))
                continue
            break
        if answer.status_code != 200:
            raise ChannelAuthError(
                f"amazon: LWA token exchange → HTTP {answer.status_code}: {answer.text[:200]} — check "
                "channels.amazon.client_id / client_secret / refresh_token", channel=SOURCE,
                operation="lwa_token", status=answer.status_code)
        body = answer.json()
        self.exchanges += 1
        return body["access_token"], time.monotonic() + float(body.get("expires_in", 3600))

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["x-amz-access-token"] = self.access_token()
        response = yield request
        if response.status_code == 403 and "expired" in response.text:
            request.headers["x-amz-access-token"] = self.access_token(renew=True)
            yield request

    def close(self) -> None:
        self._http.close()


def operation_spec(rate: float, burst: int, rate_scale: float = 1.0) -> RateSpec:
    """Our bucket for an operation Amazon meters at (rate, burst): the same rate, one request less of burst.
    Amazon counts a request when it arrives; our bucket when it leaves. Sent at exactly the documented pace, a
    request that travels faster than the one before it arrives early and finds Amazon's bucket empty (the
    odd 429 of D102/D104). Holding one token back keeps Amazon's bucket a token ahead of ours, which absorbs
    up to 1/rate of such jitter (0.2 s at 5/s) at no cost to the sustained rate (D202)."""
    return RateSpec(rate * rate_scale, max(1, burst - 1))


def make_client(config: Config, *, transport: httpx.BaseTransport | None = None, **options: Any) -> ChannelClient:
    """The SP-API client from `channels.amazon`: LWA auth and the per-operation buckets (× rate_scale)."""
    amazon = config.channels.amazon
    operations = {op: operation_spec(rate, burst, amazon.rate_scale) for op, (rate, burst) in RATE_LIMITS.items()}
    limiter = channel_limiter(SOURCE, requests_per_second=amazon.requests_per_second, operations=operations)
    return ChannelClient(SOURCE, amazon.base_url, LwaAuth(amazon, transport), limiter, amazon.timeout_seconds,
                         amazon.max_retries, transport, **options)


# -- mapping -----------------------------------------------------------------------------------------------
def _amount(node: Any, *path: str) -> str | None:
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    if node is None:
        return None
    if not isinstance(node, dict):
        raise RecordError(f"{'.'.join(path)} is not a Money object")
    return decimal_text(node.get("amount"), field=".".join(path) + ".amount")


def _breakdown_total(order: dict[str, Any], kind: str) -> str | None:
    found = [b for b in (order.get("proceeds") or {}).get("breakdowns") or [] if b.get("type") == kind]
    if not found:
        return None
    return str(sum(Decimal(_amount(b, "subtotal") or "0") for b in found))


def order_row(order: dict[str, Any]) -> dict[str, Any]:
    """One amazon/orders row from an `Order`; RecordError for what cannot be landed."""
    order_id = require(order.get("orderId"), field="orderId")
    items = []
    for index, item in enumerate(order.get("orderItems") or []):
        where = f"orderItems[{index}]"
        product = item.get("product") or {}
        fulfilled = item.get("fulfillment") or {}
        items.append({
            "order_item_id": require(item.get("orderItemId"), field=f"{where}.orderItemId"),
            "seller_sku": product.get("sellerSku"),
            "asin": product.get("asin"),
            "title": product.get("title"),
            "quantity_ordered": to_int(item.get("quantityOrdered"), field=f"{where}.quantityOrdered"),
            "quantity_fulfilled": to_int(fulfilled.get("quantityFulfilled"), field=f"{where}.quantityFulfilled"),
            "quantity_unfulfilled": to_int(fulfilled.get("quantityUnfulfilled"),
                                           field=f"{where}.quantityUnfulfilled"),
            "unit_price": _amount(product, "price", "unitPrice"),
            "proceeds_total": _amount(item, "proceeds", "proceedsTotal"),
        })
    address = (order.get("recipient") or {}).get("deliveryAddress") or {}
    payments = (order.get("payment") or {}).get("paymentExecutions") or []
    grand_total = (order.get("proceeds") or {}).get("grandTotal") or {}
    return {
        "order_id": order_id,
        "created_at": require(parse_utc(order.get("createdTime"), field="createdTime"), field="createdTime"),
        "updated_at": require(parse_utc(order.get("lastUpdatedTime"), field="lastUpdatedTime"),
                              field="lastUpdatedTime"),
        "fulfillment_status": (order.get("fulfillment") or {}).get("fulfillmentStatus"),
        "fulfilled_by": (order.get("fulfillment") or {}).get("fulfilledBy"),
        "package_status": _first_package_status(order),
        "marketplace_id": (order.get("salesChannel") or {}).get("marketplaceId"),
        "buyer_name": (order.get("buyer") or {}).get("buyerName"),
        "buyer_email": (order.get("buyer") or {}).get("buyerEmail"),
        "recipient_name": address.get("name"),
        "recipient_phone": address.get("phone"),
        "recipient_postal_code": address.get("postalCode"),
        "recipient_state_or_region": address.get("stateOrRegion"),
        "recipient_city": address.get("city"),
        "recipient_address_line1": address.get("addressLine1"),
        "recipient_address_line2": address.get("addressLine2"),
        "currency_code": grand_total.get("currencyCode"),
        "grand_total": _amount(order, "proceeds", "grandTotal"),
        "item_total": _breakdown_total(order, "ITEM"),
        "shipping_total": _breakdown_total(order, "SHIPPING"),
        "discount_total": _breakdown_total(order, "DISCOUNT"),
        "payment_method": payments[0].get("paymentMethod") if payments else None,
        "order_items": items,
        "_raw": raw_json(order),
    }


def _first_package_status(order: dict[str, Any]) -> str | None:
    """`packages[0].packageStatus.status` (the status map reads it: a delivered or returned parcel). Landed as a
    column so staging need not parse `_raw` for it (DECISIONS.md D154)."""
    packages = order.get("packages")
    if not isinstance(packages, list) or not packages or not isinstance(packages[0], dict):
        return None
    status = packages[0].get("packageStatus")
    return status.get("status") if isinstance(status, dict) else None


def _attribute(item: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = (item.get("attributes") or {}).get(name)
    return value if isinstance(value, list) else []


def listing_row(item: dict[str, Any]) -> dict[str, Any]:
    """One amazon/listings row from a listings `Item` (summaries, attributes, offers, fulfillmentAvailability)."""
    sku = require(item.get("sku"), field="sku")
    summary = (item.get("summaries") or [{}])[0]
    jan = next((a.get("value") for a in _attribute(item, "externally_assigned_product_identifier")
                if str(a.get("type", "")).lower() in ("jan", "ean", "gtin")), None)
    parent = next((a.get("parent_sku") for a in _attribute(item, "child_parent_sku_relationship")), None)
    offers = item.get("offers") or []
    price = _amount(offers[0], "price") if offers else None
    availability = [a for a in item.get("fulfillmentAvailability") or []
                    if a.get("fulfillmentChannelCode") == DEFAULT_FULFILLMENT_CHANNEL]
    return {
        "sku": sku,
        "asin": summary.get("asin"),
        "parent_sku": parent,
        "product_type": summary.get("productType"),
        "item_name": summary.get("itemName"),
        "statuses": summary.get("status"),
        "jan": jan,
        "price": price,
        "quantity": to_int(availability[0].get("quantity"), field="fulfillmentAvailability.quantity")
        if availability else None,
        "created_at": parse_utc(summary.get("createdDate"), field="summaries.createdDate"),
        "updated_at": require(parse_utc(summary.get("lastUpdatedDate"), field="summaries.lastUpdatedDate"),
                              field="summaries.lastUpdatedDate"),
        "_raw": raw_json(item),
    }


# -- fetching ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AmazonEntity:
    schema: EntitySchema
    key_field: str
    incremental: bool
    to_row: Callable[[dict[str, Any]], dict[str, Any]]
    first_request: Callable[[AmazonConfig, datetime | None], PageRequest]
    paging: NextToken
    operation: str
    max_pages: int


def _orders_request(amazon: AmazonConfig, since: datetime | None) -> PageRequest:
    return PageRequest("GET", ORDERS_PATH, params={
        "lastUpdatedAfter": format_utc(since) if since else amazon.backfill_start,
        "marketplaceIds": amazon.marketplace_id, "maxResultsPerPage": amazon.page_size,
        "includedData": INCLUDED_ORDER_DATA,
    })


def _listings_request(amazon: AmazonConfig, since: datetime | None) -> PageRequest:
    return PageRequest("GET", f"{LISTINGS_PATH}/{amazon.seller_id}", params={
        "marketplaceIds": amazon.marketplace_id, "includedData": INCLUDED_LISTING_DATA,
        "pageSize": amazon.listings_page_size, "sortBy": "sku", "sortOrder": "ASC",
    })


ENTITY_SPECS: dict[str, AmazonEntity] = {
    # Ordered by lastUpdatedTime: a page bound stops at a prefix and the next run continues ("stop").
    "orders": AmazonEntity(AMAZON_ORDERS, "orderId", True, order_row, _orders_request,
                           NextToken(("orders",), ("pagination", "nextToken"), "paginationToken"),
                           "searchOrders", max_pages=1000),
    "listings": AmazonEntity(AMAZON_LISTINGS, "sku", False, listing_row, _listings_request,
                             NextToken(("items",), ("pagination", "nextToken"), "pageToken"),
                             "searchListingsItems", max_pages=60),  # 1,000 SKUs at 20 a page
}
ENTITIES = tuple(ENTITY_SPECS)


def _since(config: Config, landing: LandingZone, spec: AmazonEntity) -> datetime | None:
    if not spec.incremental:
        return None
    amazon = config.channels.amazon
    return incremental_since(landing, spec.schema, lookback_minutes=amazon.lookback_minutes,
                             backfill_start=amazon.backfill_start)


def _map(records: Iterable[Any], spec: AmazonEntity, rows: list[dict[str, Any]],
         bad: list[QuarantineRecord]) -> None:
    for record in records:
        key = record.get(spec.key_field) if isinstance(record, dict) else None
        try:
            if not isinstance(record, dict):
                raise RecordError(f"record is {type(record).__name__}, not an object")
            rows.append(spec.to_row(record))
        except RecordError as exc:
            bad.append(QuarantineRecord(key, f"{SOURCE}/{spec.schema.entity} {key or '(no key)'}: {exc}", record))


def ingest(
    config: Config,
    entity: str,
    *,
    landing: LandingZone | None = None,
    client: ChannelClient | None = None,
    now: datetime | None = None,
    max_pages: int | None = None,
) -> IngestResult:
    """Fetch what changed since the landed cursor (minus look-back; listings: a snapshot) and land one batch;
    records that cannot be landed go to quarantine with the reason."""
    if entity not in ENTITY_SPECS:
        raise ValueError(f"unknown amazon entity {entity!r}; known: {', '.join(ENTITY_SPECS)}")
    require_enabled(SOURCE, config.channels.amazon.enabled)
    spec = ENTITY_SPECS[entity]
    landing = landing or LandingZone(config.landing_dir)
    fetched_at = now or utcnow()
    since = _since(config, landing, spec)
    own_client = client is None
    client = client or make_client(config)
    retries_before = client.stats.retries
    rows: list[dict[str, Any]] = []
    bad: list[QuarantineRecord] = []
    try:
        pager = paginate(client, spec.first_request(config.channels.amazon, since), spec.paging,
                         operation=spec.operation, max_pages=max_pages or spec.max_pages,
                         on_limit="stop" if spec.incremental else "raise")
        for page in pager:
            _map(page.items, spec, rows, bad)
    finally:
        if own_client:
            client.close()
    return land_and_report(landing, spec.schema, rows, bad, fetched_at=fetched_at, since=since,
                           pages=pager.pages, retries=client.stats.retries - retries_before,
                           truncated=pager.truncated)


def ingest_orders_by_id(config: Config, order_ids: Iterable[str], *, landing: LandingZone | None = None,
                        client: ChannelClient | None = None, now: datetime | None = None) -> IngestResult:
    """getOrder for each named order (a notification's follow-up); lands as a targeted batch that never moves
    the incremental cursor (DECISIONS.md D13)."""
    require_enabled(SOURCE, config.channels.amazon.enabled)
    spec = ENTITY_SPECS["orders"]
    landing = landing or LandingZone(config.landing_dir)
    own_client = client is None
    client = client or make_client(config)
    rows: list[dict[str, Any]] = []
    bad: list[QuarantineRecord] = []
    try:
        for order_id in dict.fromkeys(order_ids):
            answer = client.request("GET", f"{ORDERS_PATH}/{order_id}", operation="getOrder",
                                    params={"includedData": INCLUDED_ORDER_DATA})
            _map([answer.json().get("order")], spec, rows, bad)
    finally:
        if own_client:
            client.close()
    return land_and_report(landing, spec.schema, rows, bad, fetched_at=now or utcnow(), since=None,
                           mode=TARGETED)


# -- notifications (ORDER_CHANGE over SQS) ----------------------------------------------------------------
NOTIFICATIONS_PATH = "/notifications/v1"
ORDER_CHANGE = "ORDER_CHANGE"
SQS_BATCH = 10  # SQS receives and deletes at most 10 messages a call


def subscribe_order_changes(client: ChannelClient, queue_arn: str, name: str = "ichigen") -> dict[str, Any]:
    """createDestination (the SQS queue) then createSubscription(ORDER_CHANGE, payloadVersion 1.0)."""
    destination = client.request("POST", f"{NOTIFICATIONS_PATH}/destinations", operation="createDestination",
                                 json={"name": name, "resourceSpecification": {"sqs": {"arn": queue_arn}}}
                                 ).json()["payload"]
    subscription = client.request(
        "POST", f"{NOTIFICATIONS_PATH}/subscriptions/{ORDER_CHANGE}", operation="createSubscription",
        json={"payloadVersion": "1.0", "destinationId": destination["destinationId"],
              "processingDirective": {"eventFilter": {"eventFilterType": ORDER_CHANGE,
                                                      "orderChangeTypes": ["OrderStatusChange",
                                                                           "BuyerRequestedChange"]}}},
    ).json()["payload"]
    return {"destination": destination, "subscription": subscription}


def sqs_client(amazon: AmazonConfig):
    import boto3  # only the notification path needs it

    return boto3.client("sqs", endpoint_url=amazon.sqs_endpoint_url, region_name=amazon.sqs_region)


def notification_row(message: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    """One amazon/notifications row from an SQS message whose body is an ORDER_CHANGE notification."""
    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        raise RecordError("message body is not JSON") from None
    if not isinstance(body, dict) or body.get("NotificationType") != ORDER_CHANGE:
        raise RecordError(f"not an {ORDER_CHANGE} notification")
    change = (body.get("Payload") or {}).get("OrderChangeNotification") or {}
    return {
        "notification_id": require((body.get("NotificationMetadata") or {}).get("NotificationId"),
                                   field="NotificationMetadata.NotificationId"),
        "message_id": message.get("MessageId"),
        "order_id": require(change.get("AmazonOrderId"), field="AmazonOrderId"),
        "order_status": (change.get("Summary") or {}).get("OrderStatus"),
        "event_time": parse_utc(body.get("EventTime"), field="EventTime"),
        "received_at": received_at,
        "_raw": message.get("Body"),
    }


@dataclass(frozen=True)
class NotificationIngest:
    events: IngestResult  # the landed notifications
    orders: IngestResult | None  # the orders fetched with getOrder (None: nothing to fetch)
    deferred: int  # changed orders beyond the getOrder budget: the next run or the poll takes them


def ingest_notifications(config: Config, *, landing: LandingZone | None = None,
                         client: ChannelClient | None = None, sqs: Any = None, now: datetime | None = None,
                         max_messages: int = 200, visibility_timeout: int = 60,
                         wait_seconds: int = 0) -> NotificationIngest:
    """Receive up to `max_messages` notifications, land them, THEN delete them from the queue (a crash before
    the landing leaves them to reappear after `visibility_timeout`), then getOrder the changed orders.
    `wait_seconds` (0–20): SQS long polling on the first receive — it returns as soon as a message arrives, so a
    loop calling this hears of an order at once without a receive every fraction of a second."""
    require_enabled(SOURCE, config.channels.amazon.enabled)
    amazon = config.channels.amazon
    if not amazon.notifications_queue_url:
        raise IngestionError("amazon: channels.amazon.notifications_queue_url is not set")
    landing = landing or LandingZone(config.landing_dir)
    sqs = sqs or sqs_client(amazon)
    messages: list[dict[str, Any]] = []
    for attempt in range(-(-max_messages // SQS_BATCH)):
        got = sqs.receive_message(QueueUrl=amazon.notifications_queue_url, MaxNumberOfMessages=SQS_BATCH,
                                  WaitTimeSeconds=min(max(wait_seconds, 0), 20) if attempt == 0 else 0,
                                  VisibilityTimeout=visibility_timeout).get("Messages", [])
        messages += got
        if not got:
            break
    received_at = now or utcnow()  # after the receive: a long poll may have waited for the message
    rows: list[dict[str, Any]] = []
    bad: list[QuarantineRecord] = []
    for message in messages:
        try:
            rows.append(notification_row(message, received_at))
        except RecordError as exc:
            key = message.get("MessageId")
            bad.append(QuarantineRecord(key, f"{SOURCE}/notifications {key}: {exc}", message.get("Body") or ""))
    events = land_and_report(landing, AMAZON_NOTIFICATIONS, rows, bad, fetched_at=received_at, since=None)
    for index in range(0, len(messages), SQS_BATCH):  # landed (or quarantined) durably: now they may go
        sqs.delete_message_batch(QueueUrl=amazon.notifications_queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
            for n, m in enumerate(messages[index:index + SQS_BATCH])])
    changed = list(dict.fromkeys(row["order_id"] for row in rows))
    wanted = changed[: amazon.notification_fetch_budget]
    orders = ingest_orders_by_id(config, wanted, landing=landing, client=client, now=received_at) \
        if wanted else None
    return NotificationIngest(events, orders, len(changed) - len(wanted))
