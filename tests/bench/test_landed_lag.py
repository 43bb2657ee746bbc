"""The sale → landed bench at its smallest: both landings (the live one and the polls-only peer) run side by
side on the four-channel sandbox at documented rates, and every order accepted is measured. No timing targets
asserted (they live in bench/)."""

from __future__ import annotations

from bench.landed_lag import PUSH_CHANNELS, run_world

TINY = {"world": {"skus": 10, "customers": 10, "history_days": 1, "orders_per_day": 3},
        "seconds": 8.0, "drain": 8.0, "simulate_every": 1.5, "max_orders": 1}


def test_every_accepted_order_is_measured_on_every_channel_and_the_pushes_land_targeted_batches():
    got = run_world(TINY, seed=3)

    assert got["live_errors"] == [] and got["peer_errors"] == []
    assert got["orders_accepted"] == sum(got["live"][c]["orders"] for c in got["live"])
    assert got["live"]["shopify"]["orders"] > 0, "the simulator places a shop order every tick"
    for channel in PUSH_CHANNELS:  # their polls are off in the live landing: whatever landed came by the push
        assert set(got["live"][channel]["landed_by"]) <= {"targeted"}
        assert got["peer_polls_only"][channel]["orders"] == got["live"][channel]["orders"]
    shop = got["live"]["shopify"]
    assert shop["censored"] < shop["orders"] and 0 <= shop["p50_s"] <= shop["p95_s"] <= shop["max_s"]
    assert got["webhook_deliveries"].get("delivered", 0) >= shop["orders"] - shop["censored"]
