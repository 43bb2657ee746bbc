"""Order lifecycles (sandbox.lifecycle): the generated history settles a whole batch of planned orders in one
replay; live orders apply their events one at a time. Both must reach the same state, and the history must have
the character the plans describe."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from sandbox_testkit import NOW

from sandbox import lifecycle
from sandbox.malls import (
    MALL_CHANNELS,
    MOMENTS,
    STATES,
    MallBuyer,
    MallEvent,
    MallLine,
    MallOrder,
    settle_mall_orders,
)
from sandbox.world import (
    BANK,
    CARD,
    COD,
    FINANCIAL_STATUSES,
    Event,
    LineItem,
    Order,
    World,
    settle_shop_orders,
)

N = 4000  # orders per batch: every branch of the plans (3 % cancellations, 1.5 % partial refunds, …) occurs
NOW_S = int(NOW.timestamp())


@pytest.fixture(scope="module")
def tiny() -> World:
    return World.generate(seed=3, skus=8, customers=5, history_days=0, now=NOW)


def _batch(draws: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    family = gen.integers(0, 3, N)
    created = NOW_S - gen.integers(0, 15 * 86400, N)  # some long settled, some still in flight at NOW
    return family, gen.random((N, draws)), created


def test_a_shop_batch_settles_as_applying_each_event_in_turn(tiny: World) -> None:
    family, draws, created = _batch(lifecycle.SHOP_DRAWS, seed=1)
    plan = lifecycle.shop_plan(family, draws)
    state, done = settle_shop_orders(family, plan, created, NOW_S)
    gateway = {lifecycle.INSTANT: CARD, lifecycle.DEFERRED: BANK, lifecycle.COD: COD}
    pending = Counter(row for row, _at, _kind in done.pending)
    kinds = Counter()
    for i in range(N):
        at = lifecycle.as_datetime(int(created[i]))
        lines = [LineItem(i * 2 + k, "SKU", "t", "v", 2, 2, 1000 + k, 10, 1, 1, 1) for k in range(2)]
        order = Order(i, i, at, at, at, gateway[family[i]], None, None, None, {}, lines, 4000, 0, None, 0, 0,
                      financial_status="PAID" if family[i] == lifecycle.INSTANT else "PENDING")
        order.pending = [Event(at + timedelta(seconds=s), kind) for s, kind in lifecycle.ordered_events(plan, i)]
        kinds.update(e.kind for e in order.pending)
        tiny._apply_due(order, NOW)

        assert order.financial_status == FINANCIAL_STATUSES[state["financial"][i]], i
        assert (order.fulfillment_status == "FULFILLED") == state["fulfilled"][i], i
        cancelled = state["cancelled_at"][i]
        assert order.cancelled_at == (lifecycle.as_datetime(int(cancelled)) if cancelled >= 0 else None), i
        if order.cancelled_at is not None:
            assert order.cancel_reason == ("CUSTOMER" if state["by_customer"][i] else "DECLINED")
        assert [li.current_quantity for li in order.lines] == (
            [0, 0] if state["zeroed"][i] else [2, 1] if state["partial"][i] else [2, 2]), i
        assert order.updated_at == lifecycle.as_datetime(int(max(done.last_at[i], created[i]))), i
        assert len(order.pending) == pending[i], i
    assert set(kinds) == {"pay", "ship", "cancel", "refund", "partial_refund"}, kinds
    assert 0 < len(done.pending) < N, "some orders are still in flight at NOW, most are settled"


@pytest.mark.parametrize("channel", MALL_CHANNELS)
def test_a_mall_batch_settles_as_applying_each_event_in_turn(tiny: World, channel: str) -> None:
    mall = tiny.malls[channel]
    family, draws, created = _batch(lifecycle.MALL_DRAWS, seed=2)
    plan = lifecycle.mall_plan(family, draws)
    state, done = settle_mall_orders(family, plan, created, NOW_S)
    method = {lifecycle.INSTANT: "paypay", lifecycle.DEFERRED: "konbini", lifecycle.COD: "cod"}
    buyer = MallBuyer(1, "山田", "太郎", "ヤマダ", "タロウ", "a@example.jp", "090", "100-0001", "東京都", "千代田区",
                      "1-1", None)
    pending = Counter(row for row, _at, _kind in done.pending)
    for i in range(N):
        at = lifecycle.as_datetime(int(created[i]))
        line = MallLine(1, "not-listed", None, "t", "v", 1, 1, 1000, 10)
        order = MallOrder(channel, f"T-{i}", at, at, method[family[i]], buyer, [line], 0, 0, 0)
        order.pending = [MallEvent(at + timedelta(seconds=s), kind) for s, kind in lifecycle.ordered_events(plan, i)]
        mall.apply_due(order, NOW)

        assert order.state == STATES[state["state"][i]], i
        for moment in MOMENTS:
            value = state[f"{moment}_at"][i]
            assert getattr(order, f"{moment}_at") == (lifecycle.as_datetime(int(value)) if value >= 0 else None), \
                (i, moment)
        assert (line.current_quantity == 0) == state["zeroed"][i], i
        assert order.version == 1 + done.applied[i], i
        assert order.updated_at == lifecycle.as_datetime(int(max(done.last_at[i], created[i]))), i
        assert len(order.pending) == pending[i], i


@pytest.fixture(scope="module")
def year() -> World:
    return World.generate(seed=21, skus=300, customers=400, history_days=120, orders_per_day=60, now=NOW)


def test_the_history_has_the_character_the_plans_describe(year: World) -> None:
    shop = year.orders
    old = [o for o in shop if o.created_at < NOW - timedelta(days=20)]  # every event long applied
    lines = Counter(len(o.lines) for o in shop)
    assert abs(sum(k * v for k, v in lines.items()) / len(shop) - 1.67) < 0.05, lines  # 55/28/12/5 % of 1–4 lines
    gateways = Counter(o.gateway for o in shop)
    assert abs(gateways[CARD] / len(shop) - 0.64) < 0.03, gateways
    card = [o for o in old if o.gateway == CARD]
    assert abs(sum(o.cancelled_at is not None for o in card) / len(card) - 0.03) < 0.01
    assert abs(sum(o.financial_status == "PARTIALLY_REFUNDED" for o in card) / len(card) - 0.015) < 0.008
    assert all(o.fulfillment_status == "FULFILLED" for o in old if o.cancelled_at is None)
    assert not any(o.pending for o in old) and any(o.pending for o in shop), "only recent orders wait for events"

    for channel, mall in year.malls.items():
        orders = mall.orders
        # volumes follow the profile: the shop's 60 a day × the mall's `volume`
        assert abs(len(orders) / len(shop) - mall.profile.volume) < 0.1 * mall.profile.volume, channel
        mean_lines = sum(len(o.lines) for o in orders) / len(orders)
        assert abs(mean_lines - 1.48) < 0.05, (channel, mean_lines)  # 62/28/10 % of 1–3 lines
        shares = Counter(o.payment_method for o in orders)
        for method, weight in mall.profile.payments:
            assert abs(shares[method] / len(orders) - weight) < 0.03, (channel, method, shares)
        settled = Counter(o.state for o in orders if o.created_at < NOW - timedelta(days=20))
        total = sum(settled.values())
        assert settled["delivered"] / total > 0.85 and 0 < settled["returned"] / total < 0.04, (channel, settled)
        assert not settled["ordered"] and not settled["awaiting_shipment"], (channel, settled)
        assert len({o.order_id for o in orders}) == len(orders), channel
        assert all(o.tracking_number for o in orders if o.shipped_at is not None), channel
        assert [o.created_at for o in orders] == sorted(o.created_at for o in orders), channel
