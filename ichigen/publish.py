"""Write-audit-publish: swap in a read-only serving copy of the warehouse after a build whose tests passed.

dbt writes the warehouse file (write); the build's results decide (audit); only then is the file copied to a
temp name beside the serving copy and `os.replace`d onto it (publish). A reader holding the old serving file
open keeps reading the old version; a new connection sees the new one. `published.json` beside the serving
copy names the version, so readers know when to reconnect.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb


class PublishRefused(RuntimeError):
    """The build did not pass its tests; the previous serving copy stays in place."""


@dataclass(frozen=True)
class BuildReport:
    """What one dbt build did, as the audit step sees it."""

    success: bool
    models_built: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    tests_warned: int = 0
    errors: int = 0
    finished_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    failures: tuple[str, ...] = ()

    @classmethod
    def from_run_results(cls, run_results: dict) -> BuildReport:
        """Summarise dbt's `run_results.json`."""
        models = passed = failed = warned = errors = 0
        failures: list[str] = []
        for result in run_results.get("results", []):
            uid: str = result.get("unique_id", "")
            status = result.get("status")
            if uid.startswith(("test.", "unit_test.")):
                if status == "pass":
                    passed += 1
                elif status == "warn":
                    warned += 1
                else:
                    failed += 1
                    failures.append(f"{uid}: {status}")
            elif uid.startswith(("model.", "seed.", "snapshot.")):
                if status == "success":
                    models += uid.startswith("model.")
                else:
                    errors += 1
                    failures.append(f"{uid}: {status}")
        return cls(
            success=failed == 0 and errors == 0,
            models_built=models,
            tests_passed=passed,
            tests_failed=failed,
            tests_warned=warned,
            errors=errors,
            failures=tuple(failures),
        )


def build_report_path(warehouse_path: Path) -> Path:
    return warehouse_path.parent / "last_build.json"


def record_build(warehouse_path: Path, report: BuildReport) -> None:
    """Remember the latest build's outcome (reverse sync refuses to push after a failed build)."""
    path = build_report_path(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(report), indent=2))
    os.replace(tmp, path)


def last_build(warehouse_path: Path) -> BuildReport | None:
    path = build_report_path(warehouse_path)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["failures"] = tuple(data.get("failures", ()))
    return BuildReport(**data)


def manifest_path(serving_path: Path) -> Path:
    return serving_path.parent / "published.json"


def published_version(serving_path: Path) -> dict | None:
    """The manifest of the serving copy now in place, or None before the first publish."""
    path = manifest_path(serving_path)
    return json.loads(path.read_text()) if path.exists() else None


def publish(warehouse_path: Path, serving_path: Path, report: BuildReport) -> dict:
    """Copy the warehouse to the serving path atomically, if and only if the build passed."""
    if not report.success:
        raise PublishRefused(
            f"build did not pass ({report.tests_failed} failed tests, {report.errors} errors); "
            f"the serving copy stays at its previous version. First failures: {list(report.failures[:5])}"
        )
    if not warehouse_path.exists():
        raise PublishRefused(f"no warehouse file at {warehouse_path}: nothing to publish")

    # Make the file self-contained (no pending WAL) before copying. dbt has exited, so we are the only user.
    con = duckdb.connect(str(warehouse_path))
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()

    serving_path.parent.mkdir(parents=True, exist_ok=True)
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]
    tmp = serving_path.parent / f".{serving_path.name}.{version}.tmp"
    shutil.copyfile(warehouse_path, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, serving_path)

    manifest = {
        "version": version,
        "published_at": datetime.now(UTC).isoformat(),
        "models_built": report.models_built,
        "tests_passed": report.tests_passed,
        "tests_failed": report.tests_failed,
    }
    mtmp = manifest_path(serving_path).with_suffix(".tmp")
    mtmp.write_text(json.dumps(manifest, indent=2))
    os.replace(mtmp, manifest_path(serving_path))
    return manifest
