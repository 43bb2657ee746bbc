"""The small REST Admin subset old custom apps still use (Shopify's REST Admin API is legacy since 2024-10).

- `GET /admin/api/2026-10/orders.json` — `limit` (1–250, default 50), `status` (`open` by default, `closed`,
  `cancelled`, `any`), `updated_at_min/max`, `created_at_min/max` (ISO 8601), `order` (`id asc` by default —
  the sandbox's choice —, `updated_at asc|desc`, `created_at asc|desc`, `id desc`). Cursor paging: the answer's
  `Link` header carries `<…orders.json?limit=n&page_info=…>; rel="next"` and `rel="previous"`; a request with
  `page_info` may carry only `limit` besides (as Shopify). The cursor is a keyset position (sort value, id), so
  each order appears exactly once across the pages of an unchanged shop. Bodies are `{"orders": [...]}` in the
  REST shape the webhooks use (numeric ids, `admin_graphql_api_id`, shop-zone timestamps, string prices).
- `POST /admin/api/2026-10/inventory_levels/set.json` `{"inventory_item_id", "location_id", "available"}` →
  `{"inventory_level": {...}}`: sets the absolute quantity (no compare-and-swap: REST has none).
- Auth `X-Shopify-Access-Token`; wrong or missing → 401 with Shopify's body.
- Rate limit: a leaky bucket per token of `bucket_size` calls leaking `leak_per_second` (Standard: 40 and 2/s;
  Plus: 400 and 20/s); every answer carries `X-Shopify-Shop-Api-Call-Limit: n/40`; a full bucket → 429 with
  `Retry-After` (seconds) and Shopify's "Exceeded 2 calls per second" body.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sandbox.shopify_schema import API_VERSION
from sandbox.webhooks import level_payload, order_payload
from sandbox.world import World

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
ORDERS = {"id asc", "id desc", "updated_at asc", "updated_at desc", "created_at asc", "created_at desc"}
STATUSES = {"open", "closed", "cancelled", "any"}
FILTERS = ("status", "updated_at_min", "updated_at_max", "created_at_min", "created_at_max", "order")


@dataclass(frozen=True)
class RestSettings:
    bucket_size: int = 40
    leak_per_second: float = 2.0


class CallBucket:
    """Shopify REST's leaky bucket: each call adds 1; the level leaks at `leak` per second."""

    def __init__(self, size: int, leak: float, clock: Callable[[], float] = time.monotonic):
        self.size, self.leak, self._clock = size, leak, clock
        self._level, self._at = 0.0, clock()
        self._lock = threading.Lock()

    def _drain(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._at) * self.leak)
        self._at = now

    def add(self) -> float | None:
        """Count one call; None when it fits, else the seconds until it would."""
        with self._lock:
            self._drain()
            if self._level + 1 > self.size:
                return (self._level + 1 - self.size) / self.leak
            self._level += 1
            return None

    def header(self) -> str:
        with self._lock:
            self._drain()
            return f"{math.ceil(self._level)}/{self.size}"


def _error(status: int, errors: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    return status, {"errors": errors}, headers or {}


def _time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


class RestAdmin:
    """Answers the REST subset: `handle(method, version, resource, token, query, body, url) -> (status, json,
    headers)`. Transport-free, thread-safe."""

    def __init__(self, world: World, access_token: str, settings: RestSettings | None = None):
        self.world = world
        self.access_token = access_token
        self.settings = settings or RestSettings()
        self._buckets: dict[str, CallBucket] = {}
        self._lock = threading.Lock()
        self.refused = 0  # 429s answered (for tests)

    def bucket(self, token: str) -> CallBucket:
        with self._lock:
            if token not in self._buckets:
                self._buckets[token] = CallBucket(self.settings.bucket_size, self.settings.leak_per_second)
            return self._buckets[token]

    def handle(self, method: str, version: str, resource: str, token: str | None, query: dict[str, str],
               body: Any, url: str) -> tuple[int, Any, dict[str, str]]:
        if token is None or token != self.access_token:
            return _error(401, INVALID_TOKEN)
        bucket = self.bucket(token)
        wait = bucket.add()
        limit_header = {"X-Shopify-Shop-Api-Call-Limit": bucket.header()}
        if wait is not None:
            self.refused += 1
            return _error(429, f"Exceeded {self.settings.leak_per_second:g} calls per second for api client. "
                               "Reduce request rates to resume uninterrupted service.",
                          {**limit_header, "Retry-After": f"{max(wait, 0.1):.1f}"})
        if version != API_VERSION:
            return _error(404, "Not Found", limit_header)
        if method == "GET" and resource == "orders":
            status, payload, headers = self.orders(query, url)
        elif method == "POST" and resource == "inventory_levels/set":
            status, payload, headers = self.set_level(body)
        else:
            status, payload, headers = _error(404, "Not Found")
        return status, payload, {**limit_header, **headers}

    # ------------------------------------------------------------------------------------------- orders
    def orders(self, query: dict[str, str], url: str) -> tuple[int, Any, dict[str, str]]:
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return _error(400, {"limit": "Required parameter missing or invalid"})
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, {"limit": f"must be between 1 and {MAX_LIMIT}"})
        cursor = None
        if "page_info" in query:
            extra = sorted(set(query) - {"page_info", "limit", "fields"})
            if extra:
                return _error(400, {"page_info": f"cannot be passed with {', '.join(extra)}: a cursor keeps the "
                                                 "filters of the first request"})
            cursor = _decode(query["page_info"])
            if cursor is None or not isinstance(cursor.get("f"), dict) or cursor.get("d") not in ("next", "prev"):
                return _error(400, {"page_info": "Invalid value."})
            filters = cursor["f"]
        else:
            filters = {k: query[k] for k in FILTERS if k in query}
        status = filters.get("status", "open")
        order = filters.get("order", "id asc")
        if status not in STATUSES:
            return _error(400, {"status": f"must be one of {', '.join(sorted(STATUSES))}"})
        if order not in ORDERS:
            return _error(400, {"order": f"must be one of {', '.join(sorted(ORDERS))}"})
        bounds: dict[str, datetime] = {}
        for name in ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max"):
            if name in filters:
                parsed = _time(filters[name])
                if parsed is None:
                    return _error(400, {name: "must be an ISO 8601 time with an offset"})
                bounds[name] = parsed
        field_name, direction = order.split()

        def sort_key(o) -> tuple[Any, int]:
            value = o.id if field_name == "id" else getattr(o, field_name).timestamp()
            return (value, o.id)

        def wanted(o) -> bool:
            if status == "open" and (o.closed_at is not None or o.cancelled_at is not None):
                return False
            if status == "closed" and o.closed_at is None:
                return False
            if status == "cancelled" and o.cancelled_at is None:
                return False
            for name, at in bounds.items():
                value = o.updated_at if name.startswith("updated") else o.created_at
                if (name.endswith("min") and value < at) or (name.endswith("max") and value > at):
                    return False
            return True

        with self.world.lock:
            matching = sorted((o for o in self.world.orders if wanted(o)), key=sort_key,
                              reverse=direction == "desc")
            keys = [sort_key(o) for o in matching]
            position = 0
            if cursor is not None:
                key = tuple(cursor["k"])
                beyond = [i for i, k in enumerate(keys) if (k > key if direction == "asc" else k < key)]
                if cursor["d"] == "next":
                    position = beyond[0] if beyond else len(keys)
                else:  # the page that ends just before `key`
                    before = [i for i, k in enumerate(keys) if (k < key if direction == "asc" else k > key)]
                    end = before[-1] + 1 if before else 0
                    position = max(0, end - limit)
            page = matching[position:position + limit]
            body = {"orders": [order_payload(self.world, o) for o in page]}
        links = []
        if page and position > 0:
            links.append(f'<{url}?{urlencode({"limit": limit, "page_info": _encode({"f": filters, "d": "prev", "k": list(sort_key(page[0]))})})}>; rel="previous"')
        if page and position + limit < len(matching):
            links.append(f'<{url}?{urlencode({"limit": limit, "page_info": _encode({"f": filters, "d": "next", "k": list(sort_key(page[-1]))})})}>; rel="next"')
        return 200, body, ({"Link": ", ".join(links)} if links else {})

    # ------------------------------------------------------------------------------------------- stock
    def set_level(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict):
            return _error(400, {"inventory_item_id": "Required parameter missing or invalid"})
        values: dict[str, int] = {}
        for name in ("inventory_item_id", "location_id", "available"):
            value = body.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                return _error(400, {name: "Required parameter missing or invalid"})
            values[name] = value
        with self.world.lock:
            level = self.world.levels.get((values["inventory_item_id"], values["location_id"]))
            if level is None:
                return _error(422, ["Inventory item does not have inventory tracking enabled or is not stocked at "
                                    "this location"])
            self.world.set_available([(values["inventory_item_id"], values["location_id"], values["available"])])
            return 200, {"inventory_level": level_payload(level)}, {}
