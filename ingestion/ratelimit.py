"""Client-side rate limits: one budget per channel, shared by everything in the process.

Each channel has a channel-wide token bucket (e.g. Shopify: `channels.shopify.requests_per_second`) and may
have per-operation buckets on top (Amazon SP-API limits each operation separately: searchOrders 0.0056/s
burst 20, getOrder 0.5/s burst 30, …). A request takes a token from its operation's bucket (if any) and from
the channel's. The limiters live in a process-wide registry keyed by channel, so ingestion and reverse sync
(which imports `ingestion.http`) draw from one budget per channel instead of each believing it has the whole.

Built on pyrate-limiter's `TokenBucket` (GCRA, constant state per bucket; no background leak thread).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from pyrate_limiter import Limiter, Rate, SingleBucketFactory, StateBucket, TokenBucket

from ingestion.errors import ChannelRateLimited

# GCRA keeps an emission interval per unit; expressing the rate per 10^9 ms keeps fractional rates such as
# 0.0056/s (one call every ~179 s) exact to the microsecond instead of rounding them to whole calls per second.
_SCALE_MS = 1_000_000_000


@dataclass(frozen=True)
class RateSpec:
    """`per_second` sustained, with up to `burst` requests at once when the bucket is full."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError(f"rate must be > 0 per second, got {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")

    def rate(self) -> Rate:
        limit = max(1, round(self.per_second * _SCALE_MS / 1000))
        return Rate(limit, _SCALE_MS, burst=self.burst)


def _limiter(spec: RateSpec) -> Limiter:
    bucket = StateBucket([spec.rate()], algorithm=TokenBucket())
    return Limiter(SingleBucketFactory(bucket, schedule_leak=False), buffer_ms=2)


class ChannelRateLimiter:
    """The client-side budget of one channel: a channel-wide bucket plus optional per-operation buckets.

    `answer_gap` (seconds, optional): the next request also waits until that long after the previous answer
    arrived. An API that counts requests per second with no burst (RMS, ~1/s) refuses a request that *arrives*
    less than a second after the previous one; spacing starts alone cannot promise that, because the time from
    our send to the server's check varies (network, a loaded server). The server checked the previous request
    before it answered, so a send at least `answer_gap` after that answer arrives at least `answer_gap` after the
    previous check, whatever the jitter (D102). Holds for one request at a time, which is how pushes run.
    """

    def __init__(self, channel: str, default: RateSpec, operations: Mapping[str, RateSpec] | None = None,
                 answer_gap: float | None = None):
        self.channel = channel
        self.default = default
        self.answer_gap = answer_gap
        self._answered_at: float | None = None
        self._channel_limiter = _limiter(default)
        self._operations: dict[str, tuple[RateSpec, Limiter]] = {}
        self._lock = threading.Lock()
        for operation, spec in (operations or {}).items():
            self.set_operation(operation, spec)

    def set_operation(self, operation: str, spec: RateSpec) -> None:
        """Give `operation` its own bucket (kept if one with the same spec exists)."""
        with self._lock:
            current = self._operations.get(operation)
            if current is None or current[0] != spec:
                self._operations[operation] = (spec, _limiter(spec))

    def operation_spec(self, operation: str) -> RateSpec | None:
        found = self._operations.get(operation)
        return found[0] if found else None

    def acquire(self, operation: str, *, timeout: float) -> float:
        """Block until both the operation's and the channel's bucket admit one request; returns seconds waited.

        Raises ChannelRateLimited when that would take longer than `timeout` seconds.
        """
        started = time.monotonic()
        if self.answer_gap is not None and self._answered_at is not None:
            wait = self._answered_at + self.answer_gap - started
            if wait > timeout:
                raise ChannelRateLimited(
                    f"{self.channel}: {operation}: the next request may go {wait:.1f}s after the last answer, "
                    f"beyond {timeout:.1f}s", channel=self.channel, operation=operation)
            if wait > 0:
                time.sleep(wait)
        found = self._operations.get(operation)
        limiters = ([found[1]] if found else []) + [self._channel_limiter]
        for limiter in limiters:
            remaining = max(0.0, timeout - (time.monotonic() - started))
            if not limiter.try_acquire(name=operation, weight=1, blocking=True, timeout=remaining):
                spec = found[0] if found and limiter is found[1] else self.default
                raise ChannelRateLimited(
                    f"{self.channel}: {operation}: the client-side budget ({spec.per_second:g}/s, burst "
                    f"{spec.burst}) has no room within {timeout:.1f}s",
                    channel=self.channel,
                    operation=operation,
                )
        return time.monotonic() - started

    def answered(self) -> None:
        """An answer (or a failure) of a request just arrived: the start of `answer_gap`."""
        if self.answer_gap is not None:
            self._answered_at = time.monotonic()


_REGISTRY: dict[str, ChannelRateLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def channel_limiter(
    channel: str,
    *,
    requests_per_second: float,
    burst: int | None = None,
    operations: Mapping[str, RateSpec] | None = None,
    answer_gap: float | None = None,
) -> ChannelRateLimiter:
    """The process-wide limiter of `channel`, created on first use.

    Later callers get the same object (the first configuration wins for the channel-wide rate, since every
    caller reads it from the same config); per-operation buckets they name are added if missing.
    """
    with _REGISTRY_LOCK:
        limiter = _REGISTRY.get(channel)
        if limiter is None:
            spec = RateSpec(requests_per_second, burst or max(1, math.floor(requests_per_second)))
            limiter = _REGISTRY[channel] = ChannelRateLimiter(channel, spec, answer_gap=answer_gap)
    for operation, spec in (operations or {}).items():
        if limiter.operation_spec(operation) is None:
            limiter.set_operation(operation, spec)
    return limiter


def reset_channel_limiters() -> None:
    """Forget every channel's limiter (tests; a long-running process never needs this)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
