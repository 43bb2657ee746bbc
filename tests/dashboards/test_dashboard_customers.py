"""The Customers page (顧客) through the router with AppTest; figures are checked against SQL on the sample copy."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = "views/customers.py"


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def frame(at: AppTest, *columns: str):
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert found, (columns, [list(d.value.columns) for d in at.dataframe])
    return found[0]


def open_page(run_app) -> AppTest:
    at = run_app()
    at.switch_page(PAGE).run()
    assert_clean(at)
    return at


def test_customer_figures_equal_sql(serving: Path, run_app, kit) -> None:
    at = open_page(run_app)
    assert [t.value for t in at.title] == ["顧客"]
    shown = {m.label: m.value for m in at.metric}
    (customers, cross, repeat, b2b) = kit.one(
        serving,
        "select count(*), count(*) filter (where len(sources) > 1), count(*) filter (where lifetime_orders >= 2), "
        "count(*) filter (where is_b2b) from dim_customer",
    )
    assert shown["顧客数（名寄せ後）"] == f"{customers:,}"
    assert shown["複数ソースで購入"] == f"{cross:,}" == "3"
    assert shown["リピーター"] == f"{repeat:,}"
    assert shown["B2B 取引先"] == f"{b2b:,}"

    # Movement: tier now against 30 days ago (ゴールド→ダイヤモンド up, ゴールド→シルバー down, None → new).
    assert shown["ランクアップ"] == "1" and shown["ランクダウン"] == "1" and shown["新規"] == "1"
    assert shown["変わらず"] == "2"

    top = frame(at, "氏名・社名", "購入金額（期間内）", "購入チャネル")
    expected = kit.all(serving, "select full_name from mart_customer_rank join dim_customer using (unified_customer_id) "
                                "order by monetary_jpy desc")
    assert top["氏名・社名"].tolist() == [name for (name,) in expected]
    assert top["購入チャネル"].tolist()[1] == "自社サイト, 楽天市場, 実店舗"

    b2b_rows = frame(at, "ERP ランク")
    assert b2b_rows["氏名・社名"].tolist() == ["株式会社髙木商店"] and b2b_rows["ERP ランク"].tolist() == ["A"]


def test_channel_filter_and_english(serving: Path, run_app, kit) -> None:
    at = open_page(run_app)
    at.sidebar.multiselect(key="filter_channels").set_value(["amazon", "yahoo"]).run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["顧客数（名寄せ後）"] == "2"  # 佐藤 (amazon), 鈴木 (yahoo)

    at.sidebar.radio(key="lang").set_value("en").run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Customers"]
    assert [m.label for m in at.metric][:4] == ["Unified customers", "Seen in 2+ sources", "Repeat customers",
                                                "B2B accounts"]
