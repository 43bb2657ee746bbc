"""A copy of the shop's side of the world at one moment, read without the world's lock (DECISIONS.md D213).

A bulk query reads the whole shop: executed over the live world it had to hold the world's lock for the whole
export (seconds for a year of orders), and every other request — order polls, pushes, webhooks, the simulator —
waited. `ShopSnapshot.take(world)`, called under the lock, copies only the records the Admin GraphQL resolvers
read (orders with their line items, customers, products, variants, inventory items and levels, locations): a
shallow copy of each, so later changes to the live records (a shipment, a refund, a stock push) do not show in
it. The copy takes milliseconds per thousand orders; the execution and the JSONL then run outside the lock.

The snapshot answers the same names as `World` that `sandbox.shopify_resolvers.Resolvers` uses (collections,
look-ups by id, `levels_of`, `clock`, `version`), so the same resolvers build the same objects from it. Fields
that hold nested values the world never changes in place (addresses, variant options) are shared, not copied.
It is read-only: the mutations' resolvers need the live world.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sandbox.world import (
    Customer,
    InventoryItem,
    InventoryLevel,
    LineItem,
    Location,
    Order,
    ShopLookups,
    ShopProduct,
    Variant,
    World,
)

R = TypeVar("R")


def _copier(cls: type[R]) -> Callable[[R], R]:
    """A fast shallow copy of a record (a dataclass with or without slots); `copy.copy` is ~4× slower."""
    new = object.__new__
    slots = getattr(cls, "__slots__", ())
    if slots:
        names = tuple(slots)

        def copy_slots(record: R) -> R:
            clone = new(cls)
            for name in names:
                setattr(clone, name, getattr(record, name))
            return clone

        return copy_slots

    def copy_dict(record: R) -> R:
        clone = new(cls)
        clone.__dict__.update(record.__dict__)
        return clone

    return copy_dict


_copy_order, _copy_line = _copier(Order), _copier(LineItem)
_copy_customer, _copy_variant = _copier(Customer), _copier(Variant)
_copy_item, _copy_level = _copier(InventoryItem), _copier(InventoryLevel)
_copy_product, _copy_location = _copier(ShopProduct), _copier(Location)


def _copy_order_with_lines(order: Order) -> Order:
    clone = _copy_order(order)
    clone.lines = [_copy_line(line) for line in order.lines]
    clone.pending = []  # the world's plan for the order, not something the API shows
    return clone


class ShopSnapshot(ShopLookups):
    """The shop's records as they were when `take` ran. Build it with `ShopSnapshot.take(world)` while holding
    `world.lock`; read it from any one thread afterwards, without the lock (look-ups by id: `ShopLookups`, their
    indexes built on first use, outside the lock)."""

    def __init__(self, *, version: int, clock: datetime, shop_name: str, shop_domain: str, orders: list[Order],
                 customers: list[Customer], shop_products: list[ShopProduct], variants: list[Variant],
                 inventory_items: list[InventoryItem], levels: dict[tuple[int, int], InventoryLevel],
                 locations: list[Location]):
        self.version = version
        self._clock = clock
        self.shop_name = shop_name
        self.shop_domain = shop_domain
        self.orders = orders
        self.customers = customers
        self.shop_products = shop_products
        self.variants = variants
        self.inventory_items = inventory_items
        self.levels = levels
        self.locations = locations

    @classmethod
    def take(cls, world: World) -> ShopSnapshot:
        """Copy the shop's records (the caller holds `world.lock`, so they are one moment's)."""
        return cls(
            version=world.version, clock=world.clock(), shop_name=world.shop_name, shop_domain=world.shop_domain,
            orders=[_copy_order_with_lines(o) for o in world.orders],
            customers=[_copy_customer(c) for c in world.customers],
            shop_products=[_copy_product(p) for p in world.shop_products],
            variants=[_copy_variant(v) for v in world.variants],
            inventory_items=[_copy_item(i) for i in world.inventory_items],
            levels={key: _copy_level(level) for key, level in world.levels.items()},
            locations=[_copy_location(loc) for loc in world.locations],
        )

    def clock(self) -> datetime:
        """The world's time when the snapshot was taken (relative dates in search queries are read against it)."""
        return self._clock
