"""The stock fast path's work in Dagster (D61): runless materialisations of `<channel>/stock_push`.

The worker (reverse_sync.fast_path) never launches a run — a launched run starts 16–20 s late. Each tick that
pushed reports one AssetMaterialization per channel straight into the instance's event log, so the asset's
history in the UI shows fast-path pushes beside the scheduled ones.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from reverse_sync.fast_path import TickResult
from reverse_sync.stock import SyncResult


def push_metadata(result: SyncResult) -> dict[str, Any]:
    """What a stock or price push reports to Dagster, scheduled or fast path."""
    return {
        "run_id": result.run_id,
        "planned": result.planned,
        "unchanged": result.unchanged,
        "applied": result.applied,
        "failed": result.failed,
        "refused": result.refused,
        "guard_rails": dg.MetadataValue.json(list(result.verdict.reasons)),
    }


def tick_materializations(tick: TickResult) -> list[dg.AssetMaterialization]:
    return [
        dg.AssetMaterialization(
            asset_key=dg.AssetKey([channel, "stock_push"]),
            description="fast path: published target − unpublished sales (D60)",
            metadata={**push_metadata(push), "path": "fast path",
                      "skus": dg.MetadataValue.json(sorted({r.sku for r in push.records})),
                      "tick_seconds": round(tick.seconds, 3)},
        )
        for channel, push in sorted(tick.pushes.items())
    ]


def report_tick(instance: dg.DagsterInstance, tick: TickResult) -> int:
    """Record the tick's pushes in `instance` (runless events); returns how many were recorded."""
    events = tick_materializations(tick)
    for event in events:
        instance.report_runless_asset_event(event)
    return len(events)
