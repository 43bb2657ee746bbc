"""The simulated world: realistic Japanese data, consistent money, deterministic for a seed."""

import re
import unicodedata
from collections import Counter
from datetime import timedelta

import pytest
from sandbox_testkit import NOW, small_world

from sandbox.world import (
    TAX_PERCENT,
    LineItem,
    World,
    is_valid_jan,
    jan_check_digit,
    order_tax,
    tax_inclusive,
)

SKU = re.compile(r"^[A-Z]{2}-\d{4}(-[A-Z]{3})?-[0-9A-Z]+$")


def test_jan_check_digit_matches_the_published_rule():
    # GIVEN the textbook example 4901234567894 (JAN for Japanese goods)
    # THEN the odd/even weighting gives its check digit
    assert jan_check_digit("490123456789") == 4
    assert is_valid_jan("4901234567894") and not is_valid_jan("4901234567895")


def test_every_product_has_a_valid_jan_with_a_japanese_prefix_and_a_unique_sku(world_42):
    jans = [p.jan for p in world_42.products]
    assert len(world_42.products) == 60
    assert all(is_valid_jan(j) and j[:2] in ("45", "49") for j in jans), jans
    assert len(set(jans)) == len(jans)
    assert len({p.sku for p in world_42.products}) == 60
    assert all(SKU.match(p.sku) for p in world_42.products), [p.sku for p in world_42.products]


def test_products_look_like_a_japanese_erp_master(world_42):
    products = world_42.products
    categories = {p.category for p in products}
    assert {"Tシャツ", "食品"} <= categories or len(categories) >= 4
    assert all(p.list_price % 10 == 0 and 980 <= p.list_price <= 13000 for p in products)
    assert all(0 <= p.safety_stock <= 3 for p in products)
    reduced = [p for p in products if p.tax_class == "reduced"]
    assert reduced and all(p.category == "食品" for p in reduced), "a few food items at the reduced 8 % rate"
    assert {p.tax_class for p in products} == {"standard", "reduced"}
    # the reading is kept in half-width katakana, as older kikan systems do; NFKC brings it back
    sample = products[0]
    assert all(unicodedata.east_asian_width(ch) in ("H", "Na") for ch in sample.name_kana), sample.name_kana
    assert unicodedata.normalize("NFKC", sample.name_kana) != sample.name_kana


def test_warehouses_and_stock_cover_every_sku_in_the_sellable_warehouses(world_42):
    codes = {(w.warehouse_code, w.sellable) for w in world_42.warehouses}
    assert codes == {("WH-TOKYO", True), ("WH-OSAKA", True), ("WH-RETURNS", False)}
    pairs = {(s.sku, s.warehouse_code) for s in world_42.stock}
    for p in world_42.products:
        assert (p.sku, "WH-TOKYO") in pairs and (p.sku, "WH-OSAKA") in pairs
    assert all(s.on_hand >= 0 for s in world_42.stock)


def test_the_shop_lists_most_but_not_all_erp_skus_with_the_erp_sku_and_jan(world_42):
    erp = {p.sku: p for p in world_42.products}
    variants = world_42.variants
    assert 0.7 * len(erp) <= len(variants) < len(erp)
    for v in variants:
        assert v.sku in erp and v.barcode == erp[v.sku].jan
    assert len({v.inventory_item_id for v in variants}) == len(variants)
    # prices on the shop are tax-inclusive; a few still show an older price (work for a price sync)
    exact = sum(v.price == tax_inclusive(erp[v.sku].list_price, erp[v.sku].tax_class) for v in variants)
    assert exact >= 0.8 * len(variants)


def test_the_shops_displayed_stock_differs_from_the_erp_for_some_skus(world_42):
    sellable = Counter()
    for s in world_42.stock:
        if s.warehouse_code != "WH-RETURNS":
            sellable[s.sku] += s.on_hand
    shown = {row["sku"]: row["available"] for row in world_42.inventory_truth()}
    differing = [sku for sku, q in shown.items() if q != sellable[sku]]
    assert all(q >= 0 for q in shown.values())
    assert 0.2 * len(shown) <= len(differing) < len(shown)


def test_history_has_about_orders_per_day_with_daily_seasonality(world_42):
    orders = world_42.orders
    assert 30 * 40 * 0.75 <= len(orders) <= 30 * 40 * 1.25
    assert [o.number for o in orders] == list(range(1001, 1001 + len(orders)))
    assert all(o.id < p.id for o, p in zip(orders, orders[1:], strict=False)), "ids grow with time"
    assert all(NOW - timedelta(days=30) <= o.created_at < NOW for o in orders)
    by_hour = Counter((o.created_at.hour + 9) % 24 for o in orders)  # JST
    assert by_hour[21] > 3 * by_hour[4], "evenings are busier than the small hours"


def test_order_totals_are_consistent(world_42):
    for o in world_42.orders:
        lines = sum(li.unit_price * li.quantity for li in o.lines)
        assert 1 <= len(o.lines) <= 4 and all(1 <= li.quantity <= 3 for li in o.lines)
        assert o.lines_total == lines
        assert o.total == lines + o.shipping - o.discount
        assert o.shipping in (0, 550, 770)
        assert o.tax == order_tax(o.lines, o.discount, o.shipping) > 0
        for li in o.lines:
            product = world_42.product(li.sku)
            assert li.tax_percent == TAX_PERCENT[product.tax_class]
            variant = world_42.variant(li.variant_id)
            assert li.unit_price == variant.price and li.inventory_item_id == variant.inventory_item_id


def test_tax_is_computed_once_per_rate_on_the_tax_inclusive_amounts():
    # GIVEN one line at 10 % (2,200 incl.) and one at 8 % (1,080 incl.), 550 shipping, no discount
    def line(price, rate):
        return LineItem(id=1, sku="X", title="x", variant_title="", quantity=1, current_quantity=1,
                        unit_price=price, tax_percent=rate, variant_id=1, inventory_item_id=1, product_id=1)

    std, red = line(2200, 10), line(1080, 8)
    # THEN tax = floor((2200 + 550) × 10/110) + floor(1080 × 8/108) = 250 + 80
    assert order_tax([std, red], 0, 550) == 330
    # AND a 330-yen discount is shared in proportion to the goods: floor(330 × 1080/3280) = 108 from the 8 % goods,
    # the remaining 222 from the 10 % goods
    assert order_tax([std, red], 330, 550) == (2200 - 222 + 550) * 10 // 110 + (1080 - 108) * 8 // 108


def test_statuses_follow_the_payment_method_and_old_orders_are_mostly_fulfilled(world_42):
    old = [o for o in world_42.orders if o.created_at < NOW - timedelta(days=4)]
    fulfilled = sum(o.fulfillment_status == "FULFILLED" for o in old)
    assert fulfilled >= 0.8 * len(old)
    for o in world_42.orders:
        assert o.updated_at >= o.created_at
        if o.cancelled_at is not None:
            assert o.financial_status in ("VOIDED", "REFUNDED")
            assert all(li.current_quantity == 0 for li in o.lines)
        elif o.gateway == "クレジットカード":
            assert o.financial_status in ("PAID", "REFUNDED", "PARTIALLY_REFUNDED")
        elif o.gateway in ("銀行振込", "コンビニ決済") and o.fulfillment_status == "FULFILLED":
            assert o.financial_status == "PAID", "bank and konbini orders ship only once paid"
    gateways = Counter(o.gateway for o in world_42.orders)
    assert set(gateways) == {"クレジットカード", "コンビニ決済", "銀行振込", "代金引換"}
    statuses = Counter(o.financial_status for o in world_42.orders)
    assert statuses["PENDING"] > 0 and statuses["VOIDED"] + statuses["REFUNDED"] > 0
    # cash on delivery: shipped while the payment is still pending
    assert any(o.gateway == "代金引換" and o.financial_status == "PENDING" and o.fulfillment_status == "FULFILLED"
               for o in world_42.orders)


def test_customers_have_japanese_names_kana_emails_phones_and_addresses(world_42):
    customers = world_42.customers
    assert len(customers) == 200
    assert len({c.email for c in customers}) == 200
    for c in customers[:50]:
        assert re.fullmatch(r"[ァ-ヶー]+", c.first_name_kana + c.last_name_kana), (c.first_name_kana, c.last_name_kana)
        assert c.phone is None or re.fullmatch(r"\+81[789]0\d{8}", c.phone)
        assert re.fullmatch(r"\d{3}-\d{4}", c.address["zip"]) and c.address["provinceCode"].startswith("JP-")


def test_the_same_seed_and_now_give_the_identical_world():
    a = World.generate(seed=5, skus=30, customers=40, history_days=7, orders_per_day=15, now=NOW)
    b = World.generate(seed=5, skus=30, customers=40, history_days=7, orders_per_day=15, now=NOW)
    c = World.generate(seed=6, skus=30, customers=40, history_days=7, orders_per_day=15, now=NOW)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    # and the same calls afterwards keep them identical
    a.place_orders(5, at=NOW + timedelta(minutes=1))
    b.place_orders(5, at=NOW + timedelta(minutes=1))
    a.advance(NOW + timedelta(days=2))
    b.advance(NOW + timedelta(days=2))
    assert a.fingerprint() == b.fingerprint()


def test_placing_orders_takes_the_shops_available_down_and_refuses_sold_out_lines():
    world = small_world(seed=11)
    location = world.locations[0].id
    before = {key: lv.available for key, lv in world.levels.items()}
    at = NOW + timedelta(minutes=5)

    placed = world.place_orders(10, at=at)

    assert len(placed) == 10
    assert [o.number for o in placed] == list(range(placed[0].number, placed[0].number + 10))
    sold = Counter()
    for o in placed:
        assert o.created_at == o.updated_at == at
        for li in o.lines:
            sold[li.inventory_item_id] += li.quantity
    for item_id, qty in sold.items():
        level = world.levels[(item_id, location)]
        assert level.available == before[(item_id, location)] - qty
        assert level.updated_at == at and world.inventory_item(item_id).updated_at == at

    # GIVEN every variant sold out WHEN customers try to buy THEN nothing is sold and nothing goes negative
    world.set_available([(item, loc, 0) for (item, loc) in world.levels], at=at)
    assert world.place_orders(5, at=at) == []
    assert all(lv.available == 0 for lv in world.levels.values())


def test_advance_pays_ships_and_cancels_what_is_due_and_bumps_updated_at():
    world = small_world(seed=12)
    at = NOW + timedelta(minutes=1)
    placed = world.place_orders(20, at=at)
    assert all(o.fulfillment_status == "UNFULFILLED" for o in placed)

    changed = world.advance(NOW + timedelta(days=10))

    assert {o.id for o in placed} <= {o.id for o in changed}
    for o in placed:
        assert o.updated_at > at
        assert o.fulfillment_status == "FULFILLED" or o.cancelled_at is not None
    # shipped units leave the shop's on-hand (committed goes back to zero for these orders)
    assert all(lv.committed >= 0 for lv in world.levels.values())


@pytest.mark.parametrize("skus", [1, 3, 7])
def test_tiny_worlds_still_generate(skus):
    world = World.generate(seed=1, skus=skus, customers=3, history_days=1, orders_per_day=3, now=NOW)
    assert len(world.products) == skus and world.variants
