"""Yahoo!ショッピング store API connector (ShoppingWebService V1): orders, listings, stock → the landing zone.

Auth `Authorization: Bearer <token>`, the store account (`SellerId` / `seller_id`) in every request, XML
answers parsed with defusedxml. About one request per second per store, shared by every call: the process-wide
`yahoo` limiter (`channels.yahoo.requests_per_second`) paces ingestion and the stock push together.

- orders: `orderList` by `UpdateTimeFrom`/`UpdateTimeTo` (JST `YYYYMMDDHHMMSS`) from the landed cursor minus the
  look-back (first run: `backfill_start`) up to the fetch time, paged with `<Start>`/`<Result>`; then
  `orderInfo` per order for the lines and every detail field. An order whose (OrderId, Version) has landed
  already is not fetched again. orderList sorts by order time, so an order updated while we page moves out of
  the window and shifts the rest: a window is re-read when its `TotalCount` changed while paging or fewer
  distinct orders came back than it (bounded), and each page's first `<Index>` must be the `<Start>` asked
  (a repeated page is fetched again).
- listings: `myItemList` (≤ 100 a page), one row per item code × sub code with its JAN (snapshot).
- stock: `getStock` for every listed code (≤ 1,000 codes a call) — the quantity the store shows (snapshot).

Every row keeps the whole record in `_raw` (the XML element as JSON: repeated children become lists). A record
without its key, or with a value that does not parse, is quarantined with a reason; the rest lands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import httpx
import polars as pl
from defusedxml.ElementTree import fromstring

from ichigen.config import Config, YahooConfig
from ingestion.common import IngestResult, RecordError, parse_utc, raw_json, require, to_int, utcnow
from ingestion.errors import ChannelResponseError, IngestionError, require_enabled
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone, QuarantineRecord, land_and_report
from ingestion.paging import PageRequest, PagingStrategy, paginate
from ingestion.ratelimit import channel_limiter
from ingestion.schemas import UTC_TS, EntitySchema
from ingestion.throttle import Signal, ThrottleStrategy, shared_throttle

SOURCE = "yahoo"
API = "/ShoppingWebService/V1"
JST = timezone(timedelta(hours=9))
MAX_ITEM_LIST_RESULTS = 100
MAX_STOCK_CODES = 1000
MAX_WINDOW_REREADS = 3
MAX_PAGES = 5000
# Operations whose request may have been applied when the answer is unreadable: never resent blindly.
NOT_REPEATABLE = frozenset({"setStock"})

ORDER_LIST_FIELDS = ("OrderId", "Version", "OrderTime", "LastUpdateTime", "OrderStatus")
ORDER_INFO_FIELDS = (
    "OrderId", "Version", "OrderTime", "LastUpdateTime", "OrderStatus", "IsActive", "IsSeen", "PayStatus",
    "PayMethod", "PayMethodName", "PayDate", "ShipStatus", "ShipDate", "ShipCompleteDate", "CancelDate",
    "ShipInvoiceNumber1", "BillLastName", "BillFirstName", "BillLastNameKana", "BillFirstNameKana",
    "BillMailAddress", "BillPhoneNumber", "BillZipCode", "BillPrefecture", "BillCity", "BillAddress1",
    "BillAddress2", "ShipCharge", "Discount", "UsePoint", "TotalPrice", "SettleAmount",
    "LineId", "ItemId", "Title", "SubCode", "SubCodeOption", "Quantity", "UnitPrice", "Jan", "ItemTaxRatio",
)
ORDER_LEVEL_FIELDS = ORDER_INFO_FIELDS[:ORDER_INFO_FIELDS.index("LineId")]

# -- landed schemas (DECISIONS.md D4; source names in snake_case) ------------------------------------------
ITEM = pl.Struct({
    "line_id": pl.Int64(), "item_id": pl.String(), "sub_code": pl.String(), "title": pl.String(),
    "sub_code_option": pl.String(), "quantity": pl.Int64(), "unit_price": pl.Int64(), "jan": pl.String(),
    "item_tax_ratio": pl.Int64(),
})
_ORDER_TIMES = ("order_time", "last_update_time", "pay_date", "ship_date", "ship_complete_date", "cancel_date")
_ORDER_INTS = ("version", "order_status", "pay_status", "ship_status", "ship_charge", "discount", "use_point",
               "total_price", "settle_amount")
_ORDER_TEXT = ("is_active", "is_seen", "pay_method", "pay_method_name", "ship_invoice_number1", "bill_last_name",
               "bill_first_name", "bill_last_name_kana", "bill_first_name_kana", "bill_mail_address",
               "bill_phone_number", "bill_zip_code", "bill_prefecture", "bill_city", "bill_address1",
               "bill_address2")
YAHOO_ORDERS = EntitySchema(
    SOURCE, "orders", key=("order_id",), cursor_field="last_update_time",
    columns={"order_id": pl.String(), **{c: pl.Int64() for c in _ORDER_INTS}, **{c: UTC_TS for c in _ORDER_TIMES},
             **{c: pl.String() for c in _ORDER_TEXT}, "items": pl.List(ITEM)},
)
YAHOO_LISTINGS = EntitySchema(
    SOURCE, "listings", key=("listing_code",), cursor_field="update_time",
    columns={"listing_code": pl.String(), "item_code": pl.String(), "sub_code": pl.String(), "name": pl.String(),
             "option": pl.String(), "jan": pl.String(), "price": pl.Int64(), "tax_ratio": pl.Int64(),
             "display": pl.Int64(), "update_time": UTC_TS},
)
YAHOO_STOCK = EntitySchema(
    SOURCE, "stock", key=("listing_code",), cursor_field="update_time",
    columns={"listing_code": pl.String(), "item_code": pl.String(), "sub_code": pl.String(),
             "quantity": pl.Int64(), "allow_overdraft": pl.Int64(), "update_time": UTC_TS},
)


# -- XML ------------------------------------------------------------------------------------------------
def snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def element_dict(node: Element) -> Any:
    """An element as plain data: text for a leaf, a dict of children otherwise (repeated children → list),
    attributes under `@name`."""
    children = list(node)
    if not children and not node.attrib:
        return node.text
    out: dict[str, Any] = {f"@{k}": v for k, v in node.attrib.items()}
    for child in children:
        value = element_dict(child)
        if child.tag in _REPEATED:
            out.setdefault(child.tag, []).append(value)
        elif child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


_REPEATED = frozenset({"Item", "SubCode", "OrderInfo", "Result"})


def parse_xml(response: httpx.Response, where: str) -> Element:
    try:
        return fromstring(response.content)
    except (ParseError, ValueError) as exc:
        raise ChannelResponseError(f"{where} → HTTP {response.status_code}: body is not XML ({exc}): "
                                   f"{response.text[:200]!r}", channel=SOURCE, status=response.status_code) from None


def request_xml(*path_values: tuple[str, Any]) -> bytes:
    """`<Req>` built from ("Search/Condition/UpdateTimeFrom", value) pairs, in order."""
    root = Element("Req")
    for path, value in path_values:
        node = root
        for step in path.split("/"):
            found = node.find(step)
            node = found if found is not None else SubElement(node, step)
        node.text = str(value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8")


def condition_time(ts: datetime) -> str:
    return ts.astimezone(JST).strftime("%Y%m%d%H%M%S")


class YahooXmlThrottle(ThrottleStrategy):
    """Yahoo answers its limits with HTTP errors (handled by the loop). A 2xx whose body is not whole XML (a
    connection cut mid-body) is retried for reads; for `NOT_REPEATABLE` writes it fails the call, because the
    store may have applied it (the stock pusher resolves that by re-reading, never by resending)."""

    name = "yahoo-xml"

    def inspect(self, response: httpx.Response, operation: str) -> Signal | None:
        try:
            fromstring(response.content)
        except (ParseError, ValueError):
            if operation in NOT_REPEATABLE:
                return Signal.fail(f"answer unreadable, outcome unknown: {response.text[:120]!r}")
            return Signal.retry(0.2)
        return None


def make_client(config: Config, *, transport: httpx.BaseTransport | None = None, **options: Any) -> ChannelClient:
    yahoo: YahooConfig = config.channels.yahoo
    return ChannelClient(
        SOURCE, yahoo.base_url, {"Authorization": f"Bearer {yahoo.access_token}", "Accept": "application/xml"},
        # ~1 request/s per store, no burst: each request also waits 1/rate after the last answer (D102).
        channel_limiter(SOURCE, requests_per_second=yahoo.requests_per_second,
                        answer_gap=1.0 / yahoo.requests_per_second), yahoo.timeout_seconds,
        yahoo.max_retries, transport, throttle=shared_throttle(SOURCE, YahooXmlThrottle), **options,
    )


# -- paging ---------------------------------------------------------------------------------------------
class StartPosition(PagingStrategy):
    """1-based start positions: `<Search><Start>` inside the orderList XML (`build_body(start)` makes the
    document) or the `start=` parameter (myItemList). The first item's position (`<Index>` /
    `firstResultPosition`) must be the start asked for: a page that is not (the API repeated an earlier page)
    is asked for again; its items are yielded too, for de-duplication only."""

    def __init__(self, items_path: str, total_path: str, position_of_first: Callable[[Element, list], int], *,
                 build_body: Callable[[int], bytes] | None = None):
        self.items_path = items_path
        self.total_path = total_path
        self.position_of_first = position_of_first
        self.build_body = build_body

    def parse(self, response: httpx.Response, where: str) -> Any:
        return parse_xml(response, where)

    def items(self, body: Element) -> list[Any]:
        return body.findall(self.items_path)

    def total(self, body: Element) -> int:
        text = body.get(self.total_path[1:]) if self.total_path.startswith("@") else body.findtext(self.total_path)
        return int(text or 0)

    def start_of(self, request: PageRequest) -> int:
        if self.build_body is not None:
            return int(fromstring(request.content).findtext("Search/Start") or 1)
        return int((request.params or {}).get("start", 1))

    def next_request(self, request: PageRequest, response: httpx.Response, body: Any) -> PageRequest | None:
        start = self.start_of(request)
        items = self.items(body)
        if items and self.position_of_first(body, items) != start:
            return request  # a repeated page: ask again for the same start
        following = start + len(items)
        if not items or following > self.total(body):
            return None
        if self.build_body is not None:
            return replace(request, content=self.build_body(following))
        return replace(request, params={**(request.params or {}), "start": following})


# -- mapping --------------------------------------------------------------------------------------------
def _text(node: Element, path: str) -> str | None:
    value = node.findtext(path)
    return value if value not in (None, "") else None


def _find_anywhere(node: Element, name: str) -> str | None:
    for path in (name, f"Pay/{name}", f"Ship/{name}", f"Detail/{name}"):
        value = _text(node, path)
        if value is not None:
            return value
    return None


def order_row(info: Element) -> dict[str, Any]:
    """One yahoo/orders row from an orderInfo `<OrderInfo>` (fields may sit in Pay/Ship/Detail)."""
    row: dict[str, Any] = {"order_id": require(_text(info, "OrderId"), field="OrderId")}
    for name in ORDER_LEVEL_FIELDS[1:]:
        column = snake(name)
        value = _find_anywhere(info, name)
        if column in _ORDER_INTS:
            row[column] = to_int(value, field=name)
        elif column in _ORDER_TIMES:
            row[column] = parse_utc(value, field=name)
        else:
            row[column] = value
    require(row["last_update_time"], field="LastUpdateTime")
    items = []
    for index, item in enumerate(info.findall("Item")):
        where = f"Item[{index}]"
        items.append({
            "line_id": to_int(_text(item, "LineId"), field=f"{where}.LineId"),
            "item_id": require(_text(item, "ItemId"), field=f"{where}.ItemId"),
            "sub_code": _text(item, "SubCode"), "title": _text(item, "Title"),
            "sub_code_option": _text(item, "SubCodeOption"),
            "quantity": to_int(require(_text(item, "Quantity"), field=f"{where}.Quantity"), field=f"{where}.Quantity"),
            "unit_price": to_int(_text(item, "UnitPrice"), field=f"{where}.UnitPrice"),
            "jan": _text(item, "Jan"), "item_tax_ratio": to_int(_text(item, "ItemTaxRatio"), field=f"{where}.Tax"),
        })
    row["items"] = items
    row["_raw"] = raw_json(element_dict(info))
    return row


def listing_code(item: str, sub: str | None) -> str:
    return f"{item}:{sub}" if sub else item


def listing_rows(result: Element) -> list[dict[str, Any]]:
    """yahoo/listings rows (one per sub code, or one for an item without sub codes) from a myItemList Result."""
    code = require(_text(result, "ItemCode"), field="ItemCode")
    raw = raw_json(element_dict(result))
    updated = require(parse_utc(_text(result, "UpdateTime"), field="UpdateTime"), field="UpdateTime")
    base = {"item_code": code, "name": _text(result, "Name"), "tax_ratio": to_int(_text(result, "TaxRatio"),
            field="TaxRatio"), "display": to_int(_text(result, "Display"), field="Display"), "update_time": updated}
    subs = result.findall("SubCodes/SubCode") or [Element("SubCode")]
    rows = []
    for sub in subs:
        sub_code = _text(sub, "Code")
        rows.append({**base, "listing_code": listing_code(code, sub_code), "sub_code": sub_code,
                     "option": _text(sub, "Option"), "jan": _text(sub, "Jan"),
                     "price": to_int(_text(sub, "Price") or _text(result, "Price"), field="Price"), "_raw": raw})
    return rows


def stock_row(result: Element) -> dict[str, Any]:
    code = require(_text(result, "ItemCode"), field="ItemCode")
    sub = _text(result, "SubCode")
    return {"listing_code": listing_code(code, sub), "item_code": code, "sub_code": sub,
            "quantity": to_int(require(_text(result, "Quantity"), field="Quantity"), field="Quantity"),
            "allow_overdraft": to_int(_text(result, "AllowOverdraft"), field="AllowOverdraft"),
            "update_time": parse_utc(_text(result, "UpdateTime"), field="UpdateTime"),
            "_raw": raw_json(element_dict(result))}


# -- fetching -------------------------------------------------------------------------------------------
@dataclass
class Collected:
    rows: list[dict[str, Any]]
    bad: list[QuarantineRecord]
    pages: int = 0


def _quarantine(bad: list[QuarantineRecord], entity: str, key: str | None, where: str, exc: Exception,
                node: Element) -> None:
    bad.append(QuarantineRecord(key, f"{SOURCE}/{entity} {key or '(no key)'} at {where}: {exc}",
                                element_dict(node)))


def list_orders(client: ChannelClient, yahoo: YahooConfig, since: datetime, until: datetime,
                bad: list[QuarantineRecord]) -> tuple[dict[str, int | None], int]:
    """(OrderId → Version) of every order updated in [since, until), and the pages read. Re-reads the window
    when orders moved while paging (fewer distinct orders than TotalCount)."""
    pages = 0
    for _ in range(MAX_WINDOW_REREADS):
        def body(start: int) -> bytes:
            return request_xml(("Search/Result", yahoo.page_size), ("Search/Start", start),
                               ("Search/Sort", "+order_time"),
                               ("Search/Condition/UpdateTimeFrom", condition_time(since)),
                               ("Search/Condition/UpdateTimeTo", condition_time(until)),
                               ("Search/Field", ",".join(ORDER_LIST_FIELDS)), ("SellerId", yahoo.seller_id))

        strategy = StartPosition("Search/OrderInfo", "Search/TotalCount",
                                 lambda _body, items: int(items[0].findtext("Index") or 0), build_body=body)
        pager = paginate(client, PageRequest("POST", f"{API}/orderList", content=body(1)), strategy,
                         operation="orderList", max_pages=MAX_PAGES)
        found: dict[str, int | None] = {}
        totals: set[int] = set()
        window_bad: list[QuarantineRecord] = []
        for page in pager:
            totals.add(strategy.total(page.body))
            for info in page.items:
                order_id = _text(info, "OrderId")
                try:
                    found[require(order_id, field="OrderId")] = to_int(_text(info, "Version"), field="Version")
                except RecordError as exc:
                    _quarantine(window_bad, "orders", order_id, f"orderList Index {info.findtext('Index')}", exc,
                                info)
        pages += pager.pages
        keyless = {r.reason for r in window_bad}  # a repeated page reports the same record twice
        # Orders only leave a window while we page (an update moves them past UpdateTimeTo), so a stable
        # TotalCount with every position seen means nothing shifted under us.
        if len(totals) <= 1 and len(found) + len(keyless) >= max(totals, default=0):
            bad.extend({r.reason: r for r in window_bad}.values())
            return found, pages
    raise IngestionError(f"{SOURCE}: orderList kept changing while paging the window {since:%Y-%m-%d %H:%M:%S}–"
                         f"{until:%Y-%m-%d %H:%M:%S} UTC ({MAX_WINDOW_REREADS} reads); try again")


def fetch_order(client: ChannelClient, yahoo: YahooConfig, order_id: str) -> Element:
    body = request_xml(("Target/OrderId", order_id), ("Target/Field", ",".join(ORDER_INFO_FIELDS)),
                       ("SellerId", yahoo.seller_id))
    where = f"{SOURCE}: orderInfo {order_id}"
    response = client.request("POST", f"{API}/orderInfo", operation="orderInfo", content=body)
    info = parse_xml(response, where).find("Result/OrderInfo")
    if info is None:
        raise ChannelResponseError(f"{where}: the answer has no Result/OrderInfo", channel=SOURCE)
    return info


def list_items(client: ChannelClient, yahoo: YahooConfig) -> tuple[list[Element], int]:
    """Every myItemList Result (one per item code), de-duplicated by ItemCode."""
    size = min(yahoo.page_size, MAX_ITEM_LIST_RESULTS)
    strategy = StartPosition("Result", "@totalResultsAvailable",
                             lambda body, _items: int(body.get("firstResultPosition") or 0))
    request = PageRequest("GET", f"{API}/myItemList", params={"seller_id": yahoo.seller_id, "start": 1,
                                                              "results": size})
    pager = paginate(client, request, strategy, operation="myItemList", max_pages=MAX_PAGES)
    seen: dict[str, Element] = {}
    keyless: list[Element] = []
    for page in pager:
        for result in page.items:
            code = _text(result, "ItemCode")
            if code is None:
                keyless.append(result)
            else:
                seen[code] = result
    return list(seen.values()) + keyless, pager.pages


def get_stock(client: ChannelClient, seller_id: str, codes: list[str]) -> Iterator[Element]:
    """getStock Results for `codes` (≤ 1,000 a call); codes the store does not know are simply absent."""
    for index in range(0, len(codes), MAX_STOCK_CODES):
        chunk = codes[index:index + MAX_STOCK_CODES]
        response = client.request("POST", f"{API}/getStock", operation="getStock",
                                  data={"seller_id": seller_id, "item_code": ",".join(chunk)})
        yield from parse_xml(response, f"{SOURCE}: getStock").findall("Result")


def _since(config: Config, landing: LandingZone) -> datetime:
    yahoo = config.channels.yahoo
    cursor = landing.cursor(SOURCE, "orders", YAHOO_ORDERS.cursor_field)
    if cursor is not None:
        return cursor - timedelta(minutes=yahoo.lookback_minutes)
    try:
        return require(parse_utc(yahoo.backfill_start, field="channels.yahoo.backfill_start"), field="backfill")
    except RecordError as exc:
        raise IngestionError(f"{SOURCE}: bad configuration: {exc}") from None


def _landed_versions(landing: LandingZone) -> set[tuple[str, int]]:
    frame = landing.select(SOURCE, "orders", "order_id", "version", schema=YAHOO_ORDERS.landed_columns)
    return {(oid, v) for oid, v in frame.iter_rows() if v is not None}


def collect_orders(client: ChannelClient, config: Config, landing: LandingZone, since: datetime,
                   until: datetime) -> Collected:
    yahoo = config.channels.yahoo
    out = Collected([], [])
    listed, out.pages = list_orders(client, yahoo, since, until, out.bad)
    landed = _landed_versions(landing)
    for order_id, version in sorted(listed.items()):
        if version is not None and (order_id, version) in landed:
            continue  # this version has landed already: nothing new to fetch
        info = fetch_order(client, yahoo, order_id)
        out.pages += 1
        try:
            out.rows.append(order_row(info))
        except RecordError as exc:
            _quarantine(out.bad, "orders", order_id, "orderInfo", exc, info)
    return out


def collect_listings(client: ChannelClient, config: Config) -> Collected:
    results, pages = list_items(client, config.channels.yahoo)
    out = Collected([], [], pages)
    for result in results:
        try:
            out.rows.extend(listing_rows(result))
        except RecordError as exc:
            _quarantine(out.bad, "listings", _text(result, "ItemCode"), "myItemList", exc, result)
    return out


def collect_stock(client: ChannelClient, config: Config) -> Collected:
    listed = collect_listings(client, config)
    codes = sorted({row["listing_code"] for row in listed.rows})
    out = Collected([], [], listed.pages)
    out.pages += -(-len(codes) // MAX_STOCK_CODES)  # one getStock call per 1,000 codes
    for result in get_stock(client, config.channels.yahoo.seller_id, codes):
        try:
            out.rows.append(stock_row(result))
        except RecordError as exc:
            _quarantine(out.bad, "stock", _text(result, "ItemCode"), "getStock", exc, result)
    return out


SCHEMAS = {"orders": YAHOO_ORDERS, "listings": YAHOO_LISTINGS, "stock": YAHOO_STOCK}
ENTITIES = tuple(SCHEMAS)


def ingest(config: Config, entity: str, *, landing: LandingZone | None = None, client: ChannelClient | None = None,
           now: datetime | None = None) -> IngestResult:
    """Fetch the entity (orders: what changed since the landed cursor minus look-back; listings, stock: a
    snapshot) and land it as one batch, quarantining what cannot land. A disabled store lands nothing."""
    if entity not in SCHEMAS:
        raise ValueError(f"unknown {SOURCE} entity {entity!r}; known: {', '.join(SCHEMAS)}")
    landing = landing or LandingZone(config.landing_dir)
    fetched_at = now or utcnow()
    require_enabled(SOURCE, config.channels.yahoo.enabled)
    own_client = client is None
    client = client or make_client(config)
    retries_before = client.stats.retries
    since = None
    try:
        if entity == "orders":
            since = _since(config, landing)
            got = collect_orders(client, config, landing, since, fetched_at.replace(microsecond=0))
        elif entity == "listings":
            got = collect_listings(client, config)
        else:
            got = collect_stock(client, config)
    finally:
        if own_client:
            client.close()
    return land_and_report(landing, SCHEMAS[entity], got.rows, got.bad, fetched_at=fetched_at, since=since,
                           pages=got.pages, retries=client.stats.retries - retries_before)
