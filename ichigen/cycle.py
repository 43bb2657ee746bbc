"""One full cycle, in-process: the Dagster `full_cycle` job (ingest → dbt build → publish → reverse sync).

`ichigen once`, `ichigen demo` and the end-to-end test all run the cycle through the same Dagster definitions
the schedules use, so what they prove is what production runs.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ichigen.config import PROJECT_ROOT, Config
from ichigen.publish import last_build

INSTANCE_TEMPLATE = PROJECT_ROOT / "orchestration" / "instance" / "dagster.yaml"


@dataclass
class CycleSummary:
    success: bool
    landed: dict[str, tuple[int, int]] = field(default_factory=dict)  # "slug/entity" -> (rows, quarantined)
    models_built: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    published_version: str | None = None
    pushes: dict[str, dict[str, int]] = field(default_factory=dict)  # "<channel> <stock|price>" -> planned/applied/failed/refused
    guard_rail_refusals: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # "slug/entity" or "<channel>/<field>_push" -> seconds
    failure: str | None = None


def prepare_dagster_home(config: Config) -> Path:
    """A local instance under paths.dagster_home (SQLite storage), shared by `once` and the demo's UI."""
    home = config.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(INSTANCE_TEMPLATE, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def reset_world_data(config: Config) -> None:
    """Forget data that belongs to an earlier sandbox world (landing, push log, warehouse, serving copy)."""
    for path in (config.landing_dir, config.push_log_dir, config.warehouse_path.parent, config.serving_path.parent):
        if path.exists():
            shutil.rmtree(path)


def run_full_cycle(config: Config, instance=None, log_level: str = "WARNING") -> CycleSummary:
    import dagster as dg

    from orchestration.definitions import FULL_CYCLE_JOB, build_definitions

    defs = build_definitions(config)
    job = defs.resolve_job_def(FULL_CYCLE_JOB)
    result = job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )

    summary = CycleSummary(success=result.success)
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        key = "/".join(mat.asset_key.path)
        meta = {k: v.value for k, v in mat.metadata.items()}
        if "seconds" in meta:
            summary.seconds[key] = float(meta["seconds"])
        if "rows_landed" in meta:
            summary.landed[key] = (int(meta["rows_landed"]), int(meta["rows_quarantined"]))
        elif key == "serving_copy":
            summary.published_version = str(meta["version"])
            summary.models_built = int(meta["models_built"])
        elif key.endswith(("/stock_push", "/price_push")):
            channel, push = key.split("/")
            field = push.removesuffix("_push")
            summary.pushes[f"{channel} {field}"] = {k: int(meta[k]) for k in ("planned", "applied", "failed", "refused")}
            summary.guard_rail_refusals += list(meta.get("guard_rails") or [])
    # dbt's own results are the authority on tests (unit tests and singular tests have no asset of their own).
    report = last_build(config.warehouse_path)
    if report is not None:
        summary.models_built = summary.models_built or report.models_built
        summary.tests_passed, summary.tests_failed = report.tests_passed, report.tests_failed
    if not result.success:
        failures = [
            f"{e.step_key}: {_root_cause(e.event_specific_data.error)}"
            for e in result.all_events
            if e.is_step_failure and e.event_specific_data and e.event_specific_data.error
        ]
        summary.failure = "; ".join(failures) or "the full_cycle job failed"
    return summary


def _root_cause(error) -> str:
    """The product's own error message: what went wrong, not Dagster's wrappers around it."""
    while (error.cls_name or "").startswith("Dagster") and getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip().splitlines()[0]
