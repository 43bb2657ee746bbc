"""Shopify webhooks: a receiver that lands every delivery durably before it answers, and the follow-up that
fetches just what changed (DECISIONS.md D13).

    app = create_receiver(landing_root, client_secret, shop_domain="ichigen-select.myshopify.com")
    with serve_receiver(landing_root, client_secret, port=0) as receiver:
        receiver.url + "/webhooks/shopify"          # the address to subscribe with webhookSubscriptionCreate
    results = fetch_changed(config)                 # orders / inventory levels named by events not yet followed up

`POST /webhooks/shopify`:
1. the HMAC: base64(HMAC-SHA256(raw body, client secret)) must equal `X-Shopify-Hmac-Sha256`
   (`hmac.compare_digest`; several secrets may be given while one is rotated). Missing or wrong → 401, nothing
   lands. A delivery for another shop (`X-Shopify-Shop-Domain`) → 401 as well.
2. de-duplication on `X-Shopify-Webhook-Id` (the same on every redelivery): the ids seen are read back from the
   landed `shopify/webhook_events` batches of the last `dedup_days` days when the receiver starts, so a restart
   keeps de-duplicating. A redelivery answers 200 and lands nothing.
3. the event lands as its own immutable batch under `shopify/webhook_events/date=…/` (D4: temp file, fsync,
   rename) *before* the answer: once Shopify has its 200 the event is on disk. `_raw` is the body exactly as
   signed. Writing one small Parquet file takes milliseconds, well inside Shopify's 5 s.
4. an unknown topic, or a body that is not JSON, still lands and answers 200: a 4xx would only make Shopify
   retry and, after 8 failures, drop the subscription; what we do not understand yet is kept, not lost.
   A signed delivery without `X-Shopify-Webhook-Id` or `X-Shopify-Topic` is malformed → 400.

`fetch_changed` turns events into targeted fetches through the ordinary GraphQL path (`ingestion.shopify`): the
orders named by order events (`orders(query: "id:1 OR id:2 …")`, ≤ 250 ids a query, paged within the cost
limit, line items completed) land as a normal `shopify/orders` batch with the poll's schema and mapper; the
inventory items named by `inventory_levels/update` land as a `shopify/inventory_levels` batch for just them.
Those batches are marked `mode="targeted"` and never move the incremental cursor, so the poll stays a complete
backstop for missed deliveries. Events not yet followed up (`pending_events`: no landed version of the resource
as new as the event) are added to every call, so a crash between landing an event and fetching heals itself.

`bulk_operations/finish` events land like any other (resource_gid = the BulkOperation's GID); a bulk
operation's wait reads them to end early (ingestion.shopify_bulk.FinishWatch).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ichigen.config import Config
from ingestion import shopify
from ingestion.common import IngestResult, RecordError, parse_utc, utcnow
from ingestion.errors import IngestionError
from ingestion.landing import TARGETED, LandingZone
from ingestion.schemas import SHOPIFY_WEBHOOK_EVENTS

log = logging.getLogger("ingestion.webhooks")

SOURCE, ENTITY = SHOPIFY_WEBHOOK_EVENTS.source, SHOPIFY_WEBHOOK_EVENTS.entity
WEBHOOK_PATH = "/webhooks/shopify"
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled", "orders/paid",
                          "orders/fulfilled", "orders/partially_fulfilled", "orders/edited"})
INVENTORY_TOPICS = frozenset({"inventory_levels/update", "inventory_levels/connect"})
# Read by waits on bulk operations (ingestion.shopify_bulk.FinishWatch), not followed up by a fetch.
BULK_TOPICS = frozenset({"bulk_operations/finish"})
KNOWN_TOPICS = ORDER_TOPICS | INVENTORY_TOPICS | BULK_TOPICS
MAX_IDS_PER_QUERY = 250  # Shopify: arrays in any input ≤ 250; we keep a search string to the same bound
PENDING_WINDOW = timedelta(days=7)


# ------------------------------------------------------------------------------------------------ HMAC
def signature(secret: str, body: bytes) -> str:
    """What Shopify puts in X-Shopify-Hmac-Sha256 for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secrets: Sequence[str], body: bytes, header: str | None) -> bool:
    """True when `header` is the HMAC of the raw `body` under one of `secrets` (constant-time compare)."""
    if not header:
        return False
    given = header.strip().encode()
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(signature(secret, body).encode(), given)
    return ok


# ------------------------------------------------------------------------------------------------ events
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _header_time(value: str | None) -> datetime | None:
    """X-Shopify-Triggered-At carries nanoseconds (…27.877041743Z); keep microseconds."""
    if not value:
        return None
    try:
        return parse_utc(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00"), field="triggered_at")
    except RecordError:
        return None


def _gid(kind: str, value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return f"gid://shopify/{kind}/{value}"
    return None


def event_row(headers: Mapping[str, str], body: bytes, received_at: datetime) -> dict[str, Any]:
    """The shopify/webhook_events row for one delivery (headers lower-cased or not)."""
    h = {k.lower(): v for k, v in headers.items()}
    topic = h.get("x-shopify-topic")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    payload = payload if isinstance(payload, dict) else {}
    resource, location = None, None
    if topic in ORDER_TOPICS or (topic or "").startswith("orders/"):
        resource = payload.get("admin_graphql_api_id") or _gid("Order", payload.get("id"))
    elif topic in INVENTORY_TOPICS or (topic or "").startswith("inventory_levels/"):
        resource = _gid("InventoryItem", payload.get("inventory_item_id"))
        location = _gid("Location", payload.get("location_id"))
    else:
        resource = payload.get("admin_graphql_api_id") if isinstance(payload.get("admin_graphql_api_id"), str) \
            else None
    try:
        updated = parse_utc(payload.get("updated_at"), field="updated_at")
    except RecordError:
        updated = None
    return {
        "webhook_id": h.get("x-shopify-webhook-id"),
        "event_id": h.get("x-shopify-event-id"),
        "topic": topic,
        "shop_domain": h.get("x-shopify-shop-domain"),
        "api_version": h.get("x-shopify-api-version"),
        "triggered_at": _header_time(h.get("x-shopify-triggered-at")),
        "received_at": received_at,
        "resource_gid": resource if isinstance(resource, str) else None,
        "location_gid": location,
        "resource_updated_at": updated,
        "_raw": body.decode("utf-8", "replace"),
    }


class WebhookEventLog:
    """The landed webhook events of one landing zone: de-duplication by webhook id, and the durable write."""

    def __init__(self, landing: LandingZone, dedup_days: int = 3):
        self.landing = landing
        self.dedup_days = dedup_days
        self._lock = threading.Lock()
        self._seen: set[str] | None = None

    def _load_seen(self) -> set[str]:
        """Webhook ids landed in the last `dedup_days` days (Shopify retries for 4 h; we keep a margin)."""
        floor = (utcnow() - timedelta(days=self.dedup_days)).strftime("%Y-%m-%d")
        with self.landing.reading("webhook de-dup"):  # a compaction must not remove a listed batch (D160)
            files = [p for p in self.landing.batch_files(SOURCE, ENTITY) if p.parent.name[len("date="):] >= floor]
            if not files:
                return set()
            ids = pl.scan_parquet(files, hive_partitioning=False).select("webhook_id").collect()
        return {i for i in ids.get_column("webhook_id").to_list() if i}

    def seen(self, webhook_id: str) -> bool:
        with self._lock:
            if self._seen is None:
                self._seen = self._load_seen()
            return webhook_id in self._seen

    def land(self, row: dict[str, Any]) -> bool:
        """Land the event unless its webhook id has landed already. True when it landed now."""
        with self._lock:  # one writer at a time: two copies of one delivery never both land
            if self._seen is None:
                self._seen = self._load_seen()
            if row["webhook_id"] in self._seen:
                return False
            s = SHOPIFY_WEBHOOK_EVENTS
            self.landing.write_batch(SOURCE, ENTITY, [row], schema=s.columns, cursor_field=s.cursor_field,
                                     fetched_at=row["received_at"])
            self._seen.add(row["webhook_id"])
            return True


# ------------------------------------------------------------------------------------------------ receiver
def create_receiver(
    landing_root: str | Path,
    client_secret: str | Sequence[str],
    shop_domain: str | None = None,
    *,
    path: str = WEBHOOK_PATH,
    on_landed: Callable[[dict[str, Any]], None] | None = None,
    dedup_days: int = 3,
) -> Starlette:
    """The webhook receiver app. `client_secret`: the app's client secret (or several, during a rotation).
    `shop_domain`: accept deliveries for this shop only (None: any). `on_landed(row)` runs after the 200 has
    been sent, for each newly landed event (e.g. to trigger `fetch_changed`); its failure loses nothing, since
    `pending_events` finds the event again. `app.state.events` is the WebhookEventLog; `app.state.stats` counts
    outcomes."""
    secrets = [client_secret] if isinstance(client_secret, str) else list(client_secret)
    if not secrets or not all(secrets):
        raise ValueError("a webhook receiver needs the app's client secret")
    events = WebhookEventLog(LandingZone(Path(landing_root)), dedup_days=dedup_days)
    stats = {"landed": 0, "duplicate": 0, "unauthorized": 0, "malformed": 0}

    async def receive(request: Request) -> Response:
        body = await request.body()
        if not verify(secrets, body, request.headers.get("x-shopify-hmac-sha256")):
            stats["unauthorized"] += 1
            return JSONResponse({"error": "invalid or missing X-Shopify-Hmac-Sha256"}, status_code=401)
        if shop_domain is not None and request.headers.get("x-shopify-shop-domain") != shop_domain:
            stats["unauthorized"] += 1
            return JSONResponse({"error": "delivery for another shop"}, status_code=401)
        row = event_row(request.headers, body, utcnow())
        if not row["webhook_id"] or not row["topic"]:
            stats["malformed"] += 1
            return JSONResponse({"error": "X-Shopify-Webhook-Id and X-Shopify-Topic are required"}, status_code=400)
        if row["topic"] not in KNOWN_TOPICS:
            log.warning("webhook %s: topic %s is not followed up; landed as is", row["webhook_id"], row["topic"])
        landed = await run_in_threadpool(events.land, row)
        stats["landed" if landed else "duplicate"] += 1
        task = BackgroundTask(on_landed, row) if landed and on_landed is not None else None
        return JSONResponse({"webhook_id": row["webhook_id"], "status": "landed" if landed else "duplicate"},
                            background=task)

    app = Starlette(routes=[Route(path, receive, methods=["POST"])])
    app.state.events = events
    app.state.stats = stats
    return app


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handlers (they belong to the main thread)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn versions
        return None


class ReceiverHandle:
    """A receiver served in a background thread: `.url`, `.webhook_url`, `.port`, `.app`, `.stop()`."""

    def __init__(self, app: Starlette, port: int = 0, host: str = "127.0.0.1", start_timeout: float = 10.0):
        self.app, self.host = app, host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=2)
        self._server = _ThreadServer(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"webhook-receiver-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the webhook receiver on {host}:{self.port} did not start")
            time.sleep(0.005)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> ReceiverHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_receiver(landing_root: str | Path, client_secret: str | Sequence[str], shop_domain: str | None = None,
                   *, port: int = 0, host: str = "127.0.0.1", **kw: Any) -> ReceiverHandle:
    """`create_receiver(...)` served by uvicorn on host:port (0 = a free port) in a background thread."""
    return ReceiverHandle(create_receiver(landing_root, client_secret, shop_domain, **kw), port=port, host=host)


# ------------------------------------------------------------------------------------------------ subscribing
DEFAULT_TOPICS = ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "INVENTORY_LEVELS_UPDATE",
                  "BULK_OPERATIONS_FINISH")

SUBSCRIPTIONS_QUERY = """
query IchigenWebhookSubscriptions($uri: String!) {
  webhookSubscriptions(first: 100, uri: $uri) {
    nodes { id topic uri }
  }
}
"""

SUBSCRIPTION_CREATE = """
mutation IchigenWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""


def subscribe(config: Config, uri: str, topics: Sequence[str] = DEFAULT_TOPICS, *,
              client: shopify.ChannelClient | None = None) -> list[dict[str, Any]]:
    """Make sure the shop delivers `topics` to `uri` (2026-10: `WebhookSubscriptionInput.uri`): lists what is
    subscribed for the address and creates only what is missing, so a rerun changes nothing. Returns every
    subscription for the address ({id, topic, uri}). A userError raises IngestionError."""
    own_client = client is None
    client = client or shopify.make_client(config)
    path = shopify.graphql_path(config.channels.shopify.api_version)
    try:
        def call(document: str, variables: dict[str, Any], operation: str) -> dict[str, Any]:
            body = client.request("POST", path, operation=operation,
                                  json={"query": document, "variables": variables}).json()
            if body.get("errors"):
                raise IngestionError(f"shopify {operation}: {body['errors']}")
            return body["data"]

        have = call(SUBSCRIPTIONS_QUERY, {"uri": uri}, "webhook_subscriptions")["webhookSubscriptions"]["nodes"]
        for topic in topics:
            if any(s["topic"] == topic for s in have):
                continue
            made = call(SUBSCRIPTION_CREATE, {"topic": topic, "uri": uri}, "webhook_subscription_create")
            payload = made["webhookSubscriptionCreate"]
            if payload["userErrors"]:
                raise IngestionError(f"shopify webhookSubscriptionCreate {topic}: {payload['userErrors']}")
            have.append(payload["webhookSubscription"])
        return have
    finally:
        if own_client:
            client.close()


# ------------------------------------------------------------------------------------------------ follow-up
def landed_events(landing: LandingZone) -> pl.DataFrame:
    """Every landed webhook event, one row per webhook id (the first landing wins)."""
    with landing.reading("landed webhook events"):
        frame = landing.landed(SOURCE, ENTITY).collect()
    return frame.sort("received_at").unique("webhook_id", keep="first", maintain_order=True)


def pending_events(landing: LandingZone, *, now: datetime | None = None,
                   window: timedelta = PENDING_WINDOW) -> pl.DataFrame:
    """Order and inventory events received within `window` whose resource has no landed version as new as the
    event (`updated_at >= resource_updated_at`, from any batch: poll or targeted). These still need a fetch."""
    floor = (now or utcnow()) - window
    with landing.reading("pending webhook events"):  # the events and the landed versions, one consistent listing
        events = landing.landed(SOURCE, ENTITY).filter(
            (pl.col("received_at") >= floor) & pl.col("resource_gid").is_not_null()
        ).collect()
        if events.height == 0:
            return events
        orders = events.filter(pl.col("topic").is_in(sorted(ORDER_TOPICS)))
        levels = events.filter(pl.col("topic").is_in(sorted(INVENTORY_TOPICS)))
        out = []
        if orders.height:
            have = landing.landed("shopify", "orders").group_by("order_id").agg(
                pl.col("updated_at").max().alias("_have")).collect()
            out.append(_not_followed(orders.join(have, left_on="resource_gid", right_on="order_id", how="left")))
        if levels.height:
            have = landing.landed("shopify", "inventory_levels").group_by("inventory_item_id", "location_id").agg(
                pl.col("updated_at").max().alias("_have")).collect()
            joined = levels.join(have, left_on=["resource_gid", "location_gid"],
                                 right_on=["inventory_item_id", "location_id"], how="left")
            out.append(_not_followed(joined))
        if not out:
            return events.clear()
        return pl.concat(out, how="vertical_relaxed")


def _not_followed(joined: pl.DataFrame) -> pl.DataFrame:
    missing = pl.col("_have").is_null()
    stale = pl.col("resource_updated_at").is_not_null() & (pl.col("_have") < pl.col("resource_updated_at"))
    return joined.filter(missing | stale).drop("_have")


def _rows(events: Iterable[Mapping[str, Any]] | pl.DataFrame | None) -> list[Mapping[str, Any]]:
    if events is None:
        return []
    if isinstance(events, pl.DataFrame):
        return events.to_dicts()
    return list(events)


def fetch_changed(
    config: Config,
    events: Iterable[Mapping[str, Any]] | pl.DataFrame | None = None,
    *,
    landing: LandingZone | None = None,
    client: shopify.ChannelClient | None = None,
    now: datetime | None = None,
    include_pending: bool = True,
) -> list[IngestResult]:
    """Fetch exactly the orders and inventory items the events name (plus every event not yet followed up,
    unless `include_pending=False`) and land them as targeted `shopify/orders` and `shopify/inventory_levels`
    batches. Returns one IngestResult per entity fetched (none when there was nothing to fetch)."""
    landing = landing or LandingZone(config.landing_dir)
    todo = _rows(events)
    if include_pending:
        todo += _rows(pending_events(landing, now=now))
    order_ids = sorted({e["resource_gid"] for e in todo
                        if e.get("topic") in ORDER_TOPICS and e.get("resource_gid")})
    item_ids = sorted({e["resource_gid"] for e in todo
                       if e.get("topic") in INVENTORY_TOPICS and e.get("resource_gid")})
    results: list[IngestResult] = []
    if not order_ids and not item_ids:
        return results
    own_client = client is None
    client = client or shopify.make_client(config)
    try:
        if order_ids:
            results.append(shopify.ingest_by_ids(config, "orders", order_ids, landing=landing, client=client,
                                                 now=now))
        if item_ids:
            results.append(shopify.ingest_by_ids(config, "inventory_levels", item_ids, landing=landing,
                                                 client=client, now=now))
    finally:
        if own_client:
            client.close()
    return results


__all__ = [
    "BULK_TOPICS",
    "INVENTORY_TOPICS",
    "KNOWN_TOPICS",
    "ORDER_TOPICS",
    "TARGETED",
    "WEBHOOK_PATH",
    "ReceiverHandle",
    "WebhookEventLog",
    "create_receiver",
    "event_row",
    "fetch_changed",
    "landed_events",
    "pending_events",
    "serve_receiver",
    "signature",
    "subscribe",
    "verify",
]
