"""ERP connector (database integration, DECISIONS.md D5, D35): products, warehouses, stock, bundles, customers (B2B
accounts) and purchase orders → the landing zone.

The same tables and columns in SQLite (the embedded demo; `erp.sqlite_path`) and PostgreSQL (production
shape; `erp.postgres_dsn`), chosen by `erp.kind`. Both are opened read-only.

- products, customers, purchase_orders: incremental by `updated_at` — rows with updated_at ≥ (max landed
  updated_at − look-back); the first run reads the whole table. A received purchase order gets a newer
  updated_at, so it lands again with its status and received_at.
- warehouses and stock: a full snapshot every run. Both are small (tens of warehouses, SKUs × warehouses
  rows) and a stock row's `updated_at` is not a trustworthy change marker in every ERP (bulk stock takes
  often rewrite quantities without touching it), so reading them whole is both cheap and safe.
- bundles: a full snapshot too — a component removed from a set must disappear, which "latest version per key"
  over incremental batches would never do.

Timestamps are normalised to UTC (PostgreSQL timestamptz; SQLite ISO-8601 UTC text, where text without an
offset is taken as UTC as D5 says). Text is landed exactly as the ERP holds it — NFKC normalisation, kana
handling and JAN check digits are staging's job in dbt. Only records that cannot be landed at all (no key,
an unparseable timestamp or integer) go to the quarantine.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from ichigen.config import Config
from ingestion.common import IngestResult, RecordError, parse_utc, raw_json, require, to_int, utcnow
from ingestion.errors import IngestionError, SourceUnreachable
from ingestion.landing import LandingZone, QuarantineRecord, land_and_report
from ingestion.schemas import (
    ERP_BUNDLES,
    ERP_CUSTOMERS,
    ERP_ORDER_INTAKE,
    ERP_PRODUCTS,
    ERP_PURCHASE_ORDERS,
    ERP_STOCK,
    ERP_WAREHOUSES,
    EntitySchema,
)

SOURCE = "erp"
# The config has no ERP look-back setting yet; products change a few times a day, 10 minutes is ample.
ERP_LOOKBACK = timedelta(minutes=10)
FETCH_SIZE = 5000
CONNECT_TIMEOUT_SECONDS = 10


def mask_dsn(dsn: str) -> str:
    """A PostgreSQL DSN with its password replaced by `***` (URL or key=value form)."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is None:
            return dsn
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)


class ErpDatabase:
    """A read-only connection to the ERP database, whichever kind. Use `open_erp(config)`."""

    def __init__(self, kind: str, location: str, connection: Any):
        self.kind = kind
        self.location = location  # path or masked DSN, for messages
        self.connection = connection

    @property
    def label(self) -> str:
        return f"erp ({self.kind} {self.location})"

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
        if self.kind == "postgres":
            sql = sql.replace("?", "%s")
        try:
            cursor = self.connection.cursor()
            cursor.execute(sql, params)
            names = [d[0] for d in cursor.description]
            while True:
                batch = cursor.fetchmany(FETCH_SIZE)
                if not batch:
                    break
                for values in batch:
                    yield dict(zip(names, values, strict=True))
        except sqlite3.Error as exc:
            raise IngestionError(f"{self.label}: query failed ({exc}); does the database follow the D5 "
                                 f"schema? [{' '.join(sql.split())[:160]}]") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise IngestionError(f"{self.label}: query failed ({str(exc).strip()}); does the database "
                                     f"follow the D5 schema? [{' '.join(sql.split())[:160]}]") from exc
            raise

    def has_table(self, table: str) -> bool:
        sql = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?" if self.kind == "sqlite"
               else "SELECT to_regclass(?)::text")
        return any(next(iter(row.values())) for row in self.rows(sql, (table,)))

    def close(self) -> None:
        self.connection.close()


@contextmanager
def open_erp(config: Config, *, read_only: bool = True) -> Iterator[ErpDatabase]:
    """Open the configured ERP database (read-only unless told; only the order intake writes), or raise
    SourceUnreachable naming kind and location."""
    erp = config.erp
    if erp.kind == "sqlite":
        path = config.erp_sqlite_path
        if not path.is_file():
            raise SourceUnreachable(f"erp (sqlite): database file {path} does not exist — is erp.sqlite_path "
                                    "right, and has the ERP (or the sandbox) created it?")
        try:
            mode = "ro" if read_only else "rw"
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=10)
            connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise SourceUnreachable(f"erp (sqlite): cannot open {path} ({exc}) — is erp.sqlite_path right?") \
                from exc
        database = ErpDatabase("sqlite", str(path), connection)
    elif erp.kind == "postgres":
        import psycopg

        masked = mask_dsn(erp.postgres_dsn)
        try:
            connection = psycopg.connect(erp.postgres_dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            connection.read_only = read_only
            connection.execute("SET TIME ZONE 'UTC'")
            connection.commit()
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise SourceUnreachable(f"erp (postgres): cannot connect to {masked} ({reason}) — is the database "
                                    "running and is erp.postgres_dsn right?") from None
        database = ErpDatabase("postgres", masked, connection)
    else:  # the config model only allows the two kinds
        raise SourceUnreachable(f"erp: unknown kind {erp.kind!r} (erp.kind must be sqlite or postgres)")
    try:
        yield database
    finally:
        database.close()


# -- pure mappers: database row → landed row -----------------------------------------------------------
def _text(value: Any, *, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise RecordError(f"{field} {value!r} is a boolean, not text")
    if isinstance(value, int | float):
        return str(value)
    raise RecordError(f"{field} {value!r} is not text")


def _bool(value: Any, *, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", "t", "f"):
        return value.strip().lower() in ("1", "true", "t")
    raise RecordError(f"{field} {value!r} is not a boolean")


def _date(value: Any, *, field: str) -> date | None:
    """A calendar date: PostgreSQL `date`, or `YYYY-MM-DD` text in SQLite."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise RecordError(f"{field} {value!r} is not a YYYY-MM-DD date") from None
    raise RecordError(f"{field} {value!r} is not a date")


def _timestamp(value: Any, *, field: str) -> datetime | None:
    return parse_utc(value, field=field, assume_utc=True)  # D5: SQLite text without an offset is UTC


# How a database value becomes a landed value, by the landed column's type.
_CONVERTERS: dict[type[pl.DataType], Callable[..., Any]] = {
    pl.String: _text, pl.Int64: to_int, pl.Boolean: _bool, pl.Datetime: _timestamp, pl.Date: _date,
}


def row_mapper(schema: EntitySchema) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """database row → landed row for `schema`: each column converted by its landed type; the key columns and
    the cursor field are required (a record without them cannot land and goes to the quarantine)."""
    required = set(schema.key) | {schema.cursor_field}
    converters = [(name, _CONVERTERS[type(dtype)], name in required) for name, dtype in schema.columns.items()]

    def to_row(row: dict[str, Any]) -> dict[str, Any]:
        landed: dict[str, Any] = {}
        for name, convert, needed in converters:
            value = convert(row.get(name), field=name)
            landed[name] = require(value, field=name) if needed else value
        landed["_raw"] = raw_json(row)
        return landed

    return to_row


@dataclass(frozen=True)
class ErpEntity:
    schema: EntitySchema
    table: str
    incremental: bool
    optional: bool = False  # an ERP without this table (no intake set up yet) lands nothing instead of failing

    @cached_property
    def to_row(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return row_mapper(self.schema)

    def select(self) -> tuple[str, str]:
        columns = ", ".join(self.schema.columns)
        order = ", ".join(self.schema.key)
        return f"SELECT {columns} FROM {self.table}", order


ENTITY_SPECS: dict[str, ErpEntity] = {
    "products": ErpEntity(ERP_PRODUCTS, "products", True),
    "warehouses": ErpEntity(ERP_WAREHOUSES, "warehouses", False),
    "stock": ErpEntity(ERP_STOCK, "stock", False),
    # A bundle losing a component must lose it in staging too: the composition is small, read whole (D35).
    "bundles": ErpEntity(ERP_BUNDLES, "bundles", False),
    "customers": ErpEntity(ERP_CUSTOMERS, "customers", True),
    "purchase_orders": ErpEntity(ERP_PURCHASE_ORDERS, "purchase_orders", True),
    # order intake markers: a full snapshot, since the ERP updates status/taken_at in place (D40)
    "order_intake": ErpEntity(ERP_ORDER_INTAKE, "order_intake", False, optional=True),
}
ENTITIES = tuple(ENTITY_SPECS)


def read_rows(database: ErpDatabase, entity: str, since: datetime | None) -> Iterator[dict[str, Any]]:
    """The entity's rows as the database returns them (dicts by column name), changed since `since`."""
    spec = ENTITY_SPECS[entity]
    select, order = spec.select()
    if since is None:
        return database.rows(f"{select} ORDER BY {order}")
    if database.kind == "sqlite":
        # julianday() compares instants whatever the text's exact form ('Z', '+09:00', 3 or 6 decimals).
        bound = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return database.rows(f"{select} WHERE julianday(updated_at) >= julianday(?) ORDER BY updated_at, {order}",
                             (bound,))
    return database.rows(f"{select} WHERE updated_at >= ? ORDER BY updated_at, {order}", (since,))


def ingest(
    config: Config,
    entity: str,
    *,
    landing: LandingZone | None = None,
    now: datetime | None = None,
    lookback: timedelta = ERP_LOOKBACK,
) -> IngestResult:
    """Read the entity (incremental or snapshot, see ENTITY_SPECS) and land it as one batch."""
    if entity not in ENTITY_SPECS:
        raise ValueError(f"unknown erp entity {entity!r}; known: {', '.join(ENTITY_SPECS)}")
    spec = ENTITY_SPECS[entity]
    landing = landing or LandingZone(config.landing_dir)
    fetched_at = now or utcnow()
    since = None
    if spec.incremental:
        cursor = landing.cursor(SOURCE, entity, spec.schema.cursor_field)
        since = cursor - lookback if cursor is not None else None

    rows: list[dict[str, Any]] = []
    bad: list[QuarantineRecord] = []
    with open_erp(config) as database:
        records = read_rows(database, entity, since) if not spec.optional or database.has_table(spec.table) else ()
        for record in records:
            try:
                rows.append(spec.to_row(record))
            except RecordError as exc:
                key = "|".join(str(record.get(k)) for k in spec.schema.key) if all(
                    record.get(k) is not None for k in spec.schema.key) else None
                bad.append(QuarantineRecord(key, f"{SOURCE}/{entity} {key or '(no key)'}: {exc}", record))

    return land_and_report(landing, spec.schema, rows, bad, fetched_at=fetched_at, since=since)
