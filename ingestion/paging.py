"""Pagination as small strategy objects, and one bounded page loop for all of them.

A `PagingStrategy` knows how one API says "there is more": given the request just sent and its answer, it
returns the page's items and the next request (or None). The loop (`paginate`) sends, yields pages, and stops
at `max_pages`. What the bound means depends on the order of the data, so the caller says:

- `on_limit="stop"` for fetches ordered by the cursor field (Shopify orders by UPDATED_AT): what landed is a
  prefix, the next run continues from the landed cursor; `Pager.truncated` tells the caller;
- `on_limit="raise"` for everything else (snapshots, fetches in id order): stopping early would move the
  cursor past records never fetched, so `PageLimitReached` is raised instead.

Strategies here: GraphQL cursor connections (Shopify), `Link: <…>; rel="next"` (Shopify REST), a next token
in the body (Amazon SP-API `pagination.nextToken`), page numbers (Rakuten `PaginationRequestModel`, Yahoo
`start`); `date_windows` splits a long range for APIs that cap the window (Rakuten: 63 days).
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ingestion.errors import ChannelResponseError, PageLimitReached

if TYPE_CHECKING:
    from ingestion.http import ChannelClient


@dataclass(frozen=True)
class PageRequest:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | str | None = None  # a raw body (XML APIs); `json` and `content` are exclusive


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within one paginate() call
    items: list[Any]
    body: Any
    request: PageRequest
    response: httpx.Response = field(repr=False)


def dig(body: Any, path: Sequence[str | int]) -> Any:
    """`body[path[0]][path[1]]…`, None as soon as a step is missing."""
    current = body
    for step in path:
        if isinstance(current, Mapping):
            current = current.get(step)  # type: ignore[arg-type]
        elif isinstance(current, list) and isinstance(step, int) and -len(current) <= step < len(current):
            current = current[step]
        else:
            return None
    return current


class PagingStrategy(ABC):
    """How one API pages. Subclasses implement `items` and `next_request`; `parse` defaults to JSON."""

    def parse(self, response: httpx.Response, where: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ChannelResponseError(
                f"{where} → HTTP {response.status_code}: body is not JSON: {response.text[:200]!r}",
                channel=where.split(":", 1)[0], status=response.status_code, url=str(response.request.url),
            ) from None

    @abstractmethod
    def items(self, body: Any) -> list[Any]: ...

    @abstractmethod
    def next_request(self, request: PageRequest, response: httpx.Response, body: Any) -> PageRequest | None: ...


def _items_at(body: Any, path: Sequence[str | int], where: str) -> list[Any]:
    found = dig(body, path)
    if found is None:
        return []
    if not isinstance(found, list):
        raise ChannelResponseError(f"{where}: expected a list at {'.'.join(map(str, path))}, got "
                                   f"{type(found).__name__}", channel=where.split(":", 1)[0])
    return found


class GraphQLCursor(PagingStrategy):
    """A Relay connection at `connection_path` (e.g. ("data", "orders")): items from `nodes` (or
    `edges[].node`), the next page by setting the `after` variable to `pageInfo.endCursor` while
    `pageInfo.hasNextPage`."""

    def __init__(self, connection_path: Sequence[str], *, after_variable: str = "after"):
        self.connection_path = tuple(connection_path)
        self.after_variable = after_variable

    def _connection(self, body: Any) -> Mapping[str, Any]:
        found = dig(body, self.connection_path)
        if not isinstance(found, Mapping):
            raise ChannelResponseError(
                f"GraphQL answer has no connection at {'.'.join(self.connection_path)}: {str(body)[:200]}",
                channel="graphql",
            )
        return found

    def items(self, body: Any) -> list[Any]:
        connection = self._connection(body)
        if connection.get("nodes") is not None:
            return list(connection["nodes"])
        return [edge.get("node") for edge in connection.get("edges") or []]

    def next_request(self, request: PageRequest, response: httpx.Response, body: Any) -> PageRequest | None:
        info = self._connection(body).get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return None
        cursor = info.get("endCursor")
        variables = dict((request.json or {}).get("variables") or {})
        if not cursor or cursor == variables.get(self.after_variable):
            raise ChannelResponseError(
                f"GraphQL connection {'.'.join(self.connection_path)} says hasNextPage but its endCursor "
                f"{cursor!r} does not move on", channel="graphql",
            )
        variables[self.after_variable] = cursor
        payload = copy.deepcopy(request.json)
        payload["variables"] = variables
        return replace(request, json=payload)


class LinkHeader(PagingStrategy):
    """`Link: <https://…&page_info=…>; rel="next"` (Shopify REST). The next URL carries every parameter."""

    def __init__(self, items_path: Sequence[str | int]):
        self.items_path = tuple(items_path)

    def items(self, body: Any) -> list[Any]:
        return _items_at(body, self.items_path, "link-paged list")

    def next_request(self, request: PageRequest, response: httpx.Response, body: Any) -> PageRequest | None:
        url = (response.links.get("next") or {}).get("url")
        if not url:
            return None
        return replace(request, path=str(response.url.join(url)), params=None)


class NextToken(PagingStrategy):
    """A continuation token in the body (Amazon SP-API `pagination.nextToken`), sent back as a parameter.

    `keep_params=False` sends only the token (APIs that reject the original filters beside it)."""

    def __init__(self, items_path: Sequence[str | int], token_path: Sequence[str | int], param: str,
                 *, keep_params: bool = True):
        self.items_path = tuple(items_path)
        self.token_path = tuple(token_path)
        self.param = param
        self.keep_params = keep_params

    def items(self, body: Any) -> list[Any]:
        return _items_at(body, self.items_path, "token-paged list")

    def next_request(self, request: PageRequest, response: httpx.Response, body: Any) -> PageRequest | None:
        token = dig(body, self.token_path)
        if not token:
            return None
        if (request.params or {}).get(self.param) == token:
            raise ChannelResponseError(f"{self.param} {token!r} repeats: the API is not advancing",
                                       channel="paging")
        params = dict(request.params or {}) if self.keep_params else {}
        params[self.param] = token
        return replace(request, params=params)


class PageNumber(PagingStrategy):
    """Numbered pages (`page=1,2,…`). Stops at `total_pages_path` when the body has it, else at a short or
    empty page. `in_body=True` puts the number into the JSON body (Rakuten's PaginationRequestModel)."""

    def __init__(self, items_path: Sequence[str | int], *, param: str | Sequence[str] = "page",
                 page_size: int | None = None, total_pages_path: Sequence[str | int] | None = None,
                 in_body: bool = False, first: int = 1, echo_path: Sequence[str | int] | None = None):
        self.items_path = tuple(items_path)
        # In the body the number may be nested: ("PaginationRequestModel", "requestPage").
        self.param = param
        self._path = (param,) if isinstance(param, str) else tuple(param)
        self.echo_path = tuple(echo_path) if echo_path else None
        self.page_size = page_size
        self.total_pages_path = tuple(total_pages_path) if total_pages_path else None
        self.in_body = in_body
        self.first = first

    def items(self, body: Any) -> list[Any]:
        return _items_at(body, self.items_path, "numbered pages")

    def _current(self, request: PageRequest) -> int:
        if self.in_body:
            found = dig(request.json or {}, self._path)
            return int(found) if found is not None else self.first
        return int((request.params or {}).get(self._path[0], self.first))

    def next_request(self, request: PageRequest, response: httpx.Response, body: Any) -> PageRequest | None:
        current = self._current(request)
        echoed = dig(body, self.echo_path) if self.echo_path else None
        if echoed is not None and int(echoed) != current:
            # The API answered another page than the one asked for (a cached page served again).
            raise ChannelResponseError(f"asked for page {current}, the answer is page {echoed}", channel="paging")
        items = self.items(body)
        if self.total_pages_path is not None and dig(body, self.total_pages_path) is not None:
            if current >= int(dig(body, self.total_pages_path)):
                return None
        elif not items or (self.page_size is not None and len(items) < self.page_size):
            return None
        if self.in_body:
            payload = copy.deepcopy(request.json) or {}
            holder = payload
            for step in self._path[:-1]:
                holder = holder.setdefault(step, {})
            holder[self._path[-1]] = current + 1
            return replace(request, json=payload)
        return replace(request, params={**(request.params or {}), self._path[0]: current + 1})


class OffsetHits(PagingStrategy):
    """`offset`/`hits` query parameters (Rakuten Items API 2.0 search): the next page starts where this one
    ended, until `total_path` (numFound) is reached or a page comes back empty."""

    def __init__(self, items_path: Sequence[str | int], total_path: Sequence[str | int], *,
                 offset_param: str = "offset", hits_param: str = "hits"):
        self.items_path = tuple(items_path)
        self.total_path = tuple(total_path)
        self.offset_param = offset_param
        self.hits_param = hits_param

    def items(self, body: Any) -> list[Any]:
        return _items_at(body, self.items_path, "offset pages")

    def next_request(self, request: PageRequest, response: httpx.Response, body: Any) -> PageRequest | None:
        params = dict(request.params or {})
        offset = int(params.get(self.offset_param, 0)) + len(self.items(body))
        total = dig(body, self.total_path)
        if not self.items(body) or (total is not None and offset >= int(total)):
            return None
        params[self.offset_param] = offset
        return replace(request, params=params)


class Pager:
    """Iterates pages; afterwards `pages` is the count and `truncated` says whether the bound stopped it."""

    def __init__(self, client: ChannelClient, first: PageRequest, strategy: PagingStrategy, *, operation: str,
                 max_pages: int, on_limit: Literal["raise", "stop"] = "raise"):
        if max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        self.client = client
        self.first = first
        self.strategy = strategy
        self.operation = operation
        self.max_pages = max_pages
        self.on_limit = on_limit
        self.pages = 0
        self.truncated = False

    def __iter__(self) -> Iterator[Page]:
        request: PageRequest | None = self.first
        while request is not None:
            if self.pages >= self.max_pages:
                if self.on_limit == "stop":
                    self.truncated = True
                    return
                raise PageLimitReached(
                    f"{self.client.channel}: {self.operation}: still more pages after {self.max_pages}; stopping "
                    "here would skip records (the fetch is not ordered by its cursor). Raise the page bound or "
                    "narrow the fetch."
                )
            response = self.client.request(request.method, request.path, operation=self.operation,
                                           json=request.json, params=request.params, content=request.content)
            where = f"{self.client.channel}: {self.operation} ({request.method} {request.path})"
            body = self.strategy.parse(response, where)
            try:
                items = self.strategy.items(body)
                following = self.strategy.next_request(request, response, body)
            except ChannelResponseError as exc:
                raise ChannelResponseError(f"{where}: {exc}", channel=self.client.channel,
                                           operation=self.operation, status=response.status_code) from None
            self.pages += 1
            yield Page(self.pages, items, body, request, response)
            request = following


def paginate(client: ChannelClient, first: PageRequest, strategy: PagingStrategy, *, operation: str,
             max_pages: int, on_limit: Literal["raise", "stop"] = "raise") -> Pager:
    return Pager(client, first, strategy, operation=operation, max_pages=max_pages, on_limit=on_limit)


def date_windows(start: datetime, end: datetime, span: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows no longer than `span` (for APIs that cap a search window)."""
    if span <= timedelta(0):
        raise ValueError("span must be positive")
    lower = start
    while lower < end:
        upper = min(end, lower + span)
        yield lower, upper
        lower = upper
