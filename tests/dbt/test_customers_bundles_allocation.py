"""GIVEN a small hand-made landing zone (customers across Shopify, the ERP and POS; orders; stock; bundles),
WHEN `dbt build` runs, THEN unified customers, their ranks and the channel stock targets equal the figures
worked out by hand below; and a later identity merge re-links old orders in the incremental fct_orders.

Customers (JST = UTC+9):
    shopify Customer/1  山田 太郎, taro@example.jp, +81 90-1111-2222, 135-0063 (Shopify has no kana)
    erp K1              山田商店 (B2B, rank A), contact kana ﾔﾏﾀﾞ ﾀﾛｳ, 090-1111-2222, 〒135-0063, info@yamada-shoten.jp
    pos M1              山田 太郎, kana やまだ たろう, 135-0063, no phone, no e-mail
        → Customer/1 ~ K1 by phone (+81 → 0), K1 ~ M1 by kana+zip (half-width/hiragana → ヤマダタロウ|1350063):
          one customer though Customer/1 and M1 share no key; id from the smallest member key 'erp:K1'.
    pos M2              佐藤 花子, サトウ ハナコ, hanako@example.jp, 150-0001
    guest order #2002   HANAKO@Example.jp → merges with M2 by e-mail; id from 'pos:M2'
    shopify Customer/2  鈴木 一郎, ichiro@example.jp → alone
    shopify Customer/3 and Customer/4 share one masked 楽天 relay address → NOT merged (two customers)

Orders (as_of 2026-11-23 12:00 UTC, rank window 365 days, default tiers):
    #2001 Customer/1  2026-11-20  PAID/UNFULFILLED   SET×2 @5000           = 10000  open
    #2002 guest       2026-09-01  PAID/FULFILLED     A×1 @1000             =  1000
    #2003 Customer/1  2026-11-22  cancelled          A×5 @1000             =  5000  (excluded)
    #2004 Customer/2  2025-10-01  PAID/FULFILLED     C×1 @3000             =  3000  (outside the window)
Ranks (recency ≤30→5 ≤90→4 ≤180→3 ≤365→2; frequency ≥2→2; monetary ≥10000→2; シルバー ≥7, ブロンズ ≥5):
    K1 group  R 3 days (5) F 1 (1) M 10000 (2) = 8 シルバー, B2B, ERP rank A
    M2 group  R 83 days (4) F 1 (1) M 1000 (1) = 6 ブロンズ
    Customer/2 R 418 days (1) F 0 (1) M 0 (1) = 3 一般; Customer/3, /4 never ordered: 3 一般

Stock: TKY sellable: A 20, B 6, C 4. Products: A safety 0, B safety 1, C safety 0, SET (bundle) safety 0.
Bundle master, newest snapshot: SET = 2 × A + 1 × B (an older snapshot also had 1 × C: ignored).
Open reservations: #2001 SET×2 → A 4, B 2.
Pools: A 20 − 4 − 0 = 16; B 6 − 2 − 1 = 3; C 4; SET min(floor(16/2) = 8, floor(3/1) = 3) = 3.
Shopify lists A, SET, C with policy ratio 0.5 and buffer 1:
    A   floor(16 × 0.5) = 8 − 1 = 7;   SET floor(3 × 0.5) = 1 − 1 = 0;   C floor(4 × 0.5) = 2 − 1 = 1
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from ichigen_dbt_helpers import DbtResult, run_dbt, write_batch

pytestmark = pytest.mark.xdist_group("dbt_customers")

VARS = (
    '{as_of: "2026-11-23T12:00:00Z", default_safety_stock: 0, stock_channel_buffers: {shopify: 1}, '
    'stock_allocation_policies: {shopify: {policy: ratio, ratio: 0.5}}}'
)
FETCHED = "2026-11-23T05:00:00Z"


def cu(member_key: str) -> str:
    """The stability rule: 'cu_' + 16 hex of md5(smallest member key)."""
    return "cu_" + hashlib.md5(member_key.encode()).hexdigest()[:16]


def customer_gid(n: int) -> str:
    return f"gid://shopify/Customer/{n}"


def _order(n: int, at: str, fin: str, ful: str, sku: str, qty: int, price: int, *, customer: int | None,
           email: str | None, cancelled_at: str | None = None) -> dict:
    total = str(qty * price)
    return {
        "order_id": f"gid://shopify/Order/{n}", "order_name": f"#{n}", "created_at": at, "processed_at": at,
        "updated_at": cancelled_at or at, "cancelled_at": cancelled_at, "display_financial_status": fin,
        "display_fulfillment_status": ful, "currency_code": "JPY", "total_price": total,
        "subtotal_price": total, "total_shipping_price": "0", "total_discounts": "0", "total_tax": "0",
        "customer_id": customer_gid(customer) if customer else None, "email": email,
        "payment_gateway_names": ["shopify_payments"],
        "line_items": [{
            "line_item_id": f"gid://shopify/LineItem/{n}", "sku": sku, "quantity": qty, "current_quantity": qty,
            "unit_price": str(price), "variant_id": f"gid://shopify/ProductVariant/{sku}",
            "inventory_item_id": f"gid://shopify/InventoryItem/{sku}", "title": sku,
        }],
    }


def _shopify_customer(n: int, last: str, first: str, email: str | None, phone: str | None, zip_code: str | None,
                      updated_at: str = "2026-11-01T00:00:00Z") -> dict:
    return {"customer_id": customer_gid(n), "last_name": last, "first_name": first, "email": email,
            "phone": phone, "zip": zip_code, "province": "東京都", "city": "江東区", "address1": "有明1-1",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": updated_at}


def build_landing(landing: Path) -> None:
    t0 = "2026-11-01T00:00:00Z"
    write_batch(landing, "erp", "warehouses",
                [{"warehouse_code": "TKY", "name": "東京倉庫", "sellable": True, "updated_at": t0}], FETCHED)
    write_batch(landing, "erp", "products", [
        {"sku": sku, "jan": None, "name": sku, "name_kana": None, "category": "雑貨", "size": None, "color": None,
         "list_price": 1000, "tax_class": "standard", "safety_stock": safety, "updated_at": t0}
        for sku, safety in (("A", 0), ("B", 1), ("C", 0), ("SET", 0))
    ], FETCHED)
    write_batch(landing, "erp", "stock", [
        {"sku": sku, "warehouse_code": "TKY", "on_hand": n, "updated_at": t0} for sku, n in (("A", 20), ("B", 6), ("C", 4))
    ], FETCHED)
    write_batch(landing, "erp", "bundles", [
        {"bundle_sku": "SET", "component_sku": "A", "quantity": 2, "updated_at": t0},
        {"bundle_sku": "SET", "component_sku": "C", "quantity": 1, "updated_at": t0},
    ], "2026-11-22T05:00:00Z")
    write_batch(landing, "erp", "bundles", [
        {"bundle_sku": "SET", "component_sku": "A", "quantity": 2, "updated_at": t0},
        {"bundle_sku": "SET", "component_sku": "B", "quantity": 1, "updated_at": t0},
    ], FETCHED)
    write_batch(landing, "shopify", "product_variants", [
        {"variant_id": f"gid://shopify/ProductVariant/{sku}", "sku": sku, "barcode": None, "price": "1100",
         "inventory_item_id": f"gid://shopify/InventoryItem/{sku}", "product_id": "gid://shopify/Product/1",
         "product_title": sku, "variant_title": None, "updated_at": t0}
        for sku in ("A", "SET", "C")
    ], FETCHED)
    write_batch(landing, "shopify", "orders", [
        _order(2001, "2026-11-20T01:00:00Z", "PAID", "UNFULFILLED", "SET", 2, 5000, customer=1, email="taro@example.jp"),
        _order(2002, "2026-09-01T01:00:00Z", "PAID", "FULFILLED", "A", 1, 1000, customer=None, email="HANAKO@Example.jp"),
        _order(2003, "2026-11-22T01:00:00Z", "PAID", "UNFULFILLED", "A", 5, 1000, customer=1, email="taro@example.jp",
               cancelled_at="2026-11-22T02:00:00Z"),
        _order(2004, "2025-10-01T01:00:00Z", "PAID", "FULFILLED", "C", 1, 3000, customer=2, email="ichiro@example.jp"),
    ], FETCHED)
    relay = "a8f3k2@pc.fw.rakuten.ne.jp"
    write_batch(landing, "shopify", "customers", [
        _shopify_customer(1, "山田", "太郎", "taro@example.jp", "+81 90-1111-2222", "135-0063"),
        _shopify_customer(2, "鈴木", "一郎", "ichiro@example.jp", None, "100-0001"),
        _shopify_customer(3, "田中", "一", relay, None, None),
        _shopify_customer(4, "中村", "二", relay, None, None),
    ], FETCHED)
    write_batch(landing, "erp", "customers", [
        {"customer_code": "K1", "company_name": "山田商店", "company_name_kana": "ﾔﾏﾀﾞｼｮｳﾃﾝ", "contact_name": "山田 太郎",
         "contact_name_kana": "ﾔﾏﾀﾞ ﾀﾛｳ", "email": "info@yamada-shoten.jp", "phone": "090-1111-2222",
         "postal_code": "〒135-0063", "prefecture": "東京都", "address1": "江東区有明1-1", "erp_rank": "A",
         "updated_at": t0},
    ], FETCHED)
    write_batch(landing, "pos", "members", [
        {"member_id": "M1", "name": "山田 太郎", "name_kana": "やまだ たろう", "phone": None, "postal_code": "135-0063",
         "email": None, "home_store": "GINZA", "registered_on": dt.date(2025, 4, 1)},
        {"member_id": "M2", "name": "佐藤 花子", "name_kana": "サトウ ハナコ", "phone": None, "postal_code": "150-0001",
         "email": "hanako@example.jp", "home_store": "GINZA", "registered_on": dt.date(2025, 5, 1)},
    ], FETCHED)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, DbtResult]:
    workdir = tmp_path_factory.mktemp("customers_world")
    build_landing(workdir / "landing")
    result = run_dbt(workdir, "build", "--vars", VARS)
    assert result.returncode == 0, result.output[-6000:]
    return workdir, result


K1, M2, C2 = cu("erp:K1"), cu("pos:M2"), cu(f"shopify:{customer_gid(2)}")


def test_transitive_identity_merge_and_stable_ids(world):
    _, build = world
    rows = build.query("select member_key, unified_customer_id from intermediate.int_customers__resolved order by 1")
    assert dict(rows) == {
        "erp:K1": K1, "pos:M1": K1, f"shopify:{customer_gid(1)}": K1,
        "pos:M2": M2, "shopify:gid://shopify/Order/2002": M2,
        f"shopify:{customer_gid(2)}": C2,
        f"shopify:{customer_gid(3)}": cu(f"shopify:{customer_gid(3)}"),  # relay address: no merge
        f"shopify:{customer_gid(4)}": cu(f"shopify:{customer_gid(4)}"),
    }


def test_dim_customer_survivorship(world):
    _, build = world
    row = build.query(
        "select full_name, name_kana, email, phone, postal_code, sources, member_count, is_b2b, erp_rank,"
        " lifetime_orders, first_order_at_utc from main.dim_customer where unified_customer_id = ?".replace("?", f"'{K1}'")
    )
    assert row == [("山田商店", "ヤマダ タロウ", "info@yamada-shoten.jp", "090-1111-2222", "〒135-0063",
                    ["erp", "pos", "shopify"], 3, True, "A", 1,
                    dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC))]
    assert build.query("select count(*) from main.dim_customer")[0][0] == 5


def test_customer_ranks_match_hand_computed_figures(world):
    _, build = world
    rows = build.query(
        "select unified_customer_id, recency_days, frequency, monetary_jpy, rfm_score, rank_tier, is_b2b, erp_rank"
        " from main.mart_customer_rank"
    )
    by_id = {r[0]: r[1:] for r in rows}
    assert by_id[K1] == (3, 1, 10000, 8, "シルバー", True, "A")
    assert by_id[M2] == (83, 1, 1000, 6, "ブロンズ", False, None)
    assert by_id[C2] == (418, 0, 0, 3, "一般", False, None)
    assert by_id[cu(f"shopify:{customer_gid(3)}")] == (None, 0, 0, 3, "一般", False, None)
    assert build.query(f"select current_rank from main.dim_customer where unified_customer_id = '{K1}'") == [("シルバー",)]


def test_orders_carry_the_unified_customer(world):
    _, build = world
    rows = build.query("select order_name, unified_customer_id from main.fct_orders order by 1")
    assert rows == [("#2001", K1), ("#2002", M2), ("#2003", K1), ("#2004", C2)]


def test_bundle_and_ratio_stock_targets(world):
    _, build = world
    rows = build.query(
        "select sku, is_bundle, open_order_units, available_to_sell, allocation_policy, allocated_quantity,"
        " channel_buffer, target_quantity, explain from main.mart_channel_stock_targets order by sku"
    )
    assert rows == [
        ("A", False, 4, 16, "ratio", 8, 1, 7, "on_hand 20 − open 4 − safety 0 = 16; ratio 0.5: floor(16 × 0.5) = 8 − buffer 1 = 7"),
        ("C", False, 0, 4, "ratio", 2, 1, 1, "on_hand 4 − open 0 − safety 0 = 4; ratio 0.5: floor(4 × 0.5) = 2 − buffer 1 = 1"),
        ("SET", True, 0, 3, "ratio", 1, 1, 0,
         "bundle min(A 16 ÷ 2 = 8, B 3 ÷ 1 = 3) − safety 0 = 3; ratio 0.5: floor(3 × 0.5) = 1 − buffer 1 = 0"),
    ]
    assert build.query("select sku, is_bundle from main.dim_product where is_bundle") == [("SET", True)]
    assert build.query("select sku, open_order_units from intermediate.int_stock__open_reservations order by 1") == [
        ("A", 4), ("B", 2)]


def test_every_test_passed_including_the_new_unit_tests(world):
    _, build = world
    statuses = build.statuses()
    tests = {k: v for k, v in statuses.items() if k.startswith(("test.", "unit_test."))}
    assert set(tests.values()) == {"pass"}, {k: v for k, v in tests.items() if v != "pass"}
    names = " ".join(tests)
    for unit in ("test_int_customers__resolved_transitive_merges", "test_mart_customer_rank_rfm_tiers",
                 "test_mart_channel_stock_targets_bundles", "test_mart_channel_stock_targets_ratio_policy",
                 "test_mart_channel_stock_targets_priority_policy", "assert_customer_identity_converged"):
        assert unit in names


def test_a_later_merge_relinks_old_orders_in_the_incremental_fct_orders(world):
    """Customer/2 now gives hanako@example.jp: its group merges into M2's (smaller key 'pos:M2' keeps its id).
    Order #2004 is not refetched and lies outside the look-back (0 h), yet fct_orders re-links it."""
    workdir, _ = world
    write_batch(workdir / "landing", "shopify", "customers", [
        _shopify_customer(2, "鈴木", "一郎", "hanako@example.jp", None, "100-0001", updated_at="2026-11-23T06:00:00Z"),
    ], "2026-11-23T06:00:00Z")
    again = run_dbt(workdir, "build", "--select", "+fct_orders", "--exclude", "test_type:unit",
                    "--vars", VARS[:-1] + ", incremental_lookback_hours: 0}")
    assert again.returncode == 0, again.output[-6000:]
    rows = again.query("select order_name, unified_customer_id from main.fct_orders order by 1")
    assert rows == [("#2001", K1), ("#2002", M2), ("#2003", K1), ("#2004", M2)]
