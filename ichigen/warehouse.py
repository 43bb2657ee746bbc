"""How the product reaches its dbt project: paths and environment that dbt's profile and sources read."""

from __future__ import annotations

import os
from pathlib import Path

from ichigen.config import PROJECT_ROOT, Config

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# The product's own dbt target folder, apart from `target/` of hand-run dbt commands: a partial-parse file
# written by `dbt --project-dir dbt_project` (a relative root) breaks seeds when reused from another folder.
DBT_TARGET_PATH = "target/ichigen"
# What every production build runs (the warehouse asset; the full-build benchmark measures the same command):
# models, seeds and data tests. Unit tests check logic on static inputs, so they run in CI (tests/dbt), not in
# every cycle (dbt's own advice, DECISIONS.md D232). No debug log file: dbt formats every event a second time
# for it (D172); the events come from dbt's JSON stdout either way.
PRODUCTION_BUILD_ARGS = ("build", "--exclude-resource-type", "unit_test", "--log-level-file", "none")


def dbt_env(config: Config) -> dict[str, str]:
    """Environment variables the dbt profile and sources read (DECISIONS.md D6)."""
    return {
        "ICHIGEN_WAREHOUSE_PATH": str(config.warehouse_path),
        "ICHIGEN_LANDING_ROOT": str(config.landing_dir),
        "ICHIGEN_PUSH_LOG_ROOT": str(config.push_log_dir),
    }


def export_dbt_env(config: Config) -> None:
    """Put the dbt environment into this process, so dbt subprocesses started from it inherit it."""
    os.environ.update(dbt_env(config))
    config.warehouse_path.parent.mkdir(parents=True, exist_ok=True)


def manifest_path() -> Path:
    return DBT_PROJECT_DIR / DBT_TARGET_PATH / "manifest.json"
