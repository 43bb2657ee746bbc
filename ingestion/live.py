"""Live landing: a sale reaches the landing zone within seconds, through the channel's push where it has one and
through incremental polls at the channel's budget (DECISIONS.md D80).

    live = LiveLanding(config, poll_every={"rakuten": 2.0, "yahoo": 2.0, "amazon": 180.0, "shopify": 60.0},
                       shopify_webhooks=True).start()   # one thread per channel
    receiver = serve_receiver(..., on_landed=lambda row: live.notify("shopify"))   # wake Shopify at once
    ...
    live.stop()

One step for a channel (`land(channel)`, also what the stock fast path calls every tick):
- **shopify**: with `shopify_webhooks`, the orders named by the webhook event batches the receiver landed since
  the last step are fetched by id (`ingestion.webhooks.fetch_changed`) and land as a targeted `shopify/orders`
  batch; every `pending_check_every` s every event not yet followed up is looked for as well;
- **amazon**: with a notifications queue configured, ORDER_CHANGE messages are long-polled for up to
  `wait_seconds` (an SQS receive returns as soon as a message is there), landed, deleted, then getOrder'ed
  (`ingestion.amazon.ingest_notifications`);
- every channel: the incremental `orders` poll when `poll_every[channel]` seconds have passed since the last
  one (None: never — pushes only; 0: every step). The polls are the backstop of the pushes and the only path
  for Rakuten and Yahoo, which push nothing.

Each channel runs in its own loop, so a slow channel (Yahoo's orderInfo per order at ~1 request/s, Amazon's
searchOrders waiting for its bucket) never holds a Shopify follow-up back. Every batch is an ordinary landed
batch (temp + rename); nothing here keeps state beyond the poll clocks, so a restart loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from ichigen.config import Config
from ingestion import amazon, rakuten, shopify, webhooks, yahoo
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.registry import ingest

log = logging.getLogger("ingestion.live")

CHANNELS = ("shopify", "rakuten", "amazon", "yahoo")
CLIENT_MAKERS: dict[str, Callable[[Config], ChannelClient]] = {
    "shopify": shopify.make_client, "rakuten": partial(rakuten.make_client, api=rakuten.ORDER_API),
    "amazon": amazon.make_client,
    "yahoo": yahoo.make_client}
# The fastest sustained poll each channel's documented budget allows beside everything else it must serve
# (channels.md): Rakuten ~1 request/s per API and a poll is searchOrder + getOrder; Yahoo ~1 request/s for the
# whole store and a poll is orderList + one orderInfo per changed order; Amazon searchOrders 0.0056/s (one per
# ~3 minutes once the burst is spent); Shopify's cost bucket allows far more, but its webhooks carry the seconds
# path, so its poll is only the backstop.
BUDGET_POLL_EVERY: dict[str, float] = {"shopify": 60.0, "rakuten": 2.0, "yahoo": 2.0, "amazon": 180.0}


class LiveLanding:
    """Lands new orders from pushes and polls; `land(channel)` is one step, `start()` runs a loop per channel.

    `poll_every`: seconds between incremental order polls per channel (missing: 0, every step; None: never).
    `clients`: where the per-channel client comes from (default: one per channel, made on first use and kept:
    a new client costs a TLS context and, for Amazon, an LWA exchange). `idle_seconds`: the pause between steps
    of a channel's loop (`notify(channel)` ends it early). `max_seconds` bounds the loops."""

    def __init__(self, config: Config, channels: Iterable[str] = CHANNELS, *, landing: LandingZone | None = None,
                 poll_every: Mapping[str, float | None] | None = None, shopify_webhooks: bool = False,
                 amazon_notifications: bool | None = None, wait_seconds: int = 1,
                 clients: Callable[[str], ChannelClient] | None = None, idle_seconds: float = 0.25,
                 max_seconds: float = 7 * 24 * 3600.0, pending_check_every: float = 60.0,
                 on_landed: Callable[[str, dict[str, int]], None] | None = None):
        self.config = config
        self.channels = tuple(channels)
        unknown = set(self.channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"live landing: unknown channels {sorted(unknown)}; known: {', '.join(CHANNELS)}")
        self.landing = landing or LandingZone(config.landing_dir)
        self.poll_every: dict[str, float | None] = {c: 0.0 for c in self.channels} | dict(poll_every or {})
        self.shopify_webhooks = shopify_webhooks
        queue = bool(config.channels.amazon.notifications_queue_url)
        self.amazon_notifications = queue if amazon_notifications is None else amazon_notifications and queue
        self.wait_seconds = wait_seconds
        self.idle_seconds, self.max_seconds = idle_seconds, max_seconds
        self.on_landed = on_landed
        self._clients: dict[str, ChannelClient] = {}
        self._client_for = clients or self._own_client
        self._sqs: Any = None
        self._followed: set[Path] = set()  # webhook event batches whose orders were fetched
        self._pending_check_at = 0.0
        self.pending_check_every = pending_check_every
        self._last_poll: dict[str, float] = {}
        self._wake = {c: threading.Event() for c in self.channels}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.steps: dict[str, int] = dict.fromkeys(self.channels, 0)
        self.step_seconds: dict[str, list[float]] = {c: [] for c in self.channels}  # the last 1000 steps' times
        self.errors: list[str] = []  # the last 100, "channel: error"

    def _own_client(self, channel: str) -> ChannelClient:
        if channel not in self._clients:
            self._clients[channel] = CLIENT_MAKERS[channel](self.config)
        return self._clients[channel]

    # ------------------------------------------------------------------------------------------- one step
    def poll_due(self, channel: str) -> bool:
        every = self.poll_every.get(channel)
        return every is not None and time.monotonic() - self._last_poll.get(channel, -1e18) >= every

    def land(self, channel: str) -> dict[str, int]:
        """One step for `channel`: its push (if any) and its poll when due. Returns rows landed per path."""
        landed: dict[str, int] = {}
        if channel == "shopify" and self.shopify_webhooks:
            landed["shopify/webhook-followups"] = self._follow_webhooks()
        if channel == "amazon" and self.amazon_notifications:
            if self._sqs is None:
                self._sqs = amazon.sqs_client(self.config.channels.amazon)
            got = amazon.ingest_notifications(self.config, landing=self.landing, client=self._client_for(channel),
                                              sqs=self._sqs, wait_seconds=self.wait_seconds)
            landed["amazon/notifications"] = got.events.rows_landed
            landed["amazon/notification-orders"] = got.orders.rows_landed if got.orders else 0
        if self.poll_due(channel):
            self._last_poll[channel] = time.monotonic()
            landed[f"{channel}/orders"] = ingest(self.config, channel, "orders", landing=self.landing,
                                                 client=self._client_for(channel)).rows_landed
        return landed

    def _follow_webhooks(self) -> int:
        """Fetch what the webhook events landed since the last step name. Only the new event batches are read
        (a step must not cost more as the day's events pile up); every `pending_check_every` s, and on the first
        step, the full `pending_events` check also runs, so an event whose follow-up failed, or that landed
        while no loop ran, is fetched all the same. A compacted batch (D82) only re-holds events already seen."""
        full = time.monotonic() >= self._pending_check_at
        with self.landing.reading("webhook follow-up"):  # listed batches stay until read (D160); no request inside
            files = self.landing.batch_files(webhooks.SOURCE, webhooks.ENTITY)
            new = [p for p in files if p not in self._followed
                   and not self.landing.batch_metadata(p).get("compacted_from")]
            if not new and not full:
                return 0
            events = pl.concat([pl.read_parquet(p) for p in new], how="diagonal_relaxed") if new else None
        followed = webhooks.fetch_changed(self.config, events, landing=self.landing, include_pending=full,
                                          client=self._client_for("shopify"))
        self._followed.update(new)  # only after the fetch landed: a failed step reads them again
        if full:
            self._pending_check_at = time.monotonic() + self.pending_check_every
        return sum(r.rows_landed for r in followed)

    # ------------------------------------------------------------------------------------------- the loops
    def notify(self, channel: str) -> None:
        """Something arrived for `channel` (e.g. the receiver landed a webhook event): step at once."""
        if channel in self._wake:
            self._wake[channel].set()

    def _loop(self, channel: str) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._wake[channel].clear()
            began = time.monotonic()
            try:
                got = self.land(channel)
                if self.on_landed is not None and any(got.values()):
                    self.on_landed(channel, got)
            except Exception as exc:  # noqa: BLE001 — the loop outlives a failed step; the next one retries
                log.warning("live landing %s: %s: %s", channel, type(exc).__name__, exc)
                self.errors = [*self.errors[-99:], f"{channel}: {type(exc).__name__}: {exc}"]
            self.steps[channel] += 1
            self.step_seconds[channel] = [*self.step_seconds[channel][-999:], time.monotonic() - began]
            self._wake[channel].wait(self.idle_seconds)

    def start(self) -> LiveLanding:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._loop, args=(c,), name=f"live-landing-{c}", daemon=True)
                         for c in self.channels]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for event in self._wake.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout)
        self.close()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> LiveLanding:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
