"""The Sales page, driven through the router (`dashboards/app.py`) with Streamlit's AppTest.

Every figure the page shows is compared with the same figure computed in SQL from the serving file.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def test_router_shows_sales_with_the_figures_sql_gives(serving: Path, run_app, kit) -> None:
    at = run_app()
    assert_clean(at)
    assert [t.value for t in at.title] == ["売上"]

    # Default: the last 30 JST days, both channels; the previous period is the 30 days before.
    today = kit.today()
    start, prev_start, prev_end = (
        today - timedelta(days=29),
        today - timedelta(days=59),
        today - timedelta(days=30),
    )
    cur = kit.figures(serving, start, today, kit.channels)
    prev = kit.figures(serving, prev_start, prev_end, kit.channels)
    assert cur.gross > 0 and prev.gross > 0
    shown = metrics(at)
    assert shown["売上金額"][0] == kit.yen(cur.gross)
    assert shown["注文数"][0] == f"{cur.orders:,}"
    assert shown["販売点数"][0] == f"{cur.units:,}"
    diff = cur.gross - prev.gross
    assert (
        shown["売上金額"][1] == f"{'+' if diff > 0 else ''}{kit.yen(diff)} ({diff / prev.gross * 100:+.1f}%)"
    )

    # The table (on demand, in the expander) holds one row per day and channel in the period.
    (table,) = at.dataframe
    frame = table.value
    assert len(frame) == kit.daily_rows(serving, start, today, kit.channels)
    assert int(frame["売上金額（円）"].sum()) == cur.gross
    assert set(frame["チャネル"]) == {"自社サイト", "楽天市場"}
    assert [b.label for b in at.get("download_button")] == ["CSVをダウンロード"]

    # Sidebar: the language switch, the shared filters, the published version and time (JST) at the foot.
    assert at.sidebar.radio(key="lang").value == "ja"
    assert at.sidebar.radio(key="filter_period").value == "30d"
    assert at.sidebar.multiselect(key="filter_channels").value == ["shopify", "rakuten"]
    footer = [c.value for c in at.sidebar.caption]
    assert any("v-test-1" in c for c in footer), footer
    assert any(c.startswith("公開日時:") and c.endswith("JST") for c in footer), footer


def test_period_and_channel_filters_change_the_figures(serving: Path, run_app, kit) -> None:
    at = run_app()
    today = kit.today()

    at.sidebar.radio(key="filter_period").set_value("7d").run()
    at.sidebar.multiselect(key="filter_channels").set_value(["rakuten"]).run()
    assert_clean(at)
    cur = kit.figures(serving, today - timedelta(days=6), today, ["rakuten"])
    prev = kit.figures(serving, today - timedelta(days=13), today - timedelta(days=7), ["rakuten"])
    shown = metrics(at)
    assert shown["売上金額"][0] == kit.yen(cur.gross)
    assert shown["注文数"] == (
        f"{cur.orders:,}",
        f"{cur.orders - prev.orders:+,} ({(cur.orders - prev.orders) / prev.orders * 100:+.1f}%)",
    )
    assert set(at.dataframe[0].value["チャネルコード"]) == {"rakuten"}

    # A custom JST range: three days, both channels again.
    at.sidebar.radio(key="filter_period").set_value("custom").run()
    at.sidebar.multiselect(key="filter_channels").set_value(["shopify", "rakuten"]).run()
    first, last = today - timedelta(days=4), today - timedelta(days=2)
    at.sidebar.date_input(key="filter_range").set_value((first, last)).run()
    assert_clean(at)
    cur = kit.figures(serving, first, last, kit.channels)
    prev = kit.figures(serving, first - timedelta(days=3), first - timedelta(days=1), kit.channels)
    shown = metrics(at)
    assert shown["売上金額"][0] == kit.yen(cur.gross)
    assert shown["販売点数"][0] == f"{cur.units:,}"
    assert shown["販売点数"][1].startswith(f"{cur.units - prev.units:+,}")
    assert len(at.dataframe[0].value) == 6

    # No channel chosen: a hint instead of empty figures.
    at.sidebar.multiselect(key="filter_channels").set_value([]).run()
    assert_clean(at)
    assert not at.metric
    assert [i.value for i in at.info] == ["チャネルを1つ以上選択してください。"]


def test_switching_to_english_changes_the_labels_and_keeps_the_filters(serving: Path, run_app, kit) -> None:
    at = run_app()
    at.sidebar.radio(key="filter_period").set_value("7d").run()
    at.sidebar.multiselect(key="filter_channels").set_value(["rakuten"]).run()
    japanese = [m.value for m in at.metric]

    at.sidebar.radio(key="lang").set_value("en").run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Sales"]
    assert [m.label for m in at.metric] == ["Gross sales", "Orders", "Units sold"]
    assert [m.value for m in at.metric] == japanese  # same figures, same formats
    assert at.sidebar.radio(key="filter_period").options[0] == "Last 7 days"
    assert at.sidebar.radio(key="filter_period").value == "7d"  # the choice survives the switch
    assert at.sidebar.multiselect(key="filter_channels").value == ["rakuten"]
    assert set(at.dataframe[0].value["Channel"]) == {"Rakuten Ichiba"}
    assert [b.label for b in at.get("download_button")] == ["Download CSV"]
    assert any(c.value.startswith("Published at:") for c in at.sidebar.caption)

    at.run()  # a plain rerun in English stays English
    assert_clean(at)
    assert [t.value for t in at.title] == ["Sales"]

    at.sidebar.radio(key="lang").set_value("ja").run()
    assert [t.value for t in at.title] == ["売上"]
    assert at.sidebar.radio(key="filter_period").value == "7d"


def test_language_can_come_from_the_url(serving: Path, run_app) -> None:
    at = run_app(lang="English")  # a bound radio carries its displayed label in the URL: ?lang=English
    assert_clean(at)
    assert [t.value for t in at.title] == ["Sales"]


def test_not_published_yet_shows_a_friendly_message(tmp_path: Path, monkeypatch, run_app) -> None:
    missing = tmp_path / "serving" / "ichigen.duckdb"
    monkeypatch.setenv("ICHIGEN_SERVING_PATH", str(missing))

    at = run_app()
    assert not at.exception
    assert [t.value for t in at.title] == ["売上"]
    (info,) = at.info
    assert "初回のビルドがまだ公開されていません" in info.value and "make once" in info.value
    assert not at.metric
    assert [c.value for c in at.sidebar.caption] == ["未公開（初回ビルド待ち）"]

    at.sidebar.radio(key="lang").set_value("en").run()
    assert not at.exception
    (info,) = at.info
    assert "The first build has not been published yet" in info.value and "make once" in info.value


def test_a_new_publish_is_read_on_the_next_rerun(serving: Path, run_app, kit) -> None:
    at = run_app()
    before = metrics(at)["売上金額"][0]

    # The next publish doubles every figure and brings a third channel.
    today = kit.today()
    doubled = [(d, c, o * 2, u * 2, g * 2) for d, c, o, u, g in kit.sample_rows(today)]
    doubled.append((today, "amazon", 3, 4, 5_000))
    kit.write_serving(serving, doubled, version="v-test-2")
    at.run()
    assert_clean(at)
    # Every channel was selected, so the new one is too.
    assert at.sidebar.multiselect(key="filter_channels").value == ["shopify", "rakuten", "amazon"]
    cur = kit.figures(serving, today - timedelta(days=29), today, ["shopify", "rakuten", "amazon"])
    assert metrics(at)["売上金額"][0] == kit.yen(cur.gross) != before
    assert any("v-test-2" in c.value for c in at.sidebar.caption)

    # A narrowed choice stays narrowed when channels come and go.
    at.sidebar.multiselect(key="filter_channels").set_value(["rakuten"]).run()
    kit.write_serving(serving, kit.sample_rows(today), version="v-test-3")
    at.run()
    assert_clean(at)
    assert at.sidebar.multiselect(key="filter_channels").value == ["rakuten"]


def test_without_published_json_the_file_time_stands_in(serving: Path, run_app) -> None:
    (serving.parent / "published.json").unlink()
    at = run_app()
    assert_clean(at)
    footer = [c.value for c in at.sidebar.caption]
    assert len(footer) == 1 and footer[0].startswith("ファイル更新日時:") and footer[0].endswith("JST")
    assert at.metric


def test_empty_mart_and_missing_mart_are_explained_not_raised(
    tmp_path: Path, monkeypatch, run_app, kit
) -> None:
    empty = kit.write_serving(tmp_path / "a" / "ichigen.duckdb", [], version="v-empty")
    monkeypatch.setenv("ICHIGEN_SERVING_PATH", str(empty))
    at = run_app()
    assert not at.exception
    assert [i.value for i in at.info] == ["公開データにまだ売上がありません。"]

    no_table = kit.write_serving(tmp_path / "b" / "ichigen.duckdb", [], version="v-old", table=False)
    monkeypatch.setenv("ICHIGEN_SERVING_PATH", str(no_table))
    at = run_app()
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("公開データの読み込みに失敗しました") and "fct_daily_sales" in error.value


def test_the_view_file_also_runs_on_its_own(serving: Path, run_app, kit) -> None:
    at = run_app(kit.sales_view)
    assert_clean(at)
    today = kit.today()
    cur = kit.figures(serving, today - timedelta(days=29), today, kit.channels)
    assert [m.value for m in at.metric] == [kit.yen(cur.gross), f"{cur.orders:,}", f"{cur.units:,}"]
    assert os.environ["ICHIGEN_SERVING_PATH"] == str(serving)


def test_reads_what_the_real_publish_step_publishes(tmp_path: Path, monkeypatch, run_app, kit) -> None:
    """The contract with `ichigen.publish` (D6): its serving copy and its published.json, twice over."""
    from ichigen.publish import BuildReport, publish, published_version

    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    serving = tmp_path / "serving" / "ichigen.duckdb"
    monkeypatch.setenv("ICHIGEN_SERVING_PATH", str(serving))
    today = kit.today()

    kit.write_serving(warehouse, kit.sample_rows(today), version=None)
    first = publish(warehouse, serving, BuildReport(success=True, models_built=1, tests_passed=3))
    at = run_app()
    assert_clean(at)
    cur = kit.figures(serving, today - timedelta(days=29), today, kit.channels)
    assert metrics(at)["売上金額"][0] == kit.yen(cur.gross)
    assert any(first["version"] in c.value for c in at.sidebar.caption)

    tripled = [(d, c, o * 3, u * 3, g * 3) for d, c, o, u, g in kit.sample_rows(today)]
    kit.write_serving(warehouse, tripled, version=None)
    second = publish(warehouse, serving, BuildReport(success=True, models_built=1, tests_passed=3))
    assert published_version(serving)["version"] == second["version"] != first["version"]
    at.run()
    assert_clean(at)
    assert metrics(at)["売上金額"][0] == kit.yen(cur.gross * 3)
    assert any(second["version"] in c.value for c in at.sidebar.caption)
