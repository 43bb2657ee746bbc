"""GIVEN a tiny hand-made landing zone (D4 layout), WHEN `dbt build` runs, THEN the marts hold figures a
person can check by hand.

The happy world (Shopify shop + ERP), every figure below is computed by hand in the comments:

ERP products (list price tax-exclusive -> tax-inclusive = floor(price × 1.10 or 1.08)):
    SKU-TSHIRT-M  std      1800 -> 1980   safety 1
    SKU-TEA-01    reduced  1000 -> 1080   safety null (-> default 0)
    SKU-MUG       std      1234 -> 1357   safety 0     (1357.4 floored)
    SKU-CAP       std      2000 -> 2200   safety 2     name_kana half-width ｷｬｯﾌﾟ -> キャップ
    SKU-SOCKS     std       500 ->  550   safety 0     listed on Shopify under another seller SKU: JAN match
Warehouses: TKY sellable, OSK sellable, GINZA (store) not sellable.
Stock (two full snapshots; only the newest counts): TSHIRT TKY 10 + OSK 2 + GINZA 5 (not sellable) = 12
       sellable; TEA TKY 3; MUG TKY 0 (its OSK row, 3 in the older snapshot, was deleted); CAP OSK 4;
       SOCKS TKY 6 (9 in the older snapshot, same updated_at: a stock take).
Shopify listings: TSHIRT, TEA (seller SKU typed full-width ＳＫＵ－ＴＥＡ－０１), MUG, CAP, SOCKS (sku
socks-shopify, barcode = SOCKS' JAN), UNKNOWN-1 (matches nothing -> no target).

Orders (JST = UTC+9):
    #1001 PAID/UNFULFILLED      2026-11-22 10:00 JST  TSHIRT×2@1980 + ship 500            = 4460  open
          (an older version — PENDING, TSHIRT×1, 2480 — is landed again by the look-back; must lose)
    #1002 PENDING/UNFULFILLED   2026-11-22 23:30 JST  TEA×3@1080 − discount 240            = 3000  pending_payment
    #1003 cancelled             2026-11-23 00:10 JST  MUG×1@1357 + ship 500                = 1857  cancelled
    #1004 PAID/FULFILLED        2026-11-23 11:00 JST  CAP×1@2200 + SOCKS×2@550 − disc. 300 = 3000  shipped
    #1005 PAID/UNFULFILLED      2026-11-23 12:00 JST  SOCKS×1@550 + CAP×1@2200 + ship 500  = 3250  open

fct_daily_sales (cancelled excluded):
    2026-11-22 shopify: 2 orders (#1001, #1002), 2+3 = 5 units, 4460+3000 = 7460 JPY
    2026-11-23 shopify: 2 orders (#1004, #1005), 3+2 = 5 units, 3000+3250 = 6250 JPY
Open reservations: TSHIRT 2, TEA 3, CAP 1, SOCKS 1 (MUG's order is cancelled, #1004 shipped).
Targets with buffer shopify 1, default safety 0:
    TSHIRT 12 − 2 − 1 − 1 = 8
    TEA     3 − 3 − 0 − 1 = -1 -> 0   (ATS 0)
    MUG     0 − 0 − 0 − 1 = -1 -> 0   (ATS 0)
    CAP     4 − 1 − 2 − 1 = 0         (ATS 1)
    SOCKS   6 − 1 − 0 − 1 = 4         (ATS 5)

Order backlog as of 2026-11-23 12:00 UTC: #1001 35.0 h (1-3d), #1002 21.5 h (<1d), #1005 9.0 h (<1d).
Shopify prices (default rule: markup 0, up to 10): 1800×1.10 = 1980, 1000×1.08 = 1080, 1234×1.10 = 1357.4 -> 1360
(the shop shows 1357: +3), 2000×1.10 = 2200, 500×1.10 = 550.
Price drift: the mug shows 1357 against 1360 (-3, drift); the others are in sync.
Sync drift: only the T-shirt's level landed (7 vs target 8: drift -1); the push log has 8 applied at 05:00:01,
after that level was fetched (05:00): pushed_since_seen. The other listed SKUs are not_seen.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from ichigen_dbt_helpers import DbtResult, DbtRun, run_dbt, start_dbt, utc, write_batch, write_push_log

from ingestion.landing import LandingZone

JAN = {
    "SKU-TSHIRT-M": "4901234567894",
    "SKU-TEA-01": "4500000000018",
    "SKU-MUG": "4900000000122",
    "SKU-CAP": "4580000000034",
    "SKU-SOCKS": "4911111111119",
}
# All tests of this module share the dbt runs started by one module fixture: keep them on one xdist worker
# (`make test` runs `pytest -n 2 --dist loadgroup`).
pytestmark = pytest.mark.xdist_group("dbt_build")

# as_of pins "now" for the order backlog ages and the price schedule windows.
VARS = '{stock_channel_buffers: {shopify: 1}, default_safety_stock: 0, as_of: "2026-11-23T12:00:00Z"}'


def _line(n: int, sku: str, qty: int, price: str, variant: str) -> dict:
    return {
        "line_item_id": f"gid://shopify/LineItem/{n}",
        "sku": sku,
        "quantity": qty,
        "current_quantity": qty,
        "unit_price": price,
        "variant_id": f"gid://shopify/ProductVariant/{variant}",
        "inventory_item_id": f"gid://shopify/InventoryItem/{variant}",
        "title": sku,
    }


def _order(
    n: int, at: str, fin: str, ful: str, lines: list[dict], ship: str, disc: str, total: str, **kw
) -> dict:
    return {
        "order_id": f"gid://shopify/Order/{n}",
        "order_name": f"#{n}",
        "created_at": at,
        "processed_at": at,
        "updated_at": kw.pop("updated_at", at),
        "cancelled_at": kw.pop("cancelled_at", None),
        "display_financial_status": fin,
        "display_fulfillment_status": ful,
        "currency_code": "JPY",
        "total_price": total,
        "subtotal_price": str(float(total) - float(ship)),  # lines − discounts
        "total_shipping_price": ship,
        "total_discounts": disc,
        "total_tax": "0",
        "customer_id": f"gid://shopify/Customer/{n % 3}",
        "email": f"ＣＵＳＴＯＭＥＲ{n}@example.jp",
        "payment_gateway_names": kw.pop("gateways", ["shopify_payments"]),
        "line_items": lines,
    }


def build_happy_landing(landing: Path) -> None:
    t0 = "2026-11-21T00:00:00Z"
    write_batch(
        landing,
        "erp",
        "warehouses",
        [
            {"warehouse_code": "TKY", "name": "東京倉庫", "sellable": True, "updated_at": t0},
            {"warehouse_code": "OSK", "name": "大阪倉庫", "sellable": True, "updated_at": t0},
            {"warehouse_code": "GINZA", "name": "銀座店", "sellable": False, "updated_at": t0},
        ],
        fetched_at="2026-11-23T05:00:00Z",
    )
    products = [
        ("SKU-TSHIRT-M", "Tシャツ M 白", "ﾃｨｰｼｬﾂ", 1800, "standard", 1),
        ("SKU-TEA-01", "緑茶 ティーバッグ", "ﾘｮｸﾁｬ", 1000, "reduced", None),
        ("SKU-MUG", "マグカップ", "ﾏｸﾞｶｯﾌﾟ", 1234, "standard", 0),
        ("SKU-CAP", "キャップ", "ｷｬｯﾌﾟ", 2000, "standard", 2),
        ("SKU-SOCKS", "靴下", "ｸﾂｼﾀ", 500, "standard", 0),
    ]
    write_batch(
        landing,
        "erp",
        "products",
        [
            {
                "sku": sku,
                "jan": JAN[sku],
                "name": name,
                "name_kana": kana,
                "category": "雑貨",
                "size": "Ｍ",
                "color": "白",
                "list_price": price,
                "tax_class": tax,
                "safety_stock": safety,
                "updated_at": t0,
            }
            for sku, name, kana, price, tax, safety in products
        ],
        fetched_at="2026-11-23T05:00:00Z",
    )
    # The ERP connector lands stock as a full snapshot every run. The first snapshot still has MUG in OSK and
    # SOCKS at 9; by the second, a stock take set SOCKS to 6 without touching updated_at and MUG's OSK row was
    # deleted. Only the newest snapshot counts.
    stock = [
        ("SKU-TSHIRT-M", "TKY", 10),
        ("SKU-TSHIRT-M", "OSK", 2),
        ("SKU-TSHIRT-M", "GINZA", 5),
        ("SKU-TEA-01", "TKY", 3),
        ("SKU-MUG", "TKY", 0),
        ("SKU-CAP", "OSK", 4),
    ]
    same_time = "2026-11-23T03:00:00Z"
    write_batch(
        landing,
        "erp",
        "stock",
        [{"sku": s, "warehouse_code": w, "on_hand": n, "updated_at": same_time} for s, w, n in stock]
        + [
            {"sku": "SKU-SOCKS", "warehouse_code": "TKY", "on_hand": 9, "updated_at": same_time},
            {"sku": "SKU-MUG", "warehouse_code": "OSK", "on_hand": 3, "updated_at": same_time},
        ],
        fetched_at="2026-11-23T04:05:00Z",
    )
    write_batch(
        landing,
        "erp",
        "stock",
        [{"sku": s, "warehouse_code": w, "on_hand": n, "updated_at": same_time} for s, w, n in stock]
        + [{"sku": "SKU-SOCKS", "warehouse_code": "TKY", "on_hand": 6, "updated_at": same_time}],
        fetched_at="2026-11-23T04:35:00Z",
    )

    variants = [
        ("1", "SKU-TSHIRT-M", JAN["SKU-TSHIRT-M"], "1980"),
        ("2", "ＳＫＵ－ＴＥＡ－０１", JAN["SKU-TEA-01"], "1080"),
        ("3", "SKU-MUG", JAN["SKU-MUG"], "1357"),
        ("4", "SKU-CAP", JAN["SKU-CAP"], "2200"),
        ("5", "socks-shopify", JAN["SKU-SOCKS"], "550"),
        ("6", "UNKNOWN-1", None, "999"),
    ]
    write_batch(
        landing,
        "shopify",
        "product_variants",
        [
            {
                "variant_id": f"gid://shopify/ProductVariant/{v}",
                "sku": sku,
                "barcode": barcode,
                "price": price,
                "inventory_item_id": f"gid://shopify/InventoryItem/{v}",
                "product_id": f"gid://shopify/Product/{v}",
                "product_title": f"商品{v}",
                "variant_title": "Default Title",
                "updated_at": t0,
            }
            for v, sku, barcode, price in variants
        ],
        fetched_at="2026-11-23T05:00:00Z",
    )
    write_batch(
        landing,
        "shopify",
        "inventory_levels",
        [
            {
                "inventory_item_id": "gid://shopify/InventoryItem/1",
                "location_id": "gid://shopify/Location/1",
                "sku": "SKU-TSHIRT-M",
                "variant_id": "gid://shopify/ProductVariant/1",
                "available": 7,
                "on_hand": 7,
                "updated_at": t0,
            }
        ],
        fetched_at="2026-11-23T05:00:00Z",
    )

    # First orders fetch: #1001 still PENDING with one T-shirt.
    write_batch(
        landing,
        "shopify",
        "orders",
        [
            _order(
                1001,
                "2026-11-22T01:00:00Z",
                "PENDING",
                "UNFULFILLED",
                [_line(1, "SKU-TSHIRT-M", 1, "1980.00", "1")],
                "500.00",
                "0.00",
                "2480.00",
                updated_at="2026-11-22T01:00:00Z",
            ),
        ],
        fetched_at="2026-11-22T01:05:00Z",
    )
    # Second fetch (look-back overlap re-lands #1001, now paid and edited to two T-shirts).
    write_batch(
        landing,
        "shopify",
        "orders",
        [
            _order(
                1001,
                "2026-11-22T01:00:00Z",
                "PAID",
                "UNFULFILLED",
                [_line(1, "SKU-TSHIRT-M", 2, "1980.00", "1")],
                "500.00",
                "0.00",
                "4460.00",
                updated_at="2026-11-22T02:00:00Z",
            ),
            _order(
                1002,
                "2026-11-22T14:30:00Z",
                "PENDING",
                "UNFULFILLED",
                [_line(2, "ＳＫＵ－ＴＥＡ－０１", 3, "1080", "2")],
                "0",
                "240",
                "3000",
                gateways=["konbini"],
            ),
            _order(
                1003,
                "2026-11-22T15:10:00Z",
                "VOIDED",
                "UNFULFILLED",
                [_line(3, "SKU-MUG", 1, "1357.0", "3")],
                "500",
                "0",
                "1857",
                cancelled_at="2026-11-22T16:00:00Z",
                updated_at="2026-11-22T16:00:00Z",
            ),
            _order(
                1004,
                "2026-11-23T02:00:00Z",
                "PAID",
                "FULFILLED",
                [_line(4, "SKU-CAP", 1, "2200", "4"), _line(5, "socks-shopify", 2, "550", "5")],
                "0",
                "300",
                "3000",
            ),
            _order(
                1005,
                "2026-11-23T03:00:00Z",
                "PAID",
                "UNFULFILLED",
                [_line(6, "socks-shopify", 1, "550", "5"), _line(7, "SKU-CAP", 1, "2200", "4")],
                "500",
                "0",
                "3250",
            ),
        ],
        fetched_at="2026-11-23T03:05:00Z",
    )


@pytest.fixture(scope="module")
def dbt_runs(tmp_path_factory) -> Iterator[dict[str, DbtRun]]:
    """Start every dbt invocation of this module at once (each costs ~10 s of start-up and parsing; on two
    cores running them side by side roughly halves the wall time), then let each test wait on its own."""
    happy = tmp_path_factory.mktemp("happy")
    build_happy_landing(happy / "landing")
    write_push_log(
        happy / "push_log",
        "shopify",
        "20261123T050000000000Z-0badcafe",
        [
            {
                "field": "stock",
                "sku": "SKU-TSHIRT-M",
                "target_ref": "gid://shopify/InventoryItem/1@gid://shopify/Location/1",
                "old_value": 7,
                "new_value": 8,
                "status": "applied",
                "error": None,
                "planned_at": "2026-11-23T05:00:00Z",
                "pushed_at": "2026-11-23T05:00:01Z",
                "attempt": 1,
            }
        ],
    )

    # Quarantine as ingestion writes it: the same bad order met by two look-back fetches, and a keyless record.
    zone = LandingZone(happy / "landing")
    bad_order = ("gid://shopify/Order/9001", "createdAt '2026-11-22 10:00' has no UTC offset", {"id": 9001})
    zone.quarantine("shopify", "orders", "20261122T010000000000Z-aaaa0001", [bad_order],
                    quarantined_at=utc("2026-11-22T01:00:00Z"))
    zone.quarantine("shopify", "orders", "20261122T020000000000Z-aaaa0002", [bad_order],
                    quarantined_at=utc("2026-11-22T02:00:00Z"))
    zone.quarantine("erp", "products", "20261122T030000000000Z-aaaa0003",
                    [(None, "sku is missing", {"name": "謎の商品"})], quarantined_at=utc("2026-11-22T03:00:00Z"))

    unknown = tmp_path_factory.mktemp("unknown_status")
    write_batch(
        unknown / "landing",
        "shopify",
        "orders",
        [
            _order(
                2001,
                "2026-11-22T01:00:00Z",
                "PAID",
                "TELEPORTED",
                [_line(1, "X", 1, "100", "1")],
                "0",
                "0",
                "100",
            )
        ],
        fetched_at="2026-11-22T01:05:00Z",
    )

    empty = tmp_path_factory.mktemp("empty")  # no landing folder, no push log folder at all

    parse = tmp_path_factory.mktemp("parse")
    missing = parse / "does" / "not" / "exist"

    runs = {
        "happy": start_dbt(happy, "build", "--vars", VARS),
        "unknown_status": start_dbt(unknown, "build"),
        "empty": start_dbt(empty, "build"),
        "parse": start_dbt(
            parse,
            "parse",
            landing=missing / "landing",
            push_log=missing / "push_log",
            warehouse=missing / "warehouse.duckdb",
        ),
    }
    yield runs
    for run in runs.values():
        run.kill()


@pytest.fixture(scope="module")
def happy_build(dbt_runs) -> DbtResult:
    result = dbt_runs["happy"].result()
    assert result.returncode == 0, result.output[-6000:]
    return result


def test_daily_sales_match_hand_computed_figures(happy_build):
    rows = happy_build.query(
        "select order_date_jst, channel, orders, units, gross_sales_jpy from main.fct_daily_sales order by 1, 2"
    )
    assert rows == [
        (dt.date(2026, 11, 22), "shopify", 2, 5, 7460),
        (dt.date(2026, 11, 23), "shopify", 2, 5, 6250),
    ]


def test_channel_stock_targets_match_hand_computed_figures(happy_build):
    rows = happy_build.query(
        """
        select sku, sellable_on_hand, open_order_units, safety_stock, available_to_sell, channel_buffer,
               target_quantity, explain
        from main.mart_channel_stock_targets where channel = 'shopify' order by sku
        """
    )
    assert rows == [
        ("SKU-CAP", 4, 1, 2, 1, 1, 0, "on_hand 4 − open 1 − safety 2 − buffer 1 = 0"),
        ("SKU-MUG", 0, 0, 0, 0, 1, 0, "on_hand 0 − open 0 − safety 0 − buffer 1 = -1 → 0"),
        ("SKU-SOCKS", 6, 1, 0, 5, 1, 4, "on_hand 6 − open 1 − safety 0 − buffer 1 = 4"),
        ("SKU-TEA-01", 3, 3, 0, 0, 1, 0, "on_hand 3 − open 3 − safety 0 − buffer 1 = -1 → 0"),
        ("SKU-TSHIRT-M", 12, 2, 1, 9, 1, 8, "on_hand 12 − open 2 − safety 1 − buffer 1 = 8"),
    ]
    assert happy_build.query("select count(*) from main.mart_channel_stock_targets")[0][0] == 5


def test_orders_are_deduplicated_and_unified(happy_build):
    rows = happy_build.query(
        "select order_name, status, is_open, total_jpy, units, order_date_jst from main.fct_orders order by order_name"
    )
    assert rows == [
        ("#1001", "awaiting_shipment", True, 4460, 2, dt.date(2026, 11, 22)),
        ("#1002", "pending_payment", True, 3000, 3, dt.date(2026, 11, 22)),
        ("#1003", "cancelled", False, 1857, 1, dt.date(2026, 11, 23)),
        ("#1004", "shipped", False, 3000, 3, dt.date(2026, 11, 23)),
        ("#1005", "awaiting_shipment", True, 3250, 2, dt.date(2026, 11, 23)),
    ]
    lines = happy_build.query(
        "select order_line_key, sku, quantity, line_total_jpy from main.fct_order_lines order by 1"
    )
    assert lines[0] == ("shopify:gid://shopify/LineItem/1", "SKU-TSHIRT-M", 2, 3960)
    # full-width seller SKU normalised; the socks line resolved to the ERP SKU through the JAN-matched listing
    assert ("shopify:gid://shopify/LineItem/2", "SKU-TEA-01", 3, 3240) in lines
    assert ("shopify:gid://shopify/LineItem/5", "SKU-SOCKS", 2, 1100) in lines


def test_stock_position_is_the_newest_snapshot(happy_build):
    rows = happy_build.query(
        "select sku, warehouse_code, is_sellable, on_hand from main.fct_stock_position order by sku, warehouse_code"
    )
    assert rows == [
        ("SKU-CAP", "OSK", True, 4),
        ("SKU-MUG", "TKY", True, 0),
        ("SKU-SOCKS", "TKY", True, 6),
        ("SKU-TEA-01", "TKY", True, 3),
        ("SKU-TSHIRT-M", "GINZA", False, 5),
        ("SKU-TSHIRT-M", "OSK", True, 2),
        ("SKU-TSHIRT-M", "TKY", True, 10),
    ]


def test_push_log_is_read(happy_build):
    assert happy_build.query(
        "select channel, sku, old_value, new_value, status from staging.stg_push_log__attempts"
    ) == [("shopify", "SKU-TSHIRT-M", 7, 8, "applied")]


def test_staging_normalises_prices_and_text(happy_build):
    rows = happy_build.query(
        """select sku, list_price_tax_excl, tax_rate, list_price_tax_incl, name_kana, size, is_valid_jan
           from staging.stg_erp__products order by sku"""
    )
    assert [(r[0], r[3]) for r in rows] == [
        ("SKU-CAP", 2200),
        ("SKU-MUG", 1357),
        ("SKU-SOCKS", 550),
        ("SKU-TEA-01", 1080),
        ("SKU-TSHIRT-M", 1980),
    ]
    cap = rows[0]
    assert cap[4] == "キャップ" and cap[5] == "M" and cap[6] is True
    assert happy_build.query("select name_kana from staging.stg_erp__products where sku = 'SKU-MUG'") == [
        ("マグカップ",)
    ]
    assert happy_build.query("select email from staging.stg_shopify__orders where order_name = '#1002'") == [
        ("customer1002@example.jp",)
    ]
    matches = happy_build.query(
        "select channel_sku, sku, match_method from intermediate.int_products__channel_listings order by listing_id"
    )
    assert matches == [
        ("SKU-TSHIRT-M", "SKU-TSHIRT-M", "seller_sku"),
        ("SKU-TEA-01", "SKU-TEA-01", "seller_sku"),
        ("SKU-MUG", "SKU-MUG", "seller_sku"),
        ("SKU-CAP", "SKU-CAP", "seller_sku"),
        ("socks-shopify", "SKU-SOCKS", "jan"),
        ("UNKNOWN-1", None, None),
    ]


def test_every_test_ran_and_passed(happy_build):
    statuses = happy_build.statuses()
    tests = {k: v for k, v in statuses.items() if k.startswith(("test.", "unit_test."))}
    assert len(tests) > 50
    assert set(tests.values()) == {"pass"}, {k: v for k, v in tests.items() if v != "pass"}
    assert sum(k.startswith("unit_test.") for k in tests) >= 8


def test_dim_channel_and_dim_product(happy_build):
    channels = happy_build.query("select channel, kind, pushes_stock, price_step from main.dim_channel order by 1")
    assert ("shopify", "api", True, 10) in channels and ("pos", "file", False, 10) in channels
    rows = happy_build.query(
        """select sku, tax_rate, list_price_tax_excl, list_price_tax_incl, name_kana, size, listed_on_shopify,
                  shopify_variant_id, shopify_listing_count
           from main.dim_product order by sku"""
    )
    assert [r[0] for r in rows] == ["SKU-CAP", "SKU-MUG", "SKU-SOCKS", "SKU-TEA-01", "SKU-TSHIRT-M"]
    cap, _, socks, tea, _ = rows
    assert cap[1:] == (Decimal("0.10"), 2000, 2200, "キャップ", "M", True, "gid://shopify/ProductVariant/4", 1)
    assert tea[1:4] == (Decimal("0.08"), 1000, 1080)
    # matched by JAN (seller SKU socks-shopify)
    assert socks[6:8] == (True, "gid://shopify/ProductVariant/5")


def test_order_status_backlog_ages(happy_build):
    rows = happy_build.query(
        """select order_name, status, status_ja, age_hours, age_bucket
           from main.fct_order_status_backlog order by order_name"""
    )
    assert rows == [
        ("#1001", "awaiting_shipment", "発送待ち", Decimal("35.0"), "1-3d"),
        ("#1002", "pending_payment", "入金待ち", Decimal("21.5"), "<1d"),
        ("#1005", "awaiting_shipment", "発送待ち", Decimal("9.0"), "<1d"),
    ]


def test_channel_price_targets(happy_build):
    rows = happy_build.query(
        """select sku, target_price_tax_incl, current_channel_price_jpy, price_change_jpy, is_on_sale
           from main.mart_channel_price_targets where channel = 'shopify' order by sku"""
    )
    assert rows == [
        ("SKU-CAP", 2200, 2200, 0, False),
        ("SKU-MUG", 1360, 1357, 3, False),
        ("SKU-SOCKS", 550, 550, 0, False),
        ("SKU-TEA-01", 1080, 1080, 0, False),
        ("SKU-TSHIRT-M", 1980, 1980, 0, False),
    ]
    assert happy_build.query(
        "select explain from main.mart_channel_price_targets where sku = 'SKU-MUG'"
    ) == [("list 1234 × (1 + 0 %) × (1 + 10 %) = 1357.40 → up to 10 = 1360",)]


def test_sync_drift(happy_build):
    rows = happy_build.query(
        """select sku, target_quantity, channel_quantity, drift_quantity, last_pushed_quantity, pushed_since_seen,
                  status
           from main.mart_sync_drift where channel = 'shopify' order by sku"""
    )
    assert rows == [
        ("SKU-CAP", 0, None, None, None, False, "not_seen"),
        ("SKU-MUG", 0, None, None, None, False, "not_seen"),
        ("SKU-SOCKS", 4, None, None, None, False, "not_seen"),
        ("SKU-TEA-01", 0, None, None, None, False, "not_seen"),
        ("SKU-TSHIRT-M", 8, 7, -1, 8, True, "drift"),
    ]
    prices = happy_build.query(
        """select sku, target_price_jpy, channel_price_jpy, price_drift_jpy, price_status
           from main.mart_sync_drift where channel = 'shopify' order by sku"""
    )
    assert prices == [
        ("SKU-CAP", 2200, 2200, 0, "in_sync"),
        ("SKU-MUG", 1360, 1357, -3, "drift"),
        ("SKU-SOCKS", 550, 550, 0, "in_sync"),
        ("SKU-TEA-01", 1080, 1080, 0, "in_sync"),
        ("SKU-TSHIRT-M", 1980, 1980, 0, "in_sync"),
    ]


def test_quarantine_is_published_per_source_entity_and_reason(happy_build):
    records = happy_build.query(
        "select source, entity, record_key, occurrences from staging.stg_quarantine__records order by source"
    )
    assert records == [("erp", "products", None, 1), ("shopify", "orders", "gid://shopify/Order/9001", 2)]
    summary = happy_build.query(
        "select source, entity, reason_kind, records, occurrences, example_record_key "
        "from main.mart_ingest_quarantine order by source"
    )
    assert summary == [
        ("erp", "products", "sku is missing", 1, 1, None),
        ("shopify", "orders", "createdAt … has no UTC offset", 1, 2, "gid://shopify/Order/9001"),
    ]


def test_unknown_status_code_fails_the_build(dbt_runs):
    """GIVEN an order whose fulfilment status the status map does not know, THEN the build fails."""
    result = dbt_runs["unknown_status"].result()
    assert result.returncode != 0
    failed = {k for k, v in result.statuses().items() if v in ("fail", "error")}
    # exactly the guard on the unknown code fails: the financial status PAID is known
    assert len(failed) == 1, failed
    (test_id,) = failed
    assert (
        test_id.startswith("test.ichigen.known_status_code_stg_shopify__orders_")
        and "fulfillment_status" in test_id
    )
    # nothing downstream of the failed staging test was built
    assert result.statuses()["model.ichigen.fct_orders"] == "skipped"


def test_empty_landing_zone_builds(dbt_runs):
    result = dbt_runs["empty"].result()
    assert result.returncode == 0, result.output[-6000:]
    for table in (
        "fct_orders",
        "fct_order_lines",
        "fct_daily_sales",
        "fct_stock_position",
        "mart_channel_stock_targets",
        "dim_product",
        "fct_order_status_backlog",
        "mart_channel_price_targets",
        "mart_sync_drift",
    ):
        assert result.query(f"select count(*) from main.{table}") == [(0,)]
    types = dict(
        result.query(
            """select column_name, data_type from information_schema.columns
               where table_schema = 'staging' and table_name = 'stg_shopify__orders'"""
        )
    )
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["total_jpy"] == "BIGINT"
    assert types["payment_gateway_names"] == "VARCHAR[]"
    # DuckDB sums bigints into HUGEINT (int128), which Arrow/Polars readers cannot hold: no model may expose one
    assert (
        result.query(
            "select table_name, column_name from information_schema.columns where data_type = 'HUGEINT'"
        )
        == []
    )


def test_parse_works_without_any_data_or_warehouse(dbt_runs):
    """Dagster loads the manifest at import time: `dbt parse` must work with paths that do not exist, and
    must not create them."""
    result = dbt_runs["parse"].result()
    assert result.returncode == 0, result.output[-6000:]
    manifest = json.loads((result.warehouse.parents[3] / "dbt_target" / "manifest.json").read_text())
    assert not result.warehouse.parents[2].exists()
    assert "model.ichigen.mart_channel_stock_targets" in manifest["nodes"]
    assert manifest["sources"]["source.ichigen.push_log.shopify"]["meta"]["dagster"]["asset_key"] == [
        "shopify",
        "push_log",
    ]


def _facts(result: DbtResult) -> dict[str, dict[str, tuple]]:
    """fct_orders and fct_order_lines, keyed by their row key."""
    return {
        table: {row[0]: row for row in result.query(f"select * from main.{table} order by 1")}
        for table in ("fct_orders", "fct_order_lines")
    }


def test_incremental_facts_rebuild_identically_and_merge_exactly_the_changed_order(happy_build, tmp_path):
    """GIVEN the happy world built once, WHEN dbt builds again over the same landing zone, THEN fct_orders and
    fct_order_lines are identical; WHEN a new batch lands with #1002 paid, THEN the next build changes exactly
    #1002's rows (its order and its line) and nothing else."""
    # A copy of the happy build (landing zone + warehouse) saves a third full build in the module fixture.
    workdir = tmp_path / "incremental"
    shutil.copytree(happy_build.warehouse.parent / "landing", workdir / "landing")
    shutil.copy2(happy_build.warehouse, workdir / "warehouse.duckdb")
    before = _facts(happy_build)
    assert len(before["fct_orders"]) == 5 and len(before["fct_order_lines"]) == 7

    # The order path only (staging reads the landing zone again; the rest of the copied warehouse stays).
    models = "stg_shopify__orders stg_shopify__order_lines int_orders__unified int_order_lines__unified"
    select = ("--select", f"{models} fct_orders fct_order_lines", "--vars", VARS)
    second = run_dbt(workdir, "build", *select)
    assert second.returncode == 0, second.output[-6000:]
    compiled = (workdir / "dbt_target" / "run" / "ichigen" / "models" / "marts" / "sales" / "fct_orders.sql")
    assert "delete from" in compiled.read_text()  # really the incremental path, not a rebuild
    assert _facts(second) == before

    paid = _order(
        1002,
        "2026-11-22T14:30:00Z",
        "PAID",
        "UNFULFILLED",
        [_line(2, "ＳＫＵ－ＴＥＡ－０１", 3, "1080", "2")],
        "0",
        "240",
        "3000",
        gateways=["konbini"],
        updated_at="2026-11-23T05:30:00Z",
    )
    write_batch(workdir / "landing", "shopify", "orders", [paid], fetched_at="2026-11-23T06:00:00Z")
    third = run_dbt(workdir, "build", *select)
    assert third.returncode == 0, third.output[-6000:]
    after = _facts(third)

    order_key = "shopify:gid://shopify/Order/1002"
    for table, key_of_1002 in (("fct_orders", order_key), ("fct_order_lines", "shopify:gid://shopify/LineItem/2")):
        assert after[table].keys() == before[table].keys()
        changed = {k for k in after[table] if after[table][k] != before[table][k]}
        assert changed == {key_of_1002}, (table, changed)
    assert third.query(
        f"select status, is_open, total_jpy, _fetched_at from main.fct_orders where order_key = '{order_key}'"
    ) == [("awaiting_shipment", True, 3000, dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC))]
    # the merged rows keep the key columns' zstd (D236): the table was created with it, the merge only inserts
    assert third.query("select distinct upper(compression) from pragma_storage_info('main.fct_orders') "
                       "where column_name = 'order_key' and segment_type = 'VARCHAR'") == [("ZSTD",)]


def _failing_test_on_a_damaged_copy(happy_build, tmp_path, damage: list[tuple[str, list]], select: str,
                                    test_prefix: str) -> DbtResult:
    """Copy a passing build's warehouse, run the `damage` statements on the copy, then `dbt test --select select
    --store-failures` on it: the one test selected must fail (its failing rows are then in dbt_test__audit)."""
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(happy_build.warehouse, warehouse)
    con = duckdb.connect(str(warehouse))
    for sql, params in damage:
        con.execute(sql, params)
    con.close()

    result = run_dbt(tmp_path, "test", "--select", select, "--store-failures",
                     warehouse=warehouse, landing=happy_build.warehouse.parent / "landing")

    assert result.returncode != 0
    (test_id,) = result.statuses()
    assert test_id.startswith(f"test.ichigen.{test_prefix}") and result.statuses()[test_id] == "fail", test_id
    return result


def test_declared_not_null_names_each_column_that_holds_nulls(happy_build, tmp_path):
    """The not-null constraints of a model's columns are checked by one `declared_not_null` test per model (D175):
    GIVEN a copy of a passing build's warehouse with nulls put into two declared columns of dim_channel, THEN
    that model's test fails and its failing rows name exactly those columns and how many rows are null."""
    result = _failing_test_on_a_damaged_copy(
        happy_build, tmp_path,
        [("update main.dim_channel set name_en = null where channel in ('shopify', 'rakuten')", []),
         ("update main.dim_channel set price_step = null where channel = 'amazon'", [])],
        "dim_channel,test_name:declared_not_null", "declared_not_null_dim_channel")

    failures = result.query("select column_name, null_rows from dbt_test__audit.declared_not_null_dim_channel_ "
                            "order by column_name")
    assert failures == [("name_en", 2), ("price_step", 1)]


def test_unique_reports_each_repeated_key_with_its_count(happy_build, tmp_path):
    """dbt's `unique` is worked out from the key's hashes first (D238): GIVEN a copy of a passing build's
    warehouse where one channel of dim_channel appears three times and another twice, THEN the model's unique test
    fails with exactly those two keys and how many rows each has, as dbt's own test reports them."""
    copy_one = "insert into main.dim_channel select * from main.dim_channel where channel = ? limit 1"
    result = _failing_test_on_a_damaged_copy(
        happy_build, tmp_path, [(copy_one, ["rakuten"]), (copy_one, ["rakuten"]), (copy_one, ["yahoo"])],
        "dim_channel,test_name:unique", "unique_dim_channel_channel")

    assert result.query("select unique_field, n_records from dbt_test__audit.unique_dim_channel_channel "
                        "order by unique_field") == [("rakuten", 3), ("yahoo", 2)]


def test_relationships_carrying_columns_names_orphans_and_lines_that_disagree_with_their_order(happy_build, tmp_path):
    """fct_order_lines' order_key test checks, in one join, that the order exists and that the date and status the
    line carries are the order's (D237): GIVEN a copy of a passing build's warehouse where one order was deleted
    from fct_orders and another order's line was given a different status, THEN the test fails with exactly
    those two lines, the first marked as missing its order, the second showing both statuses."""
    lines = happy_build.query("select order_key, order_status from main.fct_order_lines "
                              "where order_key in (select order_key from main.fct_order_lines group by order_key "
                              "having count(*) = 1) and order_status <> 'returned' order by order_key")
    assert len(lines) >= 2, lines
    (orphan_order, orphan_status), (changed_order, changed_status) = lines[0], lines[-1]

    result = _failing_test_on_a_damaged_copy(
        happy_build, tmp_path,
        [("delete from main.fct_orders where order_key = ?", [orphan_order]),
         ("update main.fct_order_lines set order_status = 'returned' where order_key = ?", [changed_order])],
        "fct_order_lines,test_name:relationships_carrying_columns", "relationships_carrying_columns_fct_order_lines")

    (audit_table,) = result.query("select table_name from information_schema.tables where table_schema = "
                                  "'dbt_test__audit' and table_name like 'relationships_carrying_columns%'")[0]
    failures = result.query(f"select child_key, parent_missing, order_status, parent_status "
                            f"from dbt_test__audit.{audit_table} order by parent_missing desc")
    assert failures == [(orphan_order, True, orphan_status, None), (changed_order, False, "returned", changed_status)]


def test_key_and_id_columns_are_stored_with_zstd_and_the_rest_as_duckdb_chooses(happy_build):
    """Models name their one-value-per-row text columns in config zstd_columns (D236): those columns are stored
    with zstd, through a first build and the incremental runs after it; the model's other text columns keep
    DuckDB's own choice."""
    def compression(table: str) -> dict[str, set[str]]:
        rows = happy_build.query(f"select column_name, compression from pragma_storage_info('{table}') "
                                 f"where segment_type = 'VARCHAR'")
        found: dict[str, set[str]] = {}
        for column, method in rows:
            found.setdefault(column, set()).add(method.upper())
        return found

    lines = compression("main.fct_order_lines")
    assert lines["order_line_key"] == lines["order_key"] == {"ZSTD"}
    assert "ZSTD" not in lines["channel"] | lines["sku"] | lines["order_status"]
    orders = compression("main.fct_orders")
    assert orders["order_key"] == orders["order_id"] == {"ZSTD"}
    assert "ZSTD" not in orders["status"] | orders["channel"]
    staged = compression("staging.stg_shopify__order_lines")
    assert staged["line_item_id"] == staged["order_id"] == {"ZSTD"}
    assert "ZSTD" not in staged["sku"]
