"""Yahoo!ショッピング's store API (ShoppingWebService V1) over the world's `yahoo` mall (sandbox.malls).

Endpoints (all under `/ShoppingWebService/V1/`, header `Authorization: Bearer <token>`):
- `POST orderList`  XML `<Req><Search><Result/><Start/><Sort/><Condition>…</Condition><Field/></Search>
  <SellerId/></Req>` → `<Result><Status>OK</Status><Search><TotalCount/><OrderInfo><Index/>…` (requested
  fields only). Conditions: OrderTimeFrom/To, UpdateTimeFrom/To (`YYYYMMDDHHMMSS`, JST, From inclusive,
  To exclusive here), OrderStatus. Sort `+order_time` (default) or `-order_time`; ties by order id.
- `POST orderInfo`  XML `<Req><Target><OrderId/><Field/></Target><SellerId/></Req>` →
  `<ResultSet …><Result><Status>OK</Status><OrderInfo>…<Pay/><Ship/><Detail/><Item/>…</OrderInfo></Result>`.
- `GET myItemList?seller_id=&start=&results=` → `<ResultSet totalResultsAvailable totalResultsReturned
  firstResultPosition><Result>…</Result>…` one Result per item code, its sub codes inline (see README).
- `POST getStock` / `POST setStock` form `seller_id`, `item_code` (comma-separated, ≤ 1,000, `code:subcode`),
  setStock also `quantity` (same count; `5` sets, `+2`/`-1` adds/subtracts, floored at 0). Unknown codes are
  skipped, not an error.
- `POST updateItems` (商品一括更新) form `seller_id`, `item1` … `item100`, each an URL-encoded set of one item's
  fields (`item_code=tote-01&price=1980`) → `<ResultSet><Result><ItemCode/><Status>OK|NG</Status>[<Error><Code/>
  <Message/></Error>]</Result>…`: one Result per item, an NG item does not hold back the others. The sandbox
  simulates `price` (通常販売価格, tax inclusive, a whole number 1–999,999,999) only; the price is the item
  code's, so every sub code of the item shows it at once (myItemList).

Real behaviour modelled: 401 + `WWW-Authenticate: Bearer error="invalid_token"` for a bad token; `<Error>
<Message/><Code/></Error>` bodies; a missing seller_id is `px-04001`; one request/s per store shared by every
call (over it → 429); seeded faults (`YahooFaults`). Neutral states map to Yahoo's codes in `status_codes`.
Sandbox-only endpoints (no token) live under `/_sandbox/yahoo/`.
"""

from __future__ import annotations

import random
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from defusedxml.ElementTree import fromstring as parse_xml
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.malls import (
    AWAITING_SHIPMENT,
    BANK,
    CANCELLED,
    CARD,
    COD,
    DELIVERED,
    KONBINI,
    ORDERED,
    PAYPAY,
    PENDING_PAYMENT,
    RETURNED,
    SHIPPED,
    MallListing,
    MallOrder,
)
from sandbox.shopify import TrafficLog
from sandbox.world import World

API = "/ShoppingWebService/V1"
JST = timezone(timedelta(hours=9))
DEFAULT_TOKEN = "yahoo_sandbox_token"
DEFAULT_SELLER = "ichigen-select"
MAX_ITEM_CODES = 1000
MAX_ITEM_LIST_RESULTS = 100
MAX_UPDATE_ITEMS = 100
MAX_PRICE = 999_999_999
XML_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Neutral lifecycle → (OrderStatus, ShipStatus). OrderStatus: 1 予約中 2 処理中 3 保留 4 キャンセル 5 完了;
# ShipStatus: 0 出荷不可 1 出荷可 2 出荷処理中 3 出荷済み 4 着荷済み. Yahoo has no return status: a return is
# a cancellation after delivery (OrderStatus 4, ShipStatus 4).
STATUS_CODES = {
    ORDERED: (2, 0), PENDING_PAYMENT: (2, 0), AWAITING_SHIPMENT: (2, 1), SHIPPED: (5, 3), DELIVERED: (5, 4),
    CANCELLED: (4, 0), RETURNED: (4, 4),
}
# Neutral payment method → Yahoo PayMethod code and name (the sandbox's choice of codes; see README).
PAY_METHODS = {
    CARD: ("payment_a1", "クレジットカード決済"), PAYPAY: ("payment_a17", "PayPay残高等"),
    BANK: ("payment_b1", "銀行振込"), KONBINI: ("payment_c1", "コンビニ決済"), COD: ("payment_d1", "商品代引"),
}


def status_codes(order: MallOrder) -> dict[str, int]:
    """OrderStatus, PayStatus (0 入金待ち, 1 入金済み), ShipStatus of a mall order."""
    order_status, ship_status = STATUS_CODES[order.state]
    if order.state == CANCELLED and order.shipped_at is not None:
        ship_status = 4 if order.delivered_at else 3
    return {"OrderStatus": order_status, "PayStatus": 1 if order.paid_at else 0, "ShipStatus": ship_status}


def item_code(listing: MallListing) -> str:
    """`code:subcode` for a listing with a sub code, the bare item code for one without (parent == variant)."""
    if listing.variant_code == listing.parent_code:
        return listing.parent_code
    return f"{listing.parent_code}:{listing.variant_code}"


def jst(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(JST).strftime("%Y-%m-%dT%H:%M:%S+09:00")


def parse_condition_time(text: str) -> datetime:
    """`YYYYMMDDHHMMSS` in JST → aware datetime."""
    return datetime.strptime(text.strip(), "%Y%m%d%H%M%S").replace(tzinfo=JST)


# ------------------------------------------------------------------------------------------------ faults
@dataclass
class YahooFaults:
    """Injected failures: each API request draws once from a seeded RNG; with probability `rate` it gets one
    of `kinds`. 429 comes as a burst (`burst_429` requests in a row); `truncated` processes the request (a
    setStock is applied) and cuts the body; `repeat` answers a paged list with the previous page; `slow` waits
    `slow_seconds` before answering normally; 500/503 answer before processing."""

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = ("429", "500", "503", "slow", "truncated", "repeat")
    burst_429: int = 3
    slow_seconds: float = 0.3
    counts: dict[str, int] = field(default_factory=dict)
    drawn: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(f"yahoo-faults:{self.seed}")
        self._burst_left = 0
        self._lock = threading.Lock()

    def configure(self, rate: float, kinds: tuple[str, ...] | None = None, seed: int | None = None) -> None:
        """Change the fault mix of a running store (tests): a new rate, kinds and a fresh RNG from `seed`."""
        with self._lock:
            self.rate = rate
            self.kinds = kinds or self.kinds
            self.seed = self.seed if seed is None else seed
            self._rng = random.Random(f"yahoo-faults:{self.seed}")
            self._burst_left = 0

    def draw(self) -> str | None:
        with self._lock:
            self.drawn += 1
            if self._burst_left > 0:
                self._burst_left -= 1
                kind: str | None = "429"
            elif self._rng.random() < self.rate:
                kind = self._rng.choice(self.kinds)
                if kind == "429":
                    self._burst_left = self.burst_429 - 1
            else:
                kind = None
            if kind:
                self.counts[kind] = self.counts.get(kind, 0) + 1
            return kind


class StoreRateLimit:
    """Yahoo's per-store budget: `per_second` requests, `burst` at once, shared by every call."""

    def __init__(self, per_second: float, burst: int = 1):
        self.per_second = per_second
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()
        self.refused = 0

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self.refused += 1
            return False


# ------------------------------------------------------------------------------------------------ XML
def _xml(root: ET.Element) -> bytes:
    return XML_HEADER + ET.tostring(root, encoding="utf-8")


def _add(parent: ET.Element, tag: str, value: Any = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if value is not None:
        node.text = str(value)
    return node


def error_body(message: str, code: str) -> bytes:
    root = ET.Element("Error")
    _add(root, "Message", message)
    _add(root, "Code", code)
    return _xml(root)


def result_set(results: list[ET.Element], total: int, first: int) -> bytes:
    root = ET.Element("ResultSet", totalResultsAvailable=str(total), totalResultsReturned=str(len(results)),
                      firstResultPosition=str(first))
    root.extend(results)
    return _xml(root)


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


# ------------------------------------------------------------------------------------------------ the API
class YahooAPI:
    """Answers the store API over the world's yahoo mall. Transport-free; call under no lock (takes world.lock)."""

    def __init__(self, world: World, seller_id: str = DEFAULT_SELLER):
        self.world = world
        self.seller_id = seller_id

    @property
    def mall(self):
        return self.world.mall("yahoo")

    def _listing_by_code(self) -> dict[str, MallListing]:
        return {item_code(s): s for s in self.mall.listings}

    def _check_seller(self, seller: str | None) -> None:
        if not seller:
            raise ApiError(400, '"seller_id" is not specified', "px-04001")
        if seller != self.seller_id:
            raise ApiError(403, f"seller_id {seller} is not the store of this token", "px-04003")

    # -- orders ------------------------------------------------------------------------------------
    def order_fields(self, order: MallOrder) -> dict[str, Any]:
        """Every order-level field the sandbox models, Yahoo names, JST times."""
        b = order.buyer
        codes = status_codes(order)
        method, method_name = PAY_METHODS[order.payment_method]
        return {
            "OrderId": order.order_id, "Version": order.version, "OrderTime": jst(order.created_at),
            "LastUpdateTime": jst(order.updated_at), "OrderStatus": codes["OrderStatus"],
            "IsActive": "true", "IsSeen": "true" if order.confirmed_at else "false",
            "PayStatus": codes["PayStatus"], "PayMethod": method, "PayMethodName": method_name,
            "PayDate": jst(order.paid_at), "ShipStatus": codes["ShipStatus"], "ShipDate": jst(order.shipped_at),
            "ShipCompleteDate": jst(order.delivered_at), "CancelDate": jst(order.cancelled_at),
            "ShipInvoiceNumber1": order.tracking_number,
            "BillLastName": b.family_name, "BillFirstName": b.given_name, "BillLastNameKana": b.family_name_kana,
            "BillFirstNameKana": b.given_name_kana, "BillMailAddress": b.email, "BillPhoneNumber": b.phone,
            "BillZipCode": b.zip, "BillPrefecture": b.prefecture, "BillCity": b.city, "BillAddress1": b.address1,
            "BillAddress2": b.address2,
            "ShipCharge": order.shipping, "Discount": order.discount, "UsePoint": order.points_used,
            "TotalPrice": order.total, "SettleAmount": order.amount_due,
        }

    def order_list(self, body: bytes) -> tuple[bytes, list[ET.Element]]:
        req = _parse_request(body)
        self._check_seller(req.findtext("SellerId"))
        search = req.find("Search")
        if search is None:
            raise ApiError(400, "Search is required", "od-00001")
        fields = [f.strip() for f in (search.findtext("Field") or "").split(",") if f.strip()]
        if not fields:
            raise ApiError(400, "Field is required", "od-00002")
        start = _int(search.findtext("Start"), 1, "Start")
        count = _int(search.findtext("Result"), 10, "Result")
        if start < 1 or count < 1:
            raise ApiError(400, "Start and Result must be ≥ 1", "od-00003")
        condition = search.find("Condition")
        condition = condition if condition is not None else ET.Element("Condition")
        with self.world.lock:
            rows = self._search(condition)
            if (search.findtext("Sort") or "+order_time").strip() == "-order_time":
                rows.reverse()
            total = len(rows)
            page = rows[start - 1:start - 1 + count]
            infos = []
            for index, order in enumerate(page, start=start):
                info = ET.Element("OrderInfo")
                _add(info, "Index", index)
                values = self.order_fields(order)
                for name in fields:
                    if name in values:
                        _add(info, name, values[name])
                infos.append(info)
        root = ET.Element("Result")
        _add(root, "Status", "OK")
        found = _add(root, "Search")
        _add(found, "TotalCount", total)
        found.extend(infos)
        return _xml(root), infos

    def _search(self, condition: ET.Element) -> list[MallOrder]:
        def bound(name: str) -> datetime | None:
            text = condition.findtext(name)
            if not text:
                return None
            try:
                return parse_condition_time(text)
            except ValueError:
                raise ApiError(400, f"{name} must be YYYYMMDDHHMMSS", "od-00004") from None

        windows = [("created_at", bound("OrderTimeFrom"), bound("OrderTimeTo")),
                   ("updated_at", bound("UpdateTimeFrom"), bound("UpdateTimeTo"))]
        status = condition.findtext("OrderStatus")
        rows = []
        for order in self.mall.orders:
            if any((lo is not None and getattr(order, name) < lo) or (hi is not None and getattr(order, name) >= hi)
                   for name, lo, hi in windows):
                continue
            if status and str(status_codes(order)["OrderStatus"]) != status.strip():
                continue
            rows.append(order)
        rows.sort(key=lambda o: (o.created_at, o.order_id))
        return rows

    def order_info(self, body: bytes) -> bytes:
        req = _parse_request(body)
        self._check_seller(req.findtext("SellerId"))
        target = req.find("Target")
        order_id = (target.findtext("OrderId") if target is not None else None) or ""
        fields = [f.strip() for f in ((target.findtext("Field") if target is not None else None) or "").split(",")
                  if f.strip()]
        if not order_id.strip() or not fields:
            raise ApiError(400, "Target/OrderId and Target/Field are required", "od-00001")
        with self.world.lock:
            order = self.mall.by_order.get(order_id.strip())
            if order is None:
                raise ApiError(400, f"order {order_id} was not found", "od-20000")
            values = self.order_fields(order)
            info = ET.Element("OrderInfo")
            groups = {"Pay": ("PayStatus", "PayMethod", "PayMethodName", "PayDate", "Bill"),
                      "Ship": ("ShipStatus", "ShipDate", "ShipCompleteDate", "ShipInvoiceNumber1"),
                      "Detail": ("ShipCharge", "Discount", "UsePoint", "TotalPrice", "SettleAmount")}
            containers = {name: ET.Element(name) for name in groups}
            for name in fields:
                if name not in values:
                    continue
                group = next((g for g, prefixes in groups.items() if name.startswith(prefixes)), None)
                _add(containers[group] if group else info, name, values[name])
            for node in containers.values():
                if len(node):
                    info.append(node)
            listings = self.mall.by_listing
            for line in order.lines:
                listing = listings.get(line.listing_id)
                item = _add(info, "Item")
                code = item_code(listing) if listing else line.listing_id
                parent, _, sub = code.partition(":")
                for name, value in (("LineId", line.line_no), ("ItemId", parent), ("Title", line.title),
                                    ("SubCode", sub or None), ("SubCodeOption", line.variant_label),
                                    ("Quantity", line.quantity), ("UnitPrice", line.unit_price),
                                    ("Jan", listing.jan if listing else None), ("ItemTaxRatio", line.tax_percent)):
                    if value is not None:
                        _add(item, name, value)
        result = ET.Element("Result")
        _add(result, "Status", "OK")
        result.append(info)
        return result_set([result], 1, 1)

    # -- items and stock -----------------------------------------------------------------------------
    def item_groups(self) -> list[tuple[str, list[MallListing]]]:
        groups: dict[str, list[MallListing]] = {}
        for listing in self.mall.listings:
            groups.setdefault(listing.parent_code, []).append(listing)
        return sorted(groups.items())

    def my_item_list(self, params: dict[str, str]) -> tuple[bytes, int]:
        self._check_seller(params.get("seller_id"))
        start = _int(params.get("start"), 1, "start")
        results = _int(params.get("results"), 20, "results")
        if start < 1 or not 1 <= results <= MAX_ITEM_LIST_RESULTS:
            raise ApiError(400, f"start must be ≥ 1 and results 1–{MAX_ITEM_LIST_RESULTS}", "px-04002")
        with self.world.lock:
            groups = self.item_groups()
            page = groups[start - 1:start - 1 + results]
            out = []
            for code, listings in page:
                first = listings[0]
                node = ET.Element("Result")
                for name, value in (("ItemCode", code), ("Name", first.title), ("Price", first.price),
                                    ("TaxRatio", first.tax_percent), ("Display", 1),
                                    ("UpdateTime", jst(max(s.updated_at for s in listings)))):
                    _add(node, name, value)
                subs = _add(node, "SubCodes")
                for s in listings:
                    sub = _add(subs, "SubCode")
                    _, _, sub_code = item_code(s).partition(":")
                    for name, value in (("Code", sub_code or None), ("Option", s.variant_label),
                                        ("Jan", s.jan), ("Price", s.price)):
                        if value is not None:
                            _add(sub, name, value)
                out.append(node)
        return result_set(out, len(groups), start), len(groups)

    def _codes(self, form: dict[str, str]) -> list[str]:
        self._check_seller(form.get("seller_id"))
        codes = [c.strip() for c in (form.get("item_code") or "").split(",") if c.strip()]
        if not codes:
            raise ApiError(400, '"item_code" is not specified', "px-04001")
        if len(codes) > MAX_ITEM_CODES:
            raise ApiError(400, f"item_code takes at most {MAX_ITEM_CODES} codes", "px-04002")
        return codes

    @staticmethod
    def _stock_result(code: str, listing: MallListing) -> ET.Element:
        node = ET.Element("Result")
        parent, _, sub = code.partition(":")
        for name, value in (("SellerId", None), ("ItemCode", parent), ("SubCode", sub or None),
                            ("Quantity", listing.quantity), ("AllowOverdraft", 0),
                            ("UpdateTime", jst(listing.stock_updated_at))):
            if value is not None:
                _add(node, name, value)
        return node

    def get_stock(self, form: dict[str, str]) -> bytes:
        codes = self._codes(form)
        with self.world.lock:
            by_code = self._listing_by_code()
            out = [self._stock_result(c, by_code[c]) for c in codes if c in by_code]
        return result_set(out, len(out), 1)

    def set_stock(self, form: dict[str, str]) -> bytes:
        codes = self._codes(form)
        quantities = [q.strip() for q in (form.get("quantity") or "").split(",")]
        if len(quantities) != len(codes):
            raise ApiError(400, "item_code and quantity must have the same count", "px-04002")
        parsed = []
        for q in quantities:
            relative = q[:1] in "+-" and q != ""
            if not (q[1:] if relative else q).isdigit():
                raise ApiError(400, f"quantity {q!r} is not a number, +n or -n", "px-04002")
            parsed.append((relative, int(q)))
        with self.world.lock:
            by_code = self._listing_by_code()
            at = self.world.clock()
            out = []
            for code, (relative, value) in zip(codes, parsed, strict=True):
                listing = by_code.get(code)
                if listing is None:
                    continue  # unknown codes are not an error on Yahoo
                if relative:
                    self.mall.add_quantity(listing.listing_id, value, at)
                else:
                    self.mall.set_quantity(listing.listing_id, value, at)
                out.append(self._stock_result(code, listing))
        return result_set(out, len(out), 1)


    def update_items(self, form: dict[str, str]) -> bytes:
        """商品一括更新: each `itemN` is one item's fields, URL-encoded; answered per item (OK / NG)."""
        self._check_seller(form.get("seller_id"))
        slots = sorted((int(k[4:]), v) for k, v in form.items() if k.startswith("item") and k[4:].isdigit())
        if not slots:
            raise ApiError(400, '"item1" is not specified', "px-04001")
        if len(slots) > MAX_UPDATE_ITEMS or slots[-1][0] > MAX_UPDATE_ITEMS:
            raise ApiError(400, f"updateItems takes at most {MAX_UPDATE_ITEMS} items (item1 … item100)", "px-04002")
        out = []
        with self.world.lock:
            groups = dict(self.item_groups())
            at = self.world.clock()
            for _, encoded in slots:
                fields = {k: v[-1] for k, v in parse_qs(encoded, keep_blank_values=True).items()}
                code = fields.get("item_code", "")
                problem = _item_problem(fields, groups)
                node = ET.Element("Result")
                _add(node, "ItemCode", code or None)
                _add(node, "Status", "NG" if problem else "OK")
                if problem:
                    error = _add(node, "Error")
                    _add(error, "Code", problem[0])
                    _add(error, "Message", problem[1])
                else:
                    for listing in groups[code]:
                        listing.price = int(fields["price"])
                        listing.updated_at = max(listing.updated_at, at)
                out.append(node)
        return result_set(out, len(out), 1)


def _item_problem(fields: dict[str, str], groups: dict[str, list[MallListing]]) -> tuple[str, str] | None:
    """Why one updateItems entry is refused (code, message), or None. Codes are the sandbox's wording."""
    code = fields.get("item_code", "")
    if not code:
        return "ed-00001", "item_code is required"
    if ":" in code:
        return "ed-00002", f"item_code {code} names a sub code; updateItems takes the item code (商品コード)"
    if code not in groups:
        return "ed-00003", f"item_code {code} does not exist in this store"
    extra = sorted(set(fields) - {"item_code", "price"})
    if extra:
        return "ed-00004", f"{extra[0]} is not simulated by the sandbox (only price)"
    price = fields.get("price", "")
    if not price.isascii() or not price.isdigit() or not 1 <= int(price) <= MAX_PRICE:
        return "ed-00005", f"price {price!r} must be a whole number of yen between 1 and {MAX_PRICE}"
    return None


def _int(text: str | None, default: int, name: str) -> int:
    if text is None or not str(text).strip():
        return default
    try:
        return int(str(text).strip())
    except ValueError:
        raise ApiError(400, f"{name} must be an integer", "px-04002") from None


def _parse_request(body: bytes) -> ET.Element:
    try:
        root = parse_xml(body)
    except Exception as exc:  # noqa: BLE001 — defusedxml raises several types for bad or hostile XML
        raise ApiError(400, f"request body is not valid XML: {exc}", "px-04002") from None
    if root.tag != "Req":
        raise ApiError(400, "request root must be <Req>", "px-04002")
    return root


# ------------------------------------------------------------------------------------------------ the app
def create_app(world: World, access_token: str = DEFAULT_TOKEN, seller_id: str = DEFAULT_SELLER,
               requests_per_second: float = 1.0, burst: int = 1, faults: YahooFaults | None = None,
               traffic_log: Any = None) -> Starlette:
    """The Starlette app (`app.state.api`, `.faults`, `.limit`).

    Sandbox endpoints (no token; not Yahoo's):
    - GET  /_sandbox/yahoo/orders  → every yahoo order as the world knows it (Mall.orders_truth)
    - POST /_sandbox/yahoo/orders  {"lines": [{"item_code": "code:sub", "quantity": n}], "at": iso?} → one order
    - GET  /_sandbox/yahoo/stock   → every listing with its item code and displayed quantity
    - GET  /_sandbox/yahoo/faults  → injected fault counts and requests refused by the rate limit
    """
    api = YahooAPI(world, seller_id)
    faults = faults or YahooFaults()
    limit = StoreRateLimit(requests_per_second, burst)
    log = TrafficLog(traffic_log, channel="yahoo") if traffic_log else None
    last_page: dict[str, bytes] = {}

    async def endpoint(request: Request) -> Response:
        operation = request.path_params["operation"]
        raw = await request.body()
        status, body, headers = await run_in_threadpool(_answer, request, operation, raw)
        if log is not None:
            log.record(request.method, request.url.path, dict(request.query_params), _text(raw, request),
                       status, body.decode("utf-8", "replace"))
        return Response(body, status_code=status, media_type="application/xml; charset=utf-8", headers=headers)

    def _answer(request: Request, operation: str, raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {access_token}":
            challenge = 'Bearer error="invalid_token", error_description="The access token is invalid"' if auth \
                else 'Bearer realm="yahooapis.jp"'
            return 401, error_body("Invalid access token", "px-04102"), {"WWW-Authenticate": challenge}
        if not limit.take():
            return 429, error_body("Too many requests: the store API allows about 1 request per second",
                                   "px-04290"), {}
        fault = faults.draw()
        if fault == "429":
            return 429, error_body("Too many requests", "px-04290"), {}
        if fault in ("500", "503"):
            return int(fault), error_body("Internal server error" if fault == "500" else "Service unavailable",
                                          "px-05000"), {}
        if fault == "slow":
            time.sleep(faults.slow_seconds)
        try:
            body = _dispatch(request, operation, raw)
        except ApiError as exc:
            return exc.status, error_body(exc.message, exc.code), {}
        if fault == "repeat" and operation in ("orderList", "myItemList") and operation in last_page:
            return 200, last_page[operation], {}
        if operation in ("orderList", "myItemList"):
            last_page[operation] = body
        if fault == "truncated":
            return 200, body[: max(1, len(body) // 2)], {}
        return 200, body, {}

    def _dispatch(request: Request, operation: str, raw: bytes) -> bytes:
        if operation == "orderList" and request.method == "POST":
            return api.order_list(raw)[0]
        if operation == "orderInfo" and request.method == "POST":
            return api.order_info(raw)
        if operation == "myItemList" and request.method == "GET":
            return api.my_item_list(dict(request.query_params))[0]
        if operation in ("getStock", "setStock") and request.method == "POST":
            form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
            return api.get_stock(form) if operation == "getStock" else api.set_stock(form)
        if operation == "updateItems" and request.method == "POST":
            form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
            return api.update_items(form)
        raise ApiError(404, f"{request.method} {operation} is not an API of this sandbox", "px-04040")

    async def orders_truth(request: Request) -> Response:
        def run():
            with world.lock:
                return world.mall("yahoo").orders_truth()
        return JSONResponse(await run_in_threadpool(run))

    async def place(request: Request) -> Response:
        try:
            payload = await request.json()
            lines = [(str(li["item_code"]), int(li.get("quantity", 1))) for li in payload["lines"]]
            at = datetime.fromisoformat(payload["at"].replace("Z", "+00:00")) if payload.get("at") else None
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": f"body must be {{\"lines\": [{{\"item_code\", \"quantity\"}}]}}: {exc}"},
                                status_code=400)

        def run():
            with world.lock:
                by_code = api._listing_by_code()
                unknown = [c for c, _ in lines if c not in by_code]
                if unknown:
                    raise KeyError(f"yahoo does not list {', '.join(unknown)}")
                order = world.place_mall_order("yahoo", [(by_code[c].listing_id, q) for c, q in lines], at=at)
                return [order.truth()] if order else []

        try:
            return JSONResponse(await run_in_threadpool(run))
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc).strip("'\"")}, status_code=400)

    async def stock(request: Request) -> Response:
        def run():
            with world.lock:
                return [{"item_code": item_code(s), "listing_id": s.listing_id, "sku": s.erp_sku,
                         "quantity": s.quantity} for s in world.mall("yahoo").listings]
        return JSONResponse(await run_in_threadpool(run))

    async def fault_counts(request: Request) -> Response:
        return JSONResponse({"drawn": faults.drawn, "faults": dict(faults.counts), "rate_limited": limit.refused})

    app = Starlette(routes=[
        Route(API + "/{operation}", endpoint, methods=["GET", "POST"]),
        Route("/_sandbox/yahoo/orders", orders_truth, methods=["GET"]),
        Route("/_sandbox/yahoo/orders", place, methods=["POST"]),
        Route("/_sandbox/yahoo/stock", stock, methods=["GET"]),
        Route("/_sandbox/yahoo/faults", fault_counts, methods=["GET"]),
    ])
    app.state.api = api
    app.state.faults = faults
    app.state.limit = limit
    app.state.world = world
    return app


def _text(raw: bytes, request: Request) -> str | None:
    return raw.decode("utf-8", "replace") if raw else None
