"""`python -m bench` at smoke size: the runner writes results.json rows with the required keys and positive
values, and prints the table. No timing assertions here: targets live in the benchmarks (bench/)."""

import json
import subprocess
import sys
from pathlib import Path

from bench import Result
from bench.__main__ import table

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"benchmark", "value", "unit", "target", "peer", "peer_value"}


def test_quick_run_writes_rows_with_the_required_keys(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "sandbox_generate_s", "--output", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    rows = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(rows, list) and rows
    assert [r["benchmark"] for r in rows] == ["sandbox_generate_s"]
    for row in rows:
        assert REQUIRED <= set(row), row
        assert isinstance(row["value"], float) and row["value"] > 0, row
        assert row["unit"].startswith("s"), row
        assert row["target"] == "< 60.0", row
    assert "sandbox_generate_s" in done.stdout and "cores" in done.stdout


def test_an_unknown_benchmark_name_is_refused():
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "no_such_bench"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_ratio_and_target_in_the_table():
    rows = [Result("ingest_rows_per_s", 300_000.0, "rows/s", (">=", 200_000.0), "dlt", 20_000.0),
            Result("incremental_cycle_s", 20.0, "s", ("<", 15.0))]
    assert rows[0].ratio == 15.0 and rows[0].met is True
    assert rows[1].ratio is None and rows[1].met is False
    text = table(rows)
    assert "15.00×" in text and "NO" in text and ">= 200,000" in text
