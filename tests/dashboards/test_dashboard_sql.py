"""The SQL page: read-only queries on the serving copy, timeout, examples, results, the data dictionary.

GIVEN the sample serving copy, WHEN a query runs on the SQL page, THEN its rows equal the same query run
independently; a write is refused with a clear message and cannot happen even on the raw connection; a slow
query is cut off by the timeout; the dictionary comes from dbt's manifest, else from the copy's schema.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import sql_runner

SQL_PAGE = "views/sql.py"
SLOW = "select count(*) from range(100000000) a, range(100000) b where a.range * b.range % 7 = 3"


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture
def sql_page(serving: Path, run_app) -> AppTest:
    at = run_app()
    at.switch_page(SQL_PAGE).run()
    assert_clean(at)
    return at


def run_sql(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="sql_text").set_value(sql)
    return at.button(key="sql_run").click().run()


def test_a_query_shows_what_sql_gives(sql_page: AppTest, serving: Path, kit) -> None:
    at = sql_page
    assert [t.value for t in at.title] == ["SQL"]
    query = "select status, count(*) as n, sum(total_jpy) as total from fct_orders group by status order by status"
    run_sql(at, query)
    assert_clean(at)
    (table,) = at.tabs[0].dataframe
    expected = kit.all(serving, query)
    assert [tuple(r) for r in table.value.itertuples(index=False)] == expected
    assert any(c.value.startswith(f"{len(expected)}行（") for c in at.caption)
    assert [b.label for b in at.get("download_button")] == ["CSVをダウンロード"]

    # As a bar chart: the chart replaces the table, the CSV stays.
    at.radio(key="sql_view").set_value("bar").run()
    assert_clean(at)
    assert not at.tabs[0].dataframe
    assert at.selectbox(key="sql_chart_x").value == "status"
    assert at.multiselect(key="sql_chart_y").value == ["n"]


def test_every_example_query_runs(sql_page: AppTest) -> None:
    at = sql_page
    for key in ("daily_sales", "backlog", "stockouts", "targets", "top_skus"):
        at.selectbox(key="sql_example").set_value(key).run()
        at.button(key="sql_run").click().run()
        assert_clean(at)
        assert at.tabs[0].dataframe, key
    # The labels are translated.
    at.sidebar.radio(key="lang").set_value("en").run()
    assert_clean(at)
    assert "Top 10 SKUs by units sold" in at.selectbox(key="sql_example").options
    assert [b.label for b in at.button] == ["Run"]


def test_writes_are_refused_with_a_clear_message(sql_page: AppTest, serving: Path, kit) -> None:
    at = sql_page
    (before,) = kit.one(serving, "select count(*) from fct_orders")
    for statement in (
        "insert into fct_orders select * from fct_orders",
        "delete from fct_orders",
        "create table memory.main.scratch as select 1",
        "select 1; drop table fct_orders",
        "copy fct_orders to '/tmp/ichigen_leak.csv'",
    ):
        run_sql(at, statement)
        assert not at.exception
        (error,) = at.error
        assert error.value.startswith("公開データは読み取り専用です"), (statement, error.value)
    assert kit.one(serving, "select count(*) from fct_orders") == (before,)
    assert not Path("/tmp/ichigen_leak.csv").exists()


def test_the_connection_itself_is_read_only_and_locked(serving: Path) -> None:
    """Even past the statement check, the connection cannot write, read files or unlock itself."""
    con = sql_runner.connect(serving)
    try:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("insert into fct_orders select * from fct_orders")
        with pytest.raises(duckdb.Error, match="disabled"):
            con.execute("copy (select 1) to '/tmp/ichigen_leak2.csv'")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("set enable_external_access = true")
    finally:
        con.close()


def test_a_long_query_is_cut_off_with_a_message(serving: Path, run_app, monkeypatch) -> None:
    monkeypatch.setenv("ICHIGEN_SQL_TIMEOUT_S", "0.5")
    at = run_app()
    at.switch_page(SQL_PAGE).run()
    started = time.monotonic()
    run_sql(at, SLOW)
    assert time.monotonic() - started < 10
    assert not at.exception and not at.error
    (warning,) = at.warning
    assert (
        warning.value == "クエリが0.5秒を超えたため中断しました。条件を絞るか、集計してから実行してください。"
    )
    # The page stays usable: the next query runs.
    run_sql(at, "select 42 as answer")
    assert_clean(at)
    assert at.tabs[0].dataframe[0].value["answer"].tolist() == [42]


def test_runner_timeout_and_row_cap(serving: Path) -> None:
    with pytest.raises(sql_runner.QueryTimeout):
        sql_runner.run(serving, SLOW, timeout_s=0.3)
    result = sql_runner.run(serving, "select * from range(25)", max_rows=10)
    assert result.truncated and result.frame.height == 10
    assert not sql_runner.run(serving, "select * from range(10)", max_rows=10).truncated


def test_dictionary_from_the_dbt_manifest(serving: Path, run_app, tmp_path: Path, monkeypatch) -> None:
    manifest = {
        "nodes": {
            "model.ichigen.fct_orders": {
                "resource_type": "model",
                "name": "fct_orders",
                "schema": "main",
                "fqn": ["ichigen", "marts", "sales", "fct_orders"],
                "description": "One row per channel order.",
                "columns": {
                    "status": {
                        "name": "status",
                        "description": "Unified status (入金待ち …).",
                        "data_type": None,
                    }
                },
            },
            "model.ichigen.stg_push_log__attempts": {
                "resource_type": "model",
                "name": "stg_push_log__attempts",
                "schema": "staging",
                "fqn": ["ichigen", "staging", "push_log", "stg_push_log__attempts"],
                "description": "One row per push attempt.",
                "columns": {},
            },
            "test.ichigen.x": {"resource_type": "test", "name": "x"},
        }
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    monkeypatch.setenv("ICHIGEN_DBT_MANIFEST", str(path))
    at = run_app()
    at.switch_page(SQL_PAGE).run()
    assert_clean(at)
    assert [e.label for e in at.expander] == [
        "`fct_orders` One row per channel order.",
        "`staging.stg_push_log__attempts` One row per push attempt.",
    ]
    assert [s.value for s in at.subheader] == ["マート（分析用）", "ステージング"]
    columns = at.expander[0].dataframe[0].value
    status = columns[columns["列"] == "status"].iloc[0]
    assert (status["型"], status["説明"]) == ("VARCHAR", "Unified status (入金待ち …).")
    assert "units" in set(columns["列"])  # in the copy, not documented: still listed


def test_dictionary_falls_back_to_the_schema(
    serving: Path, run_app, tmp_path: Path, monkeypatch, kit
) -> None:
    monkeypatch.setenv("ICHIGEN_DBT_MANIFEST", str(tmp_path / "missing.json"))
    at = run_app()
    at.switch_page(SQL_PAGE).run()
    assert_clean(at)
    assert any(c.value.startswith("dbt のドキュメント（manifest.json）が見つからない") for c in at.caption)
    tables = kit.all(
        serving, "select distinct table_name from information_schema.tables where table_catalog = 's'"
    )
    assert len(at.expander) == len(tables)
