"""Plan only real changes; guard rails refuse what must never reach a storefront, naming why."""

from datetime import UTC, datetime, timedelta

import polars as pl

from ichigen.config import GuardRailsConfig
from ichigen.publish import BuildReport
from reverse_sync.guard import check_plan
from reverse_sync.plan import ChannelListing, StockTarget, latest_listings, plan_stock

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
FRESH = {"version": "v1", "published_at": (NOW - timedelta(minutes=5)).isoformat()}
RAILS = GuardRailsConfig(max_zeroed_fraction=0.5, max_quantity=1000, max_target_age_minutes=60)


def targets(**qty):
    return {sku: StockTarget(sku, q, f"why {sku}") for sku, q in qty.items()}


def listings(**qty):
    return {sku: ChannelListing(sku, f"item-{sku}@loc-1", q, NOW) for sku, q in qty.items()}


def test_only_skus_whose_shown_quantity_differs_are_planned():
    plan = plan_stock("shopify", targets(A=5, B=3, C=0, D=7), listings(A=5, B=4, C=2, E=9), FRESH)
    assert [(c.sku, c.old_value, c.new_value) for c in plan.changes] == [("B", 4, 3), ("C", 2, 0)]
    assert plan.unchanged == 1 and plan.listed == 3
    assert plan.without_listing == ["D"] and plan.without_target == ["E"]
    assert plan.changes[0].target_ref == "item-B@loc-1" and plan.changes[0].reason == "why B"


def test_a_fresh_plan_within_limits_is_allowed():
    plan = plan_stock("shopify", targets(A=1, B=2, C=3, D=0), listings(A=0, B=0, C=0, D=4), FRESH)
    verdict = check_plan(plan, RAILS, BuildReport(success=True), now=NOW)
    assert verdict.allowed, verdict.reasons


def test_zeroing_too_many_skus_is_refused_with_the_numbers():
    plan = plan_stock("shopify", targets(A=0, B=0, C=0, D=5), listings(A=3, B=2, C=1, D=5), FRESH)
    verdict = check_plan(plan, RAILS, None, now=NOW)
    assert not verdict.allowed
    assert any("zero 3 of 4" in r and "max_zeroed_fraction" in r for r in verdict.reasons)


def test_negative_and_absurd_quantities_are_refused():
    plan = plan_stock("shopify", targets(A=-1, B=5000), listings(A=1, B=1), FRESH)
    reasons = " ".join(check_plan(plan, RAILS, None, now=NOW).reasons)
    assert "negative" in reasons and "A=-1" in reasons
    assert "max_quantity" in reasons and "B=5000" in reasons


def test_stale_targets_and_a_failed_build_are_refused():
    stale = {"version": "v0", "published_at": (NOW - timedelta(hours=3)).isoformat()}
    plan = plan_stock("shopify", targets(A=1), listings(A=2), stale)
    reasons = " ".join(check_plan(plan, RAILS, BuildReport(success=False, tests_failed=2), now=NOW).reasons)
    assert "stale" in reasons and "max_target_age_minutes" in reasons
    assert "last dbt build failed (2 failed tests" in reasons


def test_price_moves_beyond_the_cap_are_refused():
    plan = plan_stock("shopify", targets(A=1500), listings(A=1000), FRESH)
    plan.field = "price"
    verdict = check_plan(plan, GuardRailsConfig(max_price_change_fraction=0.3), None, now=NOW)
    assert not verdict.allowed and "A 1000→1500" in verdict.reasons[0]


def test_an_applied_push_newer_than_the_last_read_is_the_known_state():
    schema = {"sku": pl.String, "target_ref": pl.String, "quantity": pl.Int64, "seen_at": pl.Datetime("us", "UTC")}
    landed = pl.DataFrame([("A", "i@l", 7, NOW - timedelta(minutes=10)), ("B", "j@l", 2, NOW)], schema=schema,
                          orient="row")
    pushed = pl.DataFrame([("A", "i@l", 4, NOW - timedelta(minutes=5)), ("B", "j@l", 9, NOW - timedelta(hours=1))],
                          schema=schema, orient="row")
    known = latest_listings(landed, pushed)
    assert known["A"].quantity == 4  # our push came after the read
    assert known["B"].quantity == 2  # the read came after our push
