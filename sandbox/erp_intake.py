"""The sandbox ERP's order intake (受注取込): the tables an integration posts channel orders and customers into,
and the ERP staff who take them into the sales flow.

Same columns in SQLite and PostgreSQL (timestamps: ISO-8601 UTC text in SQLite, timestamptz in PostgreSQL):

- `order_intake`: one row per posted order version. UNIQUE (channel, channel_order_id, order_version) is the
  database's guarantee of exactly once: a second post of the same version is a no-op (`ON CONFLICT DO
  NOTHING`). The ERP's own columns: status `new` → `taken` → `shipped`, erp_order_no, taken_at.
- `order_intake_lines`: the posted lines, in ERP SKUs.
- `customer_intake`: one row per posted customer version, same rule.

`take_intake(con, now)` is the ERP's staff: every `new` row becomes `taken` with an ERP order number, and its
units are allocated (引当) out of `stock.on_hand` of the sellable warehouses (a bundle allocates its components),
so the ERP's stock covers the order from then on (a newer version or a cancel gives the earlier allocation back
first). Each allocation is kept in `stock_allocations` (the ERP's own table, not part of the integration
contract), so that the ERP's `stock.on_hand` always reads: physical units − units allocated to taken orders not
yet shipped. When the world ships an order, `release_shipped` ends its allocations (the units have left) in the
same transaction that writes the new physical count (sandbox.erp.ErpMirror) — an order is counted once, never
at its allocation and again at its shipment.

The staff and the mirror work the same way on either database. Whatever reads on_hand and moves it or the
allocations begins with `begin_stock_work`: SQLite's write lock (`BEGIN IMMEDIATE`), PostgreSQL's transaction-scoped
advisory lock — so two staff passes, or a pass and a mirror write, never interleave: a row is taken once and an
allocation given back once, whoever else works on the ERP.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

ORDER_INTAKE_COLUMNS = (
    "channel", "channel_order_id", "order_version", "event", "order_name", "ordered_at", "customer_id",
    "customer_email", "payment_method", "shipping_jpy", "discount_jpy", "total_jpy", "posted_at",
    "posted_by_run",
)
LINE_COLUMNS = ("intake_id", "line_no", "erp_sku", "quantity", "unit_price_jpy", "tax_percent")
CUSTOMER_INTAKE_COLUMNS = ("channel", "channel_customer_id", "customer_version", "email", "posted_at",
                           "posted_by_run")

# {id} {ts} {bool} are filled per database kind; everything else is the same text.
_DDL = """
CREATE TABLE IF NOT EXISTS order_intake (
    intake_id        {id},
    channel          {text} NOT NULL,
    channel_order_id {text} NOT NULL,
    order_version    {text} NOT NULL,
    event            {text} NOT NULL CHECK (event IN ('order', 'cancel')),
    order_name       {text},
    ordered_at       {ts},
    customer_id      {text},
    customer_email   {text},
    payment_method   {text},
    shipping_jpy     integer,
    discount_jpy     integer,
    total_jpy        integer NOT NULL,
    posted_at        {ts} NOT NULL,
    posted_by_run    {text} NOT NULL,
    status           {text} NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'taken', 'shipped')),
    erp_order_no     {text},
    taken_at         {ts},
    UNIQUE (channel, channel_order_id, order_version)
);
CREATE TABLE IF NOT EXISTS order_intake_lines (
    intake_id      bigint NOT NULL REFERENCES order_intake (intake_id),
    line_no        integer NOT NULL,
    erp_sku        {text} NOT NULL,
    quantity       integer NOT NULL CHECK (quantity > 0),
    unit_price_jpy integer NOT NULL,
    tax_percent    integer,
    PRIMARY KEY (intake_id, line_no)
);
CREATE TABLE IF NOT EXISTS customer_intake (
    intake_id           {id},
    channel             {text} NOT NULL,
    channel_customer_id {text} NOT NULL,
    customer_version    {text} NOT NULL,
    email               {text},
    posted_at           {ts} NOT NULL,
    posted_by_run       {text} NOT NULL,
    status              {text} NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'taken')),
    erp_customer_no     {text},
    taken_at            {ts},
    UNIQUE (channel, channel_customer_id, customer_version)
);
CREATE TABLE IF NOT EXISTS stock_allocations (
    intake_id      bigint NOT NULL,
    erp_sku        {text} NOT NULL,
    warehouse_code {text} NOT NULL,
    quantity       integer NOT NULL CHECK (quantity > 0)
);
"""
SQLITE_INTAKE_DDL = _DDL.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", text="TEXT", ts="TEXT")
POSTGRES_INTAKE_DDL = _DDL.format(id="bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", text="text",
                                  ts="timestamptz")


def create_intake_tables(con: Any, *, replace: bool = False) -> None:
    """Create the intake tables on an open sqlite3 connection or psycopg connection/cursor (the caller
    commits); `replace` drops existing ones first (a fresh world), else existing tables are kept."""
    drop = "DROP TABLE IF EXISTS order_intake_lines; DROP TABLE IF EXISTS order_intake; " \
           "DROP TABLE IF EXISTS customer_intake; DROP TABLE IF EXISTS stock_allocations;\n" if replace else ""
    if isinstance(con, sqlite3.Connection):
        con.executescript(drop + SQLITE_INTAKE_DDL)
    else:
        con.execute(drop + POSTGRES_INTAKE_DDL)


def _is_sqlite(con: Any) -> bool:
    return isinstance(con, sqlite3.Connection)


# PostgreSQL advisory lock key of the ERP's stock work (any fixed bigint that nothing else in the database uses).
STOCK_WORK_LOCK = 0x1C4167E5


def begin_stock_work(con: Any) -> None:
    """Begin the caller's transaction holding the ERP's stock-work lock until it ends (commit or rollback):
    SQLite's write lock taken at BEGIN (not at the first write, so what is read is what is updated), or on
    PostgreSQL a transaction-scoped advisory lock (`con`: a psycopg connection or cursor in a transaction)."""
    if _is_sqlite(con):
        if not con.in_transaction:
            con.execute("BEGIN IMMEDIATE")
    else:
        con.execute("SELECT pg_advisory_xact_lock(%s)", (STOCK_WORK_LOCK,))


def _stamp(con: Any, ts: datetime) -> Any:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if _is_sqlite(con) else ts.astimezone(UTC)


def _query(con: Any, sql: str, params: tuple = ()) -> list[tuple]:
    cursor = con.execute(sql if _is_sqlite(con) else sql.replace("?", "%s"), params)
    return cursor.fetchall() if cursor.description else []


def _allocate(con: Any, intake_id: int, sku: str, units: int, now: datetime) -> None:
    """Allocate `units` of `sku` (a bundle: its components) out of on_hand in sellable warehouses, largest first,
    never below zero (what no warehouse holds stays a backorder), recording each allocation."""
    components = _query(con, "SELECT component_sku, quantity FROM bundles WHERE bundle_sku = ?", (sku,))
    if components:
        for component, per_bundle in components:
            _allocate(con, intake_id, component, units * per_bundle, now)
        return
    sellable = "w.sellable = 1" if _is_sqlite(con) else "w.sellable"
    rows = _query(con, f"SELECT s.warehouse_code, s.on_hand FROM stock s JOIN warehouses w "
                       f"ON w.warehouse_code = s.warehouse_code WHERE s.sku = ? AND {sellable} "
                       f"ORDER BY s.on_hand DESC, s.warehouse_code", (sku,))
    remaining = units
    for warehouse, on_hand in rows:
        take = min(remaining, max(on_hand, 0))
        if not take:
            continue
        _query(con, "UPDATE stock SET on_hand = on_hand - ?, updated_at = ? WHERE sku = ? AND warehouse_code = ?",
               (take, _stamp(con, now), sku, warehouse))
        _query(con, "INSERT INTO stock_allocations (intake_id, erp_sku, warehouse_code, quantity) "
                    "VALUES (?, ?, ?, ?)", (intake_id, sku, warehouse, take))
        remaining -= take


def _give_back(con: Any, intake_ids: list[int], now: datetime) -> None:
    """End the allocations of these intake rows, returning their units to on_hand where they were taken."""
    for intake_id in intake_ids:
        for sku, warehouse, quantity in _query(con, "SELECT erp_sku, warehouse_code, quantity FROM "
                                                    "stock_allocations WHERE intake_id = ?", (intake_id,)):
            _query(con, "UPDATE stock SET on_hand = on_hand + ?, updated_at = ? WHERE sku = ? "
                        "AND warehouse_code = ?", (quantity, _stamp(con, now), sku, warehouse))
        _query(con, "DELETE FROM stock_allocations WHERE intake_id = ?", (intake_id,))


def _lines(con: Any, intake_id: int) -> list[tuple[str, int]]:
    return _query(con, "SELECT erp_sku, quantity FROM order_intake_lines WHERE intake_id = ?", (intake_id,))


def take_intake(con: Any, now: datetime | None = None,
                still_open: Callable[[str, str], bool] | None = None) -> int:
    """The ERP staff's pass over the intake: take every `new` row into the sales flow, in posting order.

    `still_open(channel, channel_order_id)` says whether the order's units are still in the warehouse (the
    world's truth); an order posted after it shipped or was cancelled is taken without allocating anything, as
    its units already left. Returns the number of order rows taken. One transaction; the connection is committed.
    """
    now = now or datetime.now(UTC)
    begin_stock_work(con)  # read on_hand and the new rows under the lock: the ERP mirror and other passes wait
    taken = 0
    new_rows = _query(con, "SELECT intake_id, channel, channel_order_id, event FROM order_intake "
                           "WHERE status = 'new' ORDER BY intake_id")
    for intake_id, channel, order_id, event in new_rows:
        previous = _query(con, "SELECT intake_id FROM order_intake WHERE channel = ? AND channel_order_id = ? "
                               "AND event = 'order' AND status IN ('taken', 'shipped') AND intake_id < ? "
                               "ORDER BY intake_id DESC LIMIT 1", (channel, order_id, intake_id))
        if previous:  # a newer version or a cancel replaces the earlier allocation
            _give_back(con, [previous[0][0]], now)
        if event == "order" and (still_open is None or still_open(channel, order_id)):
            for sku, quantity in _lines(con, intake_id):
                _allocate(con, intake_id, sku, quantity, now)
        _query(con, "UPDATE order_intake SET status = 'taken', erp_order_no = ?, taken_at = ? WHERE intake_id = ?",
               (f"JU{intake_id:08d}", _stamp(con, now), intake_id))
        taken += 1
    _query(con, "UPDATE customer_intake SET status = 'taken', erp_customer_no = 'C' || intake_id, taken_at = ? "
                "WHERE status = 'new'", (_stamp(con, now),))
    con.commit()
    return taken


def release_shipped(con: Any, channel: str, channel_order_id: str, now: datetime) -> None:
    """The world shipped this order: its taken rows become `shipped` and their allocations end, the units given
    back to on_hand so that the caller's write of the physical count (which has them gone) lands on the right
    base. Runs inside the caller's transaction (sandbox.erp.ErpMirror.write_stock); commits nothing."""
    rows = _query(con, "SELECT intake_id FROM order_intake WHERE channel = ? AND channel_order_id = ? "
                       "AND status = 'taken'", (channel, channel_order_id))
    if not rows:
        return
    _give_back(con, [row[0] for row in rows], now)
    _query(con, "UPDATE order_intake SET status = 'shipped' WHERE channel = ? AND channel_order_id = ? "
                "AND status = 'taken' AND event = 'order'", (channel, channel_order_id))


FALLBACK_VERSION = "sandbox"  # the simulator's own postings: one version per order, never a hash


def post_world_orders(con: Any, orders_truth: list[dict[str, Any]], now: datetime | None = None) -> int:
    """Fallback when no integration runs: the sandbox posts its own Shopify orders (and cancels of posted
    ones) into the intake, once each. Never together with ichigen's intake, whose version keys differ.
    `orders_truth` is `World.orders_truth()`. Returns the rows posted; the caller's connection is committed."""
    now = now or datetime.now(UTC)
    posted = 0
    for order in orders_truth:
        lines = [line for line in order["lines"] if line["current_quantity"] > 0]
        event = "cancel" if order["cancelled"] else "order"
        if event == "cancel" and not _query(con, "SELECT 1 FROM order_intake WHERE channel = 'shopify' AND "
                                                 "channel_order_id = ? AND event = 'order'", (order["order_id"],)):
            continue  # never posted: nothing to cancel
        if event == "order" and not lines:
            continue
        row = _query(con, "INSERT INTO order_intake (channel, channel_order_id, order_version, event, order_name, "
                          "ordered_at, customer_id, payment_method, shipping_jpy, discount_jpy, total_jpy, posted_at, "
                          "posted_by_run) VALUES ('shopify', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sandbox-fallback') "
                          "ON CONFLICT (channel, channel_order_id, order_version) DO NOTHING RETURNING intake_id",
                     (order["order_id"], f"{FALLBACK_VERSION}-{event}", event, order["name"], order["created_at"],
                      order["customer_id"], order["payment_gateway"], order["shipping_jpy"], order["discount_jpy"],
                      order["total_jpy"], _stamp(con, now)))
        if not row or event == "cancel":
            posted += bool(row)
            continue
        for line_no, line in enumerate(lines, start=1):
            _query(con, "INSERT INTO order_intake_lines (intake_id, line_no, erp_sku, quantity, unit_price_jpy, "
                        "tax_percent) VALUES (?, ?, ?, ?, ?, ?)",
                   (row[0][0], line_no, line["sku"], line["current_quantity"], line["unit_price_jpy"],
                    line["tax_percent"]))
        posted += 1
    con.commit()
    return posted
