"""Each API's own throttle signals, as small strategy objects the request loop consults.

HTTP-level signals every channel shares (429 + Retry-After, 503) are handled by the request loop itself.
A strategy adds what one API does differently:

- `pace(operation)` — seconds to wait *before* sending, from what the API last told us (proactive pacing);
- `answered(operation)` — the request `pace` was called for has its answer (or failed): whatever `pace` held
  back for it is free again;
- `inspect(response, operation)` — look at a 2xx answer: `Signal.retry(after)` when the API throttled us
  without an HTTP error (Shopify GraphQL answers 200 with `THROTTLED`), `Signal.fail(reason)` when the body
  cannot be used, None when it is fine.

A strategy holds state learnt from responses (the last cost bucket), so like the rate limiter it is shared
per channel through `shared_throttle`: ingestion and reverse sync pace against the same view of the bucket.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

MAX_PACE_SECONDS = 60.0


@dataclass(frozen=True)
class Signal:
    retry_after: float | None = None
    error: str | None = None

    @classmethod
    def retry(cls, after: float) -> Signal:
        return cls(retry_after=max(0.0, after))

    @classmethod
    def fail(cls, reason: str) -> Signal:
        return cls(error=reason)


class ThrottleStrategy:
    """No API-specific signals (plain REST APIs whose limits show as 429)."""

    name = "http"

    def pace(self, operation: str) -> float:
        return 0.0

    def answered(self, operation: str) -> None:
        return None

    def inspect(self, response: httpx.Response, operation: str) -> Signal | None:
        return None


class ShopifyGraphQLThrottle(ThrottleStrategy):
    """Shopify Admin GraphQL: a leaky bucket of query-cost points per app and store.

    Every answer carries `extensions.cost {requestedQueryCost, actualQueryCost, throttleStatus
    {maximumAvailable, currentlyAvailable, restoreRate}}`. Over budget, Shopify answers HTTP 200 with
    `errors[].extensions.code == "THROTTLED"`: we wait (requestedQueryCost − currentlyAvailable) / restoreRate
    and retry. Before each request we also wait if the last known bucket (refilled at restoreRate since we saw
    it) cannot cover what this operation cost last time, so a steady loop rarely hits THROTTLED at all.
    Calls in flight at once (several threads, D101) each reserve their cost when paced, until their answer's
    status replaces the estimate: without that, every thread sees the same free points, all go, and the
    bucket answers THROTTLED to most of them. A call that the server has counted but whose answer has not
    arrived yet is counted twice for that moment — the estimate errs towards waiting. Answers may arrive out of
    order; of two snapshots the newer is the lower once both are refilled to now, so the lower one is kept.
    Any other GraphQL error (MAX_COST_EXCEEDED, ACCESS_DENIED, a field error) fails the call: landing a
    partial `data` silently would lose records.
    """

    name = "shopify-graphql-cost"

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._status: tuple[float, float, float, float] | None = None  # available, rate, maximum, seen at
        self._cost: dict[str, float] = {}
        self._reserved = 0.0  # points held by calls paced but not yet answered (all threads)
        self._unpriced: Counter[str] = Counter()  # calls in flight whose operation had no known cost when paced
        self._held = threading.local()  # what the current thread's call holds (a thread runs one call at a time)
        self.throttled = 0  # THROTTLED answers seen (for tests and logs)

    def pace(self, operation: str) -> float:
        """Seconds to wait before this call; its cost is reserved until `answered` (or its answer's status)."""
        with self._lock:
            self._release_locked()  # a call paced again (a retry) holds one reservation, not two
            cost = self._cost.get(operation)
            if cost is None or self._status is None:
                # Not priced yet (the first calls of an operation): it goes, and holds what the first answer
                # teaches this operation costs, so calls paced after that answer count it.
                self._unpriced[operation] += 1
                self._held.entry = (operation, None)
                return 0.0
            _, rate, maximum, _ = self._status
            free = self._refilled_locked(self._clock()) - self._held_points_locked()
            need = min(cost, maximum)
            self._reserved += need
            self._held.entry = (operation, need)
        if free >= need or rate <= 0:
            return 0.0
        return min(MAX_PACE_SECONDS, (need - free) / rate)

    def answered(self, operation: str) -> None:
        with self._lock:
            self._release_locked()

    def _refilled_locked(self, now: float) -> float:
        """The points the last status said were available, refilled at its rate up to `now` (at most the maximum)."""
        available, rate, maximum, seen = self._status
        return min(maximum, available + rate * max(0.0, now - seen))

    def _held_points_locked(self) -> float:
        return self._reserved + sum(self._cost.get(op, 0.0) * n for op, n in self._unpriced.items())

    def _release_locked(self) -> None:
        entry = getattr(self._held, "entry", None)
        if entry is None:
            return
        operation, points = entry
        if points is None:
            self._unpriced[operation] -= 1
            if self._unpriced[operation] <= 0:
                del self._unpriced[operation]
        else:
            self._reserved = max(0.0, self._reserved - points)
        self._held.entry = None

    def _observe(self, operation: str, cost: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
        requested = _number(cost.get("requestedQueryCost"))
        status = cost.get("throttleStatus") or {}
        available = _number(status.get("currentlyAvailable"))
        rate = _number(status.get("restoreRate"))
        maximum = _number(status.get("maximumAvailable"))
        with self._lock:
            if requested is not None:
                self._cost[operation] = requested
            if available is not None and rate is not None:
                now = self._clock()
                if self._status is not None:
                    # Answers of calls in flight can arrive out of order: an older snapshot, refilled to now,
                    # is never below a newer one (the bucket only lost points between them), so the lower of
                    # the two is the newer — keep it, or an earlier answer arriving last undoes a later call.
                    available = min(available, self._refilled_locked(now))
                self._status = (available, rate, maximum if maximum is not None else available, now)
                self._release_locked()  # this call is in the status now; atomically, so no one sees neither
        return requested, available, rate

    def inspect(self, response: httpx.Response, operation: str) -> Signal | None:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Signal.fail(f"body is not JSON: {response.text[:200]!r}")
        if not isinstance(body, dict):
            return Signal.fail(f"body is not a GraphQL response object: {str(body)[:200]!r}")
        cost = (body.get("extensions") or {}).get("cost") or {}
        requested, available, rate = self._observe(operation, cost) if isinstance(cost, dict) else (None,) * 3
        errors = body.get("errors") or []
        if not errors:
            if "data" not in body:
                return Signal.fail("GraphQL response has neither data nor errors")
            return None
        codes = [((e or {}).get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)]
        if "THROTTLED" in codes:
            with self._lock:
                self.throttled += 1
            if requested is not None and available is not None and rate:
                return Signal.retry((requested - available) / rate)
            return Signal.retry(1.0)
        described = "; ".join(
            f"[{code}] {(e or {}).get('message', '')}" if code else str((e or {}).get("message", e))
            for code, e in zip(codes, errors, strict=False)
        )
        return Signal.fail(f"GraphQL errors: {described[:500]}")


class ShopifyThrottle(ShopifyGraphQLThrottle):
    """Shopify Admin, whichever of its APIs a request goes to:

    - `…/graphql.json`: the GraphQL cost bucket (ShopifyGraphQLThrottle);
    - other `/admin/api/…json` (the legacy REST subset): the call-limit leaky bucket. Every answer carries
      `X-Shopify-Shop-Api-Call-Limit: n/40`; the bucket leaks `size / 20` calls a second (40 → 2/s, Plus 400 →
      20/s). Before a REST call we wait until the last known level, leaked since, leaves `REST_HEADROOM` calls
      free, so a steady loop rarely meets the 429 (which the request loop honours with its Retry-After);
    - anything else (a bulk operation's JSONL on a storage URL): no signal.
    """

    name = "shopify"
    REST_HEADROOM = 1

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self._rest: tuple[float, float, float] | None = None  # level, size, seen at
        self._rest_operations: set[str] = set()

    def rest_level_now(self) -> float | None:
        with self._lock:
            if self._rest is None:
                return None
            level, size, seen = self._rest
        return max(0.0, level - (size / 20.0) * max(0.0, self._clock() - seen))

    def pace(self, operation: str) -> float:
        delay = super().pace(operation)
        if operation not in self._rest_operations:
            return delay
        level = self.rest_level_now()
        with self._lock:
            size = self._rest[1] if self._rest else None
        if level is None or size is None:
            return delay
        over = level + 1 + self.REST_HEADROOM - size
        return max(delay, min(MAX_PACE_SECONDS, over / (size / 20.0)) if over > 0 else 0.0)

    def inspect(self, response: httpx.Response, operation: str) -> Signal | None:
        path = response.request.url.path if response.request is not None else ""
        if path.endswith("/graphql.json"):
            return super().inspect(response, operation)
        if "/admin/api/" in path:
            self.observe_rest(response, operation)
        return None

    def observe_rest(self, response: httpx.Response, operation: str) -> None:
        """Remember the REST call limit an answer reported (2xx and 429 alike)."""
        header = response.headers.get("X-Shopify-Shop-Api-Call-Limit", "")
        used, _, size = header.partition("/")
        level, total = _number(used), _number(size)
        with self._lock:
            self._rest_operations.add(operation)
            if level is not None and total:
                self._rest = (level, total, self._clock())


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


_THROTTLES: dict[str, ThrottleStrategy] = {}
_THROTTLES_LOCK = threading.Lock()


def shared_throttle(channel: str, factory: Callable[[], ThrottleStrategy]) -> ThrottleStrategy:
    """The process-wide throttle strategy of `channel`, created with `factory` on first use."""
    with _THROTTLES_LOCK:
        strategy = _THROTTLES.get(channel)
        if strategy is None:
            strategy = _THROTTLES[channel] = factory()
        return strategy


def reset_shared_throttles() -> None:
    with _THROTTLES_LOCK:
        _THROTTLES.clear()
