"""The simulated world: an ERP (products, warehouses, stock) and a Shopify shop (variants, inventory levels,
customers, orders), generated deterministically from a seed.

The ERP's stock is the physical truth. The shop shows its own `available` per variant, deliberately a little
different from the ERP, so a sync always has work to do. Orders follow a lifecycle planned when they are placed
(payment, shipment, cancellation, refund, each at its own time); `advance()` applies what is due.

Same seed + same `now` (+ the same calls afterwards) → the identical world.

Nothing here imports the product (ingestion, reverse_sync, ichigen, …): the sandbox is the world the product is
tested against, not a copy of its logic.
"""

from __future__ import annotations

import gc
import itertools
import random
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from faker import Faker
from faker.providers.address.ja_JP import Provider as _JaAddress
from faker.providers.person.ja_JP import Provider as _JaPerson

from sandbox import lifecycle
from sandbox.draw import (
    Weighted,
    batch_rng,
    cumulative,
    distinct_picks,
    pick,
    pick_many,
    randint,
    sequential_ids,
)
from sandbox.malls import MALL_CHANNELS, PROFILES, Mall, MallListing, MallOrder
from sandbox.truth import PhysicalTruth, receiving_time

JST = ZoneInfo("Asia/Tokyo")
TAX_PERCENT = {"standard": 10, "reduced": 8}
CURRENCY = "JPY"

# Payment gateways as a Japanese Shopify shop shows them, with their share of orders.
CARD, KONBINI, BANK, COD = "クレジットカード", "コンビニ決済", "銀行振込", "代金引換"
GATEWAYS = [(CARD, 0.64), (KONBINI, 0.14), (BANK, 0.09), (COD, 0.13)]
FREE_SHIPPING_FROM = 5500  # tax-inclusive JPY
SHIPPING_STANDARD, SHIPPING_REMOTE = 550, 770
REMOTE_PREFECTURES = {"北海道", "沖縄県"}
COUPONS = [("WELCOME500", 500, None), ("THANKS300", 300, None), ("SALE10", None, 10)]


# ------------------------------------------------------------------------------------------------ helpers
def jan_check_digit(first12: str) -> int:
    """EAN-13 / JAN check digit: odd positions (1st, 3rd, … 11th) + 3 × even positions (2nd, … 12th)."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"need 12 digits, got {first12!r}")
    odd = sum(int(d) for d in first12[0::2])
    even = sum(int(d) for d in first12[1::2])
    return (10 - (odd + 3 * even) % 10) % 10


def is_valid_jan(code: str) -> bool:
    return len(code) == 13 and code.isdigit() and jan_check_digit(code[:12]) == int(code[12])


def tax_inclusive(list_price: int, tax_class: str) -> int:
    """Tax-inclusive yen price, rounded down (the usual Japanese display rounding)."""
    return list_price * (100 + TAX_PERCENT[tax_class]) // 100


def _build_halfwidth_map() -> dict[str, str]:
    table: dict[str, str] = {}
    for code in range(0xFF61, 0xFFA0):
        hw = chr(code)
        table.setdefault(unicodedata.normalize("NFKC", hw), hw)
        for mark in ("\uff9e", "\uff9f"):  # ﾞ ﾟ
            composed = unicodedata.normalize("NFKC", hw + mark)
            if len(composed) == 1:
                table.setdefault(composed, hw + mark)
    table["ー"] = "ｰ"
    table["　"] = " "
    return table


_HALFWIDTH = str.maketrans(_build_halfwidth_map())


def to_halfwidth_kana(text: str) -> str:
    """Full-width katakana → half-width (半角カナ), as older Japanese ERPs keep readings."""
    return text.translate(_HALFWIDTH)


def iso_z(ts: datetime) -> str:
    """Shopify's DateTime: ISO-8601 UTC to the second, with Z."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware: {ts!r}")
    return ts.astimezone(UTC)


def _wall_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# ------------------------------------------------------------------------------------------------ catalog
@dataclass(frozen=True)
class _Size:
    label: str  # as stored in the ERP's size column
    code: str  # as it appears in the SKU
    kana: str


@dataclass(frozen=True)
class _Category:
    prefix: str
    category: str  # ERP category
    noun: str
    noun_kana: str
    sizes: tuple[_Size, ...]
    coloured: bool
    price: tuple[int, int]
    tax_class: str
    adjectives: tuple[tuple[str, str], ...]
    weight: float


_APPAREL = (("ベーシック", "ベーシック"), ("オーガニックコットン", "オーガニックコットン"), ("厚手", "アツデ"),
            ("ビッグシルエット", "ビッグシルエット"), ("刺繍ロゴ", "シシュウロゴ"), ("和柄", "ワガラ"),
            ("ヘビーウェイト", "ヘビーウェイト"), ("リラックス", "リラックス"))
_GOODS = (("帆布", "ハンプ"), ("撥水", "ハッスイ"), ("レザー", "レザー"), ("デイリー", "デイリー"),
          ("刺繍ロゴ", "シシュウロゴ"), ("今治", "イマバリ"))
_FOOD = (("深煎り", "フカイリ"), ("中煎り", "チュウイリ"), ("有機", "ユウキ"), ("静岡", "シズオカ"), ("宇治", "ウジ"))
_APPAREL_SIZES = (_Size("S", "S", "エス"), _Size("M", "M", "エム"), _Size("L", "L", "エル"),
                  _Size("XL", "XL", "エックスエル"))
_FREE = (_Size("F", "F", "フリー"),)

CATEGORIES = (
    _Category("TS", "Tシャツ", "Tシャツ", "ティーシャツ", _APPAREL_SIZES, True, (1980, 4980), "standard", _APPAREL, 4.0),
    _Category("PK", "パーカー", "パーカー", "パーカー", _APPAREL_SIZES, True, (4980, 9800), "standard", _APPAREL, 2.0),
    _Category("SX", "靴下", "ソックス", "ソックス", (_Size("22-24cm", "2224", "22-24"), _Size("25-27cm", "2527", "25-27")),
              True, (980, 1980), "standard", _APPAREL, 2.0),
    _Category("BG", "バッグ", "トートバッグ", "トートバッグ", _FREE, True, (2980, 12800), "standard", _GOODS, 1.5),
    _Category("CP", "帽子", "キャップ", "キャップ", _FREE, True, (1980, 4980), "standard", _GOODS, 1.5),
    _Category("TW", "タオル", "フェイスタオル", "フェイスタオル", _FREE, True, (980, 2480), "standard", _GOODS, 1.0),
)
FOOD_CATEGORIES = (
    _Category("CF", "食品", "ドリップコーヒー", "ドリップコーヒー",
              (_Size("10袋", "10P", "10フクロ"), _Size("30袋", "30P", "30フクロ")), False, (980, 2980), "reduced", _FOOD, 1.0),
    _Category("TE", "食品", "緑茶ティーバッグ", "リョクチャティーバッグ", (_Size("20袋", "20P", "20フクロ"),), False,
              (980, 1980), "reduced", _FOOD, 1.0),
)
PREFIX_BASE = {"TS": 1000, "PK": 2000, "SX": 3000, "BG": 4000, "CP": 5000, "TW": 6000, "CF": 7000, "TE": 8000}
COLOURS = (("RED", "レッド"), ("BLU", "ブルー"), ("NVY", "ネイビー"), ("BLK", "ブラック"), ("WHT", "ホワイト"),
           ("GRY", "グレー"), ("BEG", "ベージュ"), ("GRN", "グリーン"), ("KHA", "カーキ"), ("NAT", "ナチュラル"))
SIZE_POPULARITY = {"S": 0.7, "M": 1.3, "L": 1.2, "XL": 0.6}

# ERP master data beyond the catalogue (bundles, B2B accounts, purchase orders): drawn from their own RNG and
# Faker (seeded "<seed>:erp") after the shop and the malls, so the Shopify and mall data of a seed stay as they were.
B2B_RANK_WEIGHTS = (("S", 1), ("A", 3), ("B", 5), ("C", 4))
B2B_TRADES = (("商事", "ショウジ"), ("物産", "ブッサン"), ("商店", "ショウテン"), ("雑貨", "ザッカ"),
              ("アパレル", "アパレル"), ("テキスタイル", "テキスタイル"), ("ギフト", "ギフト"), ("セレクト", "セレクト"))
B2B_LEGAL_FORMS = ("株式会社", "株式会社", "株式会社", "有限会社", "合同会社")
LANDLINE_AREA = {"東京都": "03", "大阪府": "06", "神奈川県": "045", "愛知県": "052", "北海道": "011",
                 "福岡県": "092", "京都府": "075", "兵庫県": "078", "宮城県": "022", "広島県": "082"}

WAREHOUSES = (("WH-TOKYO", "東京物流センター", True), ("WH-OSAKA", "大阪物流センター", True),
              ("WH-RETURNS", "返品・検品倉庫", False))

# (prefecture, ISO 3166-2 code, city, postal-code prefix, weight)
PLACES = (
    ("東京都", "JP-13", "渋谷区", "150", 3), ("東京都", "JP-13", "世田谷区", "154", 4), ("東京都", "JP-13", "新宿区", "160", 3),
    ("東京都", "JP-13", "練馬区", "176", 3), ("東京都", "JP-13", "八王子市", "192", 2),
    ("神奈川県", "JP-14", "横浜市港北区", "222", 4), ("神奈川県", "JP-14", "川崎市中原区", "211", 3),
    ("神奈川県", "JP-14", "相模原市中央区", "252", 2),
    ("大阪府", "JP-27", "大阪市北区", "530", 3), ("大阪府", "JP-27", "堺市堺区", "590", 2), ("大阪府", "JP-27", "豊中市", "560", 2),
    ("愛知県", "JP-23", "名古屋市中区", "460", 3), ("愛知県", "JP-23", "豊田市", "471", 1),
    ("埼玉県", "JP-11", "さいたま市浦和区", "330", 3), ("埼玉県", "JP-11", "川口市", "332", 2),
    ("千葉県", "JP-12", "千葉市中央区", "260", 2), ("千葉県", "JP-12", "船橋市", "273", 2),
    ("兵庫県", "JP-28", "神戸市中央区", "650", 2), ("兵庫県", "JP-28", "姫路市", "670", 1),
    ("北海道", "JP-01", "札幌市中央区", "060", 2), ("北海道", "JP-01", "旭川市", "070", 1),
    ("福岡県", "JP-40", "福岡市博多区", "812", 2), ("福岡県", "JP-40", "北九州市小倉北区", "802", 1),
    ("静岡県", "JP-22", "静岡市葵区", "420", 1), ("静岡県", "JP-22", "浜松市中央区", "430", 1),
    ("京都府", "JP-26", "京都市左京区", "606", 1), ("宮城県", "JP-04", "仙台市青葉区", "980", 1),
    ("広島県", "JP-34", "広島市中区", "730", 1), ("沖縄県", "JP-47", "那覇市", "900", 1),
)
EMAIL_DOMAINS = ("example.jp", "example.com", "example.ne.jp", "example.co.jp", "example.org")
# Relative order volume by JST hour (lunch and late evening peaks) and by weekday (Mon=0).
HOUR_WEIGHTS = (0.6, 0.35, 0.2, 0.12, 0.1, 0.15, 0.3, 0.55, 0.8, 0.9, 1.0, 1.1, 1.5, 1.25, 1.0, 1.0, 1.0,
                1.1, 1.3, 1.5, 1.8, 2.0, 1.9, 1.2)
WEEKDAY_WEIGHTS = (0.9, 0.92, 0.95, 0.97, 1.05, 1.25, 1.3)
_BIG_WORLD_OBJECTS = 1_000_000  # objects a generation makes above which it ends with a full collection (World.generate)
# generation hot loops draw from these (sandbox.draw: the same draws as rng.choices, accumulated once)
_HOURS = Weighted(range(24), HOUR_WEIGHTS)
_LINES_PER_ORDER = Weighted((1, 2, 3, 4), (55, 28, 12, 5))
_QUANTITY = Weighted((1, 2, 3), (80, 15, 5))
_PLACES = Weighted(PLACES, [p[4] for p in PLACES])
_CATEGORY = Weighted(CATEGORIES, [c.weight for c in CATEGORIES])
_GATEWAY = Weighted([g for g, _ in GATEWAYS], [w for _, w in GATEWAYS])
# People and addresses: Faker's ja_JP tables (kanji, katakana reading, romanisation; family names weighted by how
# common they are, as Faker weights them), drawn from in batches rather than one Faker call per value.
_FIRST_NAMES = Weighted(_JaPerson.first_name_pairs, [1] * len(_JaPerson.first_name_pairs))
_LAST_NAMES = Weighted(list(_JaPerson.last_name_pairs), list(_JaPerson.last_name_pairs.values()))
_TOWNS, _BUILDINGS = _JaAddress.towns, _JaAddress.building_names


# ------------------------------------------------------------------------------------------------ records
@dataclass
class Product:
    """An ERP product (one SKU): the master data, tax-exclusive list price."""

    sku: str
    jan: str
    name: str
    name_kana: str
    category: str
    size: str | None
    color: str | None
    list_price: int
    tax_class: str
    safety_stock: int
    updated_at: datetime
    style_code: str
    style_name: str
    color_label: str | None  # the colour as the shop shows it (ネイビー)
    is_bundle: bool = False  # a set sold as one SKU (ギフトセット); its stock is its components' (`Bundle`)


@dataclass
class Warehouse:
    warehouse_code: str
    name: str
    sellable: bool
    updated_at: datetime


@dataclass
class StockRow:
    sku: str
    warehouse_code: str
    on_hand: int
    updated_at: datetime


@dataclass
class Bundle:
    """One component of a bundle product: `quantity` units of `component_sku` per bundle sold."""

    bundle_sku: str
    component_sku: str
    quantity: int
    updated_at: datetime


@dataclass
class B2BCustomer:
    """A B2B account in the ERP (取引先). The contact may also buy on the channels as a private person."""

    customer_code: str  # B2B-0001
    company_name: str
    company_name_kana: str  # the reading of the name without the legal form, as ERPs sort by it
    contact_name: str
    contact_name_kana: str
    email: str
    phone: str
    postal_code: str
    prefecture: str
    address1: str
    erp_rank: str  # S / A / B / C
    updated_at: datetime
    person_id: int | None = None  # truth: the world Customer this contact is (same email and phone)


@dataclass
class PurchaseOrder:
    """One line of a purchase order (発注): `quantity` units of `sku` expected at `warehouse_code`."""

    po_number: str
    sku: str
    warehouse_code: str
    quantity: int
    expected_date: date  # JST calendar date; received at 10:00 JST that day (sandbox.truth.receiving_time)
    status: str  # open | received
    received_at: datetime | None
    updated_at: datetime


@dataclass
class Location:
    id: int
    name: str
    is_active: bool
    address: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def gid(self) -> str:
        return gid("Location", self.id)


@dataclass
class ShopProduct:
    id: int
    title: str
    handle: str
    product_type: str
    vendor: str
    created_at: datetime
    updated_at: datetime

    @property
    def gid(self) -> str:
        return gid("Product", self.id)


@dataclass
class Variant:
    id: int
    product_id: int
    sku: str
    barcode: str
    title: str
    price: int  # tax-inclusive JPY, as the shop sells it
    inventory_item_id: int
    position: int
    created_at: datetime
    updated_at: datetime
    options: list[tuple[str, str]]

    @property
    def gid(self) -> str:
        return gid("ProductVariant", self.id)


@dataclass
class InventoryItem:
    id: int
    sku: str
    variant_id: int
    created_at: datetime
    updated_at: datetime
    tracked: bool = True

    @property
    def gid(self) -> str:
        return gid("InventoryItem", self.id)


@dataclass
class InventoryLevel:
    id: int
    inventory_item_id: int
    location_id: int
    available: int
    committed: int
    created_at: datetime
    updated_at: datetime

    @property
    def on_hand(self) -> int:
        return self.available + self.committed

    @property
    def gid(self) -> str:
        return f"gid://shopify/InventoryLevel/{self.id}?inventory_item_id={self.inventory_item_id}"


@dataclass
class Customer:
    id: int
    first_name: str
    last_name: str
    first_name_kana: str
    last_name_kana: str
    email: str
    phone: str | None  # E.164, as Shopify keeps customer phones
    address: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def gid(self) -> str:
        return gid("Customer", self.id)


@dataclass(slots=True)  # a million of these: slots make them smaller and quicker to build
class LineItem:
    id: int
    sku: str
    title: str
    variant_title: str
    quantity: int
    current_quantity: int
    unit_price: int  # tax-inclusive JPY
    tax_percent: int
    variant_id: int
    inventory_item_id: int
    product_id: int

    @property
    def gid(self) -> str:
        return gid("LineItem", self.id)


@dataclass(slots=True)
class Event:
    at: datetime
    kind: str  # pay | ship | cancel | refund | partial_refund


@dataclass(slots=True)
class Order:
    id: int
    number: int
    created_at: datetime
    updated_at: datetime
    processed_at: datetime
    gateway: str
    customer_id: int | None
    email: str | None
    phone: str | None
    shipping_address: dict[str, Any]
    lines: list[LineItem]
    lines_total: int
    discount: int
    discount_code: str | None
    shipping: int
    tax: int
    financial_status: str = "PENDING"
    fulfillment_status: str = "UNFULFILLED"
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    pending: list[Event] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return gid("Order", self.id)

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def subtotal(self) -> int:
        return self.lines_total - self.discount

    @property
    def total(self) -> int:
        return self.subtotal + self.shipping

    def truth(self) -> dict[str, Any]:
        """The sandbox's own record of this order (for /_sandbox/orders and tests)."""
        return {
            "order_id": self.gid,
            "name": self.name,
            "created_at": iso_z(self.created_at),
            "updated_at": iso_z(self.updated_at),
            "cancelled": self.cancelled_at is not None,
            "cancelled_at": iso_z(self.cancelled_at) if self.cancelled_at else None,
            "financial_status": self.financial_status,
            "fulfillment_status": self.fulfillment_status,
            "payment_gateway": self.gateway,
            "customer_id": gid("Customer", self.customer_id) if self.customer_id else None,
            "total_jpy": self.total,
            "subtotal_jpy": self.subtotal,
            "shipping_jpy": self.shipping,
            "discount_jpy": self.discount,
            "tax_jpy": self.tax,
            "lines": [
                {"sku": li.sku, "quantity": li.quantity, "current_quantity": li.current_quantity,
                 "unit_price_jpy": li.unit_price, "tax_percent": li.tax_percent}
                for li in self.lines
            ],
        }


def order_tax(lines: list[LineItem], discount: int, shipping: int) -> int:
    """Consumption tax contained in a tax-inclusive order, computed once per rate (invoice rule).

    The discount is shared between the rates in proportion to their goods; shipping is at the standard rate."""
    by_rate: dict[int, int] = {}
    for li in lines:
        by_rate[li.tax_percent] = by_rate.get(li.tax_percent, 0) + li.unit_price * li.quantity
    goods = sum(by_rate.values())
    rates = sorted(by_rate)
    left = discount
    tax = 0
    for i, rate in enumerate(rates):
        share = left if i == len(rates) - 1 else discount * by_rate[rate] // goods if goods else 0
        left -= share
        amount = by_rate[rate] - share + (shipping if rate == 10 else 0)
        tax += amount * rate // (100 + rate)
    if 10 not in by_rate and shipping:
        tax += shipping * 10 // 110
    return tax


def _order_tax_columns(goods: np.ndarray, reduced: np.ndarray, discount: np.ndarray,
                       shipping: np.ndarray) -> np.ndarray:
    """`order_tax` over arrays of orders with goods at the two Japanese rates (`reduced`: the 8 % part of `goods`)."""
    standard = goods - reduced
    reduced_share = np.where(standard == 0, discount, np.where(reduced == 0, 0, discount * reduced // goods))
    return (reduced - reduced_share) * 8 // 108 + (standard - (discount - reduced_share) + shipping) * 10 // 110


def order_stamps(gen: np.random.Generator, now: datetime, days: int, per_day: float) -> np.ndarray:
    """Order times (epoch seconds, ascending) over the `days` before `now`: weekday and hour-of-day seasonality,
    paydays, Poisson-ish daily counts."""
    start = now - timedelta(days=days)
    day, last_day = start.astimezone(JST).date(), now.astimezone(JST).date()
    midnights, expected = [], []
    while day <= last_day:
        midnights.append(int(datetime(day.year, day.month, day.day, tzinfo=JST).timestamp()))
        expected.append(per_day * WEEKDAY_WEIGHTS[day.weekday()] * (1.15 if day.day in (25, 26) else 1.0))
        day += timedelta(days=1)
    mean = np.array(expected) * gen.uniform(0.85, 1.15, len(expected))
    counts = np.maximum(0, np.rint(gen.normal(mean, np.sqrt(mean)))).astype(np.int64)
    total = int(counts.sum())
    stamps = (np.repeat(np.array(midnights, dtype=np.int64), counts) + _HOURS.values(gen, total) * 3600
              + gen.integers(0, 60, total) * 60 + gen.integers(0, 60, total))
    stamps = stamps[(stamps >= int(start.timestamp())) & (stamps < int(now.timestamp()))]
    stamps.sort()
    return stamps


# The shop's history settled in columns (sandbox.lifecycle.replay): what World._apply does to one order.
_SHOP_FAMILY = {CARD: lifecycle.INSTANT, KONBINI: lifecycle.DEFERRED, BANK: lifecycle.DEFERRED, COD: lifecycle.COD}
FINANCIAL_STATUSES = ("PENDING", "PAID", "VOIDED", "REFUNDED", "PARTIALLY_REFUNDED")
_PENDING, _PAID, _VOIDED, _REFUNDED, _PARTIALLY_REFUNDED = range(len(FINANCIAL_STATUSES))


def _shop_pay(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    state["financial"][rows] = _PAID


def _shop_ship(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    state["fulfilled"][rows] = True


def _shop_cancel(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    paid = state["financial"][rows] == _PAID
    state["by_customer"][rows] = paid
    state["financial"][rows] = np.where(paid, _REFUNDED, _VOIDED)
    state["cancelled_at"][rows] = at
    state["zeroed"][rows] = True


def _shop_refund(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    state["financial"][rows] = _REFUNDED
    state["zeroed"][rows] = True


def _shop_partial_refund(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    state["financial"][rows] = _PARTIALLY_REFUNDED
    state["partial"][rows] = True


_SHOP_TRANSITIONS: dict[str, lifecycle.Transition] = {
    "pay": _shop_pay,
    "ship": _shop_ship,
    "cancel": _shop_cancel,
    "refund": _shop_refund,
    "partial_refund": _shop_partial_refund,
}


def settle_shop_orders(family: np.ndarray, plan: lifecycle.Plan, created: np.ndarray,
                       until: int) -> tuple[dict[str, np.ndarray], lifecycle.Replayed]:
    """The state of shop orders (`family`, planned `plan`, placed at epoch `created`) once every event due by
    `until` is applied: `financial` (index into FINANCIAL_STATUSES), `fulfilled`, `cancelled_at` (-1: not cancelled),
    `by_customer` (the cancel reason), `zeroed` (every line's current quantity is 0), `partial` (partly refunded)."""
    n = len(family)
    state = {"financial": np.where(family == lifecycle.INSTANT, _PAID, _PENDING).astype(np.int8),
             "fulfilled": np.zeros(n, bool), "cancelled_at": np.full(n, -1, np.int64),
             "by_customer": np.zeros(n, bool), "zeroed": np.zeros(n, bool), "partial": np.zeros(n, bool)}
    return state, lifecycle.replay(plan, created, until, state, _SHOP_TRANSITIONS)


# ------------------------------------------------------------------------------------------------ world
class ShopLookups:
    """The shop's records by id, over the collections of `World` or of a copy of them
    (sandbox.shopify_snapshot.ShopSnapshot). Indexes are built on first use and again when a collection grows."""

    orders: list[Order]
    customers: list[Customer]
    shop_products: list[ShopProduct]
    variants: list[Variant]
    inventory_items: list[InventoryItem]
    locations: list[Location]
    levels: dict[tuple[int, int], InventoryLevel]

    def _index(self, name: str, rows: list) -> dict[int, Any]:
        cache = self.__dict__.setdefault("_indexes", {})
        index = cache.get(name)
        if index is None or len(index) != len(rows):
            index = cache[name] = {r.id: r for r in rows}
        return index

    def shop_product(self, product_id: int) -> ShopProduct | None:
        return self._index("products", self.shop_products).get(product_id)

    def variant(self, variant_id: int) -> Variant | None:
        return self._index("variants", self.variants).get(variant_id)

    def inventory_item(self, item_id: int) -> InventoryItem | None:
        return self._index("items", self.inventory_items).get(item_id)

    def location(self, location_id: int) -> Location | None:
        return self._index("locations", self.locations).get(location_id)

    def customer(self, customer_id: int) -> Customer | None:
        return self._index("customers", self.customers).get(customer_id)

    def order(self, order_id: int) -> Order | None:
        return self._index("orders", self.orders).get(order_id)

    def levels_of(self, item_id: int) -> list[InventoryLevel]:
        # Levels are only ever added (never replaced or removed), so an index rebuilt when their count changes
        # stays right; scanning every level per item made a page of 250 items, or the inventory truth of a
        # 50k-SKU world, quadratic.
        cache = self.__dict__.setdefault("_indexes", {})
        index = cache.get("levels_of")
        if index is None or cache.get("levels_of_size") != len(self.levels):
            index = {}
            for (item, _loc), level in self.levels.items():
                index.setdefault(item, []).append(level)
            cache["levels_of"], cache["levels_of_size"] = index, len(self.levels)
        return list(index.get(item_id, ()))


class World(ShopLookups):
    """Everything the sandbox knows. Mutate only through the methods below (they take `self.lock`)."""

    def __init__(self, seed: int, now: datetime):
        self.seed = seed
        self.now = _utc(now).replace(microsecond=0)
        self.lock = threading.RLock()
        self._high_water = self.now
        self._rng = random.Random(seed)
        self._live_rng = random.Random(seed * 7919 + 104729)
        self._ids: dict[str, int] = {}
        self._live = False
        # ERP
        self.products: list[Product] = []
        self.warehouses: list[Warehouse] = []
        self.stock: list[StockRow] = []
        self.bundle_products: list[Product] = []  # ERP products with is_bundle (kept apart: `products` are goods)
        self.bundles: list[Bundle] = []
        self.b2b_customers: list[B2BCustomer] = []
        self.purchase_orders: list[PurchaseOrder] = []
        self.truth: Any = None  # sandbox.truth.PhysicalTruth, attached once the world is generated
        # Shop
        self.shop_name = "一元セレクト"
        self.shop_domain = "ichigen-select.myshopify.com"
        self.locations: list[Location] = []
        self.shop_products: list[ShopProduct] = []
        self.variants: list[Variant] = []
        self.inventory_items: list[InventoryItem] = []
        self.levels: dict[tuple[int, int], InventoryLevel] = {}
        self.customers: list[Customer] = []
        self.orders: list[Order] = []
        self._next_order_number = 1001
        self._variant_weights: list[float] = []
        self._customer_weights: list[float] = []
        self.adjustment_groups: int = 0
        # Marketplaces (sandbox.malls): rakuten, amazon, yahoo — listings, displayed stock, orders, buyers.
        self.malls: dict[str, Mall] = {}
        self.version = 0  # bumped on every change, so readers may cache sorted views
        # Called as listener(kind, record) under the world's lock after a live change: ("order_created", Order),
        # ("order_updated", Order), ("order_cancelled", Order), ("inventory_touched", InventoryLevel).
        # Listeners must be quick and must not call back into the world from another thread (sandbox.webhooks).
        self.listeners: list[Any] = []

    # --------------------------------------------------------------------------------------- generation
    @classmethod
    def generate(
        cls,
        seed: int,
        skus: int = 60,
        customers: int = 200,
        history_days: int = 30,
        orders_per_day: int = 40,
        now: datetime | None = None,
        sell_bundles: bool = False,
    ) -> World:
        """`sell_bundles`: the shop also lists the ERP's bundle products (gift sets) and sells them live."""
        if skus < 1 or customers < 1 or history_days < 0 or orders_per_day < 0:
            raise ValueError("skus and customers must be ≥ 1; history_days and orders_per_day ≥ 0")
        world = cls(seed, now or _wall_now())
        # Generation builds millions of long-lived records and no garbage cycles; with the cyclic collector on, it
        # re-scans the growing heap again and again (half of a 1M-order generation's time). Off while generating;
        # a big world is then moved to the oldest generation in one full collection, here, rather than in the
        # two or three collections the thresholds would start later, each a pause of seconds in a server.
        collecting = gc.isenabled()
        gc.disable()
        try:
            world._generate_erp(skus)
            world._generate_shop()
            world._generate_customers(customers)
            world._generate_history(history_days, orders_per_day)
            world._settle_inventory()
            world._generate_malls(history_days, orders_per_day)
            world._generate_erp_master(customers, sell_bundles)
            world._live = True
            for mall in world.malls.values():
                mall.go_live()
            world.truth = PhysicalTruth(world)
        finally:
            if collecting:
                gc.enable()
                if gc.get_count()[0] > _BIG_WORLD_OBJECTS:
                    gc.collect()
        return world

    def _next_id(self, kind: str, start: int, max_gap: int = 1, rng: random.Random | None = None) -> int:
        rng = rng or self._rng
        current = self._ids.get(kind)
        value = start + randint(rng, 0, 10_000) if current is None else current + randint(rng, 1, max_gap)
        self._ids[kind] = value
        return value

    def _generate_erp(self, target: int) -> None:
        rng = self._rng
        brand_prefix = "45" + f"{randint(rng, 0, 99999):05d}"
        food_prefix = "49" + f"{randint(rng, 0, 99999):05d}"
        item_ref = {brand_prefix: randint(rng, 100, 3000), food_prefix: randint(rng, 100, 3000)}
        style_counter: dict[str, int] = {}
        n_food = 0 if target < 5 else max(2, round(target * 0.08))
        plans: list[tuple[_Category, int]] = []
        remaining_food, remaining = n_food, target - n_food
        while remaining_food > 0:
            cat = rng.choice(FOOD_CATEGORIES)
            plans.append((cat, min(remaining_food, len(cat.sizes))))
            remaining_food -= plans[-1][1]
        while remaining > 0:
            cat = _CATEGORY.pick(rng)
            colours = randint(rng, 2, 4) if cat.coloured else 1
            count = min(remaining, colours * len(cat.sizes))
            plans.append((cat, count))
            remaining -= count
        rng.shuffle(plans)
        updated_floor = self.now - timedelta(days=180)
        for cat, count in plans:
            style_counter[cat.prefix] = style_counter.get(cat.prefix, 0) + 1
            style = f"{cat.prefix}-{PREFIX_BASE[cat.prefix] + style_counter[cat.prefix]}"
            adj, adj_kana = rng.choice(cat.adjectives)
            style_name, style_kana = f"{adj}{cat.noun}", f"{adj_kana}{cat.noun_kana}"
            lo, hi = cat.price
            base = rng.randrange(lo + 20, hi + 21, 100) - 20 if rng.random() < 0.75 else rng.randrange(lo, hi + 1, 10)
            base = max(lo, min(hi, base))
            colours = rng.sample(COLOURS, k=max(1, -(-count // len(cat.sizes)))) if cat.coloured else [None]
            made = 0
            for colour in colours:
                for size in cat.sizes:
                    if made == count:
                        break
                    made += 1
                    prefix = food_prefix if cat.tax_class == "reduced" else brand_prefix
                    item_ref[prefix] += 1
                    body = f"{prefix}{item_ref[prefix]:05d}"
                    jan = body + str(jan_check_digit(body))
                    price = base + (200 if size.code == "XL" else 0)
                    sku_parts = [style] + ([colour[0]] if colour else []) + [size.code]
                    name_parts = [style_name] + ([colour[1]] if colour else []) + [size.label]
                    kana_parts = [style_kana] + ([colour[1]] if colour else []) + [size.kana]
                    self.products.append(Product(
                        sku="-".join(sku_parts),
                        jan=jan,
                        name=" ".join(name_parts),
                        name_kana=to_halfwidth_kana(" ".join(kana_parts)),
                        category=cat.category,
                        size=size.label,
                        color=colour[0] if colour else None,
                        list_price=price,
                        tax_class=cat.tax_class,
                        safety_stock=randint(rng, 0, 3),
                        updated_at=updated_floor + timedelta(seconds=randint(rng, 0, 180 * 86400 - 3600),
                                                             microseconds=randint(rng, 0, 999_999)),
                        style_code=style,
                        style_name=style_name,
                        color_label=colour[1] if colour else None,
                    ))
        self.products.sort(key=lambda p: p.sku)
        for code, name, sellable in WAREHOUSES:
            self.warehouses.append(Warehouse(code, name, sellable, self.now - timedelta(days=400 + randint(rng, 0, 300))))
        for p in self.products:
            out_of_stock = rng.random() < 0.06
            for code, _name, sellable in WAREHOUSES:
                if not sellable and rng.random() > 0.2:
                    continue
                if out_of_stock and sellable:
                    qty = 0
                elif code == "WH-TOKYO":
                    qty = 0 if rng.random() < 0.08 else randint(rng, 1, 40)
                elif code == "WH-OSAKA":
                    qty = 0 if rng.random() < 0.25 else randint(rng, 1, 25)
                else:
                    qty = randint(rng, 1, 3)
                stamp = self.now - timedelta(seconds=randint(rng, 60, 72 * 3600), microseconds=randint(rng, 0, 999_999))
                self.stock.append(StockRow(p.sku, code, qty, stamp))

    def _generate_shop(self) -> None:
        rng = self._rng
        opened = self.now - timedelta(days=720)
        self.locations.append(Location(
            id=self._next_id("Location", 60_000_000_000),
            name="東京物流センター",
            is_active=True,
            address={"address1": "有明3-7-11", "city": "江東区", "province": "東京都", "provinceCode": "JP-13",
                     "zip": "135-0063", "country": "Japan", "countryCode": "JP"},
            created_at=opened,
            updated_at=opened + timedelta(days=30),
        ))
        styles: dict[str, list[Product]] = {}
        for p in self.products:
            styles.setdefault(p.style_code, []).append(p)
        listed_fraction = 0.88
        popularity: dict[str, float] = {s: rng.lognormvariate(0, 0.8) for s in styles}
        for style, members in styles.items():
            listed = [p for p in members if rng.random() < listed_fraction]
            if not listed:
                continue
            created = opened + timedelta(days=randint(rng, 0, 600), seconds=randint(rng, 0, 86399))
            product = ShopProduct(
                id=self._next_id("Product", 8_100_000_000_000, 5000),
                title=members[0].style_name,
                handle=style.lower(),
                product_type=members[0].category,
                vendor=self.shop_name,
                created_at=created,
                updated_at=created + timedelta(days=randint(rng, 0, 60)),
            )
            self.shop_products.append(product)
            for position, p in enumerate(listed, 1):
                options = ([("カラー", p.color_label)] if p.color_label else []) + [("サイズ", p.size or "F")]
                price = tax_inclusive(p.list_price, p.tax_class)
                if rng.random() < 0.08:  # the shop still shows an older price
                    price = tax_inclusive(p.list_price - rng.choice((100, 200, 300, 500)), p.tax_class)
                item_id = self._next_id("InventoryItem", 46_200_000_000_000, 5000)
                variant = Variant(
                    id=self._next_id("ProductVariant", 44_300_000_000_000, 5000),
                    product_id=product.id,
                    sku=p.sku,
                    barcode=p.jan,
                    title=" / ".join(v for _, v in options),
                    price=price,
                    inventory_item_id=item_id,
                    position=position,
                    created_at=created,
                    updated_at=created + timedelta(days=randint(rng, 0, 60)),
                    options=options,
                )
                self.variants.append(variant)
                self.inventory_items.append(InventoryItem(item_id, p.sku, variant.id, created, variant.updated_at))
                size_pop = SIZE_POPULARITY.get(p.size or "", 1.0)
                self._variant_weights.append(popularity[style] * size_pop * rng.uniform(0.6, 1.4))
        if not self.variants:  # a tiny world still sells something
            raise ValueError("the shop lists no variant; use more skus")

    def _generate_customers(self, count: int) -> None:
        """`count` people with Japanese names (Faker's ja_JP tables), e-mail, mobile and address, drawn in a batch."""
        gen = batch_rng(self.seed, "customers")
        firsts = [_FIRST_NAMES.population[i] for i in _FIRST_NAMES.indexes(gen, count).tolist()]
        lasts = [_LAST_NAMES.population[i] for i in _LAST_NAMES.indexes(gen, count).tolist()]
        local_form = gen.integers(0, 4, count).tolist()
        numbers, years = gen.integers(1, 100, count).tolist(), gen.integers(1950, 2006, count).tolist()
        domains = [EMAIL_DOMAINS[i] for i in gen.integers(0, len(EMAIL_DOMAINS), count).tolist()]
        mobiles = [f"{('090', '080', '070')[k]}{a:04d}{b:04d}" for k, a, b in zip(
            gen.integers(0, 3, count).tolist(), gen.integers(0, 10_000, count).tolist(),
            gen.integers(0, 10_000, count).tolist(), strict=True)]
        has_phone = (gen.random(count) < 0.8).tolist()
        created_s = int(self.now.timestamp()) - gen.integers(1, 901, count) * 86400 - gen.integers(0, 86400, count)
        updated_s = created_s + gen.integers(0, 31, count) * 86400
        self._customer_weights = (gen.pareto(1.3, count) + 1.0).tolist()  # Pareto(1.3): a few buy a lot
        ids = self._next_ids("Customer", 7_200_000_000_000, 3000, count, gen).tolist()
        addresses = self._addresses(gen, [(f[0], la[0], m) for f, la, m in zip(firsts, lasts, mobiles, strict=True)])
        used_emails: set[str] = set()
        for i, (first, last, form, mobile, created, updated) in enumerate(zip(
                firsts, lasts, local_form, mobiles, lifecycle.as_datetimes(created_s),
                lifecycle.as_datetimes(updated_s), strict=True)):
            first_roman, last_roman = first[2], last[2]
            local = (f"{first_roman}.{last_roman}", f"{last_roman}{first_roman[0]}", f"{first_roman}{numbers[i]}",
                     f"{last_roman}_{years[i]}")[form].lower()
            email, n = f"{local}@{domains[i]}", 2
            while email in used_emails:
                email = f"{local}{n}@{domains[i]}"
                n += 1
            used_emails.add(email)
            self.customers.append(Customer(
                id=ids[i], first_name=first[0], last_name=last[0], first_name_kana=first[1], last_name_kana=last[1],
                email=email, phone=f"+81{mobile[1:]}" if has_phone[i] else None, address=addresses[i],
                created_at=created, updated_at=updated,
            ))

    def _addresses(self, gen: np.random.Generator, people: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """A Japanese address for each (first name, last name, mobile digits), drawn in a batch: a weighted town of
        PLACES, a street number, a building (45 %) named after its owner."""
        n = len(people)
        places = [_PLACES.population[i] for i in _PLACES.indexes(gen, n).tolist()]
        towns = [_TOWNS[i] for i in gen.integers(0, len(_TOWNS), n).tolist()]
        blocks = zip(gen.integers(1, 6, n).tolist(), gen.integers(1, 31, n).tolist(), gen.integers(1, 21, n).tolist(),
                     strict=True)
        has_building = (gen.random(n) < 0.45).tolist()
        buildings = [_BUILDINGS[i] for i in gen.integers(0, len(_BUILDINGS), n).tolist()]
        owners = [_LAST_NAMES.population[i][0] for i in _LAST_NAMES.indexes(gen, n).tolist()]
        rooms = zip(gen.integers(1, 13, n).tolist(), gen.integers(1, 10, n).tolist(), strict=True)
        zips = gen.integers(0, 10_000, n).tolist()
        addresses = []
        for i, ((first, last, mobile), (pref, code, city, zip3, _w), town, (chome, ban, go), (floor, room)) in \
                enumerate(zip(people, places, towns, blocks, rooms, strict=True)):
            addresses.append({
                "firstName": first, "lastName": last, "name": f"{last} {first}",
                "zip": f"{zip3}-{zips[i]:04d}", "province": pref, "provinceCode": code, "city": city,
                "address1": f"{town}{chome}-{ban}-{go}",
                "address2": f"{buildings[i]}{owners[i]} {floor}0{room}号室" if has_building[i] else None,
                "country": "Japan", "countryCodeV2": "JP",
                "phone": f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}", "company": None,
            })
        return addresses

    def _generate_history(self, days: int, per_day: int) -> None:
        """The shop's orders before `now`: drawn in batches, settled as of `now` in one replay of their planned
        lifecycles (sandbox.lifecycle), each record built once in its final state (events still to come pending)."""
        if days == 0 or per_day == 0:
            return
        gen = batch_rng(self.seed, "shop", "history")
        stamps = order_stamps(gen, self.now, days, per_day)
        n = len(stamps)
        if n == 0:
            return
        who = pick_many(gen, cumulative(self._customer_weights), n)
        rows, picked = distinct_picks(gen, cumulative(self._variant_weights), _LINES_PER_ORDER.values(gen, n))
        quantity = _QUANTITY.values(gen, len(rows))
        variants = self.variants
        rate = np.array([TAX_PERCENT[self._product_by_sku(v.sku).tax_class] for v in variants])[picked]
        amount = np.array([v.price for v in variants])[picked] * quantity
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # every order has its first pick
        goods = np.add.reduceat(amount, starts)
        reduced = np.add.reduceat(np.where(rate == TAX_PERCENT["reduced"], amount, 0), starts)
        coupon = np.where((goods >= 3000) & (gen.random(n) < 0.12), gen.integers(0, len(COUPONS), n), -1)
        fixed = np.array([c[1] or 0 for c in COUPONS])[coupon]
        percent = np.array([c[2] or 0 for c in COUPONS])[coupon]
        discount = np.where(coupon >= 0, fixed + goods * percent // 100, 0)
        remote = np.array([c.address["province"] in REMOTE_PREFECTURES for c in self.customers])[who]
        shipping = np.where(goods - discount >= FREE_SHIPPING_FROM, 0,
                            np.where(remote, SHIPPING_REMOTE, SHIPPING_STANDARD))
        tax = _order_tax_columns(goods, reduced, discount, shipping)
        gateway = _GATEWAY.indexes(gen, n)
        family = np.array([_SHOP_FAMILY[g] for g in _GATEWAY.population])[gateway]
        plan = lifecycle.shop_plan(family, gen.random((n, lifecycle.SHOP_DRAWS)))
        state, done = settle_shop_orders(family, plan, stamps, int(self.now.timestamp()))
        order_ids = self._next_ids("Order", 5_900_000_000_000, 3000, n, gen)
        line_ids = self._next_ids("LineItem", 14_800_000_000_000, 40, len(rows), gen)

        # Records. Lists of Python values from here: indexing numpy arrays one element at a time is slow.
        titles = {p.id: p.title for p in self.shop_products}
        head = [(v.sku, titles[v.product_id], v.title) for v in variants]
        tail = [(v.price, TAX_PERCENT[self._product_by_sku(v.sku).tax_class], v.id, v.inventory_item_id, v.product_id)
                for v in variants]
        lines = [LineItem(line_id, *head[v], q, q, *tail[v])
                 for line_id, v, q in zip(line_ids.tolist(), picked.tolist(), quantity.tolist(), strict=True)]
        bounds = np.r_[starts, len(rows)].tolist()
        created = lifecycle.as_datetimes(stamps)
        updated = lifecycle.as_datetimes(np.maximum(done.last_at, stamps))
        cancelled = lifecycle.as_datetimes(state["cancelled_at"])
        pending: dict[int, list[Event]] = {}
        for row, at, kind in done.pending:
            pending.setdefault(row, []).append(Event(lifecycle.as_datetime(at), kind))
        customers, gateways, codes = self.customers, _GATEWAY.population, [c[0] for c in COUPONS]
        columns = zip(order_ids.tolist(), who.tolist(), created, updated, cancelled, gateway.tolist(),
                      coupon.tolist(), goods.tolist(), discount.tolist(), shipping.tolist(), tax.tolist(),
                      state["financial"].tolist(), state["fulfilled"].tolist(), state["by_customer"].tolist(),
                      state["zeroed"].tolist(), state["partial"].tolist(), strict=True)
        number = self._next_order_number
        for i, (order_id, c, at, updated_at, cancelled_at, g, coupon_no, lines_total, off, ship_fee, tax_jpy, fin,
                fulfilled, by_customer, zeroed, partial) in enumerate(columns):
            customer = customers[c]
            order_lines = lines[bounds[i]:bounds[i + 1]]
            if zeroed:
                for li in order_lines:
                    li.current_quantity = 0
            elif partial:
                top = max(order_lines, key=lambda li: li.unit_price)
                top.current_quantity = max(0, top.current_quantity - 1)
            self.orders.append(Order(
                order_id, number + i, at, updated_at, at, gateways[g], customer.id, customer.email, customer.phone,
                dict(customer.address), order_lines, lines_total, off, codes[coupon_no] if coupon_no >= 0 else None,
                ship_fee, tax_jpy, FINANCIAL_STATUSES[fin], "FULFILLED" if fulfilled else "UNFULFILLED", cancelled_at,
                None if cancelled_at is None else "CUSTOMER" if by_customer else "DECLINED", cancelled_at,
                pending.get(i, []),
            ))
        self._next_order_number += n
        latest = np.full(len(customers), -1, np.int64)
        np.maximum.at(latest, who, stamps)
        for c in np.flatnonzero(latest >= 0).tolist():
            customers[c].updated_at = max(customers[c].updated_at, lifecycle.as_datetime(int(latest[c])))
        self.version += n + int(done.applied.sum())

    def _next_ids(self, kind: str, start: int, max_gap: int, n: int, gen: np.random.Generator) -> np.ndarray:
        """`n` ids at once, continuing the kind's sequence (`_next_id` one at a time)."""
        ids = sequential_ids(gen, self._ids.get(kind), start, max_gap, n)
        if n:
            self._ids[kind] = int(ids[-1])
        return ids

    def _generate_malls(self, days: int, per_day: int) -> None:
        """Rakuten, Amazon and Yahoo: listings, their order history, then their displayed stock."""
        sellable = {w.warehouse_code for w in self.warehouses if w.sellable}
        erp: dict[str, int] = {}
        for row in self.stock:
            if row.warehouse_code in sellable:
                erp[row.sku] = erp.get(row.sku, 0) + row.on_hand
        for channel in MALL_CHANNELS:
            mall = Mall(self, PROFILES[channel])
            mall.generate_listings()
            mall.remember_old_addresses(batch_rng(self.seed, channel, "moved"), self.customers, lambda gen, people: (
                self._addresses(gen, [(p.first_name, p.last_name, p.address["phone"].replace("-", "")) for p in people])))
            if days and per_day:
                gen = batch_rng(self.seed, channel, "history")
                mall.generate_history(gen, order_stamps(gen, self.now, days, per_day * mall.profile.volume))
            mall.settle_stock(erp)
            self.malls[channel] = mall

    def _settle_inventory(self) -> None:
        """The shop's displayed stock: near the ERP's sellable stock, but not equal to it."""
        rng = self._rng
        sellable = {w.warehouse_code for w in self.warehouses if w.sellable}
        erp: dict[str, int] = {}
        for row in self.stock:
            if row.warehouse_code in sellable:
                erp[row.sku] = erp.get(row.sku, 0) + row.on_hand
        committed: dict[int, int] = {}
        for o in self.orders:
            if o.cancelled_at is None and o.fulfillment_status == "UNFULFILLED":
                for li in o.lines:
                    committed[li.inventory_item_id] = committed.get(li.inventory_item_id, 0) + li.current_quantity
        location = self.locations[0]
        for item in self.inventory_items:
            base = erp.get(item.sku, 0)
            roll = rng.random()
            if roll < 0.35:
                shown = base
            elif roll < 0.65:
                shown = base - randint(rng, 1, 5)
            elif roll < 0.9:
                shown = base + randint(rng, 1, 5)
            else:
                shown = randint(rng, 0, 3)
            stamp = self.now - timedelta(seconds=randint(rng, 600, 5 * 86400))
            self.levels[(item.id, location.id)] = InventoryLevel(
                id=self._next_id("InventoryLevel", 120_000_000_000, 1000),
                inventory_item_id=item.id, location_id=location.id,
                available=max(0, shown), committed=committed.get(item.id, 0),
                created_at=item.created_at, updated_at=max(stamp, item.created_at),
            )
            item.updated_at = max(item.updated_at, stamp)

    # --------------------------------------------------------------------------------------- ERP master data
    def _generate_erp_master(self, people: int, sell_bundles: bool) -> None:
        """Bundles (listed on the shop with `sell_bundles`), B2B accounts and purchase orders, from the ERP's own
        RNG and Faker so that adding them left the shop's and the malls' data of a seed unchanged; the listing
        comes last, so the ERP's data of a seed are the same either way."""
        rng = random.Random(f"{self.seed}:erp")
        fake = Faker("ja_JP")
        fake.seed_instance(f"{self.seed}:erp")
        self._generate_bundles(rng)
        self._generate_b2b_customers(rng, fake, max(5, people // 20))
        self._generate_purchase_orders(rng)
        if sell_bundles:
            self._list_bundles_on_shop(rng)

    def _generate_bundles(self, rng: random.Random) -> None:
        """A few gift sets (about 4 % of SKUs): 2–3 ordinary products × 1–2 each, about 10 % below their sum.
        Bundles have no stock rows: what can be sold is what their components allow."""
        ordinary = self.products
        count = max(1, round(len(ordinary) * 0.04)) if len(ordinary) >= 8 else 0
        prefix = "45" + f"{rng.randint(0, 99999):05d}"
        item_ref = rng.randint(100, 3000)
        listed = self.now - timedelta(days=90)
        bundles: list[Product] = []
        for n in range(1, count + 1):
            parts = rng.sample(ordinary, k=rng.choice((2, 2, 3)))
            quantities = [rng.choice((1, 1, 2)) for _ in parts]
            body = f"{prefix}{item_ref + n:05d}"
            goods = sum(p.list_price * q for p, q in zip(parts, quantities, strict=True))
            stamp = listed + timedelta(seconds=rng.randint(0, 60 * 86400), microseconds=rng.randint(0, 999_999))
            name = f"ギフトセット{n}号 {'・'.join(p.style_name for p in parts)}"
            bundle = Product(
                sku=f"GS-{9000 + n}", jan=body + str(jan_check_digit(body)), name=name,
                name_kana=to_halfwidth_kana(f"ギフトセット {n}ゴウ"), category="ギフトセット", size=None, color=None,
                list_price=max(100, goods * 9 // 100 * 10),
                tax_class="reduced" if all(p.tax_class == "reduced" for p in parts) else "standard",
                safety_stock=0, updated_at=stamp, style_code=f"GS-{9000 + n}", style_name=name, color_label=None,
                is_bundle=True,
            )
            bundles.append(bundle)
            for part, qty in zip(parts, quantities, strict=True):
                self.bundles.append(Bundle(bundle.sku, part.sku, qty, stamp))
        self.bundle_products = bundles

    def _list_bundles_on_shop(self, rng: random.Random) -> None:
        """The shop sells each bundle as a one-variant product; it shows what the components allow."""
        location = self.locations[0]
        sellable = self.sellable_on_hand()
        mean_weight = sum(self._variant_weights) / len(self._variant_weights)
        for bundle in self.bundle_products:
            created = self.now - timedelta(days=rng.randint(20, 90), seconds=rng.randint(0, 86399))
            product = ShopProduct(
                id=self._next_id("Product", 8_100_000_000_000, 5000, rng), title=bundle.name,
                handle=bundle.sku.lower(), product_type=bundle.category, vendor=self.shop_name,
                created_at=created, updated_at=created,
            )
            item_id = self._next_id("InventoryItem", 46_200_000_000_000, 5000, rng)
            variant = Variant(
                id=self._next_id("ProductVariant", 44_300_000_000_000, 5000, rng), product_id=product.id,
                sku=bundle.sku, barcode=bundle.jan, title="Default Title",
                price=tax_inclusive(bundle.list_price, bundle.tax_class), inventory_item_id=item_id, position=1,
                created_at=created, updated_at=created, options=[("Title", "Default Title")],
            )
            self.shop_products.append(product)
            self.variants.append(variant)
            self.inventory_items.append(InventoryItem(item_id, bundle.sku, variant.id, created, created))
            self._variant_weights.append(mean_weight * 0.5)
            components = [b for b in self.bundles if b.bundle_sku == bundle.sku]
            self.levels[(item_id, location.id)] = InventoryLevel(
                id=self._next_id("InventoryLevel", 120_000_000_000, 1000, rng), inventory_item_id=item_id,
                location_id=location.id,
                available=min(max(0, sellable.get(b.component_sku, 0)) // b.quantity for b in components),
                committed=0, created_at=created, updated_at=created,
            )

    def _generate_b2b_customers(self, rng: random.Random, fake: Faker, count: int) -> None:
        """B2B accounts B2B-0001…; about a quarter of the contacts also buy on the channels (same e-mail/phone)."""
        buyers = rng.sample(self.customers, k=min(len(self.customers), max(1, count // 4)))
        linked = dict(zip(rng.sample(range(count), k=len(buyers)), buyers, strict=True))
        since = self.now - timedelta(days=365)
        for i in range(count):
            family, family_kana, family_roman = fake.last_name_pair()
            trade, trade_kana = rng.choice(B2B_TRADES)
            legal = rng.choice(B2B_LEGAL_FORMS)
            name = f"{legal}{family}{trade}" if rng.random() < 0.7 else f"{family}{trade}{legal}"
            if legal == "株式会社" and rng.random() < 0.15:
                name = name.replace("株式会社", "㈱")  # the ERP's operators type the one-character form
            pref, _code, city, zip3, _w = rng.choices(PLACES, weights=[p[4] for p in PLACES])[0]
            person = linked.get(i)
            if person is not None:
                contact = f"{person.last_name} {person.first_name}"
                contact_kana = f"{person.last_name_kana} {person.first_name_kana}"
                email, phone = person.email, person.address["phone"]
            else:
                first, first_kana, first_roman = fake.first_name_pair()
                last, last_kana, last_roman = fake.last_name_pair()
                contact, contact_kana = f"{last} {first}", f"{last_kana} {first_kana}"
                email = f"{last_roman.lower()}@{family_roman.lower()}-{i + 1}.example.co.jp"
                area = LANDLINE_AREA.get(pref, f"0{rng.randint(10, 99)}")
                local = 10 - len(area)  # a Japanese landline has 10 digits
                phone = f"{area}-{rng.randint(10 ** (local - 5), 10 ** (local - 4) - 1)}-{rng.randint(0, 9999):04d}"
            building = f" {fake.last_name()}ビル{rng.randint(2, 9)}F" if rng.random() < 0.6 else ""
            self.b2b_customers.append(B2BCustomer(
                customer_code=f"B2B-{i + 1:04d}", company_name=name, company_name_kana=f"{family_kana}{trade_kana}",
                contact_name=contact, contact_name_kana=contact_kana, email=email, phone=phone,
                postal_code=f"{zip3}-{rng.randint(0, 9999):04d}", prefecture=pref,
                address1=f"{city}{fake.town()}{rng.randint(1, 5)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}{building}",
                erp_rank=rng.choices([r for r, _ in B2B_RANK_WEIGHTS], weights=[w for _, w in B2B_RANK_WEIGHTS])[0],
                updated_at=since + timedelta(seconds=rng.randint(0, 360 * 86400), microseconds=rng.randint(0, 999_999)),
                person_id=person.id if person is not None else None,
            ))

    def _generate_purchase_orders(self, rng: random.Random) -> None:
        """Purchase orders of 1–4 lines into a sellable warehouse: some received in the past weeks (already in
        on-hand), the rest open, expected from yesterday (late) to ten days ahead."""
        ordinary = self.products
        today = self.now.astimezone(JST).date()
        serial = rng.randint(1000, 5000)
        for _ in range(max(2, len(ordinary) // 6)):
            serial += 1
            received = rng.random() < 0.4
            expected = today - timedelta(days=rng.randint(2, 20)) if received else today + timedelta(
                days=rng.randint(-1, 10))
            ordered_at = min(receiving_time(expected) - timedelta(days=rng.randint(7, 30), seconds=rng.randint(0, 86399)),
                             self.now - timedelta(seconds=rng.randint(3600, 3 * 86400)))
            warehouse = "WH-TOKYO" if rng.random() < 0.7 else "WH-OSAKA"
            for product in rng.sample(ordinary, k=min(len(ordinary), rng.randint(1, 4))):
                received_at = receiving_time(expected) + timedelta(minutes=rng.randint(0, 300)) if received else None
                self.purchase_orders.append(PurchaseOrder(
                    po_number=f"PO-{serial:06d}", sku=product.sku, warehouse_code=warehouse,
                    quantity=rng.choice((10, 12, 20, 24, 30, 50)), expected_date=expected,
                    status="received" if received else "open", received_at=received_at,
                    updated_at=received_at or ordered_at,
                ))

    def sellable_on_hand(self) -> dict[str, int]:
        """ERP on-hand per SKU over the sellable warehouses."""
        sellable = {w.warehouse_code for w in self.warehouses if w.sellable}
        totals: dict[str, int] = {}
        for row in self.stock:
            if row.warehouse_code in sellable:
                totals[row.sku] = totals.get(row.sku, 0) + row.on_hand
        return totals

    # --------------------------------------------------------------------------------------- orders
    def _new_order(self, at: datetime, rng: random.Random, check_stock: bool,
                   wanted_lines: list[tuple[Variant, int]] | None = None) -> Order | None:
        customer = pick(rng, self.customers, self._cum("customers", self._customer_weights))
        if wanted_lines is None:
            wanted = _LINES_PER_ORDER.pick(rng)
            picked: list[int] = []
            for _ in range(wanted * 3):
                if len(picked) == wanted:
                    break
                i = pick(rng, range(len(self.variants)), self._cum("variants", self._variant_weights))
                if i not in picked:
                    picked.append(i)
            wanted_lines = [(self.variants[i], _QUANTITY.pick(rng)) for i in picked]
        lines: list[LineItem] = []
        location = self.locations[0]
        for variant, qty in wanted_lines:
            if check_stock:
                level = self.levels[(variant.inventory_item_id, location.id)]
                if level.available <= 0:
                    continue  # sold out: the shop refuses the line
                qty = min(qty, level.available)
            product = self._product_by_sku(variant.sku)
            lines.append(LineItem(
                id=self._next_id("LineItem", 14_800_000_000_000, 40),
                sku=variant.sku,
                title=self._shop_product(variant.product_id).title,
                variant_title=variant.title,
                quantity=qty,
                current_quantity=qty,
                unit_price=variant.price,
                tax_percent=TAX_PERCENT[product.tax_class],
                variant_id=variant.id,
                inventory_item_id=variant.inventory_item_id,
                product_id=variant.product_id,
            ))
        if not lines:
            return None
        lines_total = sum(li.unit_price * li.quantity for li in lines)
        discount, code = 0, None
        if lines_total >= 3000 and rng.random() < 0.12:
            code, fixed, percent = rng.choice(COUPONS)
            discount = fixed if fixed is not None else lines_total * percent // 100
        address = dict(customer.address)
        if lines_total - discount >= FREE_SHIPPING_FROM:
            shipping = 0
        else:
            shipping = SHIPPING_REMOTE if address["province"] in REMOTE_PREFECTURES else SHIPPING_STANDARD
        gateway = _GATEWAY.pick(rng)
        order = Order(
            id=self._next_id("Order", 5_900_000_000_000, 3000),
            number=self._next_order_number,
            created_at=at, updated_at=at, processed_at=at,
            gateway=gateway, customer_id=customer.id, email=customer.email, phone=customer.phone,
            shipping_address=address, lines=lines, lines_total=lines_total, discount=discount, discount_code=code,
            shipping=shipping, tax=order_tax(lines, discount, shipping),
            financial_status="PAID" if gateway == CARD else "PENDING",
        )
        self._next_order_number += 1
        order.pending = self._plan_lifecycle(order, rng)
        if check_stock:
            for li in lines:
                level = self.levels[(li.inventory_item_id, location.id)]
                level.available -= li.quantity
                level.committed += li.quantity
                self.touch_inventory(li.inventory_item_id, level, at)
        customer.updated_at = max(customer.updated_at, at)
        self.orders.append(order)
        self.version += 1
        if self._live:
            self._emit("order_created", order)
        return order

    def _emit(self, kind: str, record: Any) -> None:
        for listener in list(self.listeners):
            listener(kind, record)

    def _cum(self, name: str, weights: list[float]) -> list[float]:
        cache = self.__dict__.setdefault("_cum_weights", {})
        cum = cache.get(name)
        if cum is None or len(cum) != len(weights):
            cum = cache[name] = list(itertools.accumulate(weights))
        return cum

    @staticmethod
    def _plan_lifecycle(order: Order, rng: random.Random) -> list[Event]:
        """A live order's plan: sandbox.lifecycle.shop_plan on one row (the history plans the same way)."""
        draws = np.array([[rng.random() for _ in range(lifecycle.SHOP_DRAWS)]])
        plan = lifecycle.shop_plan(np.array([_SHOP_FAMILY[order.gateway]]), draws)
        return [Event(order.created_at + timedelta(seconds=offset), kind)
                for offset, kind in lifecycle.ordered_events(plan, 0)]

    def _apply_due(self, order: Order, until: datetime) -> bool:
        changed = False
        while order.pending and order.pending[0].at <= until:
            event = order.pending.pop(0)
            self._apply(order, event)
            changed = True
        return changed

    def _apply(self, order: Order, event: Event) -> None:
        self.version += 1
        location_id = self.locations[0].id
        if event.kind == "pay":
            order.financial_status = "PAID"
        elif event.kind == "ship":
            order.fulfillment_status = "FULFILLED"
            if self._live:
                for li in order.lines:
                    level = self.levels.get((li.inventory_item_id, location_id))
                    if level is not None:
                        level.committed = max(0, level.committed - li.current_quantity)
                        self.touch_inventory(li.inventory_item_id, level, event.at)
        elif event.kind == "cancel":
            order.cancelled_at = event.at
            order.closed_at = event.at
            order.cancel_reason = "CUSTOMER" if order.financial_status == "PAID" else "DECLINED"
            order.financial_status = "REFUNDED" if order.financial_status == "PAID" else "VOIDED"
            if self._live and order.fulfillment_status == "UNFULFILLED":
                for li in order.lines:  # restocked
                    level = self.levels.get((li.inventory_item_id, location_id))
                    if level is not None:
                        level.committed = max(0, level.committed - li.current_quantity)
                        level.available += li.current_quantity
                        self.touch_inventory(li.inventory_item_id, level, event.at)
            for li in order.lines:
                li.current_quantity = 0
        elif event.kind == "refund":
            order.financial_status = "REFUNDED"
            for li in order.lines:
                li.current_quantity = 0
        elif event.kind == "partial_refund":
            order.financial_status = "PARTIALLY_REFUNDED"
            line = max(order.lines, key=lambda li: li.unit_price)
            line.current_quantity = max(0, line.current_quantity - 1)
        else:  # pragma: no cover - a planning bug
            raise ValueError(f"unknown event {event.kind}")
        order.updated_at = max(order.updated_at, event.at)
        if self._live:
            self._emit("order_cancelled" if event.kind == "cancel" else "order_updated", order)

    def touch_inventory(self, item_id: int, level: InventoryLevel, at: datetime) -> None:
        """Record that a level changed at `at`: the level, its item and its variant get a newer updatedAt."""
        self.version += 1
        level.updated_at = max(level.updated_at, at)
        item = self.inventory_item(item_id)
        if item is not None:
            item.updated_at = max(item.updated_at, at)
            variant = self.variant(item.variant_id)
            if variant is not None:
                variant.updated_at = max(variant.updated_at, at)
        if self._live:
            self._emit("inventory_touched", level)

    # --------------------------------------------------------------------------------------- simulator hooks
    def clock(self) -> datetime:
        """The world's time: the wall clock, never earlier than anything the world has stamped."""
        with self.lock:
            self._high_water = max(self._high_water, _wall_now())
            return self._high_water

    def place_orders(self, n: int, at: datetime | None = None) -> list[Order]:
        """Place up to `n` new orders at `at` (default: now). Each line takes the shop's `available` down; a line
        for a sold-out variant is refused, as a real shop refuses it. Returns the orders placed."""
        if n < 0:
            raise ValueError("n must be ≥ 0")
        with self.lock:
            stamp = _utc(at).replace(microsecond=0) if at is not None else self.clock()
            self._high_water = max(self._high_water, stamp)
            placed: list[Order] = []
            for _ in range(n):
                for _attempt in range(5):
                    order = self._new_order(stamp, self._live_rng, check_stock=True)
                    if order is not None:
                        placed.append(order)
                        break
            return placed

    def place_order(self, lines: list[tuple[str, int]], at: datetime | None = None) -> Order | None:
        """Place one order for exactly these (sku, quantity) lines, as a customer would: a sold-out line is
        refused and a quantity above `available` is cut to it. Returns None when every line was refused."""
        with self.lock:
            by_sku = {v.sku: v for v in self.variants}
            unknown = [sku for sku, _ in lines if sku not in by_sku]
            if unknown:
                raise KeyError(f"the shop does not list {', '.join(unknown)}")
            if any(qty < 1 for _, qty in lines):
                raise ValueError("quantities must be ≥ 1")
            stamp = _utc(at).replace(microsecond=0) if at is not None else self.clock()
            self._high_water = max(self._high_water, stamp)
            return self._new_order(stamp, self._live_rng, check_stock=True,
                                   wanted_lines=[(by_sku[sku], qty) for sku, qty in lines])

    def advance(self, to: datetime | None = None) -> list[Order]:
        """Apply every planned payment, shipment, cancellation and refund due by `to` (default: now), on the shop
        and on every mall, then receive the purchase orders due. Returns the shop's orders that changed (each with
        a bumped updatedAt); the malls' changed orders reach their listeners."""
        with self.lock:
            until = _utc(to) if to is not None else self.clock()
            self._high_water = max(self._high_water, until.replace(microsecond=0))
            for mall in self.malls.values():
                mall.advance(until)
            changed = [o for o in self.orders if o.pending and self._apply_due(o, until)]
            if self.truth is not None:
                self.truth.receive_due(until)  # purchase orders due by now arrive (sandbox.truth)
            return changed

    def simulate_tick(self, max_orders: int = 3) -> tuple[list[Order], list[Order]]:
        """One step of the live simulator: place 1..max_orders orders now on the shop and, in proportion to
        their volume, on every mall; then apply what is due. Returns (shop orders placed, shop orders moved on)."""
        with self.lock:
            placed = self.place_orders(randint(self._live_rng, 1, max(1, max_orders)))
            for mall in self.malls.values():
                wanted = mall.live_rng.random() * max(1, max_orders) * mall.profile.volume
                self.place_mall_orders(mall.channel, int(wanted + mall.live_rng.random()))
            return placed, self.advance()

    # --------------------------------------------------------------------------------------- malls
    def mall(self, channel: str) -> Mall:
        try:
            return self.malls[channel]
        except KeyError:
            raise KeyError(f"no mall {channel!r}; malls: {', '.join(self.malls)}") from None

    def place_mall_orders(self, channel: str, n: int, at: datetime | None = None) -> list[MallOrder]:
        """Place up to `n` orders on a mall at `at` (default: now); sold-out lines are refused by the mall."""
        if n < 0:
            raise ValueError("n must be ≥ 0")
        with self.lock:
            mall = self.mall(channel)
            stamp = _utc(at).replace(microsecond=0) if at is not None else self.clock()
            self._high_water = max(self._high_water, stamp)
            placed: list[MallOrder] = []
            for _ in range(n):
                for _attempt in range(5):
                    order = mall.new_order(stamp, mall.live_rng, check_stock=True)
                    if order is not None:
                        placed.append(order)
                        break
            return placed

    def place_mall_order(self, channel: str, lines: list[tuple[str, int]],
                         at: datetime | None = None) -> MallOrder | None:
        """One order on a mall for exactly these (listing_id, quantity) lines; sold-out lines are refused and a
        quantity above the displayed stock is cut to it. None when every line was refused."""
        with self.lock:
            mall = self.mall(channel)
            unknown = [lid for lid, _ in lines if lid not in mall.by_listing]
            if unknown:
                raise KeyError(f"{channel} does not list {', '.join(unknown)}")
            if any(qty < 1 for _, qty in lines):
                raise ValueError("quantities must be ≥ 1")
            stamp = _utc(at).replace(microsecond=0) if at is not None else self.clock()
            self._high_water = max(self._high_water, stamp)
            return mall.new_order(stamp, mall.live_rng, check_stock=True,
                                  wanted=[(mall.by_listing[lid], qty) for lid, qty in lines])

    def mall_listing_for_sku(self, channel: str, sku: str) -> MallListing | None:
        """The listing a mall sells an ERP SKU under (None when the mall does not list it)."""
        with self.lock:
            return next((s for s in self.mall(channel).listings if s.erp_sku == sku), None)

    def set_available(self, changes: list[tuple[int, int, int]], at: datetime | None = None) -> None:
        """Set the shop's `available` for (inventory_item_id, location_id, quantity) rows, as an admin would."""
        with self.lock:
            stamp = _utc(at) if at is not None else self.clock()
            for item_id, location_id, qty in changes:
                level = self.levels[(item_id, location_id)]
                level.available = qty
                self.touch_inventory(item_id, level, stamp)

    # --------------------------------------------------------------------------------------- look-ups
    @property
    def erp_products(self) -> list[Product]:
        """The ERP's product table: the goods and the bundle products, by SKU."""
        return sorted(self.products + self.bundle_products, key=lambda p: p.sku)

    def _product_by_sku(self, sku: str) -> Product:
        index = getattr(self, "_products_index", None)
        if index is None or len(index) != len(self.products) + len(self.bundle_products):
            index = self._products_index = {p.sku: p for p in self.products + self.bundle_products}
        return index[sku]

    def product(self, sku: str) -> Product | None:
        try:
            return self._product_by_sku(sku)
        except KeyError:
            return None

    def _shop_product(self, product_id: int) -> ShopProduct:
        return self._index("products", self.shop_products)[product_id]

    # --------------------------------------------------------------------------------------- truth views
    def orders_truth(self) -> list[dict[str, Any]]:
        with self.lock:
            return [o.truth() for o in self.orders]

    def inventory_truth(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = []
            for item in self.inventory_items:
                for level in self.levels_of(item.id):
                    rows.append({
                        "inventory_item_id": item.gid,
                        "location_id": gid("Location", level.location_id),
                        "variant_id": gid("ProductVariant", item.variant_id),
                        "sku": item.sku,
                        "available": level.available,
                        "on_hand": level.on_hand,
                        "committed": level.committed,
                        "updated_at": iso_z(level.updated_at),
                    })
            return rows

    def fingerprint(self) -> str:
        """A digest of the whole world's state (for determinism checks)."""
        import hashlib
        import json

        with self.lock:
            blob = {
                "products": [vars(p) for p in self.products],
                "warehouses": [vars(w) for w in self.warehouses],
                "stock": [vars(s) for s in self.stock],
                "bundle_products": [vars(p) for p in self.bundle_products],
                "bundles": [vars(b) for b in self.bundles],
                "b2b_customers": [vars(c) for c in self.b2b_customers],
                "purchase_orders": [vars(po) for po in self.purchase_orders],
                "variants": [vars(v) for v in self.variants],
                "levels": [vars(lv) for lv in self.levels.values()],
                "customers": [vars(c) for c in self.customers],
                "orders": [o.truth() | {"events": [(e.at, e.kind) for e in o.pending]} for o in self.orders],
                "malls": {c: {"listings": [vars(s) for s in m.listings], "orders": m.orders_truth()}
                          for c, m in self.malls.items()},
            }
            return hashlib.sha256(json.dumps(blob, default=str, sort_keys=True).encode()).hexdigest()
