"""The sandbox ERP's staff (sandbox.erp_intake.take_intake, Simulator.take_posted_orders) and the ERP mirror's
allocation-aware stock writes work the same on SQLite and PostgreSQL (DECISIONS.md D68, D210–D212).

GIVEN a running world that keeps its ERP in both databases, the simulator's staff working in both
WHEN orders are posted and taken, a newer version of one is posted and taken, and the world ships and cancels
THEN both ERPs hold the same on_hand, the same allocations and the same intake statuses at every step, each shows
     physical units − open allocations, and every allocation ends at the shipment or cancel.
AND a second staff pass started while one is open waits for it and takes nothing twice, on either database.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from sandbox_testkit import NOW, TOKEN, small_world

from sandbox.erp import create_postgres_database, write_postgres, write_sqlite
from sandbox.erp_intake import post_world_orders, take_intake
from sandbox.runner import Simulator, start_world

T = NOW + timedelta(hours=1)
LATER = NOW + timedelta(days=12)  # every planned shipment, payment deadline and purchase order is due by then


def erp_state(con) -> dict:
    """What the ERP shows, in a form both databases give alike."""
    on_hand = {(sku, wh): units for sku, wh, units in con.execute("SELECT sku, warehouse_code, on_hand FROM stock")}
    allocated = Counter()
    for order_id, version, sku, wh, units in con.execute(
            "SELECT i.channel_order_id, i.order_version, a.erp_sku, a.warehouse_code, a.quantity "
            "FROM stock_allocations a JOIN order_intake i ON i.intake_id = a.intake_id"):
        allocated[(order_id, version, sku, wh)] += units
    intake = sorted(con.execute("SELECT intake_id, channel, channel_order_id, order_version, event, status, "
                                "erp_order_no FROM order_intake"))
    return {"on_hand": on_hand, "allocated": allocated, "intake": intake}


def allocated_by_row(state: dict) -> Counter:
    by_row = Counter()
    for (_, _, sku, wh), units in state["allocated"].items():
        by_row[(sku, wh)] += units
    return by_row


def post_newer_version(con, order_id: str, sku: str, quantity: int) -> None:
    """What an integration posts after an order was edited: a new version with its lines (D40)."""
    mark = "?" if isinstance(con, sqlite3.Connection) else "%s"
    (intake_id,) = con.execute(
        f"INSERT INTO order_intake (channel, channel_order_id, order_version, event, total_jpy, posted_at, "
        f"posted_by_run) VALUES ('shopify', {mark}, 'edited', 'order', 1000, {mark}, 'test') RETURNING intake_id",
        (order_id, T.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if mark == "?" else T)).fetchone()  # SQLite stores UTC text
    con.execute(f"INSERT INTO order_intake_lines (intake_id, line_no, erp_sku, quantity, unit_price_jpy, "
                f"tax_percent) VALUES ({mark}, 1, {mark}, {mark}, 1000, 10)", (intake_id, sku, quantity))
    con.commit()


def test_the_staff_leave_the_same_erp_on_sqlite_and_postgres(tmp_path, pg_dsn):
    # GIVEN a running world whose ERP is in SQLite and PostgreSQL; its staff post the shop's orders (the fallback)
    with start_world(data_dir=tmp_path, seed=12, skus=24, customers=30, history_days=2, orders_per_day=10, port=0,
                     access_token=TOKEN, restore_rate=1000.0, now=NOW, erp_postgres_dsn=pg_dsn, sell_bundles=True,
                     drop_files=False) as running:
        world = running.world
        staff = Simulator(world, every=1.0, erp_sqlite=running.erp_sqlite_path, erp_postgres_dsn=pg_dsn,
                          erp_intake_fallback=True)
        world.place_orders(12, at=T)
        sqlite_con, pg_con = sqlite3.connect(running.erp_sqlite_path), psycopg.connect(pg_dsn, autocommit=True)

        def both_alike() -> dict:
            """Both ERPs' state, asserted equal and equal to physical units − open allocations."""
            with world.lock:  # no shipment between the two reads
                physical = {(r.sku, r.warehouse_code): r.on_hand for r in world.stock}
                in_sqlite, in_postgres = erp_state(sqlite_con), erp_state(pg_con)
            assert in_postgres == in_sqlite
            allocated = allocated_by_row(in_sqlite)
            assert in_sqlite["on_hand"] == {key: max(units - allocated[key], 0) for key, units in physical.items()}
            return in_sqlite

        try:
            # WHEN the staff take the posted orders
            taken = staff.take_posted_orders()
            # THEN both took every row, and allocated the units of the shop's orders still in the warehouse alike
            first = both_alike()
            assert taken == 2 * len(first["intake"]) > 0
            assert {row[5] for row in first["intake"]} == {"taken"}
            assert first["allocated"], "the open orders' units are allocated"
            open_orders = {oid for (channel, oid) in world.truth.open_orders if channel == "shopify"}
            assert {oid for (oid, _, _, _) in first["allocated"]} <= open_orders  # shipped history: no allocation

            # WHEN an integration posts a newer version of an allocated order (one unit of one SKU) to both
            edited = sorted({oid for (oid, _, _, _) in first["allocated"]})[0]
            sku = next(s for (oid, _, s, _) in first["allocated"] if oid == edited)
            for con in (sqlite_con, pg_con):
                post_newer_version(con, edited, sku, 1)
            assert staff.take_posted_orders() == 2
            # THEN the earlier allocation was given back and the new version's allocated, alike in both
            second = both_alike()
            assert {(v, s): u for (oid, v, s, _), u in second["allocated"].items() if oid == edited} == \
                {("edited", sku): 1}

            # WHEN the world ships and cancels everything due, and the staff take the posted cancels
            world.advance(LATER)
            staff.take_posted_orders()
            # THEN both ERPs ended every allocation (shipped: released at the shipment; cancelled: given back)
            last = both_alike()
            assert last["allocated"] == Counter()
            statuses = Counter(row[5] for row in last["intake"] if row[4] == "order")
            assert statuses["shipped"] > 0 and statuses["new"] == 0
        finally:
            sqlite_con.close()
            pg_con.close()


@pytest.fixture(params=["sqlite", "postgres"])
def erp_connect(request, tmp_path):
    """(a world, a function opening a new connection to its ERP) in each kind of database."""
    world = small_world(seed=5, skus=12, history_days=2, orders_per_day=12)
    if request.param == "sqlite":
        path = write_sqlite(world, tmp_path / "erp.sqlite")
        return world, lambda: sqlite3.connect(path, timeout=10)
    dsn = request.getfixturevalue("pg_dsn")
    write_postgres(world, dsn)
    return world, lambda: psycopg.connect(dsn)


def test_a_second_staff_pass_waits_for_the_open_one_and_takes_nothing_twice(erp_connect):
    world, connect = erp_connect
    first_con, reader = connect(), connect()
    try:
        world.place_orders(6)
        posted = post_world_orders(first_con, world.orders_truth())
        open_orders = {oid for (channel, oid) in world.truth.open_orders if channel == "shopify"}
        on_hand_before = reader.execute("SELECT sum(on_hand) FROM stock").fetchone()[0]
        reader.commit()
        second: dict = {}

        def second_pass() -> None:
            con = connect()  # its own connection, opened in its own thread
            try:
                second["taken"] = take_intake(con)
            finally:
                con.close()

        second_thread = threading.Thread(target=second_pass)

        def still_open(channel: str, order_id: str) -> bool:
            if not second_thread.is_alive() and "started" not in second:
                second["started"] = True  # mid-pass, with rows taken and units allocated but not committed:
                second_thread.start()  # another pass begins …
                second_thread.join(0.5)  # … and cannot end while this one is open
                second["ended_while_first_open"] = not second_thread.is_alive()
            return order_id in open_orders

        # WHEN a staff pass runs and another starts while it is open
        taken = take_intake(first_con, still_open=still_open)
        second_thread.join(30)

        # THEN the second waited for the first and found nothing left; every row was taken once
        assert not second_thread.is_alive() and second["ended_while_first_open"] is False
        assert taken == posted > 0 and second["taken"] == 0
        allocations = reader.execute("SELECT intake_id, erp_sku, warehouse_code, count(*) FROM stock_allocations "
                                     "GROUP BY intake_id, erp_sku, warehouse_code").fetchall()
        assert allocations and all(n == 1 for *_, n in allocations)
        allocated = sum(q for (q,) in reader.execute("SELECT quantity FROM stock_allocations").fetchall())
        on_hand_after = reader.execute("SELECT sum(on_hand) FROM stock").fetchone()[0]
        assert on_hand_before - on_hand_after == allocated  # each unit allocated out of on_hand once
    finally:
        for con in (first_con, reader):
            con.close()


def test_a_world_on_postgres_creates_its_database_when_missing(pg_dsn):
    with psycopg.connect(pg_dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{pg_dsn.rsplit("/", 1)[1]}"')

    assert create_postgres_database(pg_dsn) is True
    assert create_postgres_database(pg_dsn) is False  # there now: left as it is
    write_postgres(small_world(seed=2, skus=6), pg_dsn)
    with psycopg.connect(pg_dsn) as con:
        assert con.execute("SELECT count(*) FROM stock").fetchone()[0] > 0
