"""Write-audit-publish: only a passing build replaces the serving copy; readers never block the publisher."""

import json
import shutil
import subprocess
import sys
import threading

import duckdb
import pytest

from ichigen.publish import BuildReport, PublishRefused, publish, published_version


def make_warehouse(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create or replace table fct_daily_sales as select ? as gross_sales_jpy", [value])
    con.close()


def read_value(path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select gross_sales_jpy from fct_daily_sales").fetchone()[0]
    finally:
        con.close()


PASSED = BuildReport(success=True, models_built=5, tests_passed=20)
FAILED = BuildReport(success=False, models_built=5, tests_passed=19, tests_failed=1, failures=("test.x: fail",))


def test_a_passing_build_is_published_with_a_new_version(tmp_path):
    warehouse, serving = tmp_path / "w" / "warehouse.duckdb", tmp_path / "s" / "ichigen.duckdb"
    make_warehouse(warehouse, 100)
    first = publish(warehouse, serving, PASSED)
    assert read_value(serving) == 100
    make_warehouse(warehouse, 200)
    second = publish(warehouse, serving, PASSED)
    assert read_value(serving) == 200
    assert second["version"] != first["version"]
    assert published_version(serving)["version"] == second["version"]
    assert not list(serving.parent.glob("*.tmp")), "no temp file is left behind"


def test_a_failed_build_leaves_the_previous_serving_copy(tmp_path):
    warehouse, serving = tmp_path / "w" / "warehouse.duckdb", tmp_path / "s" / "ichigen.duckdb"
    make_warehouse(warehouse, 100)
    good = publish(warehouse, serving, PASSED)
    make_warehouse(warehouse, 999)
    with pytest.raises(PublishRefused, match="1 failed tests"):
        publish(warehouse, serving, FAILED)
    assert read_value(serving) == 100
    assert published_version(serving)["version"] == good["version"]


def test_a_reader_holding_the_serving_copy_does_not_block_a_publish(tmp_path):
    warehouse, serving = tmp_path / "w" / "warehouse.duckdb", tmp_path / "s" / "ichigen.duckdb"
    make_warehouse(warehouse, 1)
    publish(warehouse, serving, PASSED)
    reader = duckdb.connect(str(serving), read_only=True)
    try:
        make_warehouse(warehouse, 2)
        publish(warehouse, serving, PASSED)  # must not wait for the reader
        assert reader.execute("select gross_sales_jpy from fct_daily_sales").fetchone()[0] == 1
        # Another process (an analyst's CLI, the dashboards) opening the path now gets the new version.
        assert read_value_in_another_process(serving) == 2
    finally:
        reader.close()
    # In this process DuckDB reuses an open database per path, so readers close and reconnect on a new version.
    assert read_value(serving) == 2


def test_a_reader_gets_through_while_a_publish_is_running(tmp_path, monkeypatch):
    """GIVEN a reader holding the serving copy open, WHEN a publish is half-way (the new copy written beside
    the serving file, not yet renamed onto it), THEN a reader in another process opens and reads the serving
    copy at once (the old version), and the publish then completes while the first reader is still open."""
    warehouse, serving = tmp_path / "w" / "warehouse.duckdb", tmp_path / "s" / "ichigen.duckdb"
    make_warehouse(warehouse, 1)
    publish(warehouse, serving, PASSED)
    make_warehouse(warehouse, 2)
    seen_mid_publish: list[int] = []
    real_copyfile = shutil.copyfile

    def copy_then_let_a_reader_in(src, dst, *args, **kwargs):
        out = real_copyfile(src, dst, *args, **kwargs)
        if str(dst).endswith(".tmp"):  # publish's copy: the publish is now running, the serving file not yet replaced
            seen_mid_publish.append(read_value_in_another_process(serving))
        return out

    monkeypatch.setattr(shutil, "copyfile", copy_then_let_a_reader_in)
    held = duckdb.connect(str(serving), read_only=True)
    try:
        done: list[dict] = []
        publisher = threading.Thread(target=lambda: done.append(publish(warehouse, serving, PASSED)))
        publisher.start()
        publisher.join(timeout=120)
        assert not publisher.is_alive() and done, "the publish waited for a reader"
        assert seen_mid_publish == [1]  # a reader during the publish got the old version, not an error or a wait
        assert held.execute("select gross_sales_jpy from fct_daily_sales").fetchone()[0] == 1
    finally:
        held.close()
    assert read_value_in_another_process(serving) == 2
    assert published_version(serving)["version"] == done[0]["version"]


def read_value_in_another_process(path) -> int:
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('select gross_sales_jpy from fct_daily_sales').fetchone()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout.strip())


def test_build_report_counts_dbt_run_results():
    run_results = {"results": [
        {"unique_id": "model.ichigen.fct_orders", "status": "success"},
        {"unique_id": "seed.ichigen.order_status_map", "status": "success"},
        {"unique_id": "test.ichigen.not_null_x", "status": "pass"},
        {"unique_id": "unit_test.ichigen.t.u", "status": "pass"},
        {"unique_id": "test.ichigen.unique_y", "status": "fail"},
        {"unique_id": "model.ichigen.fct_daily_sales", "status": "skipped"},
    ]}
    report = BuildReport.from_run_results(run_results)
    assert (report.models_built, report.tests_passed, report.tests_failed, report.errors) == (1, 2, 1, 1)
    assert not report.success
    assert json.dumps(report.failures)
