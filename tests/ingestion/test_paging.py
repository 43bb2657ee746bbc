"""Paging strategies over a mocked remote API; every loop bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ingestion.errors import ChannelResponseError, PageLimitReached
from ingestion.http import ChannelClient
from ingestion.paging import (
    GraphQLCursor,
    LinkHeader,
    NextToken,
    PageNumber,
    PageRequest,
    date_windows,
    paginate,
)

ITEMS = [{"id": i} for i in range(7)]


def client(handler) -> ChannelClient:
    return ChannelClient("pages", "http://api.test", None, None, 2.0, 0, httpx.MockTransport(handler))


def graphql_handler(request: httpx.Request) -> httpx.Response:
    variables = json.loads(request.content)["variables"]
    start = int(variables.get("after") or 0)
    chunk = ITEMS[start:start + variables["first"]]
    end = start + len(chunk)
    return httpx.Response(200, json={"data": {"things": {
        "pageInfo": {"hasNextPage": end < len(ITEMS), "endCursor": str(end)}, "nodes": chunk}}})


def first_graphql(first: int = 3) -> PageRequest:
    return PageRequest("POST", "/graphql", json={"query": "q", "variables": {"first": first, "after": None}})


def test_graphql_cursor_walks_every_page():
    pager = paginate(client(graphql_handler), first_graphql(), GraphQLCursor(("data", "things")), operation="things",
                     max_pages=10)
    pages = list(pager)
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [i["id"] for p in pages for i in p.items] == list(range(7))
    assert pager.pages == 3 and not pager.truncated
    assert pages[1].request.json["variables"]["after"] == "3"


def test_page_bound_stops_or_raises():
    pager = paginate(client(graphql_handler), first_graphql(2), GraphQLCursor(("data", "things")), operation="things",
                     max_pages=2, on_limit="stop")
    assert sum(len(p.items) for p in pager) == 4 and pager.truncated

    pager = paginate(client(graphql_handler), first_graphql(2), GraphQLCursor(("data", "things")), operation="things",
                     max_pages=2)
    with pytest.raises(PageLimitReached, match="pages: things: still more pages after 2"):
        list(pager)


def test_graphql_cursor_that_does_not_move_is_an_error():
    def stuck(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"things": {"pageInfo": {"hasNextPage": True, "endCursor": "A"},
                                                             "nodes": [{"id": 1}]}}})

    pager = paginate(client(stuck), first_graphql(), GraphQLCursor(("data", "things")), operation="things",
                     max_pages=50)
    with pytest.raises(ChannelResponseError, match="does not move on"):
        list(pager)


def test_link_header():
    def handler(request: httpx.Request) -> httpx.Response:
        info = request.url.params.get("page_info")
        start = int(info or 0)
        end = min(start + 3, len(ITEMS))
        headers = {}
        if end < len(ITEMS):
            headers["Link"] = f'<http://api.test/admin/api/2026-10/orders.json?limit=3&page_info={end}>; rel="next"'
        return httpx.Response(200, headers=headers, json={"orders": ITEMS[start:end]})

    pager = paginate(client(handler), PageRequest("GET", "/admin/api/2026-10/orders.json", params={"limit": 3}),
                     LinkHeader(("orders",)), operation="orders", max_pages=10)
    assert [i["id"] for p in pager for i in p.items] == list(range(7)) and pager.pages == 3


def test_next_token():
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("paginationToken")
        assert request.url.params["marketplaceIds"] == "A1VC38T7YXB528"
        start = int(token or 0)
        end = min(start + 3, len(ITEMS))
        return httpx.Response(200, json={"orders": ITEMS[start:end],
                                         "pagination": {"nextToken": str(end) if end < len(ITEMS) else None}})

    pager = paginate(client(handler), PageRequest("GET", "/orders/2026-01-01/orders",
                                                  params={"marketplaceIds": "A1VC38T7YXB528"}),
                     NextToken(("orders",), ("pagination", "nextToken"), "paginationToken"), operation="searchOrders",
                     max_pages=10)
    assert [i["id"] for p in pager for i in p.items] == list(range(7))


def test_page_number_in_body_with_total_pages():
    def handler(request: httpx.Request) -> httpx.Response:
        page = json.loads(request.content)["requestPage"]
        start = (page - 1) * 3
        return httpx.Response(200, json={"orderNumberList": ITEMS[start:start + 3],
                                         "PaginationResponseModel": {"totalPages": 3, "requestPage": page}})

    pager = paginate(client(handler), PageRequest("POST", "/es/2.0/order/searchOrder/", json={"requestPage": 1}),
                     PageNumber(("orderNumberList",), param="requestPage", in_body=True,
                                total_pages_path=("PaginationResponseModel", "totalPages")),
                     operation="searchOrder", max_pages=10)
    assert [i["id"] for p in pager for i in p.items] == list(range(7)) and pager.pages == 3


def test_page_number_stops_at_a_short_page():
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", 1))
        return httpx.Response(200, json={"items": ITEMS[(page - 1) * 3:page * 3]})

    pager = paginate(client(handler), PageRequest("GET", "/items"), PageNumber(("items",), page_size=3),
                     operation="items", max_pages=10)
    assert sum(len(p.items) for p in pager) == 7 and pager.pages == 3


def test_date_windows():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    windows = list(date_windows(start, start + timedelta(days=130), timedelta(days=63)))
    assert windows == [
        (start, start + timedelta(days=63)),
        (start + timedelta(days=63), start + timedelta(days=126)),
        (start + timedelta(days=126), start + timedelta(days=130)),
    ]
    assert list(date_windows(start, start, timedelta(days=1))) == []
