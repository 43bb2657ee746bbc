"""The three marketplaces of the world — Rakuten Ichiba, Amazon.co.jp and Yahoo!ショッピング — in one neutral shape.

Each `Mall` holds what the marketplace itself knows: its listings (the shop's products as that mall names them,
with the mall's own displayed stock and price), the orders placed there (buyer data as that mall collects it),
and each order's lifecycle. It speaks no API: `sandbox/rakuten.py`, `sandbox/amazon.py` and `sandbox/yahoo.py`
render this state in each real API's shape (status codes, field names, id formats, money formats).

What makes the malls realistic for the product that is tested against them:
- Naming: every mall names SKUs its own way (Rakuten manageNumber + variantId, Amazon seller SKU + ASIN,
  Yahoo item code + sub code). The shop's own SKU sits where the mall keeps it (`seller_sku`: Rakuten's
  merchantDefinedSkuId, Amazon's seller SKU, Yahoo's sub code) — usually the ERP SKU, sometimes a legacy code
  that only the JAN ties back to the ERP, and a few deliberate listings that match nothing in the ERP
  (`MallListing.erp_sku is None`: discontinued goods still listed; see sandbox/README.md).
- Buyers: the same person (a `World.customers` entry) buys on several malls, and each mall records them its own
  way — masked relay e-mail addresses on Rakuten and Amazon, phone numbers with or without hyphens, full-width
  digits, names with and without the space, and for some people an old address on one mall.
- Stock: each mall decrements its displayed quantity on every sale and refuses a line at zero, as malls do.
- Lifecycle: card and PayPay orders are paid at once; bank transfer and convenience-store orders wait for payment
  (入金待ち) and are cancelled when never paid; 代引き ships first and is paid at the door; orders are
  confirmed, shipped, delivered, sometimes cancelled or returned, each at its planned time.

Deterministic: each mall draws from its own RNG seeded from the world's seed and the channel, so adding the malls
did not change the Shopify side of a given seed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from sandbox import lifecycle
from sandbox.draw import Weighted, batch_rng, cumulative, distinct_picks, pick, pick_many, randint

MALL_CHANNELS = ("rakuten", "amazon", "yahoo")

# Unified lifecycle states of a mall order (the API modules map them to each mall's own codes).
ORDERED = "ordered"  # placed, not yet confirmed by the shop / authorised (Rakuten 100, Amazon PENDING)
PENDING_PAYMENT = "pending_payment"  # confirmed, waiting for a bank or konbini payment
AWAITING_SHIPMENT = "awaiting_shipment"
SHIPPED = "shipped"
DELIVERED = "delivered"
CANCELLED = "cancelled"
RETURNED = "returned"
STATES = (ORDERED, PENDING_PAYMENT, AWAITING_SHIPMENT, SHIPPED, DELIVERED, CANCELLED, RETURNED)

# Payment methods (neutral codes; each API module names them as its mall does).
CARD, PAYPAY, BANK, KONBINI, COD = "card", "paypay", "bank_transfer", "konbini", "cod"
INSTANT_PAYMENTS = (CARD, PAYPAY)

_LINES_PER_ORDER = Weighted((1, 2, 3), (62, 28, 10))
_QUANTITY = Weighted((1, 2, 3), (82, 14, 4))
BUYER_DRAWS = 6  # uniforms that decide how a mall records a buyer (`buyer_styles`)
_FAMILY = {CARD: lifecycle.INSTANT, PAYPAY: lifecycle.INSTANT, BANK: lifecycle.DEFERRED,
           KONBINI: lifecycle.DEFERRED, COD: lifecycle.COD}


@dataclass(frozen=True)
class MallProfile:
    """How one mall differs: who lists what, prices, shipping, payments, ids and how buyers are recorded."""

    channel: str
    volume: float  # orders per day relative to the shop's `orders_per_day`
    listed_fraction: float  # share of ERP SKUs this mall lists
    legacy_sku_fraction: float  # listings whose seller SKU is an old code (matched by JAN only)
    unmatched_listings: int  # deliberate listings with no ERP product at all
    price_markup_percent: int  # malls often charge more than the own site to cover fees
    free_shipping_from: int
    shipping: int
    payments: tuple[tuple[str, float], ...]
    masked_email_domain: str | None  # the mall relays mail through its own addresses
    points: bool  # buyers may pay part with mall points


PROFILES: dict[str, MallProfile] = {
    "rakuten": MallProfile(
        channel="rakuten", volume=1.3, listed_fraction=0.85, legacy_sku_fraction=0.05, unmatched_listings=2,
        price_markup_percent=5, free_shipping_from=3980, shipping=550,  # 送料無料ライン 3,980 円 (税込)
        payments=((CARD, 0.58), (BANK, 0.08), (KONBINI, 0.12), (COD, 0.12), (PAYPAY, 0.10)),
        masked_email_domain="pc.fw.rakuten.ne.jp", points=True,
    ),
    "amazon": MallProfile(
        channel="amazon", volume=1.0, listed_fraction=0.65, legacy_sku_fraction=0.04, unmatched_listings=1,
        price_markup_percent=0, free_shipping_from=2000, shipping=450,
        payments=((CARD, 0.86), (KONBINI, 0.09), (COD, 0.05)),
        masked_email_domain="marketplace.amazon.co.jp", points=False,
    ),
    "yahoo": MallProfile(
        channel="yahoo", volume=0.6, listed_fraction=0.55, legacy_sku_fraction=0.05, unmatched_listings=1,
        price_markup_percent=3, free_shipping_from=5000, shipping=600,
        payments=((CARD, 0.45), (PAYPAY, 0.30), (BANK, 0.06), (KONBINI, 0.12), (COD, 0.07)),
        masked_email_domain=None, points=True,
    ),
}


@dataclass
class MallListing:
    """One sellable unit on a mall. `listing_id` is the mall's key for it (see the module docstring)."""

    channel: str
    listing_id: str  # rakuten "manageNumber:variantId", amazon seller SKU, yahoo "itemCode:subCode"
    parent_code: str  # rakuten manageNumber, amazon parent SKU (style), yahoo item code
    variant_code: str  # rakuten variantId, amazon seller SKU, yahoo sub code
    seller_sku: str  # the shop's SKU as the mall stores it (merchantDefinedSkuId / seller SKU / sub code)
    erp_sku: str | None  # truth: the ERP SKU this listing sells; None = deliberately unmatched
    jan: str | None
    title: str
    variant_label: str  # "カラー:ネイビー / サイズ:M"
    price: int  # tax-inclusive JPY as the mall shows it
    tax_percent: int
    quantity: int  # the stock the mall displays (and decrements on each sale)
    asin: str | None
    created_at: datetime
    updated_at: datetime
    stock_updated_at: datetime


@dataclass(frozen=True, slots=True)
class MallBuyer:
    """A buyer as one mall recorded them (a snapshot; `person_id` is the world's truth of who it is). Orders that
    recorded a person the same way share one (Mall.buyer_for)."""

    person_id: int
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    email: str
    phone: str
    zip: str
    prefecture: str
    city: str
    address1: str
    address2: str | None


@dataclass(slots=True)  # a million of these: slots make them smaller and quicker to build
class MallLine:
    line_no: int
    listing_id: str
    erp_sku: str | None
    title: str
    variant_label: str
    quantity: int
    current_quantity: int  # after cancellation / return
    unit_price: int  # tax-inclusive JPY
    tax_percent: int


@dataclass(slots=True)
class MallEvent:
    at: datetime
    kind: str  # confirm | pay | ship | deliver | cancel | return


@dataclass(slots=True)
class MallOrder:
    channel: str
    order_id: str
    created_at: datetime
    updated_at: datetime
    payment_method: str
    buyer: MallBuyer
    lines: list[MallLine]
    shipping: int
    discount: int  # coupon, tax-inclusive JPY
    points_used: int  # paid with mall points (part of the total, not a discount)
    state: str = ORDERED
    confirmed_at: datetime | None = None
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    returned_at: datetime | None = None
    tracking_number: str | None = None
    version: int = 1  # bumped on every change (Rakuten's order version, Amazon's lastUpdatedTime tick)
    pending: list[MallEvent] = field(default_factory=list)

    @property
    def lines_total(self) -> int:
        return sum(li.unit_price * li.quantity for li in self.lines)

    @property
    def total(self) -> int:
        """What the buyer owes in all (goods + shipping − coupon), tax-inclusive; points are part of it."""
        return self.lines_total + self.shipping - self.discount

    @property
    def amount_due(self) -> int:
        """What the buyer pays in money (total − points)."""
        return self.total - self.points_used

    def truth(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "order_id": self.order_id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "state": self.state,
            "payment_method": self.payment_method,
            "cancelled": self.state == CANCELLED,
            "person_id": self.buyer.person_id,
            "total_jpy": self.total,
            "shipping_jpy": self.shipping,
            "discount_jpy": self.discount,
            "points_jpy": self.points_used,
            "lines": [
                {"listing_id": li.listing_id, "sku": li.erp_sku, "quantity": li.quantity,
                 "current_quantity": li.current_quantity, "unit_price_jpy": li.unit_price,
                 "tax_percent": li.tax_percent}
                for li in self.lines
            ],
        }


def _iso(ts: datetime | None) -> str | None:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if ts is not None else None


# ------------------------------------------------------------------------------------------------ the mall
class Mall:
    """One marketplace's state. Mutate it only under the owning world's lock (the World methods take it)."""

    def __init__(self, world: Any, profile: MallProfile):
        self.world = world
        self.profile = profile
        self.channel = profile.channel
        self.rng = random.Random(f"{world.seed}:{profile.channel}:generate")
        self.live_rng = random.Random(f"{world.seed}:{profile.channel}:live")
        self.listings: list[MallListing] = []
        self.by_listing: dict[str, MallListing] = {}
        self.orders: list[MallOrder] = []
        self.by_order: dict[str, MallOrder] = {}
        self.version = 0
        self._weights: list[float] = []
        self._asins: set[str] = set()
        # The relay address's token per person, fixed per mall (drawn once for everyone: a Random per person was
        # a tenth of generation).
        self._masked_tokens: dict[int, int] = {}
        if profile.masked_email_domain:
            tokens = batch_rng(world.seed, profile.channel, "relay-email").integers(0, 2**48, len(world.customers))
            self._masked_tokens = dict(zip([c.id for c in world.customers], tokens.tolist(), strict=True))
        # buyer_styles bits that matter here: a relayed e-mail has no case to vary, only Yahoo shows hiragana kana
        self._style_mask = 0b1011011 | (0 if profile.masked_email_domain else 0b100) | \
            (0b100000 if profile.channel == "yahoo" else 0)
        self._buyers: dict[tuple[int, int], MallBuyer] = {}
        self._payments = Weighted([m for m, _ in profile.payments], [w for _, w in profile.payments])
        self._serial = randint(self.rng, 10_000, 90_000)
        # listener(kind, record) after a live change: ("order_created"|"order_updated", MallOrder),
        # ("stock_changed", MallListing). Called under the world's lock; must be quick.
        self.listeners: list[Any] = []
        self._live = False
        # People with an old address that this mall still has on file.
        self._old_address: dict[int, dict[str, Any]] = {}

    # --------------------------------------------------------------------------------------- ids
    def _next_serial(self) -> int:
        self._serial += randint(self.rng, 1, 9) if not self._live else randint(self.live_rng, 1, 9)
        return self._serial

    def _order_id(self, at: datetime, rng: random.Random) -> str:
        if self.channel == "rakuten":  # shopId-yyyymmdd-serial (JST date)
            local = at + timedelta(hours=9)
            return f"386371-{local:%Y%m%d}-{self._next_serial():010d}"
        if self.channel == "amazon":  # 3-7-7 digits
            return f"{rng.choice(('249', '250', '503'))}-{randint(rng, 0, 9_999_999):07d}-{randint(rng, 0, 9_999_999):07d}"
        return f"ichigen-select-{self._next_serial() + 10_000_000:08d}"

    def _asin(self) -> str:
        alphabet = string.ascii_uppercase + string.digits
        while True:
            asin = "B0" + "".join(self.rng.choice(alphabet) for _ in range(8))
            if asin not in self._asins:  # a set: 30k listings checked by a scan made generation quadratic
                self._asins.add(asin)
                return asin

    # --------------------------------------------------------------------------------------- generation
    def generate_listings(self) -> None:
        world, rng, profile = self.world, self.rng, self.profile
        opened = world.now - timedelta(days=randint(rng, 400, 900))
        styles: dict[str, list[Any]] = {}
        for p in world.products:
            styles.setdefault(p.style_code, []).append(p)
        popularity = {s: rng.lognormvariate(0, 0.9) for s in styles}
        for style, members in styles.items():
            listed = [p for p in members if rng.random() < profile.listed_fraction]
            created = opened + timedelta(days=randint(rng, 0, 300), seconds=randint(rng, 0, 86399))
            for p in listed:
                legacy = rng.random() < profile.legacy_sku_fraction
                self._add_listing(p, style, legacy, created, popularity[style])
        for n in range(profile.unmatched_listings):
            self._add_unmatched(n, opened)
        self.by_listing = {listing.listing_id: listing for listing in self.listings}
        if not self.listings:
            raise ValueError(f"{self.channel} lists nothing; use more skus")

    def _add_listing(self, p: Any, style: str, legacy: bool, created: datetime, popularity: float) -> None:
        rng, world = self.rng, self.world
        style_lower = style.lower()
        variant_bits = [b for b in (p.color, p.size) if b]
        variant_slug = "-".join(variant_bits).lower() or "f"
        seller_sku = p.sku if not legacy else f"{style.replace('-', '')}{variant_slug.replace('-', '').upper()}"
        if self.channel == "rakuten":
            parent, variant = style_lower, variant_slug
            listing_id = f"{parent}:{variant}"
        elif self.channel == "amazon":
            parent = f"{style}-P"
            variant = seller_sku if not legacy else f"AMZ-{seller_sku}"
            seller_sku = variant
            listing_id = variant
        else:
            parent = style_lower.replace("-", "")
            variant = f"{parent}-{variant_slug}" if not legacy else f"{parent}{variant_slug.replace('-', '')}"
            seller_sku = variant if legacy else p.sku.lower()
            variant = seller_sku
            listing_id = f"{parent}:{variant}"
        tax_percent = 8 if p.tax_class == "reduced" else 10
        price = _round_up(p.list_price * (100 + tax_percent) // 100 * (100 + self.profile.price_markup_percent) // 100, 10)
        if rng.random() < 0.07:  # the mall still shows an older price
            price -= rng.choice((100, 200, 300))
        labels = ([f"カラー:{p.color_label}"] if p.color_label else []) + [f"サイズ:{p.size or 'F'}"]
        updated = created + timedelta(days=randint(rng, 0, 90))
        listing = MallListing(
            channel=self.channel, listing_id=listing_id, parent_code=parent, variant_code=variant,
            seller_sku=seller_sku, erp_sku=p.sku, jan=p.jan, title=_mall_title(self.channel, p),
            variant_label=" / ".join(labels), price=max(100, price), tax_percent=tax_percent,
            quantity=0, asin=self._asin() if self.channel == "amazon" else None,
            created_at=created, updated_at=min(updated, world.now), stock_updated_at=min(updated, world.now),
        )
        self.listings.append(listing)
        self._weights.append(popularity * rng.uniform(0.5, 1.5))

    def _add_unmatched(self, n: int, opened: datetime) -> None:
        """A discontinued product the shop still lists: its code and JAN are in no ERP table."""
        rng = self.rng
        body = "45" + f"{randint(rng, 0, 9_999_999_999):010d}"
        jan = body + str(_jan_check_digit(body))
        code = f"OLD-{9000 + n}"
        if self.channel == "rakuten":
            parent, variant, listing_id = code.lower(), "f", f"{code.lower()}:f"
        elif self.channel == "amazon":
            parent, variant, listing_id = f"{code}-P", code, code
        else:
            parent = code.lower().replace("-", "")
            variant, listing_id = parent, f"{parent}:{parent}"
        listing = MallListing(
            channel=self.channel, listing_id=listing_id, parent_code=parent, variant_code=variant,
            seller_sku=variant if self.channel != "rakuten" else code, erp_sku=None, jan=jan,
            title="【旧モデル】キャンバストート", variant_label="サイズ:F", price=1980, tax_percent=10,
            quantity=randint(rng, 0, 2), asin=self._asin() if self.channel == "amazon" else None,
            created_at=opened, updated_at=opened + timedelta(days=30), stock_updated_at=opened + timedelta(days=30),
        )
        self.listings.append(listing)
        self._weights.append(0.05)

    def generate_history(self, gen: np.random.Generator, stamps: np.ndarray) -> None:
        """Orders at `stamps` (epoch seconds, ascending) before go-live: drawn in batches, settled as of the world's
        `now` in one replay of their planned lifecycles (sandbox.lifecycle), each built once in its final state.
        History is made without stock checks (the displayed stock is settled afterwards)."""
        n = len(stamps)
        if n == 0:
            return
        world, profile = self.world, self.profile
        rows, picked = distinct_picks(gen, cumulative(self._weights), _LINES_PER_ORDER.values(gen, n))
        quantity = _QUANTITY.values(gen, len(rows))
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # every order has its first pick
        goods = np.add.reduceat(np.array([s.price for s in self.listings])[picked] * quantity, starts)
        who = pick_many(gen, cumulative(world._customer_weights), n)
        method = self._payments.indexes(gen, n)
        shipping = np.where(goods >= profile.free_shipping_from, 0, profile.shipping)
        coupon = np.where((goods >= 3000) & (gen.random(n) < 0.1), gen.integers(0, 3, n), -1)
        discount = np.select([coupon == 0, coupon == 1, coupon == 2], [300, 500, goods * 10 // 100], 0)
        points = np.zeros(n, np.int64)
        if profile.points:
            offered = np.array((100, 200, 500, 1000))[gen.integers(0, 4, n)]
            points = np.minimum(np.where(gen.random(n) < 0.2, offered, 0), goods + shipping - discount)
        family = np.array([_FAMILY[m] for m in self._payments.population])[method]
        plan = lifecycle.mall_plan(family, gen.random((n, lifecycle.MALL_DRAWS)))
        state, done = settle_mall_orders(family, plan, stamps, int(world.now.timestamp()))
        order_ids = self._history_order_ids(gen, stamps)
        tracking = gen.integers(10**11, 10**12, n)
        styles = buyer_styles(gen.random((n, BUYER_DRAWS))).tolist()

        # Records. Lists of Python values from here: indexing numpy arrays one element at a time is slow.
        listings = [(s.listing_id, s.erp_sku, s.title, s.variant_label) for s in self.listings]
        prices = [(s.price, s.tax_percent) for s in self.listings]
        per_order = np.diff(np.r_[starts, len(rows)]).tolist()
        line_no = (np.arange(len(rows)) - np.repeat(starts, per_order) + 1).tolist()
        lines = [MallLine(no, *listings[i], q, q, *prices[i])
                 for no, i, q in zip(line_no, picked.tolist(), quantity.tolist(), strict=True)]
        bounds = np.r_[starts, len(rows)].tolist()
        created = lifecycle.as_datetimes(stamps)
        moments = [lifecycle.as_datetimes(state[f"{moment}_at"]) for moment in MOMENTS]
        # updated_at: the latest moment, an object built above (every order has been confirmed or is brand new)
        latest = np.stack([state[f"{moment}_at"] for moment in MOMENTS], axis=1).argmax(axis=1)
        latest = np.where(done.applied > 0, latest, -1).tolist()
        pending: dict[int, list[MallEvent]] = {}
        for row, at, kind in done.pending:
            pending.setdefault(row, []).append(MallEvent(lifecycle.as_datetime(at), kind))
        people, methods, channel = world.customers, self._payments.population, self.channel
        columns = zip(order_ids, who.tolist(), created, latest, method.tolist(), styles, shipping.tolist(),
                      discount.tolist(), points.tolist(), state["state"].tolist(), *moments, tracking.tolist(),
                      (done.applied + 1).tolist(), state["zeroed"].tolist(), strict=True)
        for i, (order_id, person, at, last, m, style, ship_fee, off, used, code, confirmed_at, paid_at,
                shipped_at, delivered_at, cancelled_at, returned_at, tracking_no, version, zeroed) in enumerate(columns):
            order_lines = lines[bounds[i]:bounds[i + 1]]
            if zeroed:
                for li in order_lines:
                    li.current_quantity = 0
            updated_at = at if last < 0 else (confirmed_at, paid_at, shipped_at, delivered_at, cancelled_at,
                                              returned_at)[last]
            if order_id in self.by_order:  # an Amazon id collision is astronomically rare; redraw once
                order_id = self._order_id(at, self.rng)
            order = MallOrder(
                channel, order_id, at, updated_at, methods[m], self.buyer_for(people[person], style), order_lines,
                ship_fee, off, used, STATES[code], confirmed_at, paid_at, shipped_at, delivered_at, cancelled_at,
                returned_at, None if shipped_at is None else str(tracking_no), version, pending.get(i, []),
            )
            self.orders.append(order)
            self.by_order[order_id] = order
        changes = n + int(done.applied.sum())
        self.version += changes
        world.version += changes

    def _history_order_ids(self, gen: np.random.Generator, stamps: np.ndarray) -> list[str]:
        """Order ids for the history, in the mall's format (`_order_id` one at a time)."""
        n = len(stamps)
        if self.channel == "amazon":  # 3-7-7 digits
            prefix = np.array(("249", "250", "503"))[gen.integers(0, 3, n)].tolist()
            middle, last = gen.integers(0, 10_000_000, n).tolist(), gen.integers(0, 10_000_000, n).tolist()
            return [f"{p}-{a:07d}-{b:07d}" for p, a, b in zip(prefix, middle, last, strict=True)]
        serials = (self._serial + np.cumsum(gen.integers(1, 10, n))).tolist()
        self._serial = serials[-1]
        if self.channel == "rakuten":  # shopId-yyyymmdd-serial (JST date)
            days = ((stamps + 9 * 3600) // 86400).tolist()
            label = {d: f"{lifecycle.as_datetime(d * 86400):%Y%m%d}" for d in set(days)}
            return [f"386371-{label[d]}-{serial:010d}" for d, serial in zip(days, serials, strict=True)]
        return [f"ichigen-select-{serial + 10_000_000:08d}" for serial in serials]

    def settle_stock(self, erp_sellable: dict[str, int]) -> None:
        """The displayed stock after history: near the ERP's sellable stock, but not equal (so a sync has work)."""
        rng, now = self.rng, self.world.now
        for listing in self.listings:
            if listing.erp_sku is None:
                continue
            base = erp_sellable.get(listing.erp_sku, 0)
            roll = rng.random()
            shown = base if roll < 0.4 else base - randint(rng, 1, 4) if roll < 0.7 else base + randint(rng, 1, 4) \
                if roll < 0.92 else randint(rng, 0, 2)
            listing.quantity = max(0, shown)
            stamp = now - timedelta(seconds=randint(rng, 600, 4 * 86400))
            listing.stock_updated_at = max(stamp, listing.created_at)
            listing.updated_at = max(listing.updated_at, listing.stock_updated_at)

    def remember_old_addresses(self, gen: np.random.Generator, people: list[Any],
                               addresses_for: Callable[[np.random.Generator, list[Any]], list[dict[str, Any]]]) -> None:
        """Some people moved (12 %): this mall still has their old address (identity resolution must cope)."""
        moved = [person for person, roll in zip(people, gen.random(len(people)).tolist(), strict=True) if roll < 0.12]
        self._old_address = dict(zip([p.id for p in moved], addresses_for(gen, moved), strict=True))

    def go_live(self) -> None:
        self._live = True

    # --------------------------------------------------------------------------------------- buyers
    def buyer_for(self, person: Any, style: int) -> MallBuyer:
        """How this mall records `person` (a world Customer) in one of the ways real data varies; `style` (from
        `buyer_styles`) says which. The same person written the same way is one shared (frozen) MallBuyer."""
        style &= self._style_mask
        buyer = self._buyers.get((person.id, style))
        if buyer is None:
            buyer = self._buyers[(person.id, style)] = self._write_buyer(person, style)
        return buyer

    def _write_buyer(self, person: Any, style: int) -> MallBuyer:
        """`person` written in `style` (bits as `buyer_styles` packs them)."""
        address = self._old_address.get(person.id, person.address)
        phone = address["phone"]  # 090-1234-5678
        if style & 3 == 1:
            phone = phone.replace("-", "")
        elif style & 3 == 2:
            phone = _fullwidth(phone)
        elif style & 3 == 3:
            phone = f"{phone[:3]}({phone[4:8]}){phone[9:]}"
        if self.profile.masked_email_domain:
            email = f"{self._masked_tokens[person.id]:012x}@{self.profile.masked_email_domain}"
        elif style & 4:
            local, _, domain = person.email.partition("@")
            email = f"{local.upper()}@{domain}"
        else:
            email = person.email
        zip_code = address["zip"].replace("-", "") if style & 8 else address["zip"]
        if style & 16:
            zip_code = _fullwidth(zip_code)
        kana_family, kana_given = person.last_name_kana, person.first_name_kana
        if style & 32:
            kana_family, kana_given = _hiragana(kana_family), _hiragana(kana_given)
        address1 = _fullwidth(address["address1"]) if style & 64 else address["address1"]
        return MallBuyer(person.id, person.last_name, person.first_name, kana_family, kana_given, email, phone,
                         zip_code, address["province"], address["city"], address1, address.get("address2"))

    # --------------------------------------------------------------------------------------- orders
    def new_order(self, at: datetime, rng: random.Random, check_stock: bool,
                  wanted: list[tuple[MallListing, int]] | None = None) -> MallOrder | None:
        world = self.world
        if wanted is None:
            count = _LINES_PER_ORDER.pick(rng)
            picks: list[MallListing] = []
            cum = self._cum()
            for _ in range(count * 3):
                if len(picks) == count:
                    break
                listing = pick(rng, self.listings, cum)
                if listing not in picks:
                    picks.append(listing)
            wanted = [(listing, _QUANTITY.pick(rng)) for listing in picks]
        lines: list[MallLine] = []
        for listing, qty in wanted:
            if check_stock:
                if listing.quantity <= 0:
                    continue  # sold out on this mall: the line is refused
                qty = min(qty, listing.quantity)
            lines.append(MallLine(
                line_no=len(lines) + 1, listing_id=listing.listing_id, erp_sku=listing.erp_sku,
                title=listing.title, variant_label=listing.variant_label, quantity=qty, current_quantity=qty,
                unit_price=listing.price, tax_percent=listing.tax_percent,
            ))
        if not lines:
            return None
        person = pick(rng, world.customers, world._cum("customers", world._customer_weights))
        method = self._payments.pick(rng)
        goods = sum(li.unit_price * li.quantity for li in lines)
        shipping = 0 if goods >= self.profile.free_shipping_from else self.profile.shipping
        discount = 0
        if goods >= 3000 and rng.random() < 0.1:
            discount = rng.choice((300, 500, goods * 10 // 100))
        points = rng.choice((100, 200, 500, 1000)) if self.profile.points and rng.random() < 0.2 else 0
        points = min(points, goods + shipping - discount)
        order = MallOrder(
            channel=self.channel, order_id=self._order_id(at, rng), created_at=at, updated_at=at,
            payment_method=method, buyer=self.buyer_for(person, int(buyer_styles(np.array([
                [rng.random() for _ in range(BUYER_DRAWS)]]))[0])), lines=lines, shipping=shipping,
            discount=discount, points_used=points,
        )
        if order.order_id in self.by_order:  # an Amazon id collision is astronomically rare; redraw once
            order.order_id = self._order_id(at, rng)
        order.pending = _plan(order, rng)
        if check_stock:
            for li in lines:
                listing = self.by_listing[li.listing_id]
                listing.quantity -= li.quantity
                self._touch_stock(listing, at)
        self.orders.append(order)
        self.by_order[order.order_id] = order
        self.version += 1
        world.version += 1
        if self._live:
            self._emit("order_created", order)
        return order

    def apply_due(self, order: MallOrder, until: datetime) -> bool:
        changed = False
        while order.pending and order.pending[0].at <= until:
            self._apply(order, order.pending.pop(0))
            changed = True
        return changed

    def _apply(self, order: MallOrder, event: MallEvent) -> None:
        kind, at = event.kind, event.at
        if kind == "confirm":
            order.confirmed_at = at
            order.state = AWAITING_SHIPMENT if order.payment_method in INSTANT_PAYMENTS + (COD,) else PENDING_PAYMENT
            if order.state == AWAITING_SHIPMENT and order.payment_method in INSTANT_PAYMENTS:
                order.paid_at = order.paid_at or order.created_at
        elif kind == "pay":
            order.paid_at = at
            if order.state == PENDING_PAYMENT:
                order.state = AWAITING_SHIPMENT
        elif kind == "ship":
            order.shipped_at = at
            order.state = SHIPPED
            order.tracking_number = f"{randint(self.live_rng, 10**11, 10**12 - 1)}" if self._live \
                else f"{randint(self.rng, 10**11, 10**12 - 1)}"
        elif kind == "deliver":
            order.delivered_at = at
            order.state = DELIVERED
        elif kind == "cancel":
            was_open = order.state in (ORDERED, PENDING_PAYMENT, AWAITING_SHIPMENT)
            order.cancelled_at = at
            order.state = CANCELLED
            if was_open and self._live:  # the mall puts the units back on sale
                for li in order.lines:
                    listing = self.by_listing.get(li.listing_id)
                    if listing is not None:
                        listing.quantity += li.current_quantity
                        self._touch_stock(listing, at)
            for li in order.lines:
                li.current_quantity = 0
        elif kind == "return":
            order.returned_at = at
            order.state = RETURNED
            for li in order.lines:
                li.current_quantity = 0
        else:  # pragma: no cover - a planning bug
            raise ValueError(f"unknown mall event {kind}")
        order.updated_at = max(order.updated_at, at)
        order.version += 1
        self.version += 1
        self.world.version += 1
        if self._live:
            self._emit("order_updated", order)

    def advance(self, until: datetime) -> list[MallOrder]:
        return [o for o in self.orders if o.pending and self.apply_due(o, until)]

    # --------------------------------------------------------------------------------------- stock
    def set_quantity(self, listing_id: str, quantity: int, at: datetime) -> MallListing:
        """The shop (or a sync tool) sets the displayed quantity."""
        listing = self.by_listing[listing_id]
        if quantity < 0:
            raise ValueError(f"{self.channel} {listing_id}: quantity must be ≥ 0")
        listing.quantity = quantity
        self._touch_stock(listing, at)
        return listing

    def add_quantity(self, listing_id: str, delta: int, at: datetime) -> MallListing:
        """A relative change (Rakuten RELATIVE, Yahoo +n/−n); the mall floors displayed stock at 0."""
        listing = self.by_listing[listing_id]
        listing.quantity = max(0, listing.quantity + delta)
        self._touch_stock(listing, at)
        return listing

    def _touch_stock(self, listing: MallListing, at: datetime) -> None:
        listing.stock_updated_at = max(listing.stock_updated_at, at)
        listing.updated_at = max(listing.updated_at, at)
        self.version += 1
        self.world.version += 1
        if self._live:
            self._emit("stock_changed", listing)

    # --------------------------------------------------------------------------------------- views
    def orders_in_window(self, field_name: str, start: datetime | None, end: datetime | None) -> list[MallOrder]:
        """Orders whose `created_at` or `updated_at` lies in [start, end), oldest first, ties by id."""
        rows = [o for o in self.orders
                if (start is None or getattr(o, field_name) >= start) and (end is None or getattr(o, field_name) < end)]
        rows.sort(key=lambda o: (getattr(o, field_name), o.order_id))
        return rows

    def orders_truth(self) -> list[dict[str, Any]]:
        return [o.truth() for o in self.orders]

    def stock_truth(self) -> list[dict[str, Any]]:
        return [{"channel": self.channel, "listing_id": s.listing_id, "sku": s.erp_sku, "seller_sku": s.seller_sku,
                 "quantity": s.quantity, "updated_at": _iso(s.stock_updated_at)} for s in self.listings]

    def _emit(self, kind: str, record: Any) -> None:
        for listener in list(self.listeners):
            listener(kind, record)

    def _cum(self) -> list[float]:
        cum = getattr(self, "_cum_weights", None)
        if cum is None or len(cum) != len(self._weights):
            total, cum = 0.0, []
            for w in self._weights:
                total += w
                cum.append(total)
            self._cum_weights = cum
        return cum


# ------------------------------------------------------------------------------------------------ lifecycle
def _plan(order: MallOrder, rng: random.Random) -> list[MallEvent]:
    """A live order's plan: sandbox.lifecycle.mall_plan on one row (the history plans the same way)."""
    draws = np.array([[rng.random() for _ in range(lifecycle.MALL_DRAWS)]])
    plan = lifecycle.mall_plan(np.array([_FAMILY[order.payment_method]]), draws)
    return [MallEvent(order.created_at + timedelta(seconds=offset), kind)
            for offset, kind in lifecycle.ordered_events(plan, 0)]


# The history settled in columns (sandbox.lifecycle.replay): what Mall._apply does to one order.
MOMENTS = ("confirmed", "paid", "shipped", "delivered", "cancelled", "returned")  # MallOrder's `<moment>_at`
_STATE = {name: code for code, name in enumerate(STATES)}


def _confirm(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    family = state["family"][rows]
    state["confirmed_at"][rows] = at
    state["state"][rows] = np.where(family == lifecycle.DEFERRED, _STATE[PENDING_PAYMENT], _STATE[AWAITING_SHIPMENT])
    paid = state["paid_at"][rows]
    state["paid_at"][rows] = np.where((family == lifecycle.INSTANT) & (paid < 0), state["created"][rows], paid)


def _pay(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    state["paid_at"][rows] = at
    current = state["state"][rows]
    state["state"][rows] = np.where(current == _STATE[PENDING_PAYMENT], _STATE[AWAITING_SHIPMENT], current)


def _moment(name: str, new_state: str, ends_lines: bool = False) -> lifecycle.Transition:
    def apply(state: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
        state[f"{name}_at"][rows] = at
        state["state"][rows] = _STATE[new_state]
        if ends_lines:
            state["zeroed"][rows] = True
    return apply


_MALL_TRANSITIONS: dict[str, lifecycle.Transition] = {
    "confirm": _confirm, "pay": _pay, "ship": _moment("shipped", SHIPPED), "deliver": _moment("delivered", DELIVERED),
    "cancel": _moment("cancelled", CANCELLED, ends_lines=True), "return": _moment("returned", RETURNED, ends_lines=True),
}


def settle_mall_orders(family: np.ndarray, plan: lifecycle.Plan, created: np.ndarray,
                       until: int) -> tuple[dict[str, np.ndarray], lifecycle.Replayed]:
    """The state of mall orders (`family`, planned `plan`, placed at epoch `created`) once every event due by
    `until` is applied: `state` (index into STATES), `<moment>_at` per MOMENTS (-1: not yet), `zeroed` (every
    line's current quantity is 0)."""
    n = len(family)
    state = {"family": family, "created": created, "state": np.zeros(n, np.int8), "zeroed": np.zeros(n, bool)}
    state |= {f"{moment}_at": np.full(n, -1, np.int64) for moment in MOMENTS}
    return state, lifecycle.replay(plan, created, until, state, _MALL_TRANSITIONS)


# ------------------------------------------------------------------------------------------------ buyers
def buyer_styles(rolls: np.ndarray) -> np.ndarray:
    """How each order's mall writes its buyer, from BUYER_DRAWS uniforms per order, packed in one int: the phone
    (bits 0–1) as given 45 %, digits only 35 %, full-width 12 %, 090(1234)5678 8 %; the e-mail's local part in
    capitals (bit 2) 15 % where the mall keeps the address; the postal code without its hyphen (bit 3) 30 % and
    full-width (bit 4) 10 %; the kana in hiragana (bit 5) 30 %, on Yahoo; the street address full-width (bit 6) 20 %."""
    phone = np.searchsorted(np.array([0.45, 0.8, 0.92]), rolls[:, 0], side="right")
    upper_email = rolls[:, 1] >= 0.85
    zip_style = (rolls[:, 2] >= 0.7) + 2 * (rolls[:, 3] < 0.1)
    hiragana, wide_address = rolls[:, 4] < 0.3, rolls[:, 5] >= 0.8
    return phone + 4 * upper_email + 8 * zip_style + 32 * hiragana + 64 * wide_address


# ------------------------------------------------------------------------------------------------ helpers
def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _jan_check_digit(first12: str) -> int:
    odd = sum(int(d) for d in first12[0::2])
    even = sum(int(d) for d in first12[1::2])
    return (10 - (odd + 3 * even) % 10) % 10


_FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def _fullwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


_HIRAGANA = str.maketrans({chr(c): chr(c - 0x60) for c in range(ord("ァ"), ord("ヶ") + 1)})


def _hiragana(katakana: str) -> str:
    return katakana.translate(_HIRAGANA)


def _mall_title(channel: str, p: Any) -> str:
    """Malls like long, keyword-stuffed titles; each in its own style."""
    if channel == "rakuten":
        return f"【送料無料ライン対象】{p.style_name} {p.category} 一元セレクト"
    if channel == "amazon":
        return f"一元セレクト {p.style_name} ({p.category})"
    return f"{p.style_name}【一元セレクト】"
