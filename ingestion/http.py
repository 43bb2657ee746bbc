"""The one HTTP request loop every channel uses (ingestion and reverse sync alike).

`ChannelClient.request` sends one logical request and returns the answer, or raises a `ChannelError` whose
message names the channel, the operation and endpoint, and the status. Around each attempt:

1. the channel's client-side budget (`ingestion.ratelimit`, one per channel in the process) and the API's
   proactive pacing (`ingestion.throttle`, e.g. Shopify's cost bucket) may make it wait;
2. transient failures are retried with tenacity — 408, 409, 429, 5xx, timeouts, dropped connections and the
   API's own throttle signals (Shopify's HTTP-200 `THROTTLED`) — with exponential backoff and full jitter,
   or exactly the wait the server asked for (`Retry-After` in seconds or as an HTTP date, or the wait the
   throttle strategy computed);
3. retries are bounded in count (`max_retries`) and in total time (`max_retry_time`): a wait that would
   overrun the time budget is not started, the call fails at once instead;
4. 401/403 and other 4xx are never retried. With `idempotent=False`, failures after which the server may
   have applied the request (read timeouts, 5xx, dropped connections) are not retried either.

`client.stats` counts requests, retries (by reason) and time spent waiting, for tests and logs.
"""

from __future__ import annotations

import email.utils
import errno
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay

from ingestion.errors import (
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelResponseError,
    ChannelServerError,
    ChannelUnreachable,
)
from ingestion.ratelimit import ChannelRateLimiter, RateSpec, channel_limiter
from ingestion.throttle import ShopifyThrottle, ThrottleStrategy, shared_throttle

if TYPE_CHECKING:
    from ichigen.config import ShopifyConfig

__all__ = [
    "ChannelAuthError",
    "ChannelClient",
    "ChannelError",
    "ChannelRateLimited",
    "ChannelResponseError",
    "ChannelServerError",
    "ChannelUnreachable",
    "RateSpec",
    "RequestStats",
    "channel_limiter",
    "parse_retry_after",
]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
DEFAULT_MAX_RETRY_TIME = 120.0
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_CONNECT_RETRIES = 2
MAX_RETRY_AFTER_JITTER = 0.25  # seconds added at most on top of a server-given wait, so clients do not align


@dataclass
class RequestStats:
    """Counters over the client's life. `retries` counts waits-then-resend, whatever the reason."""

    requests: int = 0
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    waited_seconds: float = 0.0  # backoff and Retry-After sleeps
    paced_seconds: float = 0.0  # client-side budget and proactive throttle pacing

    def snapshot(self) -> RequestStats:
        return RequestStats(self.requests, self.retries, Counter(self.retry_reasons), self.waited_seconds,
                            self.paced_seconds)


class _Retry(Exception):
    """One attempt failed in a way worth retrying; `final` is what the caller gets if retries run out."""

    def __init__(self, final: ChannelError, reason: str, retry_after: float | None = None):
        super().__init__(str(final))
        self.final = final
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: either delta-seconds (`"2"`, `"0.2"`) or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _connect_reason(exc: BaseException) -> str:
    """A short human reason for a failed connect (connection refused, name not resolved, …)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        number = getattr(current, "errno", None)
        if number == errno.ECONNREFUSED:
            return "connection refused"
        if number in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable"
        text = str(current).lower()
        if "refused" in text:
            return "connection refused"
        if any(s in text for s in ("name or service not known", "nodename nor servname", "getaddrinfo",
                                   "name resolution", "no address associated")):
            return "name not resolved"
        current = current.__cause__ or current.__context__
    return str(exc) or type(exc).__name__


class ChannelClient:
    """HTTP client for one channel. Thread-safe for concurrent `request` calls (httpx.Client is)."""

    def __init__(
        self,
        channel: str,
        base_url: str,
        auth: httpx.Auth | Mapping[str, str] | None,
        limiter: ChannelRateLimiter | None,
        timeout: float,
        max_retries: int,
        transport: httpx.BaseTransport | None = None,
        *,
        throttle: ThrottleStrategy | None = None,
        max_retry_time: float = DEFAULT_MAX_RETRY_TIME,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        connect_retries: int = DEFAULT_CONNECT_RETRIES,
        config_key: str | None = None,
    ):
        self.channel = channel
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.timeout = timeout
        self.max_retries = max_retries
        self.throttle = throttle or ThrottleStrategy()
        self.max_retry_time = max_retry_time
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.connect_retries = min(connect_retries, max_retries)
        self.config_key = config_key or f"channels.{channel}.base_url"
        self.stats = RequestStats()
        self._stats_lock = threading.Lock()
        self._auth = auth
        headers = dict(auth) if isinstance(auth, Mapping) else {}
        self._auth_headers = tuple(name for name in headers if name.lower() not in ("content-type", "accept"))
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "ichigen-ingestion/0.1", "Accept": "application/json", **headers},
            auth=auth if isinstance(auth, httpx.Auth) else None,
            follow_redirects=False,
        )

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def for_shopify(
        cls,
        shopify: ShopifyConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> ChannelClient:
        """The Shopify Admin client from `channels.shopify`: access-token header, the process-wide shopify budget
        (`requests_per_second`) and the shared throttle strategy (GraphQL cost bucket, REST call limit)."""
        limiter = channel_limiter("shopify", requests_per_second=shopify.requests_per_second)
        return cls(
            "shopify",
            shopify.base_url,
            {"X-Shopify-Access-Token": shopify.access_token, "Content-Type": "application/json"},
            limiter,
            shopify.timeout_seconds,
            shopify.max_retries,
            transport,
            throttle=options.pop("throttle", None) or shared_throttle("shopify", ShopifyThrottle),
            **options,
        )

    def close(self) -> None:
        self._http.close()
        closer = getattr(self._auth, "close", None)  # an auth that holds its own connection (Amazon LWA)
        if callable(closer):
            closer()

    def __enter__(self) -> ChannelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------------------------------
    def url_for(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        sink: Path | None = None,
        credentials: bool = True,
    ) -> httpx.Response:
        """Send one logical request (retried as described in the module docstring); 2xx or a ChannelError.
        The body is `json`, raw `content` (e.g. an XML document) or form `data` (urlencoded) — or, with `files`
        (httpx's `{name: (filename, bytes, mime type)}`), a multipart form of `data`'s fields followed by the
        files, as storage upload targets take them.

        `sink`: stream a 2xx body into this file instead of memory (large downloads such as a bulk operation's
        JSONL; a retry rewrites the file from the start); the returned response is then closed and unread.
        `credentials=False`: send the request without the channel's auth headers (a pre-signed URL on another
        host must not receive the API token)."""
        method = method.upper()
        url = self.url_for(path)
        started = time.monotonic()
        retries_here = 0
        if files is not None:
            # Our own multipart type, so the client's default `Content-Type: application/json` (Shopify's) does
            # not win over the form's; httpx takes the boundary from it.
            headers = {**(headers or {}), "Content-Type": f"multipart/form-data; boundary={secrets.token_hex(16)}"}

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retry) and exc.retry_after is not None:
                return exc.retry_after + random.uniform(0, min(MAX_RETRY_AFTER_JITTER, exc.retry_after * 0.1))
            # Full jitter: uniform in [0, min(max, base * 2^(n-1))].
            ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
            return random.uniform(0, ceiling)

        def before_sleep(state: RetryCallState) -> None:
            nonlocal retries_here
            exc = state.outcome.exception() if state.outcome else None
            retries_here += 1
            with self._stats_lock:
                self.stats.retries += 1
                self.stats.retry_reasons[exc.reason if isinstance(exc, _Retry) else "other"] += 1
                self.stats.waited_seconds += state.upcoming_sleep

        retrying = Retrying(
            retry=retry_if_exception_type(_Retry),
            stop=stop_after_attempt(self.max_retries + 1) | stop_before_delay(self.max_retry_time),
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        connect_failures = 0
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        return self._attempt(method, url, path, operation, json, params, headers, idempotent,
                                             started, retries_here, content, data, sink, credentials, files)
                    except _Retry as exc:
                        if exc.reason == "connect":
                            connect_failures += 1
                            if connect_failures > self.connect_retries:
                                exc.final.retries = retries_here
                                raise exc.final from exc.__cause__
                        raise
                    finally:
                        self.throttle.answered(operation)  # whatever pacing held for this attempt is free
        except _Retry as exc:
            final = exc.final
            final.retries = retries_here
            elapsed = time.monotonic() - started
            note = f"gave up after {retries_here} retries in {elapsed:.1f}s"
            if exc.retry_after is not None and elapsed + exc.retry_after >= self.max_retry_time:
                note += (f"; the API asked to wait {exc.retry_after:.1f}s more, beyond the "
                         f"{self.max_retry_time:g}s retry budget")
            final.args = (f"{final.args[0]} ({note})",)
            raise final from exc.__cause__
        raise AssertionError("unreachable: tenacity returned without an outcome")  # pragma: no cover

    def _where(self, operation: str, method: str, path: str) -> str:
        endpoint = urlsplit(path).path if path.startswith(("http://", "https://")) else path
        return f"{self.channel}: {operation} ({method} {endpoint})"

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        operation: str,
        json: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        idempotent: bool,
        started: float,
        retries: int,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | None = None,
        sink: Path | None = None,
        credentials: bool = True,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        where = self._where(operation, method, path)
        common = {"channel": self.channel, "operation": operation, "url": url, "retries": retries}
        remaining = max(0.0, self.max_retry_time - (time.monotonic() - started))

        paced = 0.0
        if self.limiter is not None:
            paced += self.limiter.acquire(operation, timeout=max(remaining, self.timeout))
        delay = self.throttle.pace(operation)
        if delay > 0:
            time.sleep(min(delay, max(remaining, 0.0)))
            paced += delay
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.paced_seconds += paced

        try:
            try:
                built = self._http.build_request(method, url, json=json, params=params, headers=headers,
                                                 content=content, data=data, files=files)
                if not credentials:
                    for name in self._auth_headers:
                        built.headers.pop(name, None)
                send_auth = {} if credentials else {"auth": None}  # None: not even an httpx.Auth flow
                response = self._http.send(built, stream=sink is not None, **send_auth)
                if sink is not None:
                    try:
                        if 200 <= response.status_code < 300:
                            with open(sink, "wb") as out:
                                for chunk in response.iter_bytes():
                                    out.write(chunk)
                        else:
                            response.read()
                    finally:
                        response.close()
            finally:
                if self.limiter is not None:
                    self.limiter.answered()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            reason = "connect timed out" if isinstance(exc, httpx.ConnectTimeout) else _connect_reason(exc)
            final = ChannelUnreachable(
                f"{self.channel}: cannot reach {self.base_url} ({reason}) — is the channel running and is "
                f"{self.config_key} right? [{operation} {method} {urlsplit(url).path}]",
                **common,
            )
            raise _Retry(final, "connect") from exc
        except httpx.TimeoutException as exc:
            final = ChannelServerError(f"{where} → no answer within {self.timeout:g}s ({type(exc).__name__})",
                                       **common)
            if not idempotent:
                raise final from exc
            raise _Retry(final, "timeout") from exc
        except httpx.TransportError as exc:
            final = ChannelServerError(f"{where} → connection failed mid-request ({type(exc).__name__}: {exc})",
                                       **common)
            if not idempotent or isinstance(exc, httpx.UnsupportedProtocol):
                raise final from exc
            raise _Retry(final, "network") from exc

        status = response.status_code
        common["status"] = status
        if 200 <= status < 300:
            signal = self.throttle.inspect(response, operation)
            if signal is None:
                return response
            if signal.error is not None:
                raise ChannelResponseError(f"{where} → HTTP {status}: {signal.error}", **common)
            raise _Retry(
                ChannelRateLimited(f"{where} → HTTP {status}: throttled by the API ({self.throttle.name})",
                                   **common),
                "throttled",
                retry_after=signal.retry_after,
            )

        snippet = " ".join(response.text[:300].split())
        if status in (401, 403):
            raise ChannelAuthError(
                f"{where} → HTTP {status}: credentials refused — check the channels.{self.channel} "
                f"credentials and their scopes. {snippet}".rstrip(),
                **common,
            )
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status == 429:
                final: ChannelError = ChannelRateLimited(f"{where} → HTTP 429: rate limited. {snippet}".rstrip(),
                                                         **common)
            elif status == 409:
                final = ChannelResponseError(f"{where} → HTTP 409: conflict. {snippet}".rstrip(), **common)
            else:
                final = ChannelServerError(f"{where} → HTTP {status}: {snippet or response.reason_phrase}",
                                           **common)
            # Without idempotency only answers that say "not processed" are retried.
            if not idempotent and status not in (429, 503):
                raise final
            raise _Retry(final, f"http_{status}", retry_after=retry_after)
        raise ChannelResponseError(f"{where} → HTTP {status}: {snippet or response.reason_phrase}", **common)
