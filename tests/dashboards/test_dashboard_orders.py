"""The Orders page (受注), driven through the router with AppTest; every figure is checked against SQL.

GIVEN the sample serving copy (45 days of closed orders on two channels, cancellations and returns among
them, and open orders at ages away from the bucket edges), WHEN the orders page runs, THEN the backlog by
status and age, the late shipments and the cancellations/returns by channel equal what SQL says.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

ORDERS_PAGE = "views/orders.py"
BUCKET_SQL = """
select status,
       case when now() - ordered_at_utc < interval 1 day then '1日未満'
            when now() - ordered_at_utc < interval 3 day then '1〜3日'
            when now() - ordered_at_utc < interval 7 day then '3〜7日' else '7日超' end,
       count(*)
from fct_orders
where status in ('pending_payment', 'awaiting_shipment') and list_contains(?, channel)
group by all
"""
LATE_SQL = """
select order_name from fct_orders
where status = 'awaiting_shipment' and now() - ordered_at_utc > interval 2 day and list_contains(?, channel)
order by ordered_at_utc
"""
CANCEL_SQL = """
select channel, count(*), count(*) filter (where status = 'cancelled'), count(*) filter (where status = 'returned')
from fct_orders where order_date_jst between ? and ? and list_contains(?, channel)
group by channel
"""
STATUS_JA = {"pending_payment": "入金待ち", "awaiting_shipment": "発送待ち"}
NAMES = {"shopify": "自社サイト", "rakuten": "楽天市場"}


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def frame(at: AppTest, *columns: str):
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert found, (columns, [list(d.value.columns) for d in at.dataframe])
    return found[0]


def check(at: AppTest, serving: Path, kit, days: int, channels: list[str]) -> None:
    today = kit.today()
    buckets = kit.all(serving, BUCKET_SQL, [channels])
    late = [r[0] for r in kit.all(serving, LATE_SQL, [channels])]
    cancel = kit.all(serving, CANCEL_SQL, [today - timedelta(days=days - 1), today, channels])
    by_status = {s: sum(n for st, _, n in buckets if st == s) for s in STATUS_JA}
    shown = {m.label: m.value for m in at.metric}
    assert shown == {
        "入金待ち": f"{by_status['pending_payment']:,}",
        "発送待ち": f"{by_status['awaiting_shipment']:,}",
        "出荷遅延": f"{len(late):,}",
        "キャンセル（期間内）": f"{sum(r[2] for r in cancel):,}",
        "返品（期間内）": f"{sum(r[3] for r in cancel):,}",
    }

    # Backlog: status × age bucket.
    matrix = frame(at, "ステータス", "1日未満")
    shown_cells = {
        (row["ステータス"], bucket): row[bucket]
        for row in matrix.to_dict("records")
        for bucket in ("1日未満", "1〜3日", "3〜7日", "7日超")
    }
    expected = {(STATUS_JA[s], b): n for s, b, n in buckets}
    assert {k: v for k, v in shown_cells.items() if v} == expected

    # Late shipments: awaiting shipment for more than 2 days, oldest first.
    if late:
        assert frame(at, "注文番号", "経過日数")["注文番号"].tolist() == late
    # Cancellations and returns by channel in the period.
    table = frame(at, "キャンセル", "返品")
    assert sorted(
        zip(table["チャネル"], table["受注数"], table["キャンセル"], table["返品"], strict=True)
    ) == sorted((NAMES[c], n, cx, r) for c, n, cx, r in cancel)


def test_orders_figures_equal_sql(serving: Path, run_app, kit) -> None:
    at = run_app()
    at.switch_page(ORDERS_PAGE).run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["受注"]
    check(at, serving, kit, 30, ["shopify", "rakuten"])
    assert {m.label: m.value for m in at.metric}["出荷遅延"] == "3"  # the sample: 60 h, 90 h, 300 h
    assert [b.label for b in at.get("download_button")] == ["CSVをダウンロード"]

    # The shared filters narrow it: last 7 days, Rakuten only.
    at.sidebar.radio(key="filter_period").set_value("7d").run()
    at.sidebar.multiselect(key="filter_channels").set_value(["rakuten"]).run()
    assert_clean(at)
    check(at, serving, kit, 7, ["rakuten"])


def test_orders_in_english(serving: Path, run_app) -> None:
    at = run_app(lang="English")
    at.switch_page(ORDERS_PAGE).run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Orders"]
    assert [m.label for m in at.metric] == [
        "Awaiting payment",
        "Awaiting shipment",
        "Late shipments",
        "Cancelled (period)",
        "Returned (period)",
    ]
    assert frame(at, "Status", "< 1 day", "> 7 days")["Status"].tolist() == [
        "Awaiting payment",
        "Awaiting shipment",
    ]


def test_filters_chosen_on_one_page_apply_on_the_next(serving: Path, run_app, kit) -> None:
    at = run_app()  # the sales page
    at.sidebar.radio(key="filter_period").set_value("7d").run()
    at.sidebar.multiselect(key="filter_channels").set_value(["rakuten"]).run()
    at.switch_page(ORDERS_PAGE).run()
    assert_clean(at)
    assert at.sidebar.radio(key="filter_period").value == "7d"
    assert at.sidebar.multiselect(key="filter_channels").value == ["rakuten"]
    check(at, serving, kit, 7, ["rakuten"])
