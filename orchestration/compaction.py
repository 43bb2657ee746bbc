"""The `compact_landing` job: merges the landing zone's small batches on `schedules.compaction` (DECISIONS.md D82,
D161). An op job, not an asset: it changes how batches are stored, not what any asset holds, so it stays out of
`full_cycle` (which selects every asset). What it merged shows on the run (op metadata) and, per landed entity,
as an observation on the `<slug>/<entity>` asset."""

from collections import defaultdict
from datetime import timedelta

import dagster as dg

from ichigen.config import Config
from ingestion.landing import CompactionRun, LandingZone, compact_landing

COMPACTION_JOB = "compact_landing"


def compaction_metadata(run: CompactionRun) -> dict[str, object]:
    per_entity: dict[str, dict[str, int]] = defaultdict(lambda: {"batches_merged": 0, "batches_written": 0,
                                                                 "rows": 0})
    for done in run.merged:
        entry = per_entity[f"{done.source}/{done.entity}"]
        entry["batches_merged"] += len(done.replaced)
        entry["batches_written"] += 1
        entry["rows"] += done.row_count
    return {
        "batches_merged": run.batches_merged,
        "batches_written": len(run.merged),
        "rows_rewritten": sum(done.row_count for done in run.merged),
        "files_removed": run.removed,
        "leftovers_removed": run.leftovers_removed,
        "originals_pending": run.pending,
        "removal": "skipped: " + run.skipped if run.skipped else "done",
        "lock_wait_max_s": round(max(run.lock_waits, default=0.0), 4),
        "lock_hold_max_ms": round(1000 * max(run.lock_holds, default=0.0), 2),
        "per_entity": dg.MetadataValue.json(dict(per_entity)),
    }


def build_compaction_job(config: Config, landed_keys: set[dg.AssetKey]) -> dg.JobDefinition:
    """`landed_keys`: the `<slug>/<entity>` asset keys that exist, to observe the entities compacted."""

    @dg.op(
        name="merge_small_batches",
        description="Merge landed batches older than compaction.older_than_minutes into one batch per entity, "
                    "date and mode; remove the originals under the landing lock (or leave them for the next run).",
        out=dg.Out(dg.Nothing),
    )
    def compact(context: dg.OpExecutionContext):
        settings = config.compaction
        run = compact_landing(LandingZone(config.landing_dir), older_than=timedelta(minutes=settings.older_than_minutes),
                              max_rows=settings.max_rows, lock_wait_seconds=settings.lock_wait_seconds)
        meta = compaction_metadata(run)
        for entity, counts in meta["per_entity"].value.items():
            key = dg.AssetKey(entity.split("/"))
            if key in landed_keys:
                context.log_event(dg.AssetObservation(asset_key=key, metadata={"compacted": dg.MetadataValue.json(counts)}))
        if run.skipped:
            context.log.warning(f"originals not removed ({run.pending} left for the next run): {run.skipped}")
        context.log.info(f"merged {run.batches_merged} batches into {len(run.merged)}, removed {run.removed} files")
        yield dg.Output(None, metadata=meta)

    @dg.job(name=COMPACTION_JOB, description="Merge small landed batches (pushes land one event a file), hourly by "
                                             "default; readers see the same rows (D82, D161).")
    def compaction_job():
        compact()

    return compaction_job
