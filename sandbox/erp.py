"""The sandbox ERP database (DECISIONS.md D5, D35): products, warehouses, stock, bundles, customers (B2B accounts)
and purchase orders — in SQLite or PostgreSQL.

Same table and column names in both. `updated_at` / `received_at` are ISO-8601 UTC text
(`2026-11-23T01:02:03.000000Z`) in SQLite and timestamptz in PostgreSQL; `expected_date` is `YYYY-MM-DD` text /
date; booleans are 0/1 / boolean. The ERP's stock is the physical truth; the shop's displayed stock lives in the
world's Shopify side and is not written here. `ErpMirror` keeps a written database in step with the live world
(sandbox.truth calls it on every on-hand change and every received purchase order).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.erp_intake import begin_stock_work, create_intake_tables, release_shipped
from sandbox.world import World


def sqlite_timestamp(ts: datetime) -> str:
    """`2026-11-23T01:02:03.000000Z` (the D5 text form)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Column:
    name: str
    sqlite: str  # type and constraints in SQLite
    postgres: str  # … in PostgreSQL
    kind: str = "plain"  # plain | timestamp | date | bool: how a value is written


def _col(name: str, sql_type: str, kind: str = "plain", pg: str | None = None) -> Column:
    return Column(name, sql_type, pg or sql_type.replace("TEXT", "text").replace("INTEGER", "integer"), kind)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    records: Callable[[World], list[Any]]  # the world's records; attributes named like the columns
    checks: str = ""  # extra table constraints (same in both dialects)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self, dialect: str) -> str:
        parts = [f"    {c.name} {getattr(c, dialect)}" for c in self.columns]
        parts.append(f"    PRIMARY KEY ({', '.join(self.key)})")
        if self.checks:
            parts.append(f"    {self.checks}")
        return f"CREATE TABLE {self.name} (\n" + ",\n".join(parts) + "\n);"

    def rows(self, records: list[Any], text_time: bool) -> list[tuple[Any, ...]]:
        return [tuple(_value(getattr(r, c.name), c.kind, text_time) for c in self.columns) for r in records]


def _value(value: Any, kind: str, text_time: bool) -> Any:
    if value is None or not text_time:
        return value.astimezone(UTC) if kind == "timestamp" and value is not None else value
    if kind == "timestamp":
        return sqlite_timestamp(value)
    if kind == "date":
        return value.isoformat()
    if kind == "bool":
        return int(value)
    return value


TS, TS_NULL = "TEXT NOT NULL", "TEXT"
TABLES: tuple[Table, ...] = (
    Table("warehouses", (
        _col("warehouse_code", "TEXT NOT NULL"), _col("name", "TEXT NOT NULL"),
        _col("sellable", "BOOLEAN NOT NULL CHECK (sellable IN (0, 1))", "bool", pg="boolean NOT NULL"),
        _col("updated_at", TS, "timestamp", pg="timestamptz NOT NULL"),
    ), ("warehouse_code",), lambda w: w.warehouses),
    Table("products", (
        _col("sku", "TEXT NOT NULL"), _col("jan", "TEXT"), _col("name", "TEXT NOT NULL"), _col("name_kana", "TEXT"),
        _col("category", "TEXT"), _col("size", "TEXT"), _col("color", "TEXT"),
        _col("list_price", "INTEGER NOT NULL"),
        _col("tax_class", "TEXT NOT NULL CHECK (tax_class IN ('standard', 'reduced'))"),
        _col("safety_stock", "INTEGER NOT NULL DEFAULT 0"),
        _col("updated_at", TS, "timestamp", pg="timestamptz NOT NULL"),
        _col("is_bundle", "BOOLEAN NOT NULL DEFAULT 0 CHECK (is_bundle IN (0, 1))", "bool",
             pg="boolean NOT NULL DEFAULT false"),
    ), ("sku",), lambda w: w.erp_products),
    Table("stock", (
        _col("sku", "TEXT NOT NULL"), _col("warehouse_code", "TEXT NOT NULL"), _col("on_hand", "INTEGER NOT NULL"),
        _col("updated_at", TS, "timestamp", pg="timestamptz NOT NULL"),
    ), ("sku", "warehouse_code"), lambda w: w.stock),
    Table("bundles", (
        _col("bundle_sku", "TEXT NOT NULL"), _col("component_sku", "TEXT NOT NULL"),
        _col("quantity", "INTEGER NOT NULL CHECK (quantity > 0)"),
        _col("updated_at", TS, "timestamp", pg="timestamptz NOT NULL"),
    ), ("bundle_sku", "component_sku"), lambda w: w.bundles),
    Table("customers", (
        _col("customer_code", "TEXT NOT NULL"), _col("company_name", "TEXT NOT NULL"),
        _col("company_name_kana", "TEXT"), _col("contact_name", "TEXT"), _col("contact_name_kana", "TEXT"),
        _col("email", "TEXT"), _col("phone", "TEXT"), _col("postal_code", "TEXT"), _col("prefecture", "TEXT"),
        _col("address1", "TEXT"), _col("erp_rank", "TEXT NOT NULL CHECK (erp_rank IN ('S', 'A', 'B', 'C'))"),
        _col("updated_at", TS, "timestamp", pg="timestamptz NOT NULL"),
    ), ("customer_code",), lambda w: w.b2b_customers),
    Table("purchase_orders", (
        _col("po_number", "TEXT NOT NULL"), _col("sku", "TEXT NOT NULL"), _col("warehouse_code", "TEXT NOT NULL"),
        _col("quantity", "INTEGER NOT NULL"), _col("expected_date", "TEXT NOT NULL", "date", pg="date NOT NULL"),
        _col("status", "TEXT NOT NULL CHECK (status IN ('open', 'received'))"),
        _col("received_at", TS_NULL, "timestamp", pg="timestamptz"),
        _col("updated_at", TS, "timestamp", pg="timestamptz NOT NULL"),
    ), ("po_number", "sku"), lambda w: w.purchase_orders),
)
TABLE = {t.name: t for t in TABLES}
PRODUCT_COLUMNS = TABLE["products"].column_names
WAREHOUSE_COLUMNS = TABLE["warehouses"].column_names
STOCK_COLUMNS = TABLE["stock"].column_names


def _upsert_sql(table: Table, placeholder: str) -> str:
    names = table.column_names
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in table.key)
    return (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([placeholder] * len(names))}) "
            f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}")


def write_sqlite(world: World, path: str | os.PathLike[str]) -> Path:
    """Write the ERP as a fresh SQLite file at `path` (built beside it, then renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    with world.lock:
        rows = {t.name: t.rows(t.records(world), text_time=True) for t in TABLES}
    con = sqlite3.connect(tmp)
    try:
        con.executescript("\n".join(t.ddl("sqlite") for t in TABLES))
        for table in TABLES:
            con.executemany(f"INSERT INTO {table.name} ({', '.join(table.column_names)}) "
                            f"VALUES ({', '.join('?' * len(table.columns))})", rows[table.name])
        create_intake_tables(con)
        con.commit()
    finally:
        con.close()
    os.replace(tmp, target)
    return target


def create_postgres_database(dsn: str) -> bool:
    """Create the database `dsn` names when it does not exist (connecting to the server's `postgres` database
    to do so), so a world can be started on an empty server. True when it was created."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        psycopg.connect(dsn, connect_timeout=10).close()
        return False
    except psycopg.OperationalError:
        pass  # missing, or the server is not there: the maintenance connection below says which
    params = conninfo_to_dict(dsn)
    name = params.get("dbname") or params.get("user") or os.environ.get("PGDATABASE") or os.environ.get("USER")
    with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True, connect_timeout=10) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False  # another process created it meanwhile
    return True


def write_postgres(world: World, dsn: str) -> None:
    """(Re)create the ERP tables in the database at `dsn` and load the world's ERP, in one transaction.
    Existing tables of those names are dropped."""
    import psycopg

    with world.lock:
        rows = {t.name: t.rows(t.records(world), text_time=False) for t in TABLES}
    with psycopg.connect(dsn) as con, con.cursor() as cur:
        cur.execute("".join(f"DROP TABLE IF EXISTS {t.name};\n" for t in reversed(TABLES)))
        cur.execute("\n".join(t.ddl("postgres") for t in TABLES))
        create_intake_tables(cur, replace=True)
        for table in TABLES:
            with cur.copy(f"COPY {table.name} ({', '.join(table.column_names)}) FROM STDIN") as copy:
                for row in rows[table.name]:
                    copy.write_row(row)


class ErpMirror:
    """Writes live changes (stock rows, purchase orders) into an ERP written by write_sqlite / write_postgres.
    Called under the world's lock, one short transaction per change. `close()` when the world stops.

    Stock rows carry the physical count; the ERP's `on_hand` is that count minus the units its staff allocated to
    taken orders not yet shipped (sandbox.erp_intake), so each write subtracts the open allocations of its rows in
    the same transaction. A shipment first ends the shipped order's allocations (`shipped`). The same in SQLite
    and PostgreSQL: each write holds the ERP's stock-work lock (`begin_stock_work`) for its transaction."""

    def __init__(self, sqlite_path: str | os.PathLike[str] | None = None, postgres_dsn: str | None = None):
        self._sqlite = sqlite3.connect(sqlite_path, timeout=10, check_same_thread=False) if sqlite_path else None
        self._postgres = None
        if postgres_dsn:
            import psycopg

            self._postgres = psycopg.connect(postgres_dsn, autocommit=True)

    def write_stock(self, rows: list[Any], shipped: tuple[str, str] | None = None) -> None:
        """Write physical stock rows; `shipped` = (channel, order id) whose shipment moved them."""
        now = datetime.now(UTC)
        keys = [(row.sku, row.warehouse_code) for row in rows]
        if self._sqlite is not None:
            with self._sqlite:
                self._write_stock(self._sqlite, rows, keys, shipped, now, "?", text_time=True)
        if self._postgres is not None:
            with self._postgres.transaction(), self._postgres.cursor() as cur:
                self._write_stock(cur, rows, keys, shipped, now, "%s", text_time=False)

    @staticmethod
    def _write_stock(con: Any, rows: list[Any], keys: list[tuple[str, str]], shipped: tuple[str, str] | None,
                     now: datetime, placeholder: str, *, text_time: bool) -> None:
        table = TABLE["stock"]
        begin_stock_work(con)  # the staff's passes (sandbox.erp_intake.take_intake) read and move on_hand too
        if shipped is not None:
            release_shipped(con, *shipped, now)
        if not rows:
            return
        con.executemany(_upsert_sql(table, placeholder), table.rows(rows, text_time=text_time))
        greatest = "max" if text_time else "greatest"  # SQLite's scalar max(a, b) is PostgreSQL's greatest
        con.executemany(
            f"UPDATE stock SET on_hand = {greatest}(on_hand - coalesce((SELECT sum(a.quantity) FROM "
            f"stock_allocations a WHERE a.erp_sku = stock.sku AND a.warehouse_code = stock.warehouse_code), 0), 0) "
            f"WHERE sku = {placeholder} AND warehouse_code = {placeholder}", keys)

    def write_purchase_orders(self, rows: list[Any]) -> None:
        self._upsert(TABLE["purchase_orders"], rows)

    def _upsert(self, table: Table, records: list[Any]) -> None:
        if self._sqlite is not None:
            with self._sqlite:
                self._sqlite.executemany(_upsert_sql(table, "?"), table.rows(records, text_time=True))
        if self._postgres is not None:
            with self._postgres.transaction(), self._postgres.cursor() as cur:
                cur.executemany(_upsert_sql(table, "%s"), table.rows(records, text_time=False))

    def close(self) -> None:
        for connection in (self._sqlite, self._postgres):
            if connection is not None:
                connection.close()
