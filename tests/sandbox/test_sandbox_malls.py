"""The marketplaces' neutral state (sandbox.malls): listings and their mapping, stock, buyers, lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.malls import CANCELLED, MALL_CHANNELS, PENDING_PAYMENT
from sandbox.world import World, is_valid_jan

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(seed=5, skus=50, customers=80, history_days=20, orders_per_day=20, now=NOW)


def test_every_mall_has_listings_orders_and_its_own_naming(world: World) -> None:
    assert set(world.malls) == set(MALL_CHANNELS)
    for channel, mall in world.malls.items():
        assert mall.listings and mall.orders, channel
        assert len({s.listing_id for s in mall.listings}) == len(mall.listings), f"{channel} listing ids repeat"
        assert all(is_valid_jan(s.jan) for s in mall.listings if s.jan), channel
    rakuten = world.malls["rakuten"].listings[0]
    assert rakuten.listing_id == f"{rakuten.parent_code}:{rakuten.variant_code}"
    amazon = world.malls["amazon"].listings[0]
    assert amazon.asin and amazon.asin.startswith("B0") and len(amazon.asin) == 10
    assert world.malls["rakuten"].orders[0].order_id.startswith("386371-")


def test_each_matched_listing_points_at_an_erp_product_by_seller_sku_or_jan(world: World) -> None:
    products = {p.sku: p for p in world.products}
    by_jan = {p.jan: p.sku for p in world.products}
    unmatched = 0
    for mall in world.malls.values():
        for s in mall.listings:
            if s.erp_sku is None:
                unmatched += 1
                assert s.seller_sku.upper() not in products and s.jan not in by_jan
                continue
            assert s.seller_sku.upper() in products or by_jan[s.jan] == s.erp_sku
            assert s.seller_sku.upper() == s.erp_sku or s.jan == products[s.erp_sku].jan
    assert unmatched == sum(m.profile.unmatched_listings for m in world.malls.values())


def test_a_sale_decrements_the_malls_stock_and_a_sold_out_line_is_refused(world: World) -> None:
    mall = world.malls["yahoo"]
    listing = next(s for s in mall.listings if s.erp_sku and s.quantity >= 2)
    before = listing.quantity
    events: list[str] = []
    mall.listeners.append(lambda kind, record: events.append(kind))
    order = world.place_mall_order("yahoo", [(listing.listing_id, 1)], at=NOW + timedelta(minutes=1))
    assert order is not None and listing.quantity == before - 1
    assert events[:2] == ["stock_changed", "order_created"]
    world.place_mall_order("yahoo", [(listing.listing_id, before + 5)], at=NOW + timedelta(minutes=2))
    assert listing.quantity == 0
    assert world.place_mall_order("yahoo", [(listing.listing_id, 1)], at=NOW + timedelta(minutes=3)) is None


def test_the_same_person_is_recorded_differently_across_malls(world: World) -> None:
    people: dict[int, set[str]] = {}
    for channel in ("rakuten", "amazon"):
        for o in world.malls[channel].orders:
            assert o.buyer.email.endswith(("rakuten.ne.jp", "amazon.co.jp")), "malls relay e-mail"
            people.setdefault(o.buyer.person_id, set()).add(o.buyer.phone)
    assert any(len(phones) > 1 for phones in people.values()), "phone formats should vary"


def test_unpaid_bank_and_konbini_orders_wait_then_cancel(world: World) -> None:
    mall = world.malls["rakuten"]
    waiting = [o for o in mall.orders if o.state == PENDING_PAYMENT]
    cancelled = [o for o in mall.orders if o.state == CANCELLED]
    assert waiting and all(o.payment_method in ("bank_transfer", "konbini") for o in waiting)
    assert cancelled and all(li.current_quantity == 0 for o in cancelled for li in o.lines)
    assert all(o.total == o.lines_total + o.shipping - o.discount for o in mall.orders)


def test_same_seed_same_malls() -> None:
    a = World.generate(seed=9, skus=20, customers=30, history_days=5, orders_per_day=10, now=NOW)
    b = World.generate(seed=9, skus=20, customers=30, history_days=5, orders_per_day=10, now=NOW)
    assert a.fingerprint() == b.fingerprint()
    c = World.generate(seed=10, skus=20, customers=30, history_days=5, orders_per_day=10, now=NOW)
    assert [o.order_id for o in a.malls["amazon"].orders] != [o.order_id for o in c.malls["amazon"].orders]
