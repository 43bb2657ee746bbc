"""Dagster definitions: assets, the full-cycle job, schedules per data type. Load with
`dagster dev -m orchestration.definitions` (the demo does) or `build_definitions(config)` in tests."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtProject

from ichigen.config import Config, load_config
from ichigen.warehouse import DBT_PROJECT_DIR, DBT_TARGET_PATH, export_dbt_env, manifest_path
from orchestration import warm_dbt
from orchestration.assets import (
    IchigenDbtCli,
    build_dbt_assets,
    build_erp_intake_asset,
    build_landing_asset,
    build_publish_asset,
    build_sync_asset,
    ingest_asset_keys,
)
from orchestration.compaction import build_compaction_job
from orchestration.inbox_sensor import build_inbox_sensor

FULL_CYCLE_JOB = "full_cycle"


def dbt_project(config: Config) -> DbtProject:
    """The dbt project, its manifest (re)parsed when missing or older than the project's files."""
    export_dbt_env(config)
    ensure_manifest()
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=DBT_TARGET_PATH)


def ensure_manifest() -> None:
    """Parse under a lock into a private folder, then swap the manifest in atomically.

    Several processes load these definitions at once (test workers, the Dagster webserver and daemon); without
    the lock two parses race, and without the swap a reader can meet a half-written manifest.
    """
    target = manifest_path().parent
    target.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".ichigen-parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _manifest_is_stale():
            return
        scratch = target.parent / f"ichigen-parse-{os.getpid()}"
        try:
            subprocess.run(
                [dbt_executable(), "parse", "--project-dir", str(DBT_PROJECT_DIR),
                 "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(scratch), "--quiet"],
                check=True,
            )
            os.replace(scratch / "manifest.json", manifest_path())
            # the parse state too: the dbt asset starts each build from it (orchestration.assets.reuse_parse)
            if (scratch / "partial_parse.msgpack").exists():
                os.replace(scratch / "partial_parse.msgpack", manifest_path().parent / "partial_parse.msgpack")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _manifest_is_stale() -> bool:
    """True when no manifest exists or any file of the dbt project changed after it was parsed."""
    manifest = manifest_path()
    if not manifest.exists():
        return True
    parsed_at = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "tests", "analyses", "snapshots"):
        sources += [p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return any(p.exists() and p.stat().st_mtime > parsed_at for p in sources)


def dbt_executable() -> str:
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def build_definitions(config: Config) -> dg.Definitions:
    project = dbt_project(config)
    landing = build_landing_asset(config)
    landed_keys = ingest_asset_keys()
    warehouse = build_dbt_assets(config, project)
    serving = build_publish_asset(config, warehouse)
    channels = [c for c in ("shopify", "rakuten", "amazon", "yahoo") if getattr(config.channels, c).enabled]
    pushes = [build_sync_asset(config, channels)] if channels else []

    full_cycle = dg.define_asset_job(
        FULL_CYCLE_JOB,
        selection=dg.AssetSelection.all(),
        description="ingest every source → dbt build (tests as checks) → publish → reverse sync",
    )
    ingest_stock = dg.define_asset_job(
        "ingest_stock",
        selection=dg.AssetSelection.assets(*[k for k in landed_keys if k.path[-1] in ("inventory_levels", "stock")]),
    )
    ingest_orders = dg.define_asset_job(
        "ingest_orders", selection=dg.AssetSelection.assets(*[k for k in landed_keys if k.path[-1] == "orders"])
    )
    ingest_products = dg.define_asset_job(
        "ingest_products",
        selection=dg.AssetSelection.assets(
            *[k for k in landed_keys if k.path[-1] in ("products", "product_variants", "warehouses")]
        ),
    )
    compaction = build_compaction_job(config, set(landed_keys))
    running = dg.DefaultScheduleStatus.RUNNING
    schedules = [
        dg.ScheduleDefinition(job=full_cycle, cron_schedule=config.schedules.full_cycle, default_status=running),
        dg.ScheduleDefinition(job=ingest_orders, cron_schedule=config.schedules.orders, default_status=running),
        dg.ScheduleDefinition(job=ingest_stock, cron_schedule=config.schedules.stock, default_status=running),
        dg.ScheduleDefinition(job=ingest_products, cron_schedule=config.schedules.products, default_status=running),
        dg.ScheduleDefinition(job=compaction, cron_schedule=config.schedules.compaction, default_status=running),
    ]
    return dg.Definitions(
        assets=[landing, warehouse, serving, *pushes, build_erp_intake_asset(config)],
        jobs=[full_cycle, ingest_stock, ingest_orders, ingest_products, compaction],
        schedules=schedules,
        sensors=[build_inbox_sensor(config)],
        resources={"dbt": IchigenDbtCli(project_dir=project, profiles_dir=str(DBT_PROJECT_DIR),
                                         dbt_executable=warm_dbt.launcher(dbt_executable()))},
    )


def _load() -> dg.Definitions:
    return build_definitions(load_config())


defs = _load()
