"""The request loop against a mocked remote API (httpx.MockTransport) and a closed local port."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from ichigen.config import Config
from ingestion.http import (
    ChannelAuthError,
    ChannelClient,
    ChannelRateLimited,
    ChannelResponseError,
    ChannelServerError,
    ChannelUnreachable,
    parse_retry_after,
)
from ingestion.ratelimit import RateSpec, channel_limiter
from ingestion.throttle import ShopifyGraphQLThrottle, ShopifyThrottle

OK = {"data": {"ok": True}}


def scripted(*answers):
    """A handler answering in order (the last answer repeats); records each request."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, calls


def client_for(handler, *, channel="testchan", max_retries=3, max_retry_time=10.0, throttle=None, rps=1000.0,
               burst=None, **kw) -> ChannelClient:
    return ChannelClient(
        channel,
        "http://api.test",
        {"X-Api-Key": "secret"},
        channel_limiter(channel, requests_per_second=rps, burst=burst or max(1, int(rps))),
        2.0,
        max_retries,
        httpx.MockTransport(handler),
        throttle=throttle,
        max_retry_time=max_retry_time,
        backoff_base=0.01,
        backoff_max=0.05,
        **kw,
    )


def throttled_body(requested=50.0, available=40.0, rate=50.0):
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": available,
                                                   "restoreRate": rate}}},
    }


def test_429_waits_the_retry_after_and_counts_retries():
    handler, calls = scripted(
        httpx.Response(429, headers={"Retry-After": "0.2"}, json={"errors": "Exceeded 2 calls per second"}),
        httpx.Response(429, headers={"Retry-After": "0.2"}),
        httpx.Response(200, json=OK),
    )
    client = client_for(handler)
    started = time.monotonic()
    response = client.request("GET", "/things", operation="list_things", params={"limit": 5})
    elapsed = time.monotonic() - started

    assert response.json() == OK
    assert len(calls) == 3
    assert client.stats.retries == 2 and client.stats.retry_reasons["http_429"] == 2
    assert elapsed >= 0.4, "each Retry-After of 0.2 s must be waited in full"
    assert calls[0].headers["X-Api-Key"] == "secret" and calls[0].url.params["limit"] == "5"


def test_retry_after_as_http_date():
    now = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=3), usegmt=True), now=now) == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(format_datetime(now - timedelta(seconds=3), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None

    handler, calls = scripted(
        httpx.Response(503, headers={"Retry-After": format_datetime(datetime.now(UTC) + timedelta(seconds=1),
                                                                    usegmt=True)}),
        httpx.Response(200, json=OK),
    )
    client = client_for(handler)
    started = time.monotonic()
    client.request("GET", "/x", operation="x")
    # An HTTP date has whole-second resolution: the wait lands somewhere in (0, 1] s.
    assert 0.0 < time.monotonic() - started <= 1.6 and client.stats.retries == 1


def test_5xx_then_success():
    handler, calls = scripted(httpx.Response(502, text="Bad Gateway"), httpx.Response(500), httpx.Response(200, json=OK))
    client = client_for(handler)
    assert client.request("POST", "/graphql", operation="q", json={"query": "{}"}).json() == OK
    assert len(calls) == 3 and client.stats.retries == 2
    assert client.stats.retry_reasons == {"http_502": 1, "http_500": 1}


def test_timeouts_and_dropped_connections_are_retried():
    handler, calls = scripted(httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("peer closed"),
                              httpx.Response(200, json=OK))
    client = client_for(handler)
    assert client.request("GET", "/x", operation="x").json() == OK
    assert client.stats.retry_reasons == {"timeout": 1, "network": 1}


def test_retries_are_bounded_in_count():
    handler, calls = scripted(httpx.Response(503, text="down for maintenance"))
    client = client_for(handler, max_retries=3)
    with pytest.raises(ChannelServerError) as caught:
        client.request("GET", "/orders.json", operation="orders")
    assert len(calls) == 4 and caught.value.retries == 3
    message = str(caught.value)
    assert message.startswith("testchan: orders (GET /orders.json) → HTTP 503")
    assert "gave up after 3 retries" in message and caught.value.status == 503


def test_retries_are_bounded_in_time():
    """A Retry-After longer than what is left of the time budget is not waited: the call fails at once."""
    handler, calls = scripted(httpx.Response(429, headers={"Retry-After": "30"}))
    client = client_for(handler, max_retries=10, max_retry_time=1.0)
    started = time.monotonic()
    with pytest.raises(ChannelRateLimited) as caught:
        client.request("GET", "/x", operation="x")
    assert time.monotonic() - started < 1.0 and len(calls) == 1
    assert "HTTP 429" in str(caught.value) and "asked to wait 30.0s more, beyond the 1s retry budget" in str(caught.value)

    handler, calls = scripted(httpx.Response(500))
    client = client_for(handler, max_retries=1000, max_retry_time=0.5)
    started = time.monotonic()
    with pytest.raises(ChannelServerError):
        client.request("GET", "/x", operation="x")
    assert time.monotonic() - started < 1.0 and 1 < len(calls) < 1000


def test_auth_error_is_not_retried():
    handler, calls = scripted(httpx.Response(401, json={"errors": "[API] Invalid API key or access token"}))
    client = client_for(handler)
    with pytest.raises(ChannelAuthError) as caught:
        client.request("POST", "/admin/api/2026-10/graphql.json", operation="orders", json={})
    assert len(calls) == 1 and client.stats.retries == 0
    message = str(caught.value)
    assert "testchan" in message and "orders" in message and "HTTP 401" in message
    assert "secret" not in message


def test_other_4xx_is_not_retried():
    handler, calls = scripted(httpx.Response(404, text="Not Found"))
    client = client_for(handler)
    with pytest.raises(ChannelResponseError, match=r"testchan: thing \(GET /nope\) → HTTP 404"):
        client.request("GET", "/nope", operation="thing")
    assert len(calls) == 1


def test_non_idempotent_request_is_not_retried_after_an_ambiguous_failure():
    handler, calls = scripted(httpx.Response(500), httpx.Response(200, json=OK))
    client = client_for(handler)
    with pytest.raises(ChannelServerError):
        client.request("POST", "/push", operation="push", json={}, idempotent=False)
    assert len(calls) == 1
    # 429 says the request was not processed: safe to retry even then.
    handler, calls = scripted(httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json=OK))
    client = client_for(handler)
    assert client.request("POST", "/push", operation="push", json={}, idempotent=False).json() == OK


def test_shopify_throttled_graphql_then_success():
    throttle = ShopifyGraphQLThrottle()
    handler, calls = scripted(
        httpx.Response(200, json=throttled_body(requested=50, available=40, rate=50)),  # wait (50-40)/50 = 0.2 s
        httpx.Response(200, json={"data": {"orders": {"nodes": []}}, "extensions": {"cost": {
            "requestedQueryCost": 50, "actualQueryCost": 3,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 997.0, "restoreRate": 50.0}}}}),
    )
    client = client_for(handler, channel="shopify", throttle=throttle)
    started = time.monotonic()
    response = client.request("POST", "/admin/api/2026-10/graphql.json", operation="orders", json={"query": "{}"})
    assert response.json()["data"] == {"orders": {"nodes": []}}
    assert time.monotonic() - started >= 0.2
    assert len(calls) == 2 and throttle.throttled == 1
    assert client.stats.retry_reasons == {"throttled": 1}


def test_shopify_throttle_exhausted_is_rate_limited():
    handler, calls = scripted(httpx.Response(200, json=throttled_body(requested=10, available=9, rate=100)))
    client = client_for(handler, channel="shopify", throttle=ShopifyGraphQLThrottle(), max_retries=2)
    with pytest.raises(ChannelRateLimited, match="throttled by the API") as caught:
        client.request("POST", "/admin/api/2026-10/graphql.json", operation="orders", json={})
    assert len(calls) == 3 and caught.value.retries == 2


def test_shopify_paces_from_the_last_throttle_status():
    """After an answer that left the bucket empty, the next call of the same cost waits for the refill."""
    throttle = ShopifyGraphQLThrottle()
    empty = {"data": {"x": 1}, "extensions": {"cost": {"requestedQueryCost": 20, "actualQueryCost": 20,
             "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 0.0, "restoreRate": 100.0}}}}
    handler, calls = scripted(httpx.Response(200, json=empty))
    client = client_for(handler, channel="shopify", throttle=throttle)
    client.request("POST", "/g", operation="orders", json={})
    started = time.monotonic()
    client.request("POST", "/g", operation="orders", json={})
    assert time.monotonic() - started >= 0.18  # 20 points at 100/s
    assert client.stats.paced_seconds >= 0.18 and client.stats.retries == 0


def test_shopify_calls_in_flight_reserve_their_cost():
    """Paced at once from several threads, each call holds its cost until its answer: the second of two calls
    the known bucket can pay for once waits for the refill instead of going out beside the first."""
    clock = [0.0]
    throttle = ShopifyGraphQLThrottle(clock=lambda: clock[0])
    status = {"data": {"x": 1}, "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": 10,
              "throttleStatus": {"maximumAvailable": 100.0, "currentlyAvailable": 15.0, "restoreRate": 10.0}}}}
    assert throttle.inspect(httpx.Response(200, json=status), "push") is None
    assert throttle.pace("push") == 0.0  # 15 free: this thread's call goes and holds 10
    waits: list[float] = []
    other = threading.Thread(target=lambda: waits.append(throttle.pace("push")))
    other.start()
    other.join(5)
    assert waits == [pytest.approx(0.5)]  # 15 − 10 held = 5 free; 5 more points at 10/s
    throttle.answered("push")  # this thread's answer: its 10 are free again (the other thread still holds 10)
    assert throttle.pace("push") == pytest.approx(0.5)


def test_shopify_calls_in_flight_meet_no_throttled_answer():
    """Four threads share one client against a cost bucket whose requests arrive a moment after they are sent:
    the shared pacing keeps every call within the bucket (no THROTTLED, no retry)."""
    lock = threading.Lock()
    bucket = {"available": 40.0, "at": time.monotonic()}
    answers = {"throttled": 0, "ok": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(0.02)  # transit: all threads have been paced before the first call reaches the bucket
        with lock:
            now = time.monotonic()
            bucket["available"] = min(40.0, bucket["available"] + (now - bucket["at"]) * 200.0)
            bucket["at"] = now
            ok = bucket["available"] >= 10
            bucket["available"] -= 10 if ok else 0
            answers["ok" if ok else "throttled"] += 1
            status = {"maximumAvailable": 40.0, "currentlyAvailable": bucket["available"], "restoreRate": 200.0}
        cost = {"requestedQueryCost": 10, "actualQueryCost": 10 if ok else None, "throttleStatus": status}
        if ok:
            return httpx.Response(200, json={"data": {"x": 1}, "extensions": {"cost": cost}})
        return httpx.Response(200, json={"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                                         "extensions": {"cost": cost}})

    client = client_for(handler, channel="shopify", throttle=ShopifyGraphQLThrottle(), max_retries=5)
    threads = [threading.Thread(target=lambda: [client.request("POST", "/g", operation="push", json={})
                                                for _ in range(10)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == {"throttled": 0, "ok": 40}
    assert client.stats.retries == 0


def test_graphql_errors_are_response_errors():
    body = {"errors": [{"message": "Query cost is 1502, which exceeds the single query max cost limit (1000).",
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": 1502, "maxCost": 1000}}]}
    handler, calls = scripted(httpx.Response(200, json=body))
    client = client_for(handler, channel="shopify", throttle=ShopifyGraphQLThrottle())
    with pytest.raises(ChannelResponseError, match=r"shopify: orders \(POST /g\) → HTTP 200: GraphQL errors: "
                                                   r"\[MAX_COST_EXCEEDED\]"):
        client.request("POST", "/g", operation="orders", json={})
    assert len(calls) == 1

    handler, _ = scripted(httpx.Response(200, text="<html>maintenance</html>"))
    client = client_for(handler, channel="shopify", throttle=ShopifyGraphQLThrottle())
    with pytest.raises(ChannelResponseError, match="not JSON"):
        client.request("POST", "/g", operation="orders", json={})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_channel_names_channel_and_url():
    port = _closed_port()
    shopify = Config().with_overrides(**{"channels.shopify.base_url": f"http://127.0.0.1:{port}",
                                         "channels.shopify.max_retries": 2}).channels.shopify
    client = ChannelClient.for_shopify(shopify, backoff_base=0.01, backoff_max=0.02)
    started = time.monotonic()
    with pytest.raises(ChannelUnreachable) as caught:
        client.request("POST", "/admin/api/2026-10/graphql.json", operation="orders", json={})
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(
        f"shopify: cannot reach http://127.0.0.1:{port} (connection refused) — is the channel running and is "
        "channels.shopify.base_url right?"
    )
    assert caught.value.retries == 2 and client.stats.retry_reasons == {"connect": 2}


def test_limiter_is_one_budget_per_channel_shared_by_clients():
    handler, calls = scripted(httpx.Response(200, json=OK))
    first = client_for(handler, channel="budgeted", rps=10.0)
    second = client_for(handler, channel="budgeted", rps=10.0)  # e.g. reverse sync in the same process
    assert first.limiter is second.limiter
    started = time.monotonic()
    for i in range(12):
        (first if i % 2 else second).request("GET", "/x", operation="x")
    # Burst of 10, then 10/s: the 11th and 12th requests wait ~0.1 s each.
    assert time.monotonic() - started >= 0.18
    assert first.stats.paced_seconds + second.stats.paced_seconds >= 0.15


def test_per_operation_budget_on_top_of_the_channel_budget():
    handler, calls = scripted(httpx.Response(200, json=OK))
    limiter = channel_limiter("ops", requests_per_second=1000.0, burst=1000,
                              operations={"searchOrders": RateSpec(5.0, burst=1)})
    client = ChannelClient("ops", "http://api.test", None, limiter, 2.0, 0, httpx.MockTransport(handler))
    started = time.monotonic()
    for _ in range(20):
        client.request("GET", "/getOrder", operation="getOrder")
    assert time.monotonic() - started < 0.15, "an operation without its own bucket only uses the channel's"
    started = time.monotonic()
    for _ in range(3):
        client.request("GET", "/orders", operation="searchOrders")
    assert time.monotonic() - started >= 0.38  # 5/s, burst 1: the 2nd and 3rd wait 0.2 s each


def test_answer_gap_spaces_arrivals_however_slow_the_answers_are():
    # A server that counts arrivals (1 per 0.2 s, no burst), reached after a varying transit time: starts spaced
    # by the bucket alone arrive 0.05 s apart after a slow transit; counted from the answer they never do.
    arrivals: list[float] = []
    sent = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        time.sleep(0.15 if sent % 2 else 0.0)  # transit before the server's check
        arrivals.append(time.monotonic())
        return httpx.Response(200, json=OK)

    limiter = channel_limiter("gap", requests_per_second=5.0, burst=1, answer_gap=0.2)
    client = ChannelClient("gap", "http://api.test", None, limiter, 2.0, 0, httpx.MockTransport(handler))
    for _ in range(5):
        client.request("GET", "/x", operation="x")
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert min(gaps) >= 0.2, gaps
    assert max(gaps) < 0.2 + 0.15 + 0.1, gaps  # the gap is counted from the answer, not added to the interval


def test_limiter_is_thread_safe_and_bounded():
    handler, calls = scripted(httpx.Response(200, json=OK))
    client = client_for(handler, channel="threads", rps=200.0, burst=1)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                client.request("GET", "/x", operation="x")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors and len(calls) == 40
    assert time.monotonic() - started >= 0.15  # 40 requests at 200/s, burst 1, shared by 4 threads


# -- downloads and Shopify's REST call limit ------------------------------------------------------------------
def test_a_sink_download_streams_to_a_file_without_the_channels_credentials(tmp_path):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.headers))
        if len(seen) == 1:
            return httpx.Response(503)  # retried: the file is written from the start again
        return httpx.Response(200, content=b'{"id": 1}\n{"id": 2}\n')

    client = client_for(handler)
    target = tmp_path / "out.jsonl"
    client.request("GET", "https://storage.test/result.jsonl?sig=x", operation="download", sink=target,
                   credentials=False)
    assert target.read_bytes() == b'{"id": 1}\n{"id": 2}\n'
    assert len(seen) == 2 and all("x-api-key" not in h for h in seen)
    client.request("GET", "/ordinary", operation="ordinary")
    assert seen[-1]["x-api-key"] == "secret"


def test_a_multipart_upload_carries_its_fields_then_the_file_without_the_channels_credentials():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503)  # retried: the whole form is sent again
        return httpx.Response(201, content=b"<PostResponse/>")

    # Shopify's client sends `Content-Type: application/json` by default; the form must still be multipart
    client = ChannelClient("upload", "http://api.test", {"X-Api-Key": "secret", "Content-Type": "application/json"},
                           None, 2.0, 3, httpx.MockTransport(handler), backoff_base=0.01)
    client.request("POST", "https://storage.test/bucket", operation="upload", data={"key": "tmp/a", "acl": "private"},
                   files={"file": ("vars.jsonl", b'{"a": 1}\n', "text/jsonl")}, credentials=False)
    assert len(seen) == 2
    last = seen[-1]
    assert last.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert "x-api-key" not in last.headers
    body = last.read()
    assert body.index(b'name="key"') < body.index(b'name="acl"') < body.index(b'name="file"')
    assert b'{"a": 1}' in body


def test_shopify_rest_calls_are_paced_on_the_call_limit_header():
    clock = [0.0]
    throttle = ShopifyThrottle(clock=lambda: clock[0])

    def answer(path: str, limit: str) -> httpx.Response:
        request = httpx.Request("GET", f"http://shop.test{path}")
        return httpx.Response(200, headers={"X-Shopify-Shop-Api-Call-Limit": limit}, json={"orders": []},
                              request=request)

    assert throttle.inspect(answer("/admin/api/2026-10/orders.json", "10/40"), "orders_rest") is None
    assert throttle.pace("orders_rest") == 0.0  # plenty of room
    throttle.inspect(answer("/admin/api/2026-10/orders.json", "39/40"), "orders_rest")
    assert throttle.pace("orders_rest") == pytest.approx(0.5)  # (39 + 1 + 1 − 40) calls at 2 calls/s
    clock[0] += 0.5
    assert throttle.pace("orders_rest") == pytest.approx(0.0)  # leaked meanwhile
    assert throttle.pace("orders") == 0.0  # a GraphQL operation is not paced by the REST bucket
    # a bulk operation's file on a storage host is no Admin answer: no signal, whatever its body
    download = httpx.Response(200, content=b"not json", request=httpx.Request("GET", "https://storage.test/x"))
    assert throttle.inspect(download, "bulk_download") is None
