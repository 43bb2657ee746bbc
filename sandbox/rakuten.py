"""Rakuten Ichiba (楽天市場) speaking the RMS Web Service, over the world's `rakuten` mall (sandbox.malls).

Every API call needs `Authorization: ESA base64(serviceSecret:licenseKey)`; anything else → HTTP 401
`{"Results": {"errorCode": "ES01-01", "message": "Un-Authorised"}}` (RMS's common auth error).

RakutenPayOrderAPI (JSON over POST; every answer carries `MessageModelList`):
- `POST /es/2.0/order/searchOrder/` {dateType, startDatetime, endDatetime (JST `yyyy-MM-ddTHH:mm:ss+0900`, window
  ≤ 63 days), orderProgressList?, PaginationRequestModel {requestRecordsAmount ≤ 1000, requestPage,
  SortModelList?}} → {MessageModelList, orderNumberList, PaginationResponseModel {totalRecordsAmount,
  totalPages, requestPage}}. dateType 1 = 注文日 (orderDatetime); `UPDATE_DATE_TYPE` = the order's last update
  (`updateDatetime`; see DECISIONS.md D20). Results are sorted by that date, then order number.
- `POST /es/2.0/order/getOrder/` {orderNumberList ≤ 100, version} → {MessageModelList, version, OrderModelList}.
A request the API refuses answers HTTP 400 with `MessageModelList: [{messageType: "ERROR", messageCode, message}]`.

Items API 2.0: `GET /es/2.0/items/search?hits=≤100&offset=n` → {numFound, offset, hits, results: [{item}]}, each
item with manageNumber, itemNumber, title, variants {variantId: {merchantDefinedSkuId, articleNumber {value},
standardPrice, selectorValues}}, created, updated.
`PATCH /es/2.0/items/manage-numbers/{manageNumber}` {variants: {variantId: {standardPrice: "1980"}}} → 204: a
partial update of one item; the sandbox simulates only the variants' `standardPrice` (a string of digits, tax
inclusive JPY, 1–999,999,999). Refusals: 404 {errors: [{code: "IE0404", message}]} for an unknown manageNumber,
400 {errors: [{code, message, metadata {propertyPath}}]} for a wrong type, an unknown variantId or a field the
sandbox does not simulate; nothing of a refused request applies. The new price shows on items/search at once.

Inventory API 2.x (`/es/2.0/` or `/es/2.1/`):
- `POST …/inventories/bulk-get` {inventories: [{manageNumber, variantId}] ≤ 1000} → {inventories: [{manageNumber,
  variantId, quantity, created, updated}]} (unknown pairs are left out);
- `POST …/inventories/bulk-upsert` {inventories: [{manageNumber, variantId, mode ABSOLUTE|RELATIVE, quantity}]
  ≤ 400} → 204 (RELATIVE adds the delta, the mall floors stock at 0); errors → 400 {errors: [{code, message,
  metadata {propertyPath}}]}. Unknown pairs are not an error (Rakuten keeps them aside), as documented.

Limits: each API (order, items, inventory) allows `requests_per_second` (Rakuten: about 1/s); over it → HTTP 429
`{"Results": {"errorCode": "ES04-02", "message": "Too Many Requests"}}`.

Faults (`RakutenFaults`, seeded): at `rate` a request draws one of: a 429 burst (this and the next few requests),
500 or 503 before processing, a slow answer, a truncated body, or — on searchOrder — the previous page again
(the body of the page asked for before, `requestPage` included). A bulk-upsert fault `lost_response` applies the
upsert and then answers 500: the case a stock pusher must not apply twice.

Sandbox-only endpoints (no auth) under `/_sandbox/rakuten/`: see `create_app`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import re
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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

CHANNEL = "rakuten"
JST = timezone(timedelta(hours=9))
ORDER_DATE_TYPE = 1  # 注文日
UPDATE_DATE_TYPE = 7  # the order's last update (DECISIONS.md D20)
DATE_TYPES = {ORDER_DATE_TYPE: "created_at", UPDATE_DATE_TYPE: "updated_at"}
MAX_WINDOW = timedelta(days=63)
MAX_SEARCH_RESULTS = 15_000
MAX_RECORDS_PER_PAGE = 1000
MAX_GET_ORDER = 100
MAX_BULK_GET = 1000
MAX_BULK_UPSERT = 400
MAX_ITEM_HITS = 100
MAX_QUANTITY = 99_999
MAX_STANDARD_PRICE = 999_999_999
GET_ORDER_VERSION = 7

# Neutral state → orderProgress (D20). pending_payment is 300 with no paymentDate; returned is 900 with a
# ChangeReasonModel 受取後の返品 (changeReasonDetail 2).
ORDER_PROGRESS = {
    ORDERED: 100, PENDING_PAYMENT: 300, AWAITING_SHIPMENT: 300, SHIPPED: 500, DELIVERED: 700,
    CANCELLED: 900, RETURNED: 900,
}
SETTLEMENT_METHOD = {CARD: "クレジットカード", BANK: "銀行振込", KONBINI: "コンビニ決済", COD: "代金引換",
                     PAYPAY: "楽天ペイ(PayPay)"}
UNAUTHORISED = {"Results": {"errorCode": "ES01-01", "message": "Un-Authorised"}}
TOO_MANY = {"Results": {"errorCode": "ES04-02", "message": "Too Many Requests"}}


def esa_header(service_secret: str, license_key: str) -> str:
    return "ESA " + base64.b64encode(f"{service_secret}:{license_key}".encode()).decode()


def jst(ts: datetime | None) -> str | None:
    """RMS's order timestamp form: `2026-11-23T12:00:00+0900`."""
    return ts.astimezone(JST).strftime("%Y-%m-%dT%H:%M:%S+0900") if ts is not None else None


def jst_iso(ts: datetime | None) -> str | None:
    """The Items / Inventory APIs' ISO 8601 JST form: `2026-11-23T12:00:00+09:00`."""
    return ts.astimezone(JST).isoformat(timespec="seconds") if ts is not None else None


_RMS_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0900$")


def parse_rms_datetime(text: Any) -> datetime:
    """`yyyy-MM-ddTHH:mm:ss+0900` (JST, as RMS requires) → aware UTC; anything else is refused."""
    if not isinstance(text, str) or not _RMS_DATETIME.match(text):
        raise ValueError(f"{text!r} is not yyyy-MM-ddTHH:mm:ss+0900")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


def _message(kind: str, code: str, text: str) -> dict[str, str]:
    return {"messageType": kind, "messageCode": code, "message": text}


class RequestError(Exception):
    """A request the API refuses: `status` and the body in the API's own error shape."""

    def __init__(self, status: int, body: Any):
        super().__init__(str(body))
        self.status = status
        self.body = body


def _order_error(code: str, text: str) -> RequestError:
    return RequestError(400, {"MessageModelList": [_message("ERROR", code, text)]})


def _inventory_error(code: str, text: str, path: str | None = None) -> RequestError:
    error: dict[str, Any] = {"code": code, "message": text}
    if path:
        error["metadata"] = {"propertyPath": path}
    return RequestError(400, {"errors": [error]})


# ------------------------------------------------------------------------------------------------ faults
@dataclass(frozen=True)
class RakutenFaults:
    """Injected faults: each API request draws one at `rate` (seeded, so a run is reproducible)."""

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = ("throttle_burst", "server_error", "unavailable", "slow", "truncated",
                              "repeat_page", "lost_response")
    burst: int = 3  # requests refused in a row by one throttle_burst
    slow_seconds: float = 0.3


class FaultInjector:
    def __init__(self, faults: RakutenFaults):
        self.faults = faults
        self._rng = random.Random(f"rakuten-faults:{faults.seed}")
        self._lock = threading.Lock()
        self._burst_left = 0
        self.requests = 0
        self.injected: Counter[str] = Counter()

    def draw(self, operation: str) -> str | None:
        """The fault for this request (None: answer normally). Kinds that do not fit the operation are
        skipped (a repeated page only on searchOrder, a lost response only on bulk-upsert)."""
        with self._lock:
            self.requests += 1
            if self._burst_left > 0:
                self._burst_left -= 1
                self.injected["throttle_burst"] += 1
                return "throttle_burst"
            if self.faults.rate <= 0 or self._rng.random() >= self.faults.rate:
                return None
            fitting = [k for k in self.faults.kinds
                       if (k != "repeat_page" or operation == "searchOrder")
                       and (k != "lost_response" or operation == "bulk-upsert")]
            if not fitting:
                return None
            kind = self._rng.choice(fitting)
            if kind == "throttle_burst":
                self._burst_left = max(0, self.faults.burst - 1)
            self.injected[kind] += 1
            return kind

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "injected": dict(self.injected),
                    "faults": sum(self.injected.values())}


class _PerSecond:
    """A fixed budget per API: `rate` requests per second (token bucket, burst = max(1, rate))."""

    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, api: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._tokens.get(api, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens < 1:
                self._tokens[api] = (tokens, now)
                return False
            self._tokens[api] = (tokens - 1, now)
            return True


# ------------------------------------------------------------------------------------------------ rendering
def order_model(order: MallOrder, by_listing: dict[str, MallListing]) -> dict[str, Any]:
    """One OrderModel as getOrder (version 7) renders it."""
    buyer = order.buyer
    zip_digits = "".join(ch for ch in buyer.zip if ch not in "-－")
    phone = buyer.phone
    parts = phone.replace("－", "-").split("-") if "-" in phone.replace("－", "-") else [phone, "", ""]
    parts = (parts + ["", ""])[:3]
    items = []
    for line in order.lines:
        listing = by_listing.get(line.listing_id)
        manage, _, variant = line.listing_id.partition(":")
        items.append({
            "itemDetailId": int(f"{zlib.crc32(order.order_id.encode()) % 10**6}{line.line_no:03d}"),
            "itemName": line.title,
            "itemId": zlib.crc32(manage.encode()) % 10**8,
            "itemNumber": listing.seller_sku if listing else None,
            "manageNumber": manage,
            "price": line.unit_price,
            "units": line.quantity,
            "includePostageFlag": 0,
            "includeTaxFlag": 1,
            "includeCashOnDeliveryPostageFlag": 0,
            "selectedChoice": line.variant_label,
            "taxRate": line.tax_percent / 100,
            "priceTaxIncl": line.unit_price,
            "isSingleItemShipping": 0,
            "SkuModelList": [{
                "variantId": variant,
                "merchantDefinedSkuId": listing.seller_sku if listing else None,
                "skuInfo": line.variant_label,
            }],
        })
    goods = order.lines_total
    total = goods + order.shipping
    change_reasons = []
    if order.state in (CANCELLED, RETURNED):
        change_reasons.append({
            "changeId": order.version, "changeType": 2, "changeTypeDetail": 0, "changeReason": 1,
            "changeReasonDetail": 2 if order.state == RETURNED else (4 if order.paid_at is None
                                                                     and order.payment_method in (BANK, KONBINI)
                                                                     else 1),
            "changeApplyDatetime": jst(order.returned_at or order.cancelled_at),
            "changeFixDatetime": jst(order.returned_at or order.cancelled_at),
            "changeCmplDatetime": jst(order.returned_at or order.cancelled_at),
        })
    return {
        "orderNumber": order.order_id,
        "orderProgress": ORDER_PROGRESS[order.state],
        "subStatusId": None,
        "subStatusName": None,
        "orderDatetime": jst(order.created_at),
        "shopOrderCfmDatetime": jst(order.confirmed_at),
        "orderFixDatetime": jst(order.confirmed_at),
        "shippingInstDatetime": None,
        "shippingCmplRptDatetime": jst(order.shipped_at),
        "cancelDueDate": None,
        "deliveryDate": order.delivered_at.astimezone(JST).strftime("%Y-%m-%d") if order.delivered_at else None,
        "paymentDate": order.paid_at.astimezone(JST).strftime("%Y-%m-%d") if order.paid_at else None,
        "updateDatetime": jst(order.updated_at),
        "goodsPrice": goods,
        "goodsTax": -9999,
        "postagePrice": order.shipping,
        "deliveryPrice": 0,
        "paymentCharge": 0,
        "totalPrice": total,
        "requestPrice": total - order.discount - order.points_used,
        "couponAllTotalPrice": order.discount,
        "couponShopPrice": order.discount,
        "couponOtherPrice": 0,
        "OrdererModel": {
            "zipCode1": zip_digits[:3] or None, "zipCode2": zip_digits[3:] or None,
            "prefecture": buyer.prefecture, "city": buyer.city,
            "subAddress": " ".join(p for p in (buyer.address1, buyer.address2) if p),
            "familyName": buyer.family_name, "firstName": buyer.given_name,
            "familyNameKana": buyer.family_name_kana, "firstNameKana": buyer.given_name_kana,
            "phoneNumber1": parts[0] or None, "phoneNumber2": parts[1] or None, "phoneNumber3": parts[2] or None,
            "emailAddress": buyer.email,
        },
        "SettlementModel": {"settlementMethod": SETTLEMENT_METHOD[order.payment_method], "rpaySettlementFlag": 1},
        "DeliveryModel": {"deliveryName": "宅配便", "deliveryClass": 1},
        "PointModel": {"usedPoint": order.points_used},
        "ChangeReasonModelList": change_reasons,
        "PackageModelList": [{
            "basketId": zlib.crc32(order.order_id.encode()) % 10**9,
            "postagePrice": order.shipping,
            "goodsPrice": goods,
            "SenderModel": {"prefecture": buyer.prefecture, "city": buyer.city},
            "ShippingModelList": [{"shippingNumber": order.tracking_number}] if order.tracking_number else [],
            "ItemModelList": items,
        }],
    }


def item_model(parent: str, listings: list[MallListing]) -> dict[str, Any]:
    """One item of Items API 2.0 with its variants keyed by variantId."""
    first = listings[0]
    return {
        "manageNumber": parent,
        "itemNumber": parent.upper(),
        "title": first.title,
        "itemType": "NORMAL",
        "variants": {
            s.variant_code: {
                "merchantDefinedSkuId": s.seller_sku,
                "selectorValues": {"label": s.variant_label},
                "standardPrice": str(s.price),
                "articleNumber": {"value": s.jan} if s.jan else {"exemptionReason": 5},
                "attributes": [{"name": "JAN", "values": [s.jan]}] if s.jan else [],
            } for s in listings
        },
        "created": jst_iso(min(s.created_at for s in listings)),
        "updated": jst_iso(max(s.updated_at for s in listings)),
    }


# ------------------------------------------------------------------------------------------------ the API
class RakutenAPI:
    """Answers RMS requests: `handle(operation, authorization, body|params) -> (status, json|None)`."""

    def __init__(self, world: World, service_secret: str = "SP_sandbox", license_key: str = "SL_sandbox",
                 requests_per_second: float = 1.0, faults: RakutenFaults | None = None):
        self.world = world
        self.mall = world.mall(CHANNEL)
        self.expected = esa_header(service_secret, license_key)
        self.limits = _PerSecond(requests_per_second)
        self.faults = FaultInjector(faults or RakutenFaults())
        self._last_page: dict[str, Any] = {}  # body of the last searchOrder page (for repeat_page)
        self.requests = 0

    def handle(self, api: str, operation: str, authorization: str | None, payload: Any) -> tuple[int, Any, str | None]:
        """(status, body, fault). `fault` names an injected fault the transport must render (slow, truncated)."""
        self.requests += 1
        if authorization != self.expected:
            return 401, UNAUTHORISED, None
        if not self.limits.take(api):
            return 429, TOO_MANY, None
        fault = self.faults.draw(operation)
        if fault == "throttle_burst":
            return 429, TOO_MANY, None
        if fault == "server_error":
            return 500, {"Results": {"errorCode": "ES99-01", "message": "Internal Server Error"}}, None
        if fault == "unavailable":
            return 503, {"Results": {"errorCode": "ES99-02", "message": "Service Unavailable"}}, None
        if fault == "repeat_page" and operation == "searchOrder" and self._last_page:
            return 200, self._last_page, None
        try:
            status, body = getattr(self, "_" + operation.replace("-", "_"))(payload)
        except RequestError as exc:
            return exc.status, exc.body, None
        if operation == "searchOrder":
            self._last_page = body
        if fault == "lost_response":
            return 500, {"Results": {"errorCode": "ES99-01", "message": "Internal Server Error"}}, None
        return status, body, fault

    # -- orders ------------------------------------------------------------------------------------------
    def _searchOrder(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_001", "リクエストが不正です。")
        date_type = body.get("dateType")
        if date_type not in DATE_TYPES:
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_002", f"dateType {date_type!r} は不正です。")
        try:
            start = parse_rms_datetime(body.get("startDatetime"))
            end = parse_rms_datetime(body.get("endDatetime"))
        except ValueError as exc:
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_003",
                               f"startDatetime/endDatetime の形式が不正です (yyyy-MM-ddTHH:mm:ss+0900): {exc}") from None
        if end < start:
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_004", "endDatetime は startDatetime 以降にしてください。")
        if end - start > MAX_WINDOW:
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_005", "検索期間は63日以内で指定してください。")
        if start < self.world.clock() - timedelta(days=730):
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_006", "検索できるのは過去730日以内の注文です。")
        paging = body.get("PaginationRequestModel") or {}
        amount, page = paging.get("requestRecordsAmount", 30), paging.get("requestPage", 1)
        if not isinstance(amount, int) or not 1 <= amount <= MAX_RECORDS_PER_PAGE:
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_007", "requestRecordsAmount は1〜1000で指定してください。")
        if not isinstance(page, int) or page < 1:
            raise _order_error("ORDER_EXT_API_SEARCH_ORDER_ERROR_008", "requestPage は1以上で指定してください。")
        progress = body.get("orderProgressList")
        field_name = DATE_TYPES[date_type]
        with self.world.lock:
            # The window's end second is inclusive on RMS: [start, end + 1 s).
            rows = self.mall.orders_in_window(field_name, start, end + timedelta(seconds=1))
            numbers = [o.order_id for o in rows if not progress or ORDER_PROGRESS[o.state] in progress]
        total = min(len(numbers), MAX_SEARCH_RESULTS)
        numbers = numbers[:total]
        pages = -(-total // amount) if total else 0
        chunk = numbers[(page - 1) * amount: page * amount]
        messages = [_message("INFO", "ORDER_EXT_API_SEARCH_ORDER_INFO_101", "注文検索に成功しました。")]
        if len(rows) > MAX_SEARCH_RESULTS:
            messages.append(_message("WARNING", "ORDER_EXT_API_SEARCH_ORDER_WARNING_101",
                                     "検索結果が15000件を超えています。検索条件を絞り込んでください。"))
        return 200, {
            "MessageModelList": messages,
            "orderNumberList": chunk,
            "PaginationResponseModel": {"totalRecordsAmount": total, "totalPages": pages, "requestPage": page},
        }

    def _getOrder(self, body: Any) -> tuple[int, Any]:
        numbers = body.get("orderNumberList") if isinstance(body, dict) else None
        if not isinstance(numbers, list) or not numbers:
            raise _order_error("ORDER_EXT_API_GET_ORDER_ERROR_001", "orderNumberList は必須です。")
        if len(numbers) > MAX_GET_ORDER:
            raise _order_error("ORDER_EXT_API_GET_ORDER_ERROR_002", "orderNumberList は100件以内で指定してください。")
        version = body.get("version", GET_ORDER_VERSION)
        messages = []
        models = []
        with self.world.lock:
            for number in numbers:
                order = self.mall.by_order.get(number)
                if order is None:
                    messages.append({**_message("ERROR", "ORDER_EXT_API_GET_ORDER_ERROR_101",
                                                "注文が存在しません。"), "orderNumber": number})
                    continue
                models.append(order_model(order, self.mall.by_listing))
        if not messages:
            messages.append(_message("INFO", "ORDER_EXT_API_GET_ORDER_INFO_101", "受注情報取得に成功しました。"))
        return 200, {"MessageModelList": messages, "version": version, "OrderModelList": models}

    # -- items -------------------------------------------------------------------------------------------
    def _items_search(self, params: dict[str, str]) -> tuple[int, Any]:
        try:
            hits = int(params.get("hits", 10))
            offset = int(params.get("offset", 0))
        except ValueError:
            raise _inventory_error("IE0002", "hits and offset must be numbers.") from None
        if not 1 <= hits <= MAX_ITEM_HITS or offset < 0:
            raise _inventory_error("IE0003", "hits must be between 1 and 100 and offset ≥ 0.", "hits")
        with self.world.lock:
            parents: dict[str, list[MallListing]] = {}
            for listing in self.mall.listings:
                parents.setdefault(listing.parent_code, []).append(listing)
            codes = sorted(parents)
            page = [item_model(code, parents[code]) for code in codes[offset: offset + hits]]
        return 200, {"numFound": len(codes), "offset": offset, "hits": len(page),
                     "results": [{"item": item} for item in page]}

    def _items_patch(self, payload: Any) -> tuple[int, Any]:
        """Items API 2.0 partial update of one item: only `variants.<id>.standardPrice` is simulated. The whole
        request is validated before anything applies (RMS answers 204 or an `errors` list)."""
        manage = str((payload or {}).get("manageNumber") or "")
        body = (payload or {}).get("body")
        if not isinstance(body, dict) or not body:
            raise _inventory_error("IE0105", "request body must be a JSON object with the fields to update.")
        unknown = sorted(set(body) - {"variants"})
        if unknown:
            raise _inventory_error("IE0115", f"{unknown[0]} is not updatable by the sandbox (only "
                                   "variants.<variantId>.standardPrice is simulated).", unknown[0])
        variants = body.get("variants")
        if not isinstance(variants, dict) or not variants:
            raise _inventory_error("IE0002", "variants must be an object keyed by variantId.", "variants")
        with self.world.lock:
            known = {s.variant_code: s for s in self.mall.listings if s.parent_code == manage.lower()}
            if not known:
                raise RequestError(404, {"errors": [{"code": "IE0404",
                                                     "message": f"manageNumber {manage} does not exist."}]})
            prices: dict[str, int] = {}
            for variant_id, fields in variants.items():
                path = f"variants.{variant_id}"
                if variant_id not in known:
                    raise _inventory_error("IE0404", f"variantId {variant_id} does not exist in item {manage}.", path)
                if not isinstance(fields, dict) or not fields:
                    raise _inventory_error("IE0002", "a variant must be an object of fields to update.", path)
                extra = sorted(set(fields) - {"standardPrice"})
                if extra:
                    raise _inventory_error("IE0115", f"{extra[0]} is not updatable by the sandbox.", f"{path}.{extra[0]}")
                price = fields["standardPrice"]
                if not isinstance(price, str) or not price.isascii() or not price.isdigit():
                    raise _inventory_error("IE0002", f"standardPrice has an invalid value : {price!r} (a string of "
                                           "half-width digits).", f"{path}.standardPrice")
                if not 1 <= int(price) <= MAX_STANDARD_PRICE:
                    raise _inventory_error("IE0003", f"standardPrice must be between 1 and {MAX_STANDARD_PRICE}.",
                                           f"{path}.standardPrice")
                prices[variant_id] = int(price)
            at = self.world.clock()
            for variant_id, price in prices.items():
                listing = known[variant_id]
                listing.price = price
                listing.updated_at = max(listing.updated_at, at)
        return 204, None

    # -- inventory ---------------------------------------------------------------------------------------
    def _pairs(self, body: Any, limit: int) -> list[dict[str, Any]]:
        rows = body.get("inventories") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise _inventory_error("IE0105", "inventories is required.", "inventories")
        if len(rows) > limit:
            raise _inventory_error("IE0003", f"inventories must contain at most {limit} entries.", "inventories")
        for index, row in enumerate(rows):
            for key in ("manageNumber", "variantId"):
                value = row.get(key) if isinstance(row, dict) else None
                if not isinstance(value, str) or not value:
                    raise _inventory_error("IE0105", f"{key} is required.", f"inventories[{index}].{key}")
                if len(value.encode()) > 32:
                    raise _inventory_error("IE0004", f"Max length of {key} must be within 32 bytes.",
                                           f"inventories[{index}].{key}")
        return rows

    def _bulk_get(self, body: Any) -> tuple[int, Any]:
        rows = self._pairs(body, MAX_BULK_GET)
        found = []
        with self.world.lock:
            for row in rows:
                listing = self.mall.by_listing.get(f"{row['manageNumber'].lower()}:{row['variantId']}")
                if listing is not None:
                    found.append({"manageNumber": listing.parent_code, "variantId": listing.variant_code,
                                  "quantity": listing.quantity, "created": jst_iso(listing.created_at),
                                  "updated": jst_iso(listing.stock_updated_at)})
        return 200, {"inventories": found}

    def _bulk_upsert(self, body: Any) -> tuple[int, Any]:
        rows = self._pairs(body, MAX_BULK_UPSERT)
        for index, row in enumerate(rows):  # validate the whole request before applying any of it
            if row.get("mode") not in ("ABSOLUTE", "RELATIVE"):
                raise _inventory_error("IE0105", "mode must be ABSOLUTE or RELATIVE.", f"inventories[{index}].mode")
            quantity = row.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                raise _inventory_error("IE0002", f"quantity has an invalid value : {quantity}.",
                                       f"inventories[{index}].quantity")
            low = -MAX_QUANTITY if row["mode"] == "RELATIVE" else 0
            if not low <= quantity <= MAX_QUANTITY:
                raise _inventory_error("IE0003", "quantity must be between 0 and 99999.",
                                       f"inventories[{index}].quantity")
        with self.world.lock:
            at = self.world.clock()
            for row in rows:
                listing_id = f"{row['manageNumber'].lower()}:{row['variantId']}"
                if listing_id not in self.mall.by_listing:
                    continue  # Rakuten accepts unknown pairs and drops them later
                if row["mode"] == "ABSOLUTE":
                    self.mall.set_quantity(listing_id, row["quantity"], at)
                else:
                    self.mall.add_quantity(listing_id, row["quantity"], at)
        return 204, None


# ------------------------------------------------------------------------------------------------ the app
def create_app(world: World, service_secret: str = "SP_sandbox", license_key: str = "SL_sandbox",
               requests_per_second: float = 1.0, faults: RakutenFaults | None = None,
               traffic_log: str | os.PathLike[str] | None = None) -> Starlette:
    """The Starlette app; `app.state.api` is the RakutenAPI (its fault counters, its request count).

    Sandbox endpoints (not Rakuten's; no auth):
    - GET  /_sandbox/rakuten/orders  → every order on the mall as the world knows it (Mall.orders_truth)
    - POST /_sandbox/rakuten/orders  {"count": n, "at": iso?} or {"lines": [{"listing_id", "quantity"}]} → placed
    - GET  /_sandbox/rakuten/stock   → displayed stock per listing (Mall.stock_truth)
    - GET  /_sandbox/rakuten/faults  → {"requests", "injected": {kind: n}, "faults"}
    """
    api = RakutenAPI(world, service_secret, license_key, requests_per_second, faults)
    log = TrafficLog(traffic_log, channel=CHANNEL) if traffic_log else None

    def endpoint(api_name: str, operation: str):
        async def handler(request: Request) -> Response:
            if request.method == "GET":
                payload: Any = dict(request.query_params)
            else:
                raw = await request.body()
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    payload = None
            # a path parameter (the items PATCH's manageNumber) travels beside the body
            arguments = {**request.path_params, "body": payload} if request.path_params else payload
            status, body, fault = await run_in_threadpool(
                api.handle, api_name, operation, request.headers.get("authorization"), arguments)
            if log is not None:
                log.record(request.method, request.url.path, dict(request.query_params),
                           payload if request.method != "GET" else None, status, body)
            if fault == "slow":
                await asyncio.sleep(api.faults.faults.slow_seconds)
            if body is None:
                return Response(status_code=status)
            if fault == "truncated":
                text = json.dumps(body, ensure_ascii=False)
                return Response(text[: max(1, len(text) // 2)], status_code=status, media_type="application/json")
            return JSONResponse(body, status_code=status)

        return handler

    def _at(value: Any) -> datetime | None:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    async def orders_truth(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(lambda: _locked(world, api.mall.orders_truth)))

    async def stock_truth(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(lambda: _locked(world, api.mall.stock_truth)))

    async def faults_summary(request: Request) -> Response:
        return JSONResponse(api.faults.summary())

    async def place(request: Request) -> Response:
        try:
            payload = await request.json() if await request.body() else {}
            at = _at(payload.get("at"))
            lines = [(str(li["listing_id"]), int(li.get("quantity", 1))) for li in payload["lines"]] \
                if payload.get("lines") is not None else None
            count = int(payload.get("count", 1))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return JSONResponse({"error": f"body must be {{\"count\": n}} or {{\"lines\": [...]}}: {exc}"},
                                status_code=400)

        def run():
            with world.lock:
                if lines is not None:
                    order = world.place_mall_order(CHANNEL, lines, at=at)
                    return [order.truth()] if order is not None else []
                return [o.truth() for o in world.place_mall_orders(CHANNEL, count, at=at)]

        try:
            return JSONResponse(await run_in_threadpool(run))
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc).strip("'\"")}, status_code=400)

    routes = [
        Route("/es/2.0/order/searchOrder/", endpoint("order", "searchOrder"), methods=["POST"]),
        Route("/es/2.0/order/getOrder/", endpoint("order", "getOrder"), methods=["POST"]),
        Route("/es/2.0/items/search", endpoint("items", "items-search"), methods=["GET"]),
        Route("/es/2.0/items/manage-numbers/{manageNumber}", endpoint("items", "items-patch"), methods=["PATCH"]),
        Route("/_sandbox/rakuten/orders", orders_truth, methods=["GET"]),
        Route("/_sandbox/rakuten/orders", place, methods=["POST"]),
        Route("/_sandbox/rakuten/stock", stock_truth, methods=["GET"]),
        Route("/_sandbox/rakuten/faults", faults_summary, methods=["GET"]),
    ]
    for version in ("2.0", "2.1"):
        routes += [
            Route(f"/es/{version}/inventories/bulk-get", endpoint("inventory", "bulk-get"), methods=["POST"]),
            Route(f"/es/{version}/inventories/bulk-upsert", endpoint("inventory", "bulk-upsert"), methods=["POST"]),
        ]
    app = Starlette(routes=routes)
    app.state.api = api
    app.state.world = world
    return app


def _locked(world: World, read):
    with world.lock:
        return read()


@dataclass
class RakutenSettings:
    """How `start_world` serves the mall (credentials default to the sandbox's own)."""

    port: int = 0
    service_secret: str = "SP_sandbox"
    license_key: str = "SL_sandbox"
    requests_per_second: float = 1.0
    faults: RakutenFaults = field(default_factory=RakutenFaults)
