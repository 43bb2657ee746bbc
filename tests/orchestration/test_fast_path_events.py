"""The fast path's pushes are visible in Dagster as runless materialisations of `<channel>/stock_push` (D61)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from orchestration.fast_path_events import report_tick
from reverse_sync.fast_path import TickResult
from reverse_sync.guard import GuardVerdict
from reverse_sync.push_log import PushRecord
from reverse_sync.stock import SyncResult

AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def applied(run_id: str, channel: str, sku: str, old: int, new: int) -> PushRecord:
    return PushRecord(run_id, channel, "stock", sku, f"ref-{sku}", old, new, "applied", None, AT, AT, 1)


def test_a_tick_that_pushed_records_one_materialisation_per_channel():
    instance = dg.DagsterInstance.ephemeral()
    run_id = "20261123T030000000000Z-yahoo-fastpath-abc123"
    push = SyncResult("yahoo", run_id, False, 2, 0, GuardVerdict(True),
                      [applied(run_id, "yahoo", "TS-1", 5, 3), applied(run_id, "yahoo", "TS-2", 4, 2)])
    tick = TickResult(AT, seconds=0.4, unpublished_orders=2, pushes={"yahoo": push})

    assert report_tick(instance, tick) == 1
    assert report_tick(instance, TickResult(AT)) == 0  # nothing pushed: nothing recorded

    event = instance.get_latest_materialization_event(dg.AssetKey(["yahoo", "stock_push"]))
    assert event is not None and event.run_id == ""  # runless
    metadata = event.asset_materialization.metadata
    assert metadata["path"].value == "fast path" and metadata["run_id"].value == run_id
    assert metadata["applied"].value == 2 and metadata["skus"].value == ["TS-1", "TS-2"]
    assert instance.get_latest_materialization_event(dg.AssetKey(["shopify", "stock_push"])) is None
