"""The sandbox ERP database (DECISIONS.md D5): products, warehouses, stock — in SQLite or PostgreSQL.

Same table and column names in both. `updated_at` is ISO-8601 UTC text (`2026-11-23T01:02:03.000000Z`) in
SQLite and timestamptz in PostgreSQL. The ERP's stock is the physical truth; the shop's displayed stock lives
in the world's Shopify side and is not written here.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sandbox.erp_intake import create_intake_tables
from sandbox.world import World

PRODUCT_COLUMNS = ("sku", "jan", "name", "name_kana", "category", "size", "color", "list_price", "tax_class",
                   "safety_stock", "updated_at")
WAREHOUSE_COLUMNS = ("warehouse_code", "name", "sellable", "updated_at")
STOCK_COLUMNS = ("sku", "warehouse_code", "on_hand", "updated_at")

SQLITE_DDL = """
CREATE TABLE products (
    sku          TEXT PRIMARY KEY,
    jan          TEXT,
    name         TEXT NOT NULL,
    name_kana    TEXT,
    category     TEXT,
    size         TEXT,
    color        TEXT,
    list_price   INTEGER NOT NULL,
    tax_class    TEXT NOT NULL CHECK (tax_class IN ('standard', 'reduced')),
    safety_stock INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL
);
CREATE TABLE warehouses (
    warehouse_code TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    sellable       BOOLEAN NOT NULL CHECK (sellable IN (0, 1)),
    updated_at     TEXT NOT NULL
);
CREATE TABLE stock (
    sku            TEXT NOT NULL,
    warehouse_code TEXT NOT NULL,
    on_hand        INTEGER NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (sku, warehouse_code)
);
"""

POSTGRES_DDL = """
DROP TABLE IF EXISTS stock;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS warehouses;
CREATE TABLE products (
    sku          text PRIMARY KEY,
    jan          text,
    name         text NOT NULL,
    name_kana    text,
    category     text,
    size         text,
    color        text,
    list_price   integer NOT NULL,
    tax_class    text NOT NULL CHECK (tax_class IN ('standard', 'reduced')),
    safety_stock integer NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL
);
CREATE TABLE warehouses (
    warehouse_code text PRIMARY KEY,
    name           text NOT NULL,
    sellable       boolean NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE TABLE stock (
    sku            text NOT NULL,
    warehouse_code text NOT NULL REFERENCES warehouses (warehouse_code),
    on_hand        integer NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (sku, warehouse_code)
);
"""


def sqlite_timestamp(ts: datetime) -> str:
    """`2026-11-23T01:02:03.000000Z` (the D5 text form)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rows(world: World, text_time: bool):
    stamp = sqlite_timestamp if text_time else (lambda ts: ts.astimezone(UTC))
    products = [(p.sku, p.jan, p.name, p.name_kana, p.category, p.size, p.color, p.list_price, p.tax_class,
                 p.safety_stock, stamp(p.updated_at)) for p in world.products]
    warehouses = [(w.warehouse_code, w.name, int(w.sellable) if text_time else w.sellable, stamp(w.updated_at))
                  for w in world.warehouses]
    stock = [(s.sku, s.warehouse_code, s.on_hand, stamp(s.updated_at)) for s in world.stock]
    return products, warehouses, stock


def write_sqlite(world: World, path: str | os.PathLike[str]) -> Path:
    """Write the ERP as a fresh SQLite file at `path` (built beside it, then renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    with world.lock:
        products, warehouses, stock = _rows(world, text_time=True)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(SQLITE_DDL)
        con.executemany(f"INSERT INTO products ({', '.join(PRODUCT_COLUMNS)}) VALUES ({', '.join('?' * 11)})",
                        products)
        con.executemany(f"INSERT INTO warehouses ({', '.join(WAREHOUSE_COLUMNS)}) VALUES (?, ?, ?, ?)", warehouses)
        con.executemany(f"INSERT INTO stock ({', '.join(STOCK_COLUMNS)}) VALUES (?, ?, ?, ?)", stock)
        create_intake_tables(con)
        con.commit()
    finally:
        con.close()
    os.replace(tmp, target)
    return target


def write_postgres(world: World, dsn: str) -> None:
    """(Re)create products, warehouses and stock in the database at `dsn` and load the world's ERP, in one
    transaction. Existing tables of those names are dropped."""
    import psycopg

    with world.lock:
        products, warehouses, stock = _rows(world, text_time=False)
    with psycopg.connect(dsn) as con, con.cursor() as cur:
        cur.execute(POSTGRES_DDL)
        create_intake_tables(cur, replace=True)
        for table, columns, rows in (("warehouses", WAREHOUSE_COLUMNS, warehouses),
                                     ("products", PRODUCT_COLUMNS, products),
                                     ("stock", STOCK_COLUMNS, stock)):
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
