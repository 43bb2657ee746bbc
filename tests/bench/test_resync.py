"""bench.resync at quick size: every channel gets a full resync through its real pusher over real HTTP, the
channel ends at the targets, and a fraction of the ceiling is reported per channel (no timing asserts)."""

from __future__ import annotations

import pytest

from bench import resync


def test_quick_resync_converges_on_every_channel_and_reports_a_fraction():
    rows = {r.benchmark: r for r in resync.run("quick")}

    assert sorted(rows) == sorted(f"resync_fraction_of_ceiling_{c}" for c in resync.CHANNELS)
    for name, row in rows.items():
        d = row.details
        assert d["skus"] > 100, name
        assert d["applied"] == d["converged"] == d["skus"], (name, d)
        assert row.value > 0 and row.value == pytest.approx(d["skus_per_s"] / d["ceiling_skus_per_s"], rel=0.01)
        assert row.target == (">=", 0.9) and row.unit == "of ceiling"
        assert row.target_text.endswith(" and ≤ 1 × 429")  # "no 429 beyond the first" is part of the target
        assert d["http_429_beyond_first"] == max(0, d["http_429"] - 1)
        assert row.met == (row.value >= 0.9 and d["http_429"] <= 1)
    assert rows["resync_fraction_of_ceiling_amazon"].details["client_requests"] >= 5  # reads, document, feed, polls
