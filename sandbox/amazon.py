"""Amazon.co.jp as the Selling Partner API shows it, over the world's `amazon` mall (sandbox.malls).

Operations (paths, parameters and bodies as in the official models in ../shared/reference/amazon/):
- `POST /auth/o2/token` — Login with Amazon: form grant_type=refresh_token, refresh_token, client_id,
  client_secret → {access_token, token_type "bearer", expires_in 3600, refresh_token}. A wrong client →
  401 `invalid_client`; a wrong refresh token → 400 `invalid_grant`.
- every SP-API call needs `x-amz-access-token`: missing/unknown → 403 `Unauthorized` ("revoked, malformed or
  invalid"), expired → 403 `Unauthorized` ("has expired").
- Orders 2026-01-01: `GET /orders/2026-01-01/orders` (searchOrders: exactly one of createdAfter /
  lastUpdatedAfter, a `…Before` at least 2 minutes before now — omitted, it is now − 2 min, frozen into the
  page token —, marketplaceIds, fulfillmentStatuses, maxResultsPerPage ≤ 100, paginationToken) and
  `GET /orders/2026-01-01/orders/{orderId}` (getOrder). Pages are keyset-ordered by (time, orderId).
- Listings Items 2021-08-01: `GET /listings/2021-08-01/items/{sellerId}` (searchListingsItems, pageSize ≤ 20,
  pageToken), `GET …/items/{sellerId}/{sku}` (getListingsItem) and `PATCH …/items/{sellerId}/{sku}`
  (patchListingsItem: `replace` of /attributes/fulfillment_availability sets the absolute quantity,
  /attributes/purchasable_offer the price).
- Feeds 2021-06-30 for JSON_LISTINGS_FEED (sandbox.amazon_feeds): createFeedDocument, the upload to the
  returned URL, createFeed, getFeed (IN_QUEUE → IN_PROGRESS → DONE/FATAL after `feed_processing_seconds`),
  getFeedDocument and the processing report; accepted messages change the listings when processing ends.
- Rate limits: one token bucket per operation with the documented rate and burst (× `rate_scale`, so tests
  need not wait minutes); `x-amzn-RateLimit-Limit` on answers; over it → 429 `QuotaExceeded`.
- Faults (`AmazonFaults`, seeded): 429 bursts, 500/503, slow answers, bodies cut short (the connection ends
  before Content-Length is reached) and a page of a search served again (its items repeat, then paging
  continues) at a configurable rate.

Neutral mall states map to Amazon's `fulfillmentStatus`: ordered and pending_payment → PENDING (a konbini
order stays PENDING until paid), awaiting_shipment → UNSHIPPED, shipped/delivered/returned → SHIPPED (a
delivery shows as packageStatus DELIVERED; Amazon reports returns outside the order), cancelled → CANCELLED.

Sandbox endpoints (no token): `GET /_sandbox/amazon/orders` (the mall's truth), `GET /_sandbox/amazon/listings`
(displayed stock), `POST /_sandbox/amazon/orders` ({"count": n} or {"lines": [{"sku", "quantity"}]}, "at"?),
`POST /_sandbox/amazon/advance` ({"to"?}), `GET /_sandbox/amazon/stats` (requests and faults by kind).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import malls
from sandbox.amazon_feeds import FEEDS_PATH, UPLOAD_PATH, FeedsError, FeedsService, offer_changes
from sandbox.amazon_notifications import NotificationFaults, NotificationPublisher
from sandbox.malls import MallListing, MallOrder
from sandbox.shopify import TrafficLog
from sandbox.world import World

CHANNEL = "amazon"
MARKETPLACE_ID = "A1VC38T7YXB528"
SELLER_ID = "A3SANDBOXSELLER"
DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.sandbox"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_REFRESH_TOKEN = "Atzr|sandbox-refresh-token"
ORDERS_PATH = "/orders/2026-01-01/orders"
LISTINGS_PATH = "/listings/2021-08-01/items"
MAX_ORDERS_PER_PAGE = 100
MAX_LISTINGS_PER_PAGE = 20
MAX_LISTINGS_PAGED = 1000  # searchListingsItems pages through at most 1,000 SKUs
BEFORE_LAG = timedelta(minutes=2)
PRODUCT_TYPE = "SHIRT"

# Documented usage plans (requests per second, burst).
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "searchListingsItems": (5.0, 5),
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "createDestination": (1.0, 5),
    "createSubscription": (1.0, 5),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
}

FULFILLMENT_STATUS = {
    malls.ORDERED: "PENDING", malls.PENDING_PAYMENT: "PENDING", malls.AWAITING_SHIPMENT: "UNSHIPPED",
    malls.SHIPPED: "SHIPPED", malls.DELIVERED: "SHIPPED", malls.RETURNED: "SHIPPED",
    malls.CANCELLED: "CANCELLED",
}
FULFILLMENT_STATUSES = ("PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED",
                        "CANCELLED", "UNFULFILLABLE")
PAYMENT_METHOD = {malls.CARD: "CreditCard", malls.KONBINI: "ConvenienceStore", malls.COD: "CashOnDelivery",
                  malls.BANK: "BankTransfer", malls.PAYPAY: "PayPay"}


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed.astimezone(UTC)


def money(amount: int) -> dict[str, str]:
    return {"amount": str(amount), "currencyCode": "JPY"}


def error_list(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"errors": [error]}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str | None = None):
        super().__init__(message)
        self.status, self.body = status, error_list(code, message, details)


# ------------------------------------------------------------------------------------------------ rendering
def render_order(order: MallOrder, mall: Any) -> dict[str, Any]:
    """One `Order` (Orders API 2026-01-01) with BUYER, RECIPIENT, PROCEEDS, PAYMENT, FULFILLMENT, PACKAGES."""
    buyer = order.buyer
    items = []
    for line in order.lines:
        shipped = line.current_quantity if order.shipped_at else 0
        items.append({
            "orderItemId": f"{order.order_id.replace('-', '')[-8:]}{line.line_no:06d}",
            "quantityOrdered": line.quantity,
            "product": {
                "asin": getattr(mall.by_listing.get(line.listing_id), "asin", None) or "B000000000", "title": line.title, "sellerSku": line.listing_id,
                "condition": {"conditionType": "New"},
                "price": {"unitPrice": money(line.unit_price)},
            },
            "proceeds": {"proceedsTotal": money(line.unit_price * line.current_quantity),
                         "breakdowns": [{"type": "ITEM", "subtotal": money(line.unit_price * line.current_quantity)}]},
            "fulfillment": {"quantityFulfilled": shipped, "quantityUnfulfilled": line.current_quantity - shipped},
        })
    breakdowns = [{"type": "ITEM", "subtotal": money(order.lines_total)},
                  {"type": "SHIPPING", "subtotal": money(order.shipping)}]
    if order.discount:
        breakdowns.append({"type": "DISCOUNT", "subtotal": money(-order.discount)})
    rendered: dict[str, Any] = {
        "orderId": order.order_id,
        "createdTime": iso(order.created_at),
        "lastUpdatedTime": iso(order.updated_at),
        "programs": [],
        "salesChannel": {"channelName": "Amazon.co.jp", "marketplaceId": MARKETPLACE_ID,
                         "marketplaceName": "Amazon.co.jp"},
        "buyer": {"buyerName": f"{buyer.family_name} {buyer.given_name}", "buyerEmail": buyer.email},
        "recipient": {"deliveryAddress": {
            "name": f"{buyer.family_name} {buyer.given_name}", "addressLine1": buyer.address1,
            "addressLine2": buyer.address2, "city": buyer.city, "stateOrRegion": buyer.prefecture,
            "postalCode": buyer.zip, "countryCode": "JP", "phone": buyer.phone, "addressType": "RESIDENTIAL"}},
        "proceeds": {"grandTotal": money(order.total), "breakdowns": breakdowns},
        "payment": {"paymentExecutions": [{"paymentMethod": PAYMENT_METHOD[order.payment_method],
                                           "paymentAmount": money(order.amount_due)}]},
        "fulfillment": {"fulfillmentStatus": FULFILLMENT_STATUS[order.state], "fulfilledBy": "MERCHANT",
                        "fulfillmentServiceLevel": "Standard"},
        "orderItems": items,
    }
    if rendered["recipient"]["deliveryAddress"]["addressLine2"] is None:
        del rendered["recipient"]["deliveryAddress"]["addressLine2"]
    if order.shipped_at is not None:
        rendered["packages"] = [{
            "packageReferenceId": "1", "createdTime": iso(order.shipped_at), "shipTime": iso(order.shipped_at),
            "carrier": "YAMATO", "shippingService": "宅急便", "trackingNumber": order.tracking_number or "",
            "packageStatus": {"status": "DELIVERED" if order.delivered_at else "SHIPPED"},
            "packageItems": [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]} for i in items],
        }]
    return rendered


def render_listing(listing: MallListing, included: set[str]) -> dict[str, Any]:
    """One listings `Item` with the includedData sets asked for."""
    item: dict[str, Any] = {"sku": listing.listing_id}
    if "summaries" in included:
        item["summaries"] = [{
            "marketplaceId": MARKETPLACE_ID, "asin": listing.asin, "productType": PRODUCT_TYPE,
            "conditionType": "new_new", "status": ["BUYABLE", "DISCOVERABLE"] if listing.quantity > 0
            else ["DISCOVERABLE"], "itemName": listing.title, "createdDate": iso(listing.created_at),
            "lastUpdatedDate": iso(listing.updated_at)}]
    if "attributes" in included:
        attributes: dict[str, Any] = {
            "item_name": [{"value": listing.title, "language_tag": "ja_JP", "marketplace_id": MARKETPLACE_ID}],
            "variation_theme": [{"name": listing.variant_label}],
            "child_parent_sku_relationship": [{"child_relationship_type": "variation",
                                               "parent_sku": listing.parent_code,
                                               "marketplace_id": MARKETPLACE_ID}],
            "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": listing.quantity}],
            "purchasable_offer": [{"currency": "JPY", "marketplace_id": MARKETPLACE_ID,
                                   "our_price": [{"schedule": [{"value_with_tax": listing.price}]}]}],
        }
        if listing.jan:
            attributes["externally_assigned_product_identifier"] = [
                {"type": "jan", "value": listing.jan, "marketplace_id": MARKETPLACE_ID}]
        item["attributes"] = attributes
    if "offers" in included:
        item["offers"] = [{"marketplaceId": MARKETPLACE_ID, "offerType": "B2C", "price": money(listing.price)}]
    if "fulfillmentAvailability" in included:
        item["fulfillmentAvailability"] = [{"fulfillmentChannelCode": "DEFAULT", "quantity": listing.quantity}]
    if "issues" in included:
        item["issues"] = []
    return item


# ------------------------------------------------------------------------------------------------ settings
@dataclass
class AmazonFaults:
    """Injected faults: each SP-API request draws once from a seeded RNG; `rate` is the share that misbehaves,
    split over `kinds`. `burst` 429s follow one another once a 429 burst starts."""

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = ("429", "500", "503", "slow", "truncated", "repeat")
    burst: int = 3
    slow_seconds: float = 0.3
    operations: tuple[str, ...] | None = None  # only these operations misbehave (None: all)


@dataclass
class AmazonSettings:
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN
    seller_id: str = SELLER_ID
    token_ttl: float = 3600.0
    rate_scale: float = 1.0  # multiplies every documented rate (tests: 100 → searchOrders 0.56/s)
    faults: AmazonFaults = field(default_factory=AmazonFaults)
    traffic_log: str | os.PathLike[str] | None = None
    sqs_endpoint: str | None = None  # where ORDER_CHANGE notifications go (moto server; None: real AWS)
    notification_faults: NotificationFaults = field(default_factory=NotificationFaults)
    # Seconds from createFeed to DONE (Amazon: minutes; tests and the bench compress it).
    feed_processing_seconds: float = 2.0


class TokenBucket:
    """rate tokens per second, holding `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, float(burst)
        self._tokens, self._at = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


SECRET_FIELDS = ("refresh_token", "client_secret", "access_token")


def mask_secrets(body: Any) -> Any:
    """LWA secrets and tokens masked in a logged body (a JSON object or the token request's form)."""
    if isinstance(body, dict):
        return {k: ("***" if k in SECRET_FIELDS else v) for k, v in body.items()}
    if isinstance(body, str) and "=" in body and "client_secret" in body:  # the LWA form
        form = {k: v[-1] for k, v in parse_qs(body).items()}
        return "&".join(f"{k}={'***' if k in SECRET_FIELDS else v}" for k, v in form.items())
    return body


# ------------------------------------------------------------------------------------------------ the API
def _encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise ApiError(400, "InvalidInput", "Invalid pagination token.") from None
    if not isinstance(state, dict):
        raise ApiError(400, "InvalidInput", "Invalid pagination token.")
    return state


class AmazonAPI:
    """Transport-free handlers: `call(operation, token, fn)` wraps auth, quota and faults."""

    def __init__(self, world: World, settings: AmazonSettings):
        self.world = world
        self.mall = world.mall(CHANNEL)
        self.settings = settings
        self.tokens: dict[str, float] = {}  # access token → expiry (monotonic)
        self.buckets = {op: TokenBucket(rate * settings.rate_scale, burst)
                        for op, (rate, burst) in RATE_LIMITS.items()}
        self.fault_rng = random.Random(f"amazon-faults:{settings.faults.seed}")
        self._fault_lock = threading.Lock()
        self._burst_left = 0
        self.stats: Counter[str] = Counter()
        self.notifications = NotificationPublisher(self.mall, settings.seller_id, MARKETPLACE_ID,
                                                   settings.sqs_endpoint, settings.notification_faults)
        self.feeds = FeedsService(settings.seller_id, settings.feed_processing_seconds, self.apply_offer,
                                  lambda: iso(self.world.clock()))

    # -- auth ----------------------------------------------------------------------------------------
    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        s = self.settings
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type", "error_description": "The authorization grant type is "
                                                                                 "not supported."}
        if form.get("client_id") != s.client_id or form.get("client_secret") != s.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        if form.get("refresh_token") != s.refresh_token:
            return 400, {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter"
                                                                        " : refresh_token"}
        token = "Atza|" + secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + s.token_ttl
        self.stats["tokens_issued"] += 1
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": int(s.token_ttl),
                     "refresh_token": s.refresh_token}

    def check_token(self, token: str | None) -> None:
        expiry = self.tokens.get(token or "")
        if expiry is None:
            raise ApiError(403, "Unauthorized", "Access to requested resource is denied.",
                           "The access token you provided is revoked, malformed or invalid.")
        if time.monotonic() >= expiry:
            raise ApiError(403, "Unauthorized", "Access to requested resource is denied.",
                           "The access token you provided has expired.")

    # -- faults --------------------------------------------------------------------------------------
    def draw_fault(self, operation: str) -> str | None:
        faults = self.settings.faults
        with self._fault_lock:
            if faults.operations is not None and operation not in faults.operations:
                return None
            if self._burst_left > 0:
                self._burst_left -= 1
                return "429"
            if faults.rate <= 0 or not faults.kinds or self.fault_rng.random() >= faults.rate:
                return None
            kind = self.fault_rng.choice(faults.kinds)
            if kind == "repeat" and operation not in ("searchOrders", "searchListingsItems"):
                kind = "500"
            if kind == "429":
                self._burst_left = max(0, faults.burst - 1)
            return kind

    # -- orders --------------------------------------------------------------------------------------
    def search_orders(self, q: dict[str, list[str]], repeat: bool) -> dict[str, Any]:
        token = _one(q, "paginationToken")
        state = _decode_token(token) if token else self._new_order_search(q)
        field_name = "created_at" if state["field"] == "created" else "updated_at"
        statuses = set(state.get("statuses") or [])
        repeat = repeat and bool(token)
        start_key = state.get("prev") if repeat else state.get("after")
        with self.world.lock:
            rows = [o for o in self.mall.orders_in_window(field_name, parse_time(state["from"]), parse_time(state["to"]))
                    if not statuses or FULFILLMENT_STATUS[o.state] in statuses]
            keyed = [([iso(getattr(o, field_name)), o.order_id], o) for o in rows]
            page = [(k, o) for k, o in keyed if start_key is None or k > start_key][: state["size"]]
            body: dict[str, Any] = {"orders": [render_order(o, self.mall) for _k, o in page]}
            if repeat:  # the previous page again; a new nonce moves the token on so the client is not stuck
                following = {**state, "nonce": state.get("nonce", 0) + 1}
            elif page and any(k > page[-1][0] for k, _o in keyed):
                following = {**state, "after": page[-1][0], "prev": state.get("after")}
            else:
                following = None
        if following is not None:
            body["pagination"] = {"nextToken": _encode_token(following)}
        body[f"{state['field']}Before"] = state["to"]
        return body

    def _new_order_search(self, q: dict[str, list[str]]) -> dict[str, Any]:
        created, updated = _one(q, "createdAfter"), _one(q, "lastUpdatedAfter")
        if bool(created) == bool(updated):
            raise ApiError(400, "InvalidInput", "Exactly one of createdAfter and lastUpdatedAfter must be specified.")
        if _one(q, "createdBefore") and updated or _one(q, "lastUpdatedBefore") and created:
            raise ApiError(400, "InvalidInput", "createdBefore goes with createdAfter, lastUpdatedBefore with "
                                                "lastUpdatedAfter.")
        field_name = "created" if created else "lastUpdated"
        latest = self.world.clock() - BEFORE_LAG
        try:
            start = parse_time(created or updated)
            before = _one(q, f"{field_name}Before")
            end = parse_time(before) if before else latest
        except ValueError as exc:
            raise ApiError(400, "InvalidInput", f"Invalid date: {exc}") from None
        if end > latest:
            raise ApiError(400, "InvalidInput", f"{field_name}Before must be at least 2 minutes before the time "
                                                "of the request.")
        if start >= end:
            raise ApiError(400, "InvalidInput", f"{field_name}After must be before {field_name}Before.")
        marketplaces = _many(q, "marketplaceIds")
        if marketplaces and MARKETPLACE_ID not in marketplaces:
            raise ApiError(400, "InvalidInput", "Invalid marketplaceIds for this seller.")
        statuses = _many(q, "fulfillmentStatuses")
        unknown = [s for s in statuses if s not in FULFILLMENT_STATUSES]
        if unknown:
            raise ApiError(400, "InvalidInput", f"Invalid fulfillmentStatuses: {', '.join(unknown)}")
        size = int(_one(q, "maxResultsPerPage") or MAX_ORDERS_PER_PAGE)
        if not 1 <= size <= MAX_ORDERS_PER_PAGE:
            raise ApiError(400, "InvalidInput", "maxResultsPerPage must be between 1 and 100.")
        return {"field": field_name, "from": iso(start), "to": iso(end), "statuses": statuses, "size": size,
                "after": None}

    def get_order(self, order_id: str) -> dict[str, Any]:
        with self.world.lock:
            order = self.mall.by_order.get(order_id)
            if order is None:
                raise ApiError(404, "NotFound", f"Order {order_id} not found.")
            return {"order": render_order(order, self.mall)}

    # -- listings ------------------------------------------------------------------------------------
    def _seller(self, seller_id: str) -> None:
        if seller_id != self.settings.seller_id:
            raise ApiError(403, "Unauthorized", "Access to requested resource is denied.",
                           "The seller is not authorized for this application.")

    def search_listings(self, seller_id: str, q: dict[str, list[str]], repeat: bool) -> dict[str, Any]:
        self._seller(seller_id)
        _require_marketplace(q)
        included = set(_many(q, "includedData") or ["summaries"])
        size = int(_one(q, "pageSize") or 10)
        if not 1 <= size <= MAX_LISTINGS_PER_PAGE:
            raise ApiError(400, "InvalidInput", "pageSize must be between 1 and 20.")
        token = _one(q, "pageToken")
        state = _decode_token(token) if token else {"after": None, "prev": None}
        identifiers = set(_many(q, "identifiers"))
        with self.world.lock:
            # Named SKUs are found anywhere in the catalogue; paging reaches only the first 1,000.
            if identifiers:
                listings = [self.mall.by_listing[i] for i in sorted(identifiers) if i in self.mall.by_listing]
            else:
                listings = sorted(self.mall.listings, key=lambda s: s.listing_id)[:MAX_LISTINGS_PAGED]
            start_after = state.get("prev") if repeat and token else state.get("after")
            page = [s for s in listings if start_after is None or s.listing_id > start_after][:size]
            items = [render_listing(s, included) for s in page]
            body: dict[str, Any] = {"numberOfResults": len(listings), "items": items}
            if repeat and token:
                body["pagination"] = {"nextToken": _encode_token({**state, "nonce": state.get("nonce", 0) + 1})}
            elif page and page[-1].listing_id != listings[-1].listing_id:
                body["pagination"] = {"nextToken": _encode_token({"after": page[-1].listing_id,
                                                                  "prev": state.get("after")})}
        return body

    def get_listing(self, seller_id: str, sku: str, q: dict[str, list[str]]) -> dict[str, Any]:
        self._seller(seller_id)
        _require_marketplace(q)
        with self.world.lock:
            listing = self.mall.by_listing.get(sku)
            if listing is None:
                raise ApiError(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace {MARKETPLACE_ID}")
            return render_listing(listing, set(_many(q, "includedData") or ["summaries"]))

    def patch_listing(self, seller_id: str, sku: str, q: dict[str, list[str]], body: Any) -> dict[str, Any]:
        self._seller(seller_id)
        _require_marketplace(q)
        if not isinstance(body, dict) or not body.get("productType") or not isinstance(body.get("patches"), list) \
                or not body["patches"]:
            raise ApiError(400, "InvalidInput", "Request body must have productType and at least one patch.")
        submission = secrets.token_hex(16)
        with self.world.lock:
            listing = self.mall.by_listing.get(sku)
            if listing is None:
                return {"sku": sku, "status": "INVALID", "submissionId": submission, "issues": [
                    {"code": "4000001", "message": f"SKU '{sku}' does not exist for this seller.",
                     "severity": "ERROR", "attributeNames": []}]}
            quantity, price, problem = offer_changes(body["patches"])
            if problem is not None:
                return {"sku": sku, "status": "INVALID", "submissionId": submission, "issues": [
                    {"code": "90220", "message": problem, "severity": "ERROR",
                     "attributeNames": _attribute_names(body["patches"])}]}
            self._set_offer(listing, quantity, price)
        self.stats["patches_applied"] += 1
        return {"sku": sku, "status": "ACCEPTED", "submissionId": submission, "issues": []}


    def _set_offer(self, listing: MallListing, quantity: int | None, price: int | None) -> None:
        """Quantity and/or price as Amazon now shows them (the caller holds the world's lock)."""
        stamp = self.world.clock()
        if quantity is not None:
            self.mall.set_quantity(listing.listing_id, quantity, stamp)
        if price is not None:
            listing.price = price
            listing.updated_at = max(listing.updated_at, stamp)

    def apply_offer(self, sku: str, quantity: int | None, price: int | None) -> bool:
        """One accepted feed message applied to the mall; False when the seller has no such SKU."""
        with self.world.lock:
            listing = self.mall.by_listing.get(sku)
            if listing is None:
                return False
            self._set_offer(listing, quantity, price)
        return True

    def create_destination(self, body: Any) -> dict[str, Any]:
        try:
            return self.notifications.create_destination(body)
        except ValueError as exc:
            raise ApiError(400, "InvalidInput", str(exc)) from None

    def create_subscription(self, notification_type: str, body: Any) -> dict[str, Any]:
        try:
            return self.notifications.create_subscription(notification_type, body)
        except ValueError as exc:
            raise ApiError(400, "InvalidInput", str(exc)) from None
        except FileExistsError as exc:
            raise ApiError(409, "Conflict", str(exc)) from None


def _attribute_names(patches: list[Any]) -> list[str]:
    """The attributes a refused patch named (`/attributes/purchasable_offer` → purchasable_offer)."""
    return sorted({p["path"].rsplit("/", 1)[-1] for p in patches if isinstance(p, dict) and isinstance(p.get("path"), str)})


def _one(q: dict[str, list[str]], name: str) -> str | None:
    values = q.get(name)
    return values[-1] if values else None


def _many(q: dict[str, list[str]], name: str) -> list[str]:
    return [v for raw in q.get(name, []) for v in raw.split(",") if v]


def _require_marketplace(q: dict[str, list[str]]) -> None:
    marketplaces = _many(q, "marketplaceIds")
    if not marketplaces:
        raise ApiError(400, "InvalidInput", "Missing required parameter: marketplaceIds.")
    if marketplaces != [MARKETPLACE_ID]:
        raise ApiError(400, "InvalidInput", f"Invalid marketplaceIds: {','.join(marketplaces)}.")


# ------------------------------------------------------------------------------------------------ the app
def create_app(world: World, settings: AmazonSettings | None = None) -> Starlette:
    """The Starlette app; `app.state.api` is the AmazonAPI (its buckets, stats and tokens)."""
    settings = settings or AmazonSettings()
    api = AmazonAPI(world, settings)
    log = TrafficLog(settings.traffic_log, CHANNEL, mask_secrets) if settings.traffic_log else None
    if log is not None:  # each published notification as an exchange, so conformance checks its body
        api.notifications.on_publish = lambda queue, body: log.record("POST", f"/_sqs/{queue}", {}, body, 200, {})

    async def respond(request: Request, status: int, payload: Any, headers: dict[str, str] | None = None,
                      request_body: Any = None, truncated: bool = False) -> Response:
        if log is not None:
            log.record(request.method, request.url.path, dict(request.query_params), request_body, status, payload)
        content = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"x-amzn-RequestId": secrets.token_hex(8), **(headers or {})}
        if truncated:
            # The connection ends before the body promised by Content-Length is complete.
            return _TruncatedResponse(content, status, headers)
        return Response(content, status_code=status, headers=headers, media_type="application/json")

    async def token_endpoint(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        status, payload = api.issue_token(form)
        return await respond(request, status, payload, request_body=raw)

    def endpoint(operation: str, handler, status: int = 200):
        rate = RATE_LIMITS[operation][0] * settings.rate_scale

        async def run(request: Request) -> Response:
            api.stats[f"requests:{operation}"] += 1
            raw = await request.body()
            body: Any = _json_or_text(raw) if raw else None
            limit_header = {"x-amzn-RateLimit-Limit": f"{rate:g}"}
            try:
                api.check_token(request.headers.get("x-amz-access-token"))
                fault = api.draw_fault(operation)
                if fault:
                    api.stats[f"fault:{fault}"] += 1
                if fault == "429" or not api.buckets[operation].take():
                    api.stats["throttled"] += 1
                    raise ApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
                if fault in ("500", "503"):
                    raise ApiError(int(fault), "InternalFailure" if fault == "500" else "ServiceUnavailable",
                                   "We encountered an internal error. Please try again." if fault == "500"
                                   else "Service temporarily unavailable. Please try again.")
                if fault == "slow":
                    await asyncio.sleep(settings.faults.slow_seconds)
                query = parse_qs(request.url.query, keep_blank_values=False)
                params = {**request.path_params, "base_url": str(request.base_url)}
                payload = await run_in_threadpool(handler, params, query, body, fault == "repeat")
            except FeedsError as exc:
                return await respond(request, exc.status, error_list(exc.code, str(exc)), limit_header,
                                     request_body=body)
            except ApiError as exc:
                headers = {} if exc.status in (403, 429, 500, 503) else limit_header
                return await respond(request, exc.status, exc.body, headers, request_body=body)
            return await respond(request, status, payload, limit_header, request_body=body,
                                 truncated=fault == "truncated")

        return run

    async def feed_document_content(request: Request) -> Response:
        """The pre-signed upload / download address (S3's part: no SP-API token, no SP-API quota)."""
        document_id, signature = request.path_params["document_id"], request.query_params.get("X-Amz-Signature")
        raw = await request.body()
        try:
            if request.method == "PUT":
                api.feeds.upload(document_id, signature, raw)
                content = b""
            else:
                content = api.feeds.download(document_id, signature)
        except FeedsError as exc:
            if log is not None:
                log.record(request.method, request.url.path, {}, None, exc.status, str(exc))
            return Response(f"<Error><Code>{exc.code}</Code><Message>{exc}</Message></Error>", exc.status,
                            media_type="application/xml")
        if log is not None:  # the documents travel here, so conformance checks them against their schemas
            log.record(request.method, request.url.path, {}, _json_or_text(raw) if raw else None, 200,
                       _json_or_text(content) if content else None)
        return Response(content, 200, media_type="application/json" if content else None)

    async def truth_orders(request: Request) -> Response:
        with world.lock:
            return JSONResponse(api.mall.orders_truth())

    async def truth_listings(request: Request) -> Response:
        with world.lock:
            return JSONResponse(api.mall.stock_truth())

    async def place(request: Request) -> Response:
        payload = await request.json() if await request.body() else {}
        at = parse_time(payload["at"]) if payload.get("at") else None
        if payload.get("lines") is not None:
            order = world.place_mall_order(CHANNEL, [(li["sku"], int(li.get("quantity", 1)))
                                                     for li in payload["lines"]], at=at)
            placed = [order] if order is not None else []
        else:
            placed = world.place_mall_orders(CHANNEL, int(payload.get("count", 1)), at=at)
        return JSONResponse([o.truth() for o in placed])

    async def advance(request: Request) -> Response:
        payload = await request.json() if await request.body() else {}
        world.advance(parse_time(payload["to"]) if payload.get("to") else None)
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> Response:
        return JSONResponse(dict(api.stats))

    routes = [
        Route("/auth/o2/token", token_endpoint, methods=["POST"]),
        Route(ORDERS_PATH, endpoint("searchOrders", lambda p, q, b, r: api.search_orders(q, r)), methods=["GET"]),
        Route(ORDERS_PATH + "/{order_id}", endpoint("getOrder", lambda p, q, b, r: api.get_order(p["order_id"])),
              methods=["GET"]),
        Route(LISTINGS_PATH + "/{seller_id}", endpoint(
            "searchListingsItems", lambda p, q, b, r: api.search_listings(p["seller_id"], q, r)), methods=["GET"]),
        Route(LISTINGS_PATH + "/{seller_id}/{sku}", endpoint(
            "getListingsItem", lambda p, q, b, r: api.get_listing(p["seller_id"], p["sku"], q)), methods=["GET"]),
        Route(LISTINGS_PATH + "/{seller_id}/{sku}", endpoint(
            "patchListingsItem", lambda p, q, b, r: api.patch_listing(p["seller_id"], p["sku"], q, b)),
            methods=["PATCH"]),
        Route("/notifications/v1/destinations", endpoint(
            "createDestination", lambda p, q, b, r: api.create_destination(b)), methods=["POST"]),
        Route("/notifications/v1/subscriptions/{notification_type}", endpoint(
            "createSubscription", lambda p, q, b, r: api.create_subscription(p["notification_type"], b)),
            methods=["POST"]),
        Route(FEEDS_PATH + "/documents", endpoint(
            "createFeedDocument", lambda p, q, b, r: api.feeds.create_document(b, p["base_url"]), 201),
            methods=["POST"]),
        Route(FEEDS_PATH + "/documents/{document_id}", endpoint(
            "getFeedDocument", lambda p, q, b, r: api.feeds.get_document(p["document_id"], p["base_url"])),
            methods=["GET"]),
        Route(FEEDS_PATH + "/feeds", endpoint(
            "createFeed", lambda p, q, b, r: api.feeds.create_feed(b, MARKETPLACE_ID), 202), methods=["POST"]),
        Route(FEEDS_PATH + "/feeds/{feed_id}", endpoint("getFeed", lambda p, q, b, r: api.feeds.get_feed(p["feed_id"])),
              methods=["GET"]),
        Route(UPLOAD_PATH + "/{document_id}", feed_document_content, methods=["PUT", "GET"]),
        Route("/_sandbox/amazon/orders", truth_orders, methods=["GET"]),
        Route("/_sandbox/amazon/orders", place, methods=["POST"]),
        Route("/_sandbox/amazon/advance", advance, methods=["POST"]),
        Route("/_sandbox/amazon/listings", truth_listings, methods=["GET"]),
        Route("/_sandbox/amazon/stats", stats, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.api = api
    app.state.world = world
    return app


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _TruncatedResponse(Response):
    """Sends half the body under a Content-Length for all of it, then ends: the client sees a cut connection."""

    def __init__(self, content: bytes, status: int, headers: dict[str, str]):
        super().__init__(content, status_code=status, headers=headers, media_type="application/json")

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        raise ConnectionAbortedError("sandbox fault: body cut short")


def serve_amazon(world: World, port: int = 0, settings: AmazonSettings | None = None):
    """Serve the world's Amazon mall on 127.0.0.1:`port` in a background thread (a sandbox.server.ServerHandle
    that also stops the notification sender)."""
    from sandbox.server import ServerHandle

    class AmazonServerHandle(ServerHandle):
        def stop(self, timeout: float = 5.0) -> None:
            self.app.state.api.feeds.close()
            self.app.state.api.notifications.close(timeout)
            super().stop(timeout)

    app = create_app(world, settings)
    try:
        return AmazonServerHandle(app, port=port)
    except OSError:
        app.state.api.notifications.close()
        raise
