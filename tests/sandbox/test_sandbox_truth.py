"""The world's physical truth (sandbox.truth): on-hand moved by shipments on every channel and by received purchase
orders, oversells and stock-out-while-available minutes per channel, the live ERP database following, and
GET /_sandbox/truth."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import timedelta

import httpx
import psycopg
from sandbox_testkit import NOW, TOKEN, small_world

from sandbox.erp import sqlite_timestamp
from sandbox.runner import Simulator, start_world
from sandbox.world import is_valid_jan

T = NOW + timedelta(hours=1)
LATER = NOW + timedelta(days=12)  # every planned shipment, payment deadline and purchase order is due by then


def bundle_world(seed: int = 3):
    return small_world(seed=seed, skus=30, sell_bundles=True)


def units(world, sku: str, quantity: int) -> Counter:
    parts = [(b.component_sku, b.quantity) for b in world.bundles if b.bundle_sku == sku]
    return Counter({c: q * quantity for c, q in parts}) if parts else Counter({sku: quantity})


def stocked_sku(world, minimum: int = 3) -> str:
    """An ordinary SKU the shop lists with at least `minimum` units physically available."""
    listed = {v.sku for v in world.variants}
    return next(p.sku for p in world.products if p.sku in listed and world.truth.available(p.sku) >= minimum)


def level_of(world, sku: str):
    variant = next(v for v in world.variants if v.sku == sku)
    return next(iter(world.levels_of(variant.inventory_item_id)))


def test_the_truth_balances_and_every_shipped_unit_left_on_hand_once():
    # GIVEN a world whose shop also sells bundles, and the orders still open when it went live
    world = bundle_world()
    truth = world.truth
    open_at_start = {("shopify", o.gid) for o in world.orders if o.cancelled_at is None
                     and o.fulfillment_status == "UNFULFILLED"}
    open_at_start |= {(c, o.order_id) for c, m in world.malls.items() for o in m.orders if o.shipped_at is None
                      and o.cancelled_at is None}
    # WHEN orders arrive on every channel, a bundle among them, and ten days pass
    bundle = world.bundle_products[0].sku
    assert world.place_order([(bundle, 1)], at=T) is not None
    for hour in range(6):
        world.place_orders(4, at=T + timedelta(hours=hour))
        for channel in world.malls:
            world.place_mall_orders(channel, 2, at=T + timedelta(hours=hour, minutes=5))
    world.advance(LATER)

    # THEN on-hand = initial + receipts − shipments for every SKU × warehouse, and nothing went below zero
    assert truth.balance_errors() == []
    assert all(row.on_hand >= 0 for row in world.stock)
    assert sum(truth.receipts.values()) == sum(po.quantity for po in world.purchase_orders
                                               if po.status == "received" and po.received_at >= NOW) > 0
    # AND what left is exactly the units of the orders shipped since go-live (bundles as their components)
    live = {("shopify", o.gid) for o in world.orders if o.created_at >= T}
    live |= {(c, o.order_id) for c, m in world.malls.items() for o in m.orders if o.created_at >= T}
    expected: Counter = Counter()
    for o in world.orders:
        if ("shopify", o.gid) in open_at_start | live and o.fulfillment_status == "FULFILLED":
            for li in o.lines:
                expected += units(world, li.sku, li.quantity)
    for channel, mall in world.malls.items():
        for o in mall.orders:
            if (channel, o.order_id) in open_at_start | live and o.shipped_at is not None:
                for li in o.lines:
                    if li.erp_sku is not None:
                        expected += units(world, li.erp_sku, li.quantity)
    shipped: Counter = Counter()
    for (sku, _warehouse), n in truth.shipments.items():
        shipped[sku] += n
    assert sum(expected.values()) > 0
    assert sum(shipped.values()) + sum(truth.short_shipped.values()) == sum(expected.values())
    assert all(shipped[sku] <= n for sku, n in expected.items())
    # AND bundles have no stock rows: their components moved
    assert not {row.sku for row in world.stock} & {p.sku for p in world.bundle_products}
    # AND nothing is reserved any more: every order shipped or was cancelled
    assert truth.open_orders == {} and all(v == 0 for v in truth.reserved.values())


def test_every_erp_jan_is_valid_and_unique_bundles_included():
    world = bundle_world(seed=8)
    jans = [p.jan for p in world.erp_products]
    assert world.bundle_products and all(p.is_bundle for p in world.bundle_products)
    assert all(is_valid_jan(j) for j in jans) and len(set(jans)) == len(jans)
    goods = {p.sku for p in world.products}
    assert all(b.component_sku in goods and b.quantity >= 1 for b in world.bundles)


def test_a_shipment_moves_on_hand_and_a_cancellation_before_it_only_releases():
    world = small_world(seed=4)
    truth = world.truth
    sku = stocked_sku(world)
    before = truth.sellable_on_hand[sku]
    level = level_of(world, sku)
    world.set_available([(level.inventory_item_id, level.location_id, 5)], at=T)  # the shop does not cut the line
    # WHEN an order for 2 units is accepted THEN physical available drops, on-hand does not
    available = truth.available(sku)
    order = world.place_order([(sku, 2)], at=T)
    assert truth.available(sku) == available - 2 and truth.sellable_on_hand[sku] == before
    key = ("shopify", order.gid)
    assert truth.open_orders[key] == {sku: 2}
    # WHEN every order's lifecycle runs out
    held = {k: dict(v) for k, v in truth.open_orders.items()}
    received_before = sum(n for (s, w), n in truth.receipts.items() if s == sku)
    short_before = truth.short_by_sku[sku]
    world.advance(LATER)
    # THEN on-hand moved by exactly the units of the orders that shipped (this one's 2 unless it was cancelled)
    def shipped(key):
        channel, order_id = key
        if channel == "shopify":
            return world.order(int(order_id.rsplit("/", 1)[1])).fulfillment_status == "FULFILLED"
        return world.mall(channel).by_order[order_id].shipped_at is not None

    left = sum(units.get(sku, 0) for k, units in held.items() if shipped(k))
    received = sum(n for (s, w), n in truth.receipts.items() if s == sku and w in truth.ship_from) - received_before
    short = truth.short_by_sku[sku] - short_before  # units an old backlog order found missing never left
    assert left >= 2 or order.cancelled_at is not None
    assert truth.sellable_on_hand[sku] == before + received - (left - short) >= 0
    assert (order.cancelled_at is None) == shipped(key)
    assert key not in truth.open_orders and truth.available(sku) == truth.sellable_on_hand[sku] - truth.reserved[sku]


def test_oversells_are_counted_per_channel_when_a_channel_shows_more_than_is_there():
    world = small_world(seed=5)
    truth = world.truth
    sku = stocked_sku(world)
    physical = truth.available(sku)
    level = level_of(world, sku)
    # GIVEN the shop shows more than the warehouses hold
    world.set_available([(level.inventory_item_id, level.location_id, physical + 5)], at=T)
    # WHEN a customer takes everything there is THEN no oversell; the next unit is one
    world.place_order([(sku, physical)], at=T)
    assert truth.oversells == []
    world.place_order([(sku, 2)], at=T + timedelta(minutes=1))
    assert [(o.channel, o.sku, o.quantity, o.physical_available) for o in truth.oversells] == [("shopify", sku, 2, 0)]
    # AND a mall selling the same SKU oversells too, counted for that mall
    channel, listing = next((c, world.mall_listing_for_sku(c, sku)) for c in world.malls
                            if world.mall_listing_for_sku(c, sku) is not None)
    with world.lock:
        world.mall(channel).set_quantity(listing.listing_id, 3, T)
    world.place_mall_order(channel, [(listing.listing_id, 1)], at=T + timedelta(minutes=2))
    report = truth.report()["channels"]
    assert report["shopify"]["oversells"] == 1 and report["shopify"]["oversold_units"] == 2
    assert report[channel]["oversells"] == 1
    assert sum(r["oversells"] for r in report.values()) == 2


def test_a_bundle_order_reserves_and_checks_its_components():
    world = bundle_world(seed=6)
    truth = world.truth
    bundle = world.bundle_products[0].sku
    need = units(world, bundle, 1)
    before = {c: truth.available(c) for c in need}
    assert truth.available(bundle) == min(truth.available(c) // q for c, q in need.items())
    level = level_of(world, bundle)
    world.set_available([(level.inventory_item_id, level.location_id, 50)], at=T)
    sets = max(0, truth.available(bundle))
    if sets:
        world.place_order([(bundle, sets)], at=T)
        assert truth.oversells == []
        assert {c: truth.available(c) for c in need} == {c: before[c] - q * sets for c, q in need.items()}
    world.place_order([(bundle, 1)], at=T + timedelta(minutes=1))
    assert [(o.sku, o.quantity) for o in truth.oversells] == [(bundle, 1)]


def test_stock_out_minutes_count_while_a_listing_shows_zero_but_units_are_there():
    world = small_world(seed=9)
    truth = world.truth
    # a listing that shows stock at go-live (one showing 0 already counts minutes from then)
    listed = {v.sku for v in world.variants}
    sku = next(p.sku for p in world.products if p.sku in listed and truth.available(p.sku) >= 3
               and level_of(world, p.sku).available > 0)
    level = level_of(world, sku)
    key = ("shopify", f"{level.inventory_item_id}@{level.location_id}")
    world.set_available([(level.inventory_item_id, level.location_id, 2)], at=T)
    assert key not in truth.stockout_minutes_by_listing()
    # WHEN the shop shows 0 for 30 minutes although the warehouses hold units
    world.set_available([(level.inventory_item_id, level.location_id, 0)], at=T + timedelta(minutes=5))
    world.set_available([(level.inventory_item_id, level.location_id, 4)], at=T + timedelta(minutes=35))
    # THEN exactly those 30 minutes count, and they stop counting once it shows stock again
    assert truth.stockout_minutes_by_listing()[key] == 30.0
    world.set_available([(level.inventory_item_id, level.location_id, 3)], at=T + timedelta(hours=3))
    assert truth.stockout_minutes_by_listing()[key] == 30.0
    assert truth.stockout_minutes()["shopify"] >= 30.0


def test_due_purchase_orders_arrive_when_the_world_advances():
    world = small_world(seed=10)
    truth = world.truth
    due = [po for po in world.purchase_orders if po.status == "open"]
    assert due
    before = {(po.sku, po.warehouse_code): truth._rows[(po.sku, po.warehouse_code)].on_hand
              if (po.sku, po.warehouse_code) in truth._rows else 0 for po in due}
    world.advance(LATER)
    assert all(po.status == "received" and po.received_at is not None for po in due)
    arrived: Counter = Counter()
    for po in due:
        arrived[(po.sku, po.warehouse_code)] += po.quantity
    for key, qty in arrived.items():
        assert truth.receipts[key] == qty
    assert truth.balance_errors() == []
    assert world.advance(LATER + timedelta(days=1)) is not None and sum(truth.receipts.values()) == sum(arrived.values())
    assert before  # the rows existed or were created; balance above covers both


def test_the_live_erp_database_follows_and_the_truth_is_served(tmp_path, pg_dsn):
    # GIVEN a running world with its ERP in SQLite and PostgreSQL
    with start_world(data_dir=tmp_path, seed=12, skus=24, customers=30, history_days=2, orders_per_day=10, port=0,
                     access_token=TOKEN, restore_rate=1000.0, now=NOW, erp_postgres_dsn=pg_dsn,
                     sell_bundles=True) as running:
        world = running.world
        sku = stocked_sku(world)
        initial_stamp = {(r.sku, r.warehouse_code): sqlite_timestamp(r.updated_at) for r in world.stock}
        with httpx.Client(base_url=running.shopify_url, timeout=10) as client:
            # WHEN orders are placed and the world advances past every shipment and purchase order
            placed = client.post("/_sandbox/orders", json={"lines": [{"sku": sku, "quantity": 1}],
                                                           "at": T.isoformat()})
            assert placed.status_code == 200 and len(placed.json()) == 1
            assert client.post("/_sandbox/orders", json={"count": 5, "at": T.isoformat()}).status_code == 200
            assert client.post("/_sandbox/advance", json={"to": LATER.isoformat()}).status_code == 200
            truth = client.get("/_sandbox/truth")
        assert truth.status_code == 200
        body = truth.json()
        # THEN the served truth has every channel's orders and metrics, and balances
        assert set(body["channels"]) == {"shopify", "rakuten", "amazon", "yahoo"}
        assert body["channels"]["shopify"]["orders"] == len(world.orders) == len(body["orders"]["shopify"])
        assert all({"oversells", "stockout_while_available_minutes", "short_shipped_units"} <= set(v)
                   for v in body["channels"].values())
        assert all(r["on_hand"] == r["initial"] + r["received"] - r["shipped"] for r in body["on_hand"])
        assert sum(r["shipped"] for r in body["on_hand"]) > 0 and sum(r["received"] for r in body["on_hand"]) > 0
        # AND the ERP databases hold the world's on-hand now, changed rows with a newer updated_at
        want = {(r.sku, r.warehouse_code): r.on_hand for r in world.stock}
        con = sqlite3.connect(running.erp_sqlite_path)
        try:
            rows = con.execute("select sku, warehouse_code, on_hand, updated_at from stock").fetchall()
            po_status = dict(Counter(s for (s,) in con.execute("select status from purchase_orders")))
        finally:
            con.close()
        assert {(s, w): q for s, w, q, _ in rows} == want
        moved = [(s, w, u) for s, w, q, u in rows if (s, w) in initial_stamp and u != initial_stamp[(s, w)]]
        assert moved and all(u > initial_stamp[(s, w)] for s, w, u in moved)
        assert po_status == {"received": len(world.purchase_orders)}
        with psycopg.connect(pg_dsn) as pg:
            assert {(s, w): q for s, w, q in pg.execute("select sku, warehouse_code, on_hand from stock")} == want
            assert pg.execute("select count(*) from purchase_orders where status = 'open'").fetchone()[0] == 0


def erp_stock_and_allocations(path) -> tuple[dict[tuple[str, str], int], Counter]:
    con = sqlite3.connect(path)
    try:
        on_hand = {(s, w): q for s, w, q in con.execute("select sku, warehouse_code, on_hand from stock")}
        allocated = Counter()
        for s, w, q in con.execute("select erp_sku, warehouse_code, quantity from stock_allocations"):
            allocated[(s, w)] += q
    finally:
        con.close()
    return on_hand, allocated


def test_the_erp_counts_a_taken_order_once_allocated_when_taken_released_when_shipped(tmp_path):
    # GIVEN a world whose ERP staff take what is posted to the intake (here the fallback posts the shop's orders)
    with start_world(data_dir=tmp_path, seed=12, skus=24, customers=30, history_days=2, orders_per_day=10, port=0,
                     access_token=TOKEN, restore_rate=1000.0, now=NOW, sell_bundles=True) as running:
        world = running.world
        staff = Simulator(world, every=1.0, erp_sqlite=running.erp_sqlite_path, erp_intake_fallback=True)
        world.place_orders(12, at=T)

        def physical() -> dict[tuple[str, str], int]:
            return {(r.sku, r.warehouse_code): r.on_hand for r in world.stock}

        def erp_shows_physical_minus_open_allocations() -> Counter:
            on_hand, allocated = erp_stock_and_allocations(running.erp_sqlite_path)
            assert on_hand == {key: max(units - allocated[key], 0) for key, units in physical().items()}
            return allocated

        # WHEN the staff take the posted orders THEN the units of the orders still in the warehouse are allocated
        assert staff.take_posted_orders() > 0
        allocated = erp_shows_physical_minus_open_allocations()
        open_units = Counter()
        for (channel, _), held in world.truth.open_orders.items():
            if channel == "shopify":
                open_units.update(held)
        by_sku = Counter()
        for (sku, _), units in allocated.items():
            by_sku[sku] += units
        # the shop's open orders, bundles as their components; what no warehouse holds stays a backorder
        assert by_sku and by_sku <= open_units
        on_hand, _ = erp_stock_and_allocations(running.erp_sqlite_path)
        backordered = {sku for sku in open_units if by_sku[sku] < open_units[sku]}
        assert all(units == 0 for (sku, warehouse), units in on_hand.items()
                   if sku in backordered and warehouse in world.truth.ship_from)
        # WHEN the world ships and cancels everything due, and the staff take the cancellations
        world.advance(LATER)
        staff.take_posted_orders()
        # THEN every allocation ended (shipped: the units left once; cancelled: given back) and the ERP is physical
        assert erp_shows_physical_minus_open_allocations() == Counter()
        con = sqlite3.connect(running.erp_sqlite_path)
        try:
            statuses = Counter(s for (s,) in con.execute("select status from order_intake where event = 'order'"))
        finally:
            con.close()
        assert statuses["shipped"] > 0 and statuses["new"] == 0
