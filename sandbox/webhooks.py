"""Shopify webhooks for the sandbox shop: subscriptions, signed deliveries, retries and injected faults.

`webhookSubscriptionCreate(topic:, webhookSubscription: {uri})` (2026-10: `uri`; the deprecated `callbackUrl`
is accepted too) stores a subscription; `webhookSubscriptions(first:, topics:)` lists them. When the world
changes, a delivery is queued for every subscription of the matching topic:

| world change                                   | topic (X-Shopify-Topic)                   |
|------------------------------------------------|-------------------------------------------|
| an order is placed                             | ORDERS_CREATE (`orders/create`)           |
| an order is paid, shipped, refunded            | ORDERS_UPDATED (`orders/updated`)         |
| an order is cancelled                          | ORDERS_CANCELLED and ORDERS_UPDATED       |
| a level's `available` changes (sale, restock, `inventorySetQuantities`, admin) | INVENTORY_LEVELS_UPDATE |
| a bulk operation ends (completed, failed, canceled; sandbox.shopify_bulk) | BULK_OPERATIONS_FINISH (`bulk_operations/finish`) |

The body is REST-shaped JSON as Shopify's webhooks send it (numeric `id`, `admin_graphql_api_id`,
`updated_at` in the shop's zone, `total_price` as a string, `line_items`, …), built from the world at the moment
of the change. `bulk_operations/finish` carries `admin_graphql_api_id` (the BulkOperation's GID), `completed_at`,
`created_at` (shop zone), `error_code` and `status` and `type` in lower case (`completed`, `mutation`): it says
that the operation ended, not where its file is — the app reads `bulkOperation(id:)` for the url. Headers: `X-Shopify-Topic`, `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw body keyed
with the app's client secret), `X-Shopify-Webhook-Id` (the same on every retry and duplicate),
`X-Shopify-Shop-Domain`, `X-Shopify-API-Version`, `X-Shopify-Triggered-At`, `X-Shopify-Event-Id`.

A background worker POSTs due deliveries (a bounded pending set, earliest due first). A non-2xx answer, a
timeout (`timeout`, 5 s like Shopify) or a refused connection is retried after `retry_backoff × 2^n` seconds
(capped at `retry_backoff_max`), up to `max_attempts` attempts in all (Shopify: 1 + 8 over 4 hours). Faults,
decided per delivery by a seeded RNG: `drop_rate` (never sent: Shopify's delivery is at-least-once *and* can
be missed), `duplicate_rate` (sent twice with the same webhook id), `delay_rate` (held back `delay_seconds`,
so deliveries arrive out of order). Same seed + same world changes → the same ids, faults and bodies.

Deliveries are not GraphQL exchanges, so the traffic log (conformance) does not record them.
`GET /_sandbox/webhooks` lists subscriptions and deliveries (id, topic, resource, attempts, status).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from graphql import GraphQLError

from sandbox.shopify_schema import API_VERSION
from sandbox.shopify_search import paginate
from sandbox.world import InventoryLevel, Order, World, gid, iso_z

log = logging.getLogger("sandbox.webhooks")
SHOP_ZONE = ZoneInfo("Asia/Tokyo")
DEFAULT_SECRET = "shpss_sandbox_webhook_secret"

# GraphQL enum → the REST topic name in X-Shopify-Topic
TOPICS = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "ORDERS_CANCELLED": "orders/cancelled",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
}
_WORLD_TOPICS = {
    "order_created": ("ORDERS_CREATE",),
    "order_updated": ("ORDERS_UPDATED",),
    "order_cancelled": ("ORDERS_CANCELLED", "ORDERS_UPDATED"),
    "inventory_available": ("INVENTORY_LEVELS_UPDATE",),
}


def sign(secret: str, body: bytes) -> str:
    """X-Shopify-Hmac-Sha256: base64 of HMAC-SHA256(body) keyed with the client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _shop_time(ts: datetime | None) -> str | None:
    """REST timestamps are in the shop's zone with an offset: 2026-11-23T12:00:00+09:00."""
    return ts.astimezone(SHOP_ZONE).isoformat(timespec="seconds") if ts is not None else None


def _yen(amount: int) -> str:
    return f"{amount}"


def order_payload(world: World, o: Order) -> dict[str, Any]:
    """The REST order as orders/create, orders/updated and orders/cancelled carry it (the fields that matter)."""
    refunded = o.total if o.financial_status == "REFUNDED" else sum(
        li.unit_price * (li.quantity - li.current_quantity) for li in o.lines) \
        if o.financial_status == "PARTIALLY_REFUNDED" else 0
    customer = world.customer(o.customer_id) if o.customer_id else None
    return {
        "id": o.id,
        "admin_graphql_api_id": o.gid,
        "name": o.name,
        "order_number": o.number,
        "email": o.email,
        "created_at": _shop_time(o.created_at),
        "updated_at": _shop_time(o.updated_at),
        "processed_at": _shop_time(o.processed_at),
        "cancelled_at": _shop_time(o.cancelled_at),
        "cancel_reason": o.cancel_reason.lower() if o.cancel_reason else None,
        "closed_at": _shop_time(o.closed_at),
        "financial_status": o.financial_status.lower(),
        "fulfillment_status": "fulfilled" if o.fulfillment_status == "FULFILLED" else None,
        "currency": "JPY",
        "total_price": _yen(o.total),
        "subtotal_price": _yen(o.subtotal),
        "total_tax": _yen(o.tax),
        "total_discounts": _yen(o.discount),
        "total_shipping_price_set": {"shop_money": {"amount": _yen(o.shipping), "currency_code": "JPY"},
                                     "presentment_money": {"amount": _yen(o.shipping), "currency_code": "JPY"}},
        "current_total_price": _yen(0 if o.cancelled_at else o.total - refunded),
        "taxes_included": True,
        "payment_gateway_names": [o.gateway],
        "discount_codes": [{"code": o.discount_code, "amount": _yen(o.discount), "type": "fixed_amount"}]
        if o.discount_code else [],
        "customer": {"id": customer.id, "admin_graphql_api_id": customer.gid, "email": customer.email}
        if customer else None,
        "line_items": [{
            "id": li.id,
            "admin_graphql_api_id": li.gid,
            "variant_id": li.variant_id,
            "product_id": li.product_id,
            "sku": li.sku,
            "title": li.title,
            "variant_title": li.variant_title,
            "quantity": li.quantity,
            "current_quantity": li.current_quantity,
            "price": _yen(li.unit_price),
        } for li in o.lines],
        "shipping_lines": [{"title": "通常配送", "price": _yen(o.shipping)}],
    }


def bulk_operation_payload(node: dict[str, Any], ended_at: datetime) -> dict[str, Any]:
    """bulk_operations/finish: which operation ended, when, and how (REST style: snake case, lower case)."""
    created = datetime.fromisoformat(node["createdAt"].replace("Z", "+00:00"))
    return {
        "admin_graphql_api_id": node["id"],
        "completed_at": _shop_time(ended_at),
        "created_at": _shop_time(created),
        "error_code": node["errorCode"].lower() if node.get("errorCode") else None,
        "status": node["status"].lower(),
        "type": node["type"].lower(),
    }


def level_payload(level: InventoryLevel) -> dict[str, Any]:
    """inventory_levels/update: the level after the change."""
    return {
        "inventory_item_id": level.inventory_item_id,
        "location_id": level.location_id,
        "available": level.available,
        "updated_at": _shop_time(level.updated_at),
        "admin_graphql_api_id": level.gid,
    }


@dataclass
class WebhookSettings:
    """How deliveries behave. Defaults are Shopify's 5 s timeout with a fast retry schedule for the sandbox."""

    secret: str = DEFAULT_SECRET
    timeout: float = 5.0
    max_attempts: int = 9  # 1 + 8 retries, as Shopify
    retry_backoff: float = 0.1
    retry_backoff_max: float = 5.0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_rate: float = 0.0
    delay_seconds: float = 0.5
    duplicate_after: float = 0.05  # seconds between a delivery and its duplicate
    max_pending: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_rate", "duplicate_rate", "delay_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.max_attempts < 1 or self.timeout <= 0 or self.retry_backoff < 0 or self.max_pending < 1:
            raise ValueError("max_attempts ≥ 1, timeout > 0, retry_backoff ≥ 0 and max_pending ≥ 1")


@dataclass
class Subscription:
    id: int
    topic: str
    uri: str
    created_at: datetime
    name: str | None = None

    @property
    def gid(self) -> str:
        return gid("WebhookSubscription", self.id)


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    topic: str  # the GraphQL enum
    uri: str
    subscription_id: int
    resource: str
    body: bytes
    triggered_at: str
    status: str = "pending"  # pending | delivered | failed (attempts exhausted) | dropped | overflow
    attempts: int = 0
    sends: int = 0  # attempts + the injected duplicate
    duplicated: bool = False
    delayed: bool = False
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: str | None = None
    _open: int = field(default=0, repr=False)  # scheduled sends not yet made

    def summary(self) -> dict[str, Any]:
        return {"webhook_id": self.webhook_id, "event_id": self.event_id, "topic": self.topic,
                "header_topic": TOPICS[self.topic], "resource": self.resource, "uri": self.uri,
                "status": self.status, "attempts": self.attempts, "sends": self.sends,
                "duplicated": self.duplicated, "delayed": self.delayed, "last_status": self.last_status,
                "last_error": self.last_error, "triggered_at": self.triggered_at, "delivered_at": self.delivered_at}


class WebhookHub:
    """Subscriptions and the delivery worker for one world. `close()` stops the worker and detaches."""

    def __init__(self, world: World, settings: WebhookSettings | None = None, *, api_version: str = API_VERSION):
        self.world = world
        self.settings = settings or WebhookSettings()
        self.api_version = api_version
        self._rng = random.Random(self.settings.seed)
        self._lock = threading.Condition()
        self._subscriptions: list[Subscription] = []
        self._next_subscription = 1_400_000_000 + self._rng.randint(0, 99_999)
        self.deliveries: list[Delivery] = []
        self._heap: list[tuple[float, int, Delivery, bool]] = []  # (due, seq, delivery, is_duplicate)
        self._seq = itertools.count()
        self._in_flight = 0
        self._available = {key: lv.available for key, lv in world.levels.items()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        world.listeners.append(self._on_change)

    # ------------------------------------------------------------------------------------- subscriptions
    def subscribe(self, topic: str, uri: str, name: str | None = None) -> Subscription:
        created = self.world.clock()  # before taking the hub's lock: the world's lock always comes first
        with self._lock:
            self._next_subscription += 1
            sub = Subscription(self._next_subscription, topic, uri, created, name)
            self._subscriptions.append(sub)
        self._start()
        return sub

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions)

    def graphql_roots(self) -> dict[str, Any]:
        """Root fields for the sandbox's GraphQL executor (merged into the shop's root value)."""
        return {"webhookSubscriptionCreate": self._create_resolver, "webhookSubscriptions": self._list_resolver,
                "webhookSubscription": self._one_resolver}

    def subscription_node(self, s: Subscription) -> dict[str, Any]:
        return {
            "__typename": "WebhookSubscription",
            "id": s.gid,
            "legacyResourceId": str(s.id),
            "topic": s.topic,
            "uri": s.uri,
            "callbackUrl": s.uri,
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": s.uri},
            "format": "JSON",
            "filter": None,
            "name": s.name,
            "includeFields": [],
            "metafieldNamespaces": [],
            "metafields": [],
            "createdAt": iso_z(s.created_at),
            "updatedAt": iso_z(s.created_at),
            "apiVersion": {"handle": self.api_version, "displayName": self.api_version, "supported": True},
        }

    def _create_resolver(self, info, topic: str, webhookSubscription: dict[str, Any]):
        data = webhookSubscription or {}
        uri = data.get("uri") or data.get("callbackUrl")
        where = ["webhookSubscription", "uri" if "uri" in data or "callbackUrl" not in data else "callbackUrl"]
        errors: list[dict[str, Any]] = []
        if not uri:
            errors.append({"field": where, "message": "Address can't be blank"})
        elif not (uri.startswith("http://") or uri.startswith("https://")):
            errors.append({"field": where, "message": "The sandbox delivers to http(s) addresses only"})
        elif data.get("format") not in (None, "JSON"):
            errors.append({"field": ["webhookSubscription", "format"],
                           "message": "The sandbox delivers JSON only"})
        elif any(s.topic == topic and s.uri == uri for s in self.subscriptions()):
            errors.append({"field": where, "message": "Address for this topic has already been taken"})
        if errors:
            return {"webhookSubscription": None, "userErrors": errors}
        return {"webhookSubscription": self.subscription_node(self.subscribe(topic, uri, data.get("name"))),
                "userErrors": []}

    def _list_resolver(self, info, topics: list[str] | None = None, uri: str | None = None,
                       callbackUrl: str | None = None, sortKey: str = "CREATED_AT", **args):
        if args.get("query") or args.get("format"):
            raise GraphQLError("The ichigen sandbox does not implement webhookSubscriptions(query:, format:).",
                               extensions={"code": "SANDBOX_NOT_IMPLEMENTED"})
        args.pop("query", None)
        args.pop("format", None)
        address = uri or callbackUrl
        rows = [s for s in self.subscriptions()
                if (not topics or s.topic in topics) and (address is None or s.uri == address)]
        sort = (lambda s: s.id) if sortKey == "ID" else (lambda s: iso_z(s.created_at))
        return paginate(rows, sort, lambda s: s.id, args, self.subscription_node, "webhookSubscriptions")

    def _one_resolver(self, info, id: str):
        for s in self.subscriptions():
            if s.gid == id:
                return self.subscription_node(s)
        return None

    def bulk_operation_finished(self, node: dict[str, Any]) -> None:
        """A bulk operation ended (called by sandbox.shopify_bulk, outside the world's lock): queue a
        bulk_operations/finish delivery for every BULK_OPERATIONS_FINISH subscription."""
        subs = [s for s in self.subscriptions() if s.topic == "BULK_OPERATIONS_FINISH"]
        if not subs or self._stop.is_set():
            return
        payload = bulk_operation_payload(node, self.world.clock())
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        for sub in subs:
            self._enqueue(sub, "BULK_OPERATIONS_FINISH", node["id"], body)

    # ------------------------------------------------------------------------------------- world changes
    def _on_change(self, kind: str, record: Any) -> None:
        """Called by the world under its lock: build the payload now (a snapshot), queue the deliveries."""
        if kind == "inventory_touched":
            key = (record.inventory_item_id, record.location_id)
            if self._available.get(key) == record.available:
                return  # committed/on_hand moved, available did not: no inventory_levels/update
            self._available[key] = record.available
            kind, payload, resource = "inventory_available", level_payload(record), \
                gid("InventoryItem", record.inventory_item_id)
        elif kind in ("order_created", "order_updated", "order_cancelled"):
            payload, resource = order_payload(self.world, record), record.gid
        else:
            return
        subs = self.subscriptions()
        if not subs:
            return
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        for topic in _WORLD_TOPICS[kind]:
            for sub in (s for s in subs if s.topic == topic):
                self._enqueue(sub, topic, resource, body)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _enqueue(self, sub: Subscription, topic: str, resource: str, body: bytes) -> None:
        s = self.settings
        with self._lock:
            now = time.monotonic()
            d = Delivery(self._uuid(), self._uuid(), topic, sub.uri, sub.id, resource, body,
                         datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"))
            drop, dup, delay = self._rng.random() < s.drop_rate, self._rng.random() < s.duplicate_rate, \
                self._rng.random() < s.delay_rate
            self.deliveries.append(d)
            if drop:
                d.status = "dropped"
                return
            if len(self._heap) + 2 > s.max_pending:
                d.status = "overflow"  # the queue is bounded: the event is missed, the poll must catch it
                return
            due = now + (s.delay_seconds if delay else 0.0)
            d.delayed = delay
            self._push(due, d, False)
            if dup:
                d.duplicated = True
                self._push(due + s.duplicate_after, d, True)
            self._lock.notify_all()

    def _push(self, due: float, d: Delivery, duplicate: bool) -> None:
        d._open += 1
        heapq.heappush(self._heap, (due, next(self._seq), d, duplicate))

    # ------------------------------------------------------------------------------------- the worker
    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._client = httpx.Client(timeout=self.settings.timeout)
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._heap:
                    self._lock.wait(0.2)
                    continue
                due = self._heap[0][0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._lock.wait(min(wait, 0.2))
                    continue
                _, _, d, duplicate = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                self._send(d, duplicate)
            except Exception:  # noqa: BLE001 — a worker hiccup must not stop deliveries
                log.exception("webhook delivery %s failed unexpectedly", d.webhook_id)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._lock.notify_all()

    def _headers(self, d: Delivery) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": TOPICS[d.topic],
            "X-Shopify-Hmac-Sha256": sign(self.settings.secret, d.body),
            "X-Shopify-Webhook-Id": d.webhook_id,
            "X-Shopify-Event-Id": d.event_id,
            "X-Shopify-Shop-Domain": self.world.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Triggered-At": d.triggered_at,
            "User-Agent": "Shopify-Captain-Hook",
        }

    def _send(self, d: Delivery, duplicate: bool) -> None:
        assert self._client is not None
        status, error = None, None
        try:
            response = self._client.post(d.uri, content=d.body, headers=self._headers(d))
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        with self._lock:
            d._open -= 1
            d.sends += 1
            if duplicate:  # the duplicate is a fire-and-forget second copy, never retried
                if ok and d.status != "delivered":
                    d.status, d.delivered_at = "delivered", iso_z(datetime.now(UTC))
                return
            d.attempts += 1
            d.last_status, d.last_error = status, error
            if ok:
                d.status, d.delivered_at = "delivered", iso_z(datetime.now(UTC))
            elif d.attempts >= self.settings.max_attempts:
                if d.status != "delivered":
                    d.status = "failed"
            else:
                s = self.settings
                backoff = min(s.retry_backoff * (2 ** (d.attempts - 1)), s.retry_backoff_max)
                self._push(time.monotonic() + backoff, d, False)

    # ------------------------------------------------------------------------------------- observing
    def pending(self) -> int:
        with self._lock:
            return len(self._heap) + self._in_flight

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is queued, scheduled for retry or in flight. False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._heap or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    def summary(self) -> dict[str, Any]:
        with self._lock:
            subs = [{"id": s.gid, "topic": s.topic, "uri": s.uri} for s in self._subscriptions]
            deliveries = [d.summary() for d in self.deliveries]
        return {"subscriptions": subs, "deliveries": deliveries, "pending": self.pending()}

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._client is not None:
            self._client.close()
        with self.world.lock:
            if self._on_change in self.world.listeners:
                self.world.listeners.remove(self._on_change)
