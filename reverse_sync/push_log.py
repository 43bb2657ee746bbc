"""The push log: one row per SKU × channel × field × attempt, as Parquet that dbt reads as a source (D7).

Each sync run writes one immutable file, atomically, so analysts can join pushes with the marts in SQL and
the planner can treat an applied push as the channel's newest known state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ingestion.landing import write_parquet_atomic

PUSH_LOG_SCHEMA = {
    "run_id": pl.String,
    "channel": pl.String,
    "field": pl.String,
    "sku": pl.String,
    "target_ref": pl.String,
    "old_value": pl.Int64,
    "new_value": pl.Int64,
    "status": pl.String,  # applied | failed | refused | dry_run | stale | held (ERP intake, D40)
    "error": pl.String,
    "planned_at": pl.Datetime("us", "UTC"),
    "pushed_at": pl.Datetime("us", "UTC"),
    "attempt": pl.Int64,
}
STATUSES = ("applied", "failed", "refused", "dry_run", "stale", "held")


@dataclass(frozen=True)
class PushRecord:
    run_id: str
    channel: str
    field: str
    sku: str
    target_ref: str
    old_value: int
    new_value: int
    status: str
    error: str | None
    planned_at: datetime
    pushed_at: datetime | None
    attempt: int

    @classmethod
    def of_change(cls, run_id: str, change: Any, status: str, error: str | None, planned_at: datetime,
                  attempt: int = 1) -> PushRecord:
        """The row of a planned change pushed as planned (old → new), stamped now."""
        return cls(run_id=run_id, channel=change.channel, field=change.field, sku=change.sku,
                   target_ref=change.target_ref, old_value=change.old_value, new_value=change.new_value,
                   status=status, error=error, planned_at=planned_at, pushed_at=datetime.now(UTC), attempt=attempt)


def write_push_log(root: Path, records: list[PushRecord]) -> Path | None:
    """Write one run's records as an immutable batch; returns the file, or None when there is nothing."""
    if not records:
        return None
    bad = {r.status for r in records} - set(STATUSES)
    if bad:
        raise ValueError(f"unknown push status {sorted(bad)}; allowed: {STATUSES}")
    first = records[0]
    frame = pl.DataFrame([r.__dict__ for r in records], schema=PUSH_LOG_SCHEMA)
    folder = root / first.channel / f"date={first.planned_at:%Y-%m-%d}"
    return write_parquet_atomic(frame, folder / f"{first.run_id}.parquet")


def read_push_log(root: Path, channel: str) -> pl.DataFrame:
    files = sorted((root / channel).glob("date=*/*.parquet"))
    if not files:
        return pl.DataFrame(schema=PUSH_LOG_SCHEMA)
    return pl.read_parquet(files, schema=PUSH_LOG_SCHEMA) if len(files) == 1 else pl.concat(
        [pl.read_parquet(f) for f in files], how="vertical_relaxed"
    )


def applied_state(root: Path, channel: str, field: str) -> pl.DataFrame:
    """What the channel accepted from us: sku, target_ref, quantity, seen_at (for the planner)."""
    log = read_push_log(root, channel)
    return log.filter((pl.col("status") == "applied") & (pl.col("field") == field)).select(
        "sku", "target_ref", pl.col("new_value").alias("quantity"), pl.col("pushed_at").alias("seen_at")
    )
