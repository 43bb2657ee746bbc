"""Rakuten Ichiba connector (RMS Web Service): orders, listings, stock → the landing zone.

Declarative parts over the one request loop (`ingestion.http.ChannelClient`): the ESA auth header, the channel's
client-side budget (`channels.rakuten.requests_per_second`, RMS allows about 1 request/s per API), the RMS answer
checks (`RmsAnswers`: a body that does not parse is retried, an ERROR in `MessageModelList` fails the call), the
paginators (`PageNumber` on `PaginationRequestModel.requestPage`, `OffsetHits` on the Items API) and pure
mappers from RMS models to landed rows.

- orders: `searchOrder` by the update date type (DECISIONS.md D20) from the landed cursor minus the look-back
  (first run: `backfill_start`, clamped to RMS's 730 days), in windows of at most 63 days (a window holding
  15,000 results or more is halved, since RMS stops there); then `getOrder` for ≤ 100 numbers a call. The whole
  set is fetched before landing, so a failure lands nothing and the cursor never runs ahead.
- listings: every item of the Items API search, one row per variant (manageNumber:variantId), with the shop's
  SKU (merchantDefinedSkuId) and JAN (articleNumber); a full snapshot each run.
- stock: `inventories/bulk-get` for every listed variant (≤ 1,000 a call); a full snapshot each run.
A record without its key, or with a value that does not parse, goes to the quarantine with the reason.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from ichigen.config import Config
from ingestion.common import IngestResult, RecordError, parse_utc, raw_json, require, to_int, utcnow
from ingestion.errors import ChannelResponseError, IngestionError, require_enabled
from ingestion.http import ChannelClient, channel_limiter
from ingestion.landing import LandingZone, QuarantineRecord, land_and_report
from ingestion.paging import OffsetHits, PageNumber, PageRequest, paginate
from ingestion.schemas import RAKUTEN_LISTINGS, RAKUTEN_ORDERS, RAKUTEN_STOCK, EntitySchema
from ingestion.throttle import Signal, ThrottleStrategy

SOURCE = "rakuten"
SEARCH_ORDER_PATH = "/es/2.0/order/searchOrder/"
GET_ORDER_PATH = "/es/2.0/order/getOrder/"
ITEMS_SEARCH_PATH = "/es/2.0/items/search"
BULK_GET_PATH = "/es/2.0/inventories/bulk-get"
BULK_UPSERT_PATH = "/es/2.1/inventories/bulk-upsert"
GET_ORDER_VERSION = 7
UPDATE_DATE_TYPE = 7  # searchOrder dateType: the order's last update (D20)
MAX_WINDOW = timedelta(days=63) - timedelta(seconds=1)  # both ends inclusive on RMS
MAX_REACH_BACK = timedelta(days=730) - timedelta(hours=1)
MAX_SEARCH_RESULTS = 15_000
MAX_GET_ORDER = 100
MAX_BULK_GET = 1000
ITEM_HITS = 100
MAX_PAGES = 1000
JST = timezone(timedelta(hours=9))


def rms_datetime(ts: datetime) -> str:
    """RMS's request form, JST: `2026-11-23T12:00:00+0900`."""
    return ts.astimezone(JST).strftime("%Y-%m-%dT%H:%M:%S+0900")


def esa_authorization(service_secret: str, license_key: str) -> str:
    return "ESA " + base64.b64encode(f"{service_secret}:{license_key}".encode()).decode()


class RmsAnswers(ThrottleStrategy):
    """What RMS says inside a 2xx answer: a truncated or non-JSON body is retried (the request was read-only or
    RMS answered before applying: 2xx bodies of writes are empty), and so is a page other than the one asked for
    (`PaginationResponseModel.requestPage`); an ERROR in `MessageModelList` fails the
    call, except getOrder's per-order errors (they name an `orderNumber` and are quarantined per order)."""

    name = "rms-messages"

    def inspect(self, response: httpx.Response, operation: str) -> Signal | None:
        if response.status_code == 204 or not response.content:
            return None
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Signal.retry(0.2)
        if not isinstance(body, dict):
            return Signal.fail(f"RMS answer is not a JSON object: {str(body)[:200]!r}")
        asked = _asked_page(response)
        answered = (body.get("PaginationResponseModel") or {}).get("requestPage")
        if asked is not None and answered is not None and answered != asked:
            return Signal.retry(0.2)  # a cached page served again: ask once more
        messages = body.get("MessageModelList")
        errors = [m for m in messages or [] if isinstance(m, dict) and m.get("messageType") == "ERROR"
                  and not m.get("orderNumber")]
        if errors:
            described = "; ".join(f"[{m.get('messageCode')}] {m.get('message')}" for m in errors)
            return Signal.fail(f"RMS MessageModelList ERROR: {described[:500]}")
        return None


def _asked_page(response: httpx.Response) -> int | None:
    try:
        sent = json.loads(response.request.content or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError, httpx.RequestNotRead):
        return None
    page = (sent.get("PaginationRequestModel") or {}).get("requestPage") if isinstance(sent, dict) else None
    return page if isinstance(page, int) else None


# RMS allows about 1 request/s per API (channels.md): each API has a budget of its own, and entities and pushes
# on different APIs run side by side (D176).
ORDER_API, ITEMS_API, INVENTORY_API = "order", "items", "inventory"
ENTITY_API = {"orders": ORDER_API, "listings": ITEMS_API, "stock": INVENTORY_API}


def budget_key(api: str) -> str:
    """The rate-limiter key of one RMS API (`rakuten/<api>`)."""
    return f"{SOURCE}/{api}"


def make_client(config: Config, *, api: str, **options: Any) -> ChannelClient:
    """A client drawing on the budget of one RMS API (`ORDER_API`, `ITEMS_API`, `INVENTORY_API`)."""
    if api not in (ORDER_API, ITEMS_API, INVENTORY_API):
        raise ValueError(f"unknown RMS API {api!r}")
    rakuten = config.channels.rakuten
    # RMS counts arrivals per second with no burst: each request also waits a full interval after the previous
    # answer, so transit jitter cannot make two arrivals closer than that (D102).
    limiter = channel_limiter(budget_key(api), requests_per_second=rakuten.requests_per_second,
                              answer_gap=1.0 / rakuten.requests_per_second)
    return ChannelClient(
        SOURCE,
        rakuten.base_url,
        {"Authorization": esa_authorization(rakuten.service_secret, rakuten.license_key),
         "Content-Type": "application/json; charset=utf-8"},
        limiter,
        rakuten.timeout_seconds,
        rakuten.max_retries,
        options.pop("transport", None),
        throttle=options.pop("throttle", None) or RmsAnswers(),
        **options,
    )


# -- pure mappers: RMS model → landed rows -----------------------------------------------------------------
def _rms_time(value: Any, field: str) -> datetime | None:
    return parse_utc(value, field=field)


def _joined(parts: list[Any], sep: str) -> str | None:
    kept = [str(p) for p in parts if p not in (None, "")]
    return sep.join(kept) if kept else None


def order_row(model: dict[str, Any]) -> dict[str, Any]:
    """One rakuten/orders row from an OrderModel (getOrder version 7); RecordError for what cannot land."""
    number = require(model.get("orderNumber"), field="orderNumber")
    orderer = model.get("OrdererModel") or {}
    items = []
    for p_index, package in enumerate(model.get("PackageModelList") or []):
        for i_index, item in enumerate(package.get("ItemModelList") or []):
            where = f"PackageModelList[{p_index}].ItemModelList[{i_index}]"
            skus = item.get("SkuModelList") or [{}]
            sku = skus[0] or {}
            tax_rate = item.get("taxRate")
            items.append({
                "item_detail_id": to_int(item.get("itemDetailId"), field=f"{where}.itemDetailId"),
                "basket_id": to_int(package.get("basketId"), field=f"PackageModelList[{p_index}].basketId"),
                "manage_number": require(item.get("manageNumber"), field=f"{where}.manageNumber"),
                "item_number": item.get("itemNumber"),
                "item_name": item.get("itemName"),
                "variant_id": sku.get("variantId"),
                "merchant_defined_sku_id": sku.get("merchantDefinedSkuId"),
                "sku_info": sku.get("skuInfo"),
                "price": to_int(item.get("price"), field=f"{where}.price"),
                "price_tax_incl": to_int(item.get("priceTaxIncl"), field=f"{where}.priceTaxIncl"),
                "tax_rate": None if tax_rate is None else float(tax_rate),
                "units": require(to_int(item.get("units"), field=f"{where}.units"), field=f"{where}.units"),
            })
    money = {column: to_int(model.get(name), field=name) for column, name in (
        ("goods_price", "goodsPrice"), ("postage_price", "postagePrice"), ("delivery_price", "deliveryPrice"),
        ("payment_charge", "paymentCharge"), ("total_price", "totalPrice"), ("request_price", "requestPrice"),
        ("coupon_all_total_price", "couponAllTotalPrice"))}
    return {
        "order_number": number,
        "order_progress": require(to_int(model.get("orderProgress"), field="orderProgress"), field="orderProgress"),
        "sub_status_id": to_int(model.get("subStatusId"), field="subStatusId"),
        "order_datetime": require(_rms_time(model.get("orderDatetime"), "orderDatetime"), field="orderDatetime"),
        "update_datetime": require(_rms_time(model.get("updateDatetime"), "updateDatetime"), field="updateDatetime"),
        "shop_order_cfm_datetime": _rms_time(model.get("shopOrderCfmDatetime"), "shopOrderCfmDatetime"),
        "shipping_cmpl_rpt_datetime": _rms_time(model.get("shippingCmplRptDatetime"), "shippingCmplRptDatetime"),
        "payment_date": model.get("paymentDate"),
        "delivery_date": model.get("deliveryDate"),
        "settlement_method": (model.get("SettlementModel") or {}).get("settlementMethod"),
        **money,
        "used_point": to_int((model.get("PointModel") or {}).get("usedPoint"), field="PointModel.usedPoint"),
        "orderer_family_name": orderer.get("familyName"),
        "orderer_first_name": orderer.get("firstName"),
        "orderer_family_name_kana": orderer.get("familyNameKana"),
        "orderer_first_name_kana": orderer.get("firstNameKana"),
        "orderer_email_address": orderer.get("emailAddress"),
        "orderer_phone_number": _joined([orderer.get(f"phoneNumber{n}") for n in (1, 2, 3)], "-"),
        "orderer_zip_code": _joined([orderer.get("zipCode1"), orderer.get("zipCode2")], "-"),
        "orderer_prefecture": orderer.get("prefecture"),
        "orderer_city": orderer.get("city"),
        "orderer_sub_address": orderer.get("subAddress"),
        "change_reason_details": [
            to_int(c.get("changeReasonDetail"), field="ChangeReasonModelList.changeReasonDetail")
            for c in model.get("ChangeReasonModelList") or [] if isinstance(c, dict)
        ],
        "items": items,
        "_raw": raw_json(model),
    }


def listing_rows(item: dict[str, Any]) -> list[dict[str, Any]]:
    """rakuten/listings rows, one per variant, from an Items API 2.0 item (each row's `_raw` is the item)."""
    manage = require(item.get("manageNumber"), field="manageNumber")
    variants = item.get("variants")
    if not isinstance(variants, dict):
        raise RecordError(f"variants {variants!r} is not an object keyed by variantId")
    updated = require(parse_utc(item.get("updated"), field="updated"), field="updated")
    raw = raw_json(item)
    rows = []
    for variant_id, variant in variants.items():
        variant = variant or {}
        rows.append({
            "listing_id": f"{manage}:{variant_id}",
            "manage_number": manage,
            "variant_id": variant_id,
            "item_number": item.get("itemNumber"),
            "title": item.get("title"),
            "merchant_defined_sku_id": variant.get("merchantDefinedSkuId"),
            "jan": (variant.get("articleNumber") or {}).get("value"),
            "standard_price": variant.get("standardPrice"),
            "updated_at": updated,
            "_raw": raw,
        })
    return rows


def stock_row(inventory: dict[str, Any]) -> dict[str, Any]:
    manage = require(inventory.get("manageNumber"), field="manageNumber")
    variant = require(inventory.get("variantId"), field="variantId")
    return {
        "listing_id": f"{manage}:{variant}",
        "manage_number": manage,
        "variant_id": variant,
        "quantity": require(to_int(inventory.get("quantity"), field="quantity"), field="quantity"),
        "created_at": parse_utc(inventory.get("created"), field="created"),
        "updated_at": require(parse_utc(inventory.get("updated"), field="updated"), field="updated"),
        "_raw": raw_json(inventory),
    }


# -- fetching --------------------------------------------------------------------------------------------
def _search_request(start: datetime, end: datetime, page_size: int) -> PageRequest:
    return PageRequest("POST", SEARCH_ORDER_PATH, json={
        "dateType": UPDATE_DATE_TYPE,
        "startDatetime": rms_datetime(start),
        "endDatetime": rms_datetime(end),
        "PaginationRequestModel": {"requestRecordsAmount": page_size, "requestPage": 1},
    })


SEARCH_PAGES = PageNumber(("orderNumberList",), param=("PaginationRequestModel", "requestPage"),
                          total_pages_path=("PaginationResponseModel", "totalPages"), in_body=True,
                          echo_path=("PaginationResponseModel", "requestPage"))


def search_order_numbers(client: ChannelClient, config: Config, start: datetime, end: datetime,
                         depth: int = 0) -> Iterator[str]:
    """Order numbers updated in [start, end] (both inclusive, whole seconds), window by window."""
    page_size = config.channels.rakuten.page_size
    for lower, upper in _windows(start, end):
        pager = paginate(client, _search_request(lower, upper, page_size), SEARCH_PAGES, operation="searchOrder",
                         max_pages=MAX_PAGES)
        numbers: list[str] = []
        split = False
        for page in pager:
            total = (page.body.get("PaginationResponseModel") or {}).get("totalRecordsAmount") or 0
            if total >= MAX_SEARCH_RESULTS and upper - lower > timedelta(seconds=2) and depth < 20:
                split = True  # RMS returns at most 15,000: halve the window instead
                break
            numbers += [n for n in page.items if isinstance(n, str)]
        if split:
            middle = lower + (upper - lower) / 2
            yield from search_order_numbers(client, config, lower, middle, depth + 1)
            yield from search_order_numbers(client, config, middle, upper, depth + 1)
        else:
            yield from numbers


def _windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    lower = start.replace(microsecond=0)
    while lower < end:
        upper = min(end, lower + MAX_WINDOW)
        yield lower, upper
        lower = upper  # the boundary second is searched twice; numbers are de-duplicated


def get_orders(client: ChannelClient, numbers: list[str]) -> Iterator[tuple[str | None, Any, str | None]]:
    """(order number, OrderModel, None) per order, or (number, None, reason) when getOrder refused it."""
    for index in range(0, len(numbers), MAX_GET_ORDER):
        chunk = numbers[index:index + MAX_GET_ORDER]
        response = client.request("POST", GET_ORDER_PATH, operation="getOrder",
                                  json={"orderNumberList": chunk, "version": GET_ORDER_VERSION})
        body = response.json()
        models = body.get("OrderModelList")
        if not isinstance(models, list):
            raise ChannelResponseError(f"rakuten: getOrder answer has no OrderModelList: {str(body)[:200]}",
                                       channel=SOURCE, operation="getOrder")
        for message in body.get("MessageModelList") or []:
            if message.get("messageType") == "ERROR" and message.get("orderNumber"):
                yield message["orderNumber"], None, f"getOrder refused it: [{message.get('messageCode')}] " \
                                                    f"{message.get('message')}"
        for model in models:
            yield (model.get("orderNumber") if isinstance(model, dict) else None), model, None


def fetch_listings(client: ChannelClient) -> Iterator[Any]:
    request = PageRequest("GET", ITEMS_SEARCH_PATH, params={"hits": ITEM_HITS, "offset": 0})
    pager = paginate(client, request, OffsetHits(("results",), ("numFound",)), operation="items.search",
                     max_pages=MAX_PAGES)
    for page in pager:
        for result in page.items:
            yield (result or {}).get("item") if isinstance(result, dict) else result


def bulk_get(client: ChannelClient, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Current stock of these (manageNumber, variantId) pairs (unknown pairs are left out by RMS)."""
    found: list[dict[str, Any]] = []
    for index in range(0, len(keys), MAX_BULK_GET):
        chunk = keys[index:index + MAX_BULK_GET]
        response = client.request("POST", BULK_GET_PATH, operation="inventories.bulk-get", json={
            "inventories": [{"manageNumber": m, "variantId": v} for m, v in chunk]})
        inventories = response.json().get("inventories")
        if not isinstance(inventories, list):
            raise ChannelResponseError("rakuten: bulk-get answer has no inventories list", channel=SOURCE,
                                       operation="inventories.bulk-get")
        found += inventories
    return found


# -- ingest ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RakutenEntity:
    schema: EntitySchema
    collect: Callable[[ChannelClient, Config, datetime | None, datetime, list, list], None]
    incremental: bool


def _collect_orders(client, config, since, now, rows, bad) -> None:
    numbers = list(dict.fromkeys(search_order_numbers(client, config, since, now)))
    for number, model, refusal in get_orders(client, numbers):
        if refusal is not None:
            bad.append(QuarantineRecord(number, f"{SOURCE}/orders {number}: {refusal}", {"orderNumber": number}))
            continue
        _map(model, lambda m: [order_row(m)], "orders", number, rows, bad)


def _collect_listings(client, config, since, now, rows, bad) -> None:
    for item in fetch_listings(client):
        key = item.get("manageNumber") if isinstance(item, dict) else None
        _map(item, listing_rows, "listings", key, rows, bad)


def _collect_stock(client, config, since, now, rows, bad) -> None:
    keys = []
    for item in fetch_listings(client):
        if isinstance(item, dict) and isinstance(item.get("variants"), dict) and item.get("manageNumber"):
            keys += [(item["manageNumber"], variant) for variant in item["variants"]]
    for inventory in bulk_get(client, keys):
        key = None
        if isinstance(inventory, dict) and inventory.get("manageNumber"):
            key = f"{inventory.get('manageNumber')}:{inventory.get('variantId')}"
        _map(inventory, lambda i: [stock_row(i)], "stock", key, rows, bad)


def _map(record: Any, to_rows: Callable[[dict], list[dict]], entity: str, key: str | None,
         rows: list[dict[str, Any]], bad: list[QuarantineRecord]) -> None:
    try:
        if not isinstance(record, dict):
            raise RecordError(f"record is {type(record).__name__}, not an object")
        rows.extend(to_rows(record))
    except RecordError as exc:
        bad.append(QuarantineRecord(key, f"{SOURCE}/{entity} {key or '(no key)'}: {exc}", record))


ENTITY_SPECS: dict[str, RakutenEntity] = {
    "orders": RakutenEntity(RAKUTEN_ORDERS, _collect_orders, incremental=True),
    "listings": RakutenEntity(RAKUTEN_LISTINGS, _collect_listings, incremental=False),
    "stock": RakutenEntity(RAKUTEN_STOCK, _collect_stock, incremental=False),
}
ENTITIES = tuple(ENTITY_SPECS)


def _since(config: Config, landing: LandingZone, spec: RakutenEntity, now: datetime) -> datetime | None:
    if not spec.incremental:
        return None
    rakuten = config.channels.rakuten
    cursor = landing.cursor(SOURCE, spec.schema.entity, spec.schema.cursor_field)
    if cursor is not None:
        since = cursor - timedelta(minutes=rakuten.lookback_minutes)
    else:
        try:
            since = parse_utc(rakuten.backfill_start, field="channels.rakuten.backfill_start")
        except RecordError as exc:
            raise IngestionError(f"rakuten: bad configuration: {exc}") from None
    return max(since, now - MAX_REACH_BACK)


def ingest(config: Config, entity: str, *, landing: LandingZone | None = None, client: ChannelClient | None = None,
           now: datetime | None = None) -> IngestResult:
    """Fetch what changed (orders) or everything (listings, stock) and land it as one batch; records that
    cannot land are quarantined with the reason."""
    if entity not in ENTITY_SPECS:
        raise ValueError(f"unknown rakuten entity {entity!r}; known: {', '.join(ENTITY_SPECS)}")
    require_enabled(SOURCE, config.channels.rakuten.enabled)
    spec = ENTITY_SPECS[entity]
    landing = landing or LandingZone(config.landing_dir)
    fetched_at = now or utcnow()
    # Search up to the next whole second: RMS takes whole seconds and the end second is inclusive.
    until = (fetched_at + timedelta(seconds=1)).astimezone(UTC).replace(microsecond=0)
    since = _since(config, landing, spec, fetched_at)
    own_client = client is None
    client = client or make_client(config, api=ENTITY_API[entity])
    retries_before = client.stats.retries
    pages_before = client.stats.requests
    rows: list[dict[str, Any]] = []
    bad: list[QuarantineRecord] = []
    try:
        spec.collect(client, config, since, until, rows, bad)
    finally:
        if own_client:
            client.close()
    return land_and_report(landing, spec.schema, rows, bad, fetched_at=fetched_at, since=since,
                           pages=client.stats.requests - pages_before,
                           retries=client.stats.retries - retries_before)
