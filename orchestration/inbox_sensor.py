"""The inbox sensor: when settled files wait in `<inbox>/<slug>/<entity>/`, materialise that file source's
ingest asset (`pos/sales`, `pos/members`, `b2b/orders`, `carrier/trackings`). Thin: what counts as a waiting
file is `ingestion.files.pending_files`; the asset does the work (and moves the files on)."""

from __future__ import annotations

import hashlib

import dagster as dg

from ichigen.config import Config
from ingestion.files import KINDS, inbox_state

INBOX_SENSOR = "file_inbox"


def file_asset_keys() -> list[dg.AssetKey]:
    return [dg.AssetKey([source, entity]) for source, entity in KINDS]


def inbox_run_requests(config: Config) -> list[dg.RunRequest]:
    """One run request per file source with waiting files. The run key is a hash of the waiting files' names
    and modification times, so the same waiting set triggers once while a run is queued, and a new drop
    (or a file that failed to move) triggers again."""
    requests = []
    for source, entity in KINDS:
        waiting = inbox_state(config, source, entity)
        if not waiting:
            continue
        fingerprint = hashlib.sha256(repr(sorted(waiting)).encode()).hexdigest()[:16]
        requests.append(dg.RunRequest(
            run_key=f"{source}/{entity}:{fingerprint}",
            asset_selection=[dg.AssetKey([source, entity])],
            tags={"ichigen/inbox_files": str(len(waiting))},
        ))
    return requests


def build_inbox_sensor(config: Config) -> dg.SensorDefinition:
    @dg.sensor(
        name=INBOX_SENSOR,
        target=file_asset_keys(),
        minimum_interval_seconds=config.files.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Files dropped into {config.inbox_dir}/<slug>/<entity>/ → that source's ingest asset.",
    )
    def file_inbox(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        requests = inbox_run_requests(config)
        if not requests:
            return dg.SkipReason(f"no settled files in {config.inbox_dir}")
        return dg.SensorResult(run_requests=requests)

    return file_inbox
