"""The stock-lag bench at its smallest: one arm of each kind runs end to end on the four-channel sandbox and
reports lags, oversells and stock-out minutes from the truth. No timing targets asserted (they live in bench/)."""

from __future__ import annotations

from bench.stock_lag import percentile, run_arm

TINY = {"world": {"skus": 10, "customers": 10, "history_days": 1, "orders_per_day": 3},
        "period": 6.0, "periods": 1, "simulate_every": 1.5, "max_orders": 2}


def test_the_fast_path_arm_measures_order_lines_and_reports_the_truth():
    arm = run_arm(TINY, fast=True, seed=3)

    assert arm["lines_measured"] > 0 and 0 <= arm["censored"] <= arm["lines_measured"]
    assert 0 <= arm["p50_s"] <= arm["p95_s"] < 60
    assert arm["fast_path_ticks"] >= 2 and arm["fast_path_errors"] == [] and arm["errors"] == []
    assert set(arm["per_channel"]) == {"shopify", "rakuten", "amazon", "yahoo"}
    assert arm["oversells"] == sum(c["oversells"] for c in arm["per_channel"].values())


def test_percentiles():
    assert percentile([], 95) == 0.0 and percentile([3.0], 95) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 50) == 50.5
