"""The ERP database as DECISIONS.md D5 specifies it, in SQLite and in PostgreSQL."""

import re
import sqlite3
from datetime import UTC

import psycopg
from sandbox_testkit import small_world

from sandbox.erp import write_postgres, write_sqlite

D5 = {
    "products": ["sku", "jan", "name", "name_kana", "category", "size", "color", "list_price", "tax_class",
                 "safety_stock", "updated_at", "is_bundle"],
    "warehouses": ["warehouse_code", "name", "sellable", "updated_at"],
    "stock": ["sku", "warehouse_code", "on_hand", "updated_at"],
    # D35: the master data a 基幹システム holds beyond products and stock (column names are a contract)
    "bundles": ["bundle_sku", "component_sku", "quantity", "updated_at"],
    "customers": ["customer_code", "company_name", "company_name_kana", "contact_name", "contact_name_kana", "email",
                  "phone", "postal_code", "prefecture", "address1", "erp_rank", "updated_at"],
    "purchase_orders": ["po_number", "sku", "warehouse_code", "quantity", "expected_date", "status", "received_at",
                        "updated_at"],
}
KEYS = {"products": ["sku"], "warehouses": ["warehouse_code"], "stock": ["sku", "warehouse_code"],
        "bundles": ["bundle_sku", "component_sku"], "customers": ["customer_code"],
        "purchase_orders": ["po_number", "sku"]}
SQLITE_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_sqlite_erp_has_the_contract_tables_columns_keys_and_text_timestamps(tmp_path):
    # GIVEN a world WHEN its ERP is written to SQLite
    world = small_world(seed=21)
    path = write_sqlite(world, tmp_path / "nested" / "erp.sqlite")

    # THEN the three tables have exactly the D5 columns and primary keys
    con = sqlite3.connect(path)
    try:
        for table, columns in D5.items():
            info = con.execute(f"pragma table_info({table})").fetchall()
            assert [row[1] for row in info] == columns
        pk = {t: [r[1] for r in sorted(con.execute(f"pragma table_info({t})"), key=lambda r: r[5]) if r[5]]
              for t in D5}
        assert pk == KEYS
        # AND the rows are the world's
        assert con.execute("select count(*) from products").fetchone()[0] == len(world.erp_products)
        assert con.execute("select count(*) from stock").fetchone()[0] == len(world.stock)
        assert dict(con.execute("select warehouse_code, sellable from warehouses")) == {
            "WH-TOKYO": 1, "WH-OSAKA": 1, "WH-RETURNS": 0}
        row = con.execute("select sku, jan, list_price, tax_class, updated_at from products order by sku").fetchone()
        p = world.erp_products[0]
        assert row[:4] == (p.sku, p.jan, p.list_price, p.tax_class)
        assert isinstance(row[2], int)
        # AND updated_at is ISO-8601 UTC text with microseconds and Z, in every table
        for table in D5:
            stamps = [r[0] for r in con.execute(f"select updated_at from {table}")]
            stamps += [r[0] for r in con.execute("select received_at from purchase_orders where received_at is not null")]
            assert stamps and all(SQLITE_TS.match(s) for s in stamps), stamps[:3]
    finally:
        con.close()
    assert not list(path.parent.glob(".*.tmp")), "the temp file was renamed into place"


def test_writing_sqlite_again_replaces_the_file(tmp_path):
    path = tmp_path / "erp.sqlite"
    write_sqlite(small_world(seed=1, skus=10), path)
    write_sqlite(small_world(seed=2, skus=12), path)
    con = sqlite3.connect(path)
    try:
        assert con.execute("select count(*) from products where not is_bundle").fetchone()[0] == 12
    finally:
        con.close()


def test_postgres_erp_has_the_contract_tables_and_timestamptz(pg_dsn):
    # GIVEN a fresh database WHEN the world's ERP is written into it
    world = small_world(seed=22)
    write_postgres(world, pg_dsn)

    with psycopg.connect(pg_dsn) as con:
        # THEN the columns are D5's, with the production types
        for table, columns in D5.items():
            got = con.execute(
                "select column_name, data_type from information_schema.columns where table_name = %s "
                "order by ordinal_position", [table]).fetchall()
            assert [c for c, _ in got] == columns
            types = dict(got)
            assert types["updated_at"] == "timestamp with time zone"
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name in ('products', 'warehouses', 'stock')").fetchall())
        assert types["list_price"] == types["safety_stock"] == types["on_hand"] == "integer"
        assert types["sellable"] == "boolean"
        # AND the rows equal the world's, timestamps included
        assert con.execute("select count(*) from products").fetchone()[0] == len(world.erp_products)
        sellable = dict(con.execute("select warehouse_code, sellable from warehouses").fetchall())
        assert sellable == {"WH-TOKYO": True, "WH-OSAKA": True, "WH-RETURNS": False}
        p = world.erp_products[0]
        sku, updated = con.execute("select sku, updated_at from products order by sku limit 1").fetchone()
        assert sku == p.sku and updated.astimezone(UTC) == p.updated_at
        stock = {(s, w): q for s, w, q in con.execute("select sku, warehouse_code, on_hand from stock")}
        assert stock == {(s.sku, s.warehouse_code): s.on_hand for s in world.stock}

    # AND writing again replaces the tables instead of failing or duplicating rows
    write_postgres(world, pg_dsn)
    with psycopg.connect(pg_dsn) as con:
        assert con.execute("select count(*) from stock").fetchone()[0] == len(world.stock)


def test_master_data_types_in_postgres(pg_dsn):
    world = small_world(seed=23)
    write_postgres(world, pg_dsn)
    with psycopg.connect(pg_dsn) as con:
        types = {(t, c): d for t, c, d in con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_name in ('products', 'bundles', 'purchase_orders')").fetchall()}
        assert types[("products", "is_bundle")] == "boolean"
        assert types[("bundles", "quantity")] == types[("purchase_orders", "quantity")] == "integer"
        assert types[("purchase_orders", "expected_date")] == "date"
        assert types[("purchase_orders", "received_at")] == "timestamp with time zone"
        bundles = {s for (s,) in con.execute("select sku from products where is_bundle")}
        assert bundles == {p.sku for p in world.bundle_products} and bundles
        assert con.execute("select count(*) from stock where sku in (select sku from products where is_bundle)"
                           ).fetchone()[0] == 0, "bundles have no stock of their own"
        received = con.execute("select count(*) from purchase_orders where status = 'received' "
                               "and received_at is not null").fetchone()[0]
        assert received == sum(1 for po in world.purchase_orders if po.status == "received") > 0


def test_b2b_customers_look_like_japanese_accounts_and_some_contacts_buy_on_the_channels():
    world = small_world(seed=31, customers=200)
    accounts = world.b2b_customers
    assert [a.customer_code for a in accounts] == [f"B2B-{i:04d}" for i in range(1, len(accounts) + 1)]
    assert all(re.search(r"株式会社|有限会社|合同会社|㈱", a.company_name) for a in accounts)
    assert all(re.fullmatch(r"[ァ-ヶー]+", a.company_name_kana) for a in accounts)
    assert {a.erp_rank for a in accounts} <= {"S", "A", "B", "C"}
    assert all(re.fullmatch(r"\d{3}-\d{4}", a.postal_code) and re.fullmatch(r"0\d{1,3}-\d{2,4}-\d{4}", a.phone)
               for a in accounts)
    # the same people as channel buyers: e-mail and phone exactly as the world's customer has them
    people = {c.id: c for c in world.customers}
    linked = [a for a in accounts if a.person_id is not None]
    assert linked and len(linked) < len(accounts)
    for account in linked:
        person = people[account.person_id]
        assert (account.email, account.phone) == (person.email, person.address["phone"])
        assert account.contact_name == f"{person.last_name} {person.first_name}"


def test_erp_master_data_is_deterministic_and_leaves_the_shop_as_it_was():
    a, b = small_world(seed=41), small_world(seed=41)
    assert [vars(x) for x in a.b2b_customers] == [vars(x) for x in b.b2b_customers]
    assert [vars(x) for x in a.purchase_orders] == [vars(x) for x in b.purchase_orders]
    assert [vars(x) for x in a.bundles] == [vars(x) for x in b.bundles]
    # selling the bundles adds their listings to the shop and changes nothing else there
    selling = small_world(seed=41, sell_bundles=True)
    bundle_skus = {p.sku for p in selling.bundle_products}
    assert [vars(v) for v in selling.variants if v.sku not in bundle_skus] == [vars(v) for v in a.variants]
    assert {v.sku for v in selling.variants} - {v.sku for v in a.variants} == bundle_skus
    assert selling.orders_truth() == a.orders_truth()
    assert [vars(x) for x in selling.purchase_orders] == [vars(x) for x in a.purchase_orders]
    assert [vars(x) for x in selling.b2b_customers] == [vars(x) for x in a.b2b_customers]
