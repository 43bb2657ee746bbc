"""The world's physical truth: ERP on-hand per SKU × warehouse, moved only by what physically happens, and what
every channel got wrong against it. Benchmarks read it (`GET /_sandbox/truth`); it is not a channel API.

What moves on-hand (`World.stock`, the ERP's own table, so the ERP database follows):
- a shipment on ANY channel (Shopify `ship`, a mall's `ship`): the order's units leave the sellable warehouses
  in the ERP's order (WH-TOKYO first, then WH-OSAKA); a bundle ships its components. Units that are not there
  cannot leave: they are counted as `short_shipped_units` and on-hand stays ≥ 0.
- a purchase order received (`receive_due`, called by `World.advance`): its units arrive at its warehouse.
- a cancellation before shipment only releases the reservation (the units never left); after shipment (returns)
  nothing comes back to sellable stock here.

So for every SKU × warehouse: on-hand = initial + receipts − shipments (`balance_errors()` checks it).

What is kept per channel, from the moment the world went live (history was generated without stock checks):
- oversells: an order line accepted while the physical available (sellable on-hand minus the units of accepted,
  unshipped, uncancelled orders on all channels) was below the line's quantity (for a bundle: any component
  below quantity × its per-bundle count);
- stock-out-while-available minutes: time a listing showed 0 on the channel while physical available was > 0.
  Time is the world's event time (monotone: the latest stamp seen), as of the last event.

Listeners run under the world's lock. The optional mirror (`sandbox.erp.ErpMirror`) writes each on-hand change
and each received purchase order into the ERP database with a newer updated_at, so ingestion sees them; a
shipment also ends the ERP's allocation of that order (sandbox.erp_intake), so the ERP's on_hand counts it once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sandbox.malls import AWAITING_SHIPMENT, CANCELLED, ORDERED, PENDING_PAYMENT

log = logging.getLogger("sandbox.truth")
JST = ZoneInfo("Asia/Tokyo")
RECEIVING_HOUR_JST = 10  # a purchase order arrives at 10:00 JST on its expected date
OPEN_MALL_STATES = (ORDERED, PENDING_PAYMENT, AWAITING_SHIPMENT)
TICK = timedelta(microseconds=1)


class ErpWriter(Protocol):
    """Where on-hand changes and received purchase orders are written as they happen (sandbox.erp.ErpMirror)."""

    def write_stock(self, rows: list[Any], shipped: tuple[str, str] | None = None) -> None: ...

    def write_purchase_orders(self, rows: list[Any]) -> None: ...


@dataclass(frozen=True)
class Oversell:
    channel: str
    order_id: str
    sku: str
    quantity: int
    physical_available: int
    at: datetime


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts is not None else None


def receiving_time(day: Any) -> datetime:
    """When a purchase order due on the JST calendar `day` arrives, in UTC."""
    return datetime(day.year, day.month, day.day, RECEIVING_HOUR_JST, tzinfo=JST).astimezone(UTC)


class PhysicalTruth:
    """Attach with `PhysicalTruth(world)` once the world is generated (World.generate does it)."""

    def __init__(self, world: Any):
        self.world = world
        self.mirror: ErpWriter | None = None
        self.started_at = world.now
        self._clock = world.now
        self.ship_from = [w.warehouse_code for w in world.warehouses if w.sellable]
        self._rows = {(r.sku, r.warehouse_code): r for r in world.stock}
        self.initial = {key: row.on_hand for key, row in self._rows.items()}
        self.receipts: dict[tuple[str, str], int] = defaultdict(int)
        self.shipments: dict[tuple[str, str], int] = defaultdict(int)
        self.short_shipped: dict[str, int] = defaultdict(int)  # per channel: units a shipment found missing
        self.short_by_sku: dict[str, int] = defaultdict(int)
        self.sellable_on_hand: dict[str, int] = defaultdict(int, world.sellable_on_hand())
        self.components: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.bundles_of: dict[str, list[str]] = defaultdict(list)
        for b in world.bundles:
            self.components[b.bundle_sku].append((b.component_sku, b.quantity))
            self.bundles_of[b.component_sku].append(b.bundle_sku)
        self.reserved: dict[str, int] = defaultdict(int)
        self.open_orders: dict[tuple[str, str], dict[str, int]] = {}
        self.oversells: list[Oversell] = []
        self._closed_stockouts: dict[tuple[str, str], float] = defaultdict(float)  # seconds, ended intervals
        self._stockout_since: dict[tuple[str, str], datetime] = {}
        self._listings: dict[tuple[str, str], tuple[str, Any]] = {}  # key → (sku, shown quantity getter)
        self._listings_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._register_listings()
        self._reserve_open_history()
        for key in self._listings:
            self._evaluate(key)
        world.listeners.append(self._on_shop)
        for mall in world.malls.values():
            mall.listeners.append(self._on_mall)

    # ------------------------------------------------------------------------------------------- set-up
    def _register_listings(self) -> None:
        world = self.world
        for (item_id, location_id), level in world.levels.items():
            item = world.inventory_item(item_id)
            if item is not None:
                self._add_listing(("shopify", f"{item_id}@{location_id}"), item.sku, lambda lv=level: lv.available)
        for channel, mall in world.malls.items():
            for listing in mall.listings:
                if listing.erp_sku is not None:  # a listing of nothing in the ERP has no physical truth
                    self._add_listing((channel, listing.listing_id), listing.erp_sku, lambda s=listing: s.quantity)

    def _add_listing(self, key: tuple[str, str], sku: str, shown: Any) -> None:
        self._listings[key] = (sku, shown)
        self._listings_of[sku].append(key)

    def _reserve_open_history(self) -> None:
        """Orders accepted before go-live and not yet shipped or cancelled hold their units."""
        for order in self.world.orders:
            if order.cancelled_at is None and order.fulfillment_status == "UNFULFILLED":
                self._reserve(("shopify", order.gid), [(li.sku, li.current_quantity) for li in order.lines])
        for channel, mall in self.world.malls.items():
            for order in mall.orders:
                if order.state in OPEN_MALL_STATES:
                    self._reserve((channel, order.order_id), self._mall_lines(order))

    @staticmethod
    def _mall_lines(order: Any) -> list[tuple[str, int]]:
        return [(li.erp_sku, li.current_quantity) for li in order.lines if li.erp_sku is not None]

    # ------------------------------------------------------------------------------------------- views
    def units_of(self, sku: str, quantity: int) -> dict[str, int]:
        """The physical units `quantity` of `sku` take: a bundle's components, else the SKU itself."""
        if sku in self.components:
            return {c: q * quantity for c, q in self.components[sku]}
        return {sku: quantity}

    def available(self, sku: str) -> int:
        """Physical available: sellable on-hand − reserved; for a bundle, whole sets its components allow."""
        if sku in self.components:
            return min(self.available(c) // q for c, q in self.components[sku])
        return self.sellable_on_hand.get(sku, 0) - self.reserved.get(sku, 0)

    # ------------------------------------------------------------------------------------------- listeners
    def _on_shop(self, kind: str, record: Any) -> None:
        if kind == "inventory_touched":
            self._tick(record.updated_at)
            self._evaluate(("shopify", f"{record.inventory_item_id}@{record.location_id}"))
        elif kind == "order_created":
            self._accept("shopify", record.gid, [(li.sku, li.quantity) for li in record.lines], record.created_at)
        elif kind in ("order_updated", "order_cancelled"):
            key = ("shopify", record.gid)
            if key not in self.open_orders:
                return
            if record.cancelled_at is not None:
                self._release(key, record.cancelled_at)
            elif record.fulfillment_status == "FULFILLED":
                self._ship(key, record.updated_at)

    def _on_mall(self, kind: str, record: Any) -> None:
        if kind == "stock_changed":
            self._tick(record.stock_updated_at)
            self._evaluate((record.channel, record.listing_id))
        elif kind == "order_created":
            self._accept(record.channel, record.order_id, self._mall_lines(record), record.created_at)
        elif kind == "order_updated":
            key = (record.channel, record.order_id)
            if key not in self.open_orders:
                return
            if record.state == CANCELLED:
                self._release(key, record.cancelled_at or record.updated_at)
            elif record.shipped_at is not None:
                self._ship(key, record.shipped_at)

    # ------------------------------------------------------------------------------------------- moves
    def _tick(self, at: datetime) -> datetime:
        self._clock = max(self._clock, at)
        return self._clock

    def _reserve(self, key: tuple[str, str], lines: list[tuple[str, int]]) -> None:
        held = self.open_orders.setdefault(key, {})
        for sku, quantity in lines:
            for unit_sku, units in self.units_of(sku, quantity).items():
                held[unit_sku] = held.get(unit_sku, 0) + units
                self.reserved[unit_sku] += units

    def _accept(self, channel: str, order_id: str, lines: list[tuple[str, int]], at: datetime) -> None:
        self._tick(at)
        for sku, quantity in lines:
            short = any(self.available(u) < n for u, n in self.units_of(sku, quantity).items())
            if short:
                self.oversells.append(Oversell(channel, order_id, sku, quantity, self.available(sku), at))
            self._reserve((channel, order_id), [(sku, quantity)])
        self._evaluate_skus(self.open_orders.get((channel, order_id), {}))

    def _release(self, key: tuple[str, str], at: datetime) -> None:
        self._tick(at)
        held = self.open_orders.pop(key)
        for sku, units in held.items():
            self.reserved[sku] -= units
        self._evaluate_skus(held)

    def _ship(self, key: tuple[str, str], at: datetime) -> None:
        stamp = self._tick(at)
        held = self.open_orders.pop(key)
        changed = []
        for sku, units in held.items():
            self.reserved[sku] -= units
            left = units
            for warehouse in self.ship_from:
                row = self._rows.get((sku, warehouse))
                if row is None or left == 0 or row.on_hand <= 0:
                    continue
                take = min(left, row.on_hand)
                row.on_hand -= take
                row.updated_at = max(stamp, row.updated_at + TICK)
                self.shipments[(sku, warehouse)] += take
                self.sellable_on_hand[sku] -= take
                left -= take
                changed.append(row)
            self.short_shipped[key[0]] += left
            self.short_by_sku[sku] += left
        self.world.version += 1
        # The ERP ends the order's allocation (if its staff had taken it) with the same write.
        self._write("write_stock", changed, shipped=key)
        self._evaluate_skus(held)

    def receive_due(self, until: datetime) -> list[Any]:
        """Receive every open purchase order due by `until`: its units arrive at its warehouse. Returns them."""
        from sandbox.world import StockRow  # the world imports this module

        received = [po for po in self.world.purchase_orders
                    if po.status == "open" and receiving_time(po.expected_date) <= until]
        changed = []
        for po in sorted(received, key=lambda p: (receiving_time(p.expected_date), p.po_number, p.sku)):
            at = self._tick(max(receiving_time(po.expected_date), self.started_at))
            po.status, po.received_at = "received", at
            po.updated_at = max(at, po.updated_at + TICK)
            key = (po.sku, po.warehouse_code)
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = StockRow(po.sku, po.warehouse_code, 0, at)
                self.world.stock.append(row)
            row.on_hand += po.quantity
            row.updated_at = max(at, row.updated_at + TICK)
            self.receipts[key] += po.quantity
            if po.warehouse_code in self.ship_from:
                self.sellable_on_hand[po.sku] += po.quantity
            changed.append(row)
        if received:
            self.world.version += 1
            self._write("write_stock", changed)
            self._write("write_purchase_orders", received)
            self._evaluate_skus({po.sku: 0 for po in received})
        return received

    def _write(self, method: str, rows: list[Any], **kw: Any) -> None:
        if self.mirror is None or not (rows or kw):
            return
        try:
            getattr(self.mirror, method)(rows, **kw)
        except Exception:  # noqa: BLE001 — a database hiccup must not break the world's state machine
            log.exception("truth: writing %d rows to the ERP database failed", len(rows))

    # ------------------------------------------------------------------------------------------- stock-outs
    def _evaluate_skus(self, skus: Any) -> None:
        touched = set(skus)
        for sku in list(touched):
            touched.update(self.bundles_of.get(sku, ()))
        for sku in touched:
            for key in self._listings_of.get(sku, ()):
                self._evaluate(key)

    def _evaluate(self, key: tuple[str, str]) -> None:
        entry = self._listings.get(key)
        if entry is None:
            return
        sku, shown = entry
        missing = shown() <= 0 and self.available(sku) > 0
        since = self._stockout_since.get(key)
        if missing and since is None:
            self._stockout_since[key] = self._clock
        elif not missing and since is not None:
            del self._stockout_since[key]
            self._closed_stockouts[key] += (self._clock - since).total_seconds()

    def stockout_minutes_by_listing(self) -> dict[tuple[str, str], float]:
        """(channel, listing) → minutes it showed 0 while physically available, open intervals up to now."""
        seconds: dict[tuple[str, str], float] = defaultdict(float, self._closed_stockouts)
        for key, since in self._stockout_since.items():
            seconds[key] += (self._clock - since).total_seconds()
        return {key: round(value / 60, 2) for key, value in seconds.items() if value > 0}

    def stockout_minutes(self) -> dict[str, float]:
        """Per channel, minutes its listings showed 0 while physically available (summed over listings)."""
        totals = dict.fromkeys(self.channels(), 0.0)
        for (channel, _), minutes in self.stockout_minutes_by_listing().items():
            totals[channel] = round(totals[channel] + minutes, 2)
        return totals

    # ------------------------------------------------------------------------------------------- reports
    def channels(self) -> list[str]:
        return ["shopify", *self.world.malls]

    def balance_errors(self) -> list[str]:
        """Rows where on-hand ≠ initial + receipts − shipments (empty when the truth balances)."""
        return [f"{sku}@{wh}: on_hand {row.on_hand} ≠ {self.initial.get((sku, wh), 0)} + "
                f"{self.receipts.get((sku, wh), 0)} − {self.shipments.get((sku, wh), 0)}"
                for (sku, wh), row in self._rows.items()
                if row.on_hand != self.initial.get((sku, wh), 0) + self.receipts.get((sku, wh), 0)
                - self.shipments.get((sku, wh), 0)]

    def orders_by_channel(self) -> dict[str, list[dict[str, Any]]]:
        oversold = {(o.channel, o.order_id) for o in self.oversells}
        orders: dict[str, list[dict[str, Any]]] = {"shopify": [
            {"order_id": o.gid, "name": o.name, "created_at": _iso(o.created_at),
             "status": "cancelled" if o.cancelled_at else o.fulfillment_status.lower(),
             "oversold": ("shopify", o.gid) in oversold,
             "lines": [{"sku": li.sku, "quantity": li.quantity} for li in o.lines]}
            for o in self.world.orders]}
        for channel, mall in self.world.malls.items():
            orders[channel] = [
                {"order_id": o.order_id, "created_at": _iso(o.created_at), "status": o.state,
                 "oversold": (channel, o.order_id) in oversold,
                 "lines": [{"sku": li.erp_sku, "listing_id": li.listing_id, "quantity": li.quantity}
                           for li in o.lines]}
                for o in mall.orders]
        return orders

    def report(self) -> dict[str, Any]:
        """Everything `GET /_sandbox/truth` answers (take the world's lock around it)."""
        orders = self.orders_by_channel()
        minutes = self.stockout_minutes()
        summary = {
            channel: {
                "orders": len(orders[channel]),
                "oversells": sum(1 for o in self.oversells if o.channel == channel),
                "oversold_units": sum(o.quantity for o in self.oversells if o.channel == channel),
                "stockout_while_available_minutes": minutes[channel],
                "short_shipped_units": self.short_shipped.get(channel, 0),
            }
            for channel in self.channels()
        }
        skus = [p.sku for p in self.world.erp_products]
        return {
            "started_at": _iso(self.started_at),
            "as_of": _iso(self._clock),
            "channels": summary,
            "on_hand": [
                {"sku": sku, "warehouse_code": wh, "on_hand": row.on_hand, "initial": self.initial.get((sku, wh), 0),
                 "received": self.receipts.get((sku, wh), 0), "shipped": self.shipments.get((sku, wh), 0),
                 "updated_at": _iso(row.updated_at)}
                for (sku, wh), row in sorted(self._rows.items())
            ],
            "available": [
                {"sku": sku, "sellable_on_hand": self.sellable_on_hand.get(sku, 0) if sku not in self.components
                 else None, "reserved": self.reserved.get(sku, 0), "available": self.available(sku)}
                for sku in skus
            ],
            "oversells": [
                {"channel": o.channel, "order_id": o.order_id, "sku": o.sku, "quantity": o.quantity,
                 "physical_available": o.physical_available, "at": _iso(o.at)} for o in self.oversells
            ],
            "purchase_orders": [
                {"po_number": po.po_number, "sku": po.sku, "warehouse_code": po.warehouse_code,
                 "quantity": po.quantity, "expected_date": po.expected_date.isoformat(), "status": po.status,
                 "received_at": _iso(po.received_at)}
                for po in self.world.purchase_orders
            ],
            "orders": orders,
        }
