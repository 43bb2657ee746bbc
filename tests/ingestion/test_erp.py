"""ERP connector against a real SQLite file and a real PostgreSQL database, both with the D5 schema."""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg
import pytest

from ichigen.config import Config
from ingestion import erp
from ingestion.errors import SourceUnreachable
from ingestion.landing import LandingZone

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
T = datetime(2026, 11, 20, 1, 2, 3, 123456, tzinfo=UTC)

SQLITE_DDL = """
CREATE TABLE products (sku TEXT PRIMARY KEY, jan TEXT, name TEXT, name_kana TEXT, category TEXT, size TEXT,
  color TEXT, list_price INTEGER, tax_class TEXT, safety_stock INTEGER, updated_at TEXT, is_bundle INTEGER);
CREATE TABLE warehouses (warehouse_code TEXT PRIMARY KEY, name TEXT, sellable INTEGER, updated_at TEXT);
CREATE TABLE stock (sku TEXT, warehouse_code TEXT, on_hand INTEGER, updated_at TEXT,
  PRIMARY KEY (sku, warehouse_code));
"""
POSTGRES_DDL = """
CREATE TABLE products (sku text PRIMARY KEY, jan text, name text, name_kana text, category text, size text,
  color text, list_price integer, tax_class text, safety_stock integer, updated_at timestamptz, is_bundle boolean);
CREATE TABLE warehouses (warehouse_code text PRIMARY KEY, name text, sellable boolean, updated_at timestamptz);
CREATE TABLE stock (sku text, warehouse_code text, on_hand integer, updated_at timestamptz,
  PRIMARY KEY (sku, warehouse_code));
"""

# Text exactly as a Japanese ERP holds it: full-width digits, half-width kana, a JAN with a bad check digit —
# landing keeps all of it (normalisation and JAN checks are staging's job).
PRODUCTS = [
    ("TS-001-M-NV", "4901234567894", "オーガニックコットンＴシャツ　Ｍ", "ｵｰｶﾞﾆｯｸｺｯﾄﾝﾃｨｰｼｬﾂ", "トップス", "M", "ネイビー",
     1800, "standard", 5, T),
    ("TS-001-L-NV", "4901234567900", "オーガニックコットンＴシャツ　Ｌ", "ｵｰｶﾞﾆｯｸｺｯﾄﾝﾃｨｰｼｬﾂ", "トップス", "L", "ネイビー",
     1800, "standard", None, T + timedelta(days=1)),
    ("TEA-100", "4909876543213", "静岡県産 深蒸し煎茶 100g", "ｼｽﾞｵｶｹﾝｻﾝ ﾌｶﾑｼｾﾝﾁｬ", "食品", None, None,
     1200, "reduced", 10, T + timedelta(days=2)),
]
WAREHOUSES = [("TKY", "東京倉庫", True, T), ("OSK", "大阪倉庫", True, T), ("RET", "返品倉庫", False, T)]
STOCK = [("TS-001-M-NV", "TKY", 12, T), ("TS-001-M-NV", "OSK", 3, T), ("TEA-100", "TKY", 40, T),
         ("TS-001-L-NV", "RET", 1, T)]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(SQLITE_DDL)
        db.executemany("INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?,?,?,0)",
                       [(*p[:-1], iso(p[-1])) for p in PRODUCTS])
        db.executemany("INSERT INTO warehouses VALUES (?,?,?,?)",
                       [(w[0], w[1], int(w[2]), iso(w[3])) for w in WAREHOUSES])
        db.executemany("INSERT INTO stock VALUES (?,?,?,?)", [(*s[:-1], iso(s[-1])) for s in STOCK])
    db.close()


def create_postgres(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(POSTGRES_DDL)
        with db.cursor() as cur:
            cur.executemany("INSERT INTO products VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,false)", PRODUCTS)
            cur.executemany("INSERT INTO warehouses VALUES (%s,%s,%s,%s)", WAREHOUSES)
            cur.executemany("INSERT INTO stock VALUES (%s,%s,%s,%s)", STOCK)


def land_all(config: Config, entities: tuple[str, ...] = ("products", "warehouses", "stock")
             ) -> dict[str, pl.DataFrame]:
    zone = LandingZone(config.landing_dir)
    frames = {}
    for entity in entities:
        result = erp.ingest(config, entity, landing=zone, now=NOW)
        assert result.rows_quarantined == 0
        spec = erp.ENTITY_SPECS[entity]
        frames[entity] = zone.landed("erp", entity).collect().select(list(spec.schema.columns)).sort(
            list(spec.schema.key))
    return frames


def test_sqlite_and_postgres_land_the_same_rows(tmp_config: Config, pg_database: str):
    create_sqlite(tmp_config.erp_sqlite_path)
    create_postgres(pg_database)
    from_sqlite = land_all(tmp_config)
    postgres_config = tmp_config.with_overrides(**{"erp.kind": "postgres", "erp.postgres_dsn": pg_database,
                                                   "paths.landing": "landing_pg"})
    from_postgres = land_all(postgres_config)

    for entity in from_sqlite:
        assert from_sqlite[entity].equals(from_postgres[entity]), entity
        assert from_sqlite[entity].schema == dict(erp.ENTITY_SPECS[entity].schema.columns)

    products = from_sqlite["products"]
    assert products.height == 3
    tea = products.filter(pl.col("sku") == "TEA-100").row(0, named=True)
    assert tea == {"sku": "TEA-100", "jan": "4909876543213", "name": "静岡県産 深蒸し煎茶 100g",
                   "name_kana": "ｼｽﾞｵｶｹﾝｻﾝ ﾌｶﾑｼｾﾝﾁｬ", "category": "食品", "size": None, "color": None,
                   "list_price": 1200, "tax_class": "reduced", "safety_stock": 10, "updated_at": T + timedelta(days=2),
                   "is_bundle": False}
    # Raw text is kept exactly: full-width Ｔ/Ｍ and the ideographic space are not normalised here.
    assert products.filter(pl.col("sku") == "TS-001-M-NV").item(0, "name") == "オーガニックコットンＴシャツ　Ｍ"
    assert from_sqlite["warehouses"].get_column("sellable").to_list() == [True, False, True]  # OSK, RET, TKY
    assert from_sqlite["stock"].get_column("on_hand").sum() == 56


def test_products_are_incremental_and_snapshots_are_whole(tmp_config: Config):
    create_sqlite(tmp_config.erp_sqlite_path)
    zone = LandingZone(tmp_config.landing_dir)
    first = erp.ingest(tmp_config, "products", landing=zone, now=NOW)
    assert first.cursor_from is None and first.rows_landed == 3 and first.cursor_to == T + timedelta(days=2)

    later = T + timedelta(days=3)
    with sqlite3.connect(tmp_config.erp_sqlite_path) as db:
        db.execute("UPDATE products SET list_price = 1900, updated_at = ? WHERE sku = 'TS-001-M-NV'", (iso(later),))
    db.close()
    second = erp.ingest(tmp_config, "products", landing=zone, now=NOW + timedelta(hours=1))
    assert second.cursor_from == T + timedelta(days=2) - erp.ERP_LOOKBACK
    # The changed product, plus TEA-100 again because it sits inside the look-back window.
    landed = zone.landed("erp", "products").collect().filter(pl.col("_batch_id") == second.batch_id)
    assert sorted(landed.get_column("sku")) == ["TEA-100", "TS-001-M-NV"]
    assert landed.filter(pl.col("sku") == "TS-001-M-NV").item(0, "list_price") == 1900

    for _ in range(2):
        snapshot = erp.ingest(tmp_config, "stock", landing=zone, now=NOW)
        assert snapshot.cursor_from is None and snapshot.rows_landed == 4


def test_timestamps_are_normalised_to_utc(tmp_config: Config, pg_database: str):
    create_sqlite(tmp_config.erp_sqlite_path)
    with sqlite3.connect(tmp_config.erp_sqlite_path) as db:
        db.execute("UPDATE warehouses SET updated_at = '2026-11-23T10:02:03+09:00' WHERE warehouse_code = 'TKY'")
        db.execute("UPDATE warehouses SET updated_at = '2026-11-23 01:02:03' WHERE warehouse_code = 'OSK'")
    db.close()
    create_postgres(pg_database)
    with psycopg.connect(pg_database, autocommit=True) as db:
        db.execute("UPDATE warehouses SET updated_at = '2026-11-23 10:02:03+09' WHERE warehouse_code = 'TKY'")
    expected = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
    for config in (tmp_config, tmp_config.with_overrides(**{"erp.kind": "postgres", "erp.postgres_dsn": pg_database,
                                                            "paths.landing": "landing_pg"})):
        zone = LandingZone(config.landing_dir)
        erp.ingest(config, "warehouses", landing=zone, now=NOW)
        frame = zone.landed("erp", "warehouses").collect()
        assert frame.filter(pl.col("warehouse_code") == "TKY").item(0, "updated_at") == expected
    # D5 says SQLite text is UTC: text without an offset is read as UTC.
    sqlite_frame = LandingZone(tmp_config.landing_dir).landed("erp", "warehouses").collect()
    assert sqlite_frame.filter(pl.col("warehouse_code") == "OSK").item(0, "updated_at") == expected


def test_records_that_cannot_land_are_quarantined(tmp_config: Config):
    create_sqlite(tmp_config.erp_sqlite_path)
    with sqlite3.connect(tmp_config.erp_sqlite_path) as db:
        db.execute("INSERT INTO products (sku, name, list_price, updated_at) VALUES ('BAD-PRICE', 'x', '1,980', ?)",
                   (iso(T),))
        db.execute("INSERT INTO products (sku, name, list_price, updated_at) VALUES ('BAD-TIME', 'y', 100, "
                   "'20/11/2026')")
        db.execute("INSERT INTO products (sku, name, list_price, updated_at) VALUES (NULL, 'z', 100, ?)", (iso(T),))
    db.close()
    zone = LandingZone(tmp_config.landing_dir)
    result = erp.ingest(tmp_config, "products", landing=zone, now=NOW)
    assert result.rows_landed == 3 and result.rows_quarantined == 3
    bad = zone.quarantined("erp", "products").collect()
    assert sorted(bad.get_column("record_key").to_list(), key=str) == ["BAD-PRICE", "BAD-TIME", None]
    reasons = set(bad.get_column("reason"))
    assert "erp/products BAD-PRICE: list_price '1,980' is not an integer" in reasons
    assert "erp/products BAD-TIME: updated_at '20/11/2026' is not an ISO-8601 timestamp" in reasons
    assert "erp/products (no key): sku is missing" in reasons


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_database_names_kind_and_location(tmp_config: Config):
    with pytest.raises(SourceUnreachable, match=r"erp \(sqlite\): database file .*erp.sqlite does not exist"):
        erp.ingest(tmp_config, "products", landing=LandingZone(tmp_config.landing_dir))

    dsn = f"postgresql://postgres:s3cret@127.0.0.1:{_closed_port()}/ichigen_erp"
    config = tmp_config.with_overrides(**{"erp.kind": "postgres", "erp.postgres_dsn": dsn})
    with pytest.raises(SourceUnreachable) as caught:
        erp.ingest(config, "stock", landing=LandingZone(config.landing_dir))
    message = str(caught.value)
    assert message.startswith("erp (postgres): cannot connect to postgresql://postgres:***@127.0.0.1:")
    assert "s3cret" not in message and "erp.postgres_dsn" in message


def test_missing_table_is_a_clear_error(tmp_config: Config):
    tmp_config.erp_sqlite_path.parent.mkdir(parents=True)
    sqlite3.connect(tmp_config.erp_sqlite_path).close()
    with pytest.raises(erp.IngestionError, match=r"erp \(sqlite .*\): query failed \(no such table: warehouses\)"):
        erp.ingest(tmp_config, "warehouses", landing=LandingZone(tmp_config.landing_dir))


def test_mask_dsn():
    assert erp.mask_dsn("postgresql://erp:pa%40ss@db.internal:5432/erp?sslmode=require") == \
        "postgresql://erp:***@db.internal:5432/erp?sslmode=require"
    assert erp.mask_dsn("postgresql://postgres@127.0.0.1:5432/x") == "postgresql://postgres@127.0.0.1:5432/x"
    assert erp.mask_dsn("host=db user=erp password='a b' dbname=erp") == "host=db user=erp password=*** dbname=erp"


# -- the sandbox's whole ERP (D35): bundles, B2B customers and purchase orders land the same from both kinds -----
def _sandbox_world():
    from sandbox.world import World

    return World.generate(seed=5, skus=30, customers=40, history_days=2, orders_per_day=10, now=NOW)


def test_sandbox_erp_lands_every_entity_the_same_from_sqlite_and_postgres(tmp_config: Config, pg_database: str):
    from sandbox.erp import write_postgres, write_sqlite

    world = _sandbox_world()
    write_sqlite(world, tmp_config.erp_sqlite_path)
    write_postgres(world, pg_database)
    from_sqlite = land_all(tmp_config, erp.ENTITIES)
    from_postgres = land_all(tmp_config.with_overrides(**{"erp.kind": "postgres", "erp.postgres_dsn": pg_database,
                                                          "paths.landing": "landing_pg"}), erp.ENTITIES)
    for entity in erp.ENTITIES:
        # nothing has been posted to a fresh ERP's intake yet: its (empty) landing must still agree
        assert from_sqlite[entity].height > 0 or entity == "order_intake", entity
        assert from_sqlite[entity].equals(from_postgres[entity]), entity

    products = from_sqlite["products"]
    bundle_skus = set(products.filter(pl.col("is_bundle")).get_column("sku"))
    assert bundle_skus and bundle_skus == {b.bundle_sku for b in world.bundles}
    bundles = from_sqlite["bundles"]
    assert set(bundles.get_column("component_sku")) <= set(products.filter(~pl.col("is_bundle")).get_column("sku"))
    assert bundles.get_column("quantity").min() >= 1
    customers = from_sqlite["customers"]
    assert customers.get_column("customer_code").to_list() == [f"B2B-{i:04d}" for i in range(1, customers.height + 1)]
    assert set(customers.get_column("erp_rank")) <= {"S", "A", "B", "C"}
    orders = from_sqlite["purchase_orders"]
    assert orders.schema["expected_date"] == pl.Date
    assert set(orders.get_column("status")) == {"open", "received"}
    received = orders.filter(pl.col("status") == "received")
    assert received.get_column("received_at").null_count() == 0
    assert orders.filter(pl.col("status") == "open").get_column("received_at").null_count() == \
        orders.filter(pl.col("status") == "open").height


def test_a_received_purchase_order_lands_again_with_its_new_status(tmp_config: Config):
    from sandbox.erp import ErpMirror, write_sqlite

    world = _sandbox_world()
    write_sqlite(world, tmp_config.erp_sqlite_path)
    zone = LandingZone(tmp_config.landing_dir)
    erp.ingest(tmp_config, "purchase_orders", landing=zone, now=NOW)
    open_lines = [po for po in world.purchase_orders if po.status == "open"]
    assert open_lines
    mirror = world.truth.mirror = ErpMirror(tmp_config.erp_sqlite_path)
    try:
        with world.lock:
            received = world.truth.receive_due(NOW + timedelta(days=30))  # every open PO is due by then
    finally:
        mirror.close()
    assert {(po.po_number, po.sku) for po in received} == {(po.po_number, po.sku) for po in open_lines}

    again = erp.ingest(tmp_config, "purchase_orders", landing=zone, now=NOW + timedelta(hours=1))
    batch = zone.landed("erp", "purchase_orders").collect().filter(pl.col("_batch_id") == again.batch_id)
    assert {(r["po_number"], r["sku"]) for r in batch.filter(pl.col("status") == "received").iter_rows(named=True)} \
        >= {(po.po_number, po.sku) for po in received}
    stock = erp.ingest(tmp_config, "stock", landing=zone, now=NOW + timedelta(hours=1))
    landed = zone.landed("erp", "stock").collect().filter(pl.col("_batch_id") == stock.batch_id)
    on_hand = {(r["sku"], r["warehouse_code"]): r["on_hand"] for r in landed.iter_rows(named=True)}
    assert on_hand == {(s.sku, s.warehouse_code): s.on_hand for s in world.stock}


def test_a_purchase_order_with_a_bad_date_is_quarantined_and_the_rest_lands(tmp_config: Config):
    from sandbox.erp import write_sqlite

    world = _sandbox_world()
    write_sqlite(world, tmp_config.erp_sqlite_path)
    bad = world.purchase_orders[0]
    with sqlite3.connect(tmp_config.erp_sqlite_path) as db:
        db.execute("UPDATE purchase_orders SET expected_date = '2026/11/30' WHERE po_number = ? AND sku = ?",
                   (bad.po_number, bad.sku))
    db.close()
    zone = LandingZone(tmp_config.landing_dir)
    result = erp.ingest(tmp_config, "purchase_orders", landing=zone, now=NOW)
    assert (result.rows_landed, result.rows_quarantined) == (len(world.purchase_orders) - 1, 1)
    row = zone.quarantined("erp", "purchase_orders").collect().row(0, named=True)
    assert row["record_key"] == f"{bad.po_number}|{bad.sku}"
    assert row["reason"] == (f"erp/purchase_orders {bad.po_number}|{bad.sku}: expected_date '2026/11/30' is not a "
                             "YYYY-MM-DD date")
    assert '"expected_date":"2026/11/30"' in row["raw"]
