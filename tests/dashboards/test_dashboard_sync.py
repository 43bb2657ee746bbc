"""The Sync health page (同期), driven through the router with AppTest; figures are checked against SQL.

GIVEN the sample serving copy (push attempts of every status on two channels, one refusal older than the
default period, staging models with and without `_fetched_at`), WHEN the sync page runs, THEN push counts,
refusals and the last ingest per source/entity equal what SQL says, and what the model cannot give yet is
said, not hidden.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from streamlit.testing.v1 import AppTest

SYNC_PAGE = "views/sync.py"
JST = timezone(timedelta(hours=9))
PUSHES = """
select status, count(*) from staging.stg_push_log__attempts
where cast(timezone('Asia/Tokyo', pushed_at) as date) between ? and ? and list_contains(?, channel)
  and field in ('stock', 'price')
group by status
"""


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def frame(at: AppTest, *columns: str):
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert found, (columns, [list(d.value.columns) for d in at.dataframe])
    return found[0]


def open_sync(run_app, **params: str) -> AppTest:
    at = run_app(**params)
    at.switch_page(SYNC_PAGE).run()
    assert_clean(at)
    return at


def test_sync_figures_equal_sql(serving: Path, run_app, kit) -> None:
    at = open_sync(run_app)
    assert [t.value for t in at.title] == ["同期"]
    today = kit.today()
    counts = dict(kit.all(serving, PUSHES, [today - timedelta(days=29), today, ["shopify", "rakuten"]]))
    shown = {m.label: m.value for m in at.metric}
    assert shown["連携成功"] == f"{counts.get('applied', 0):,}"
    assert shown["連携失敗"] == f"{counts.get('failed', 0):,}"
    assert shown["ガードレールで停止"] == f"{counts.get('refused', 0):,}"
    assert counts["refused"] == 2  # the 40-day-old refusal is outside the default 30 days

    # Per channel: every status, and the last push in JST.
    per_channel = frame(at, "成功", "停止", "競合（再試行待ち）")
    expected = kit.all(
        serving,
        "select channel, count(*) filter (where status = 'applied'), count(*) filter (where status = 'stale'), "
        "max(pushed_at) from staging.stg_push_log__attempts "
        "where pushed_at >= now() - interval 29 day and field in ('stock', 'price') group by channel",
    )
    names = {"shopify": "自社サイト", "rakuten": "楽天市場"}
    assert sorted(
        zip(
            per_channel["チャネル"],
            per_channel["成功"],
            per_channel["競合（再試行待ち）"],
            per_channel["最終連携（日本時間）"],
            strict=True,
        )
    ) == sorted(
        (names[c], a, s, last.astimezone(JST).strftime("%Y/%m/%d %H:%M JST")) for c, a, s, last in expected
    )

    # Guard-rail refusals with the guard's reason, newest first.
    refusals = frame(at, "理由")
    assert refusals["理由"].tolist() == [
        e
        for (e,) in kit.all(
            serving,
            "select error from staging.stg_push_log__attempts where status = 'refused' "
            "and field in ('stock', 'price') and pushed_at >= now() - interval 29 day order by pushed_at desc",
        )
    ]

    # Last ingest per source/entity: only the staging models that carry _fetched_at.
    ingest = frame(at, "ソース", "エンティティ", "経過（分）")
    truth = {
        "stg_shopify__orders": kit.one(serving, "select max(_fetched_at) from staging.stg_shopify__orders")[
            0
        ],
        "stg_shopify__inventory_levels": kit.one(
            serving, "select max(_fetched_at) from staging.stg_shopify__inventory_levels"
        )[0],
        "stg_erp__stock": kit.one(serving, "select max(_fetched_at) from staging.stg_erp__stock")[0],
    }
    assert sorted(ingest["モデル"]) == sorted(truth)  # stg_shopify__order_lines has no _fetched_at
    now = datetime.now(UTC)
    for row in ingest.to_dict("records"):
        last = truth[row["モデル"]]
        assert row["最終取得（日本時間）"] == last.astimezone(JST).strftime("%Y/%m/%d %H:%M JST")
        assert abs(row["経過（分）"] - (now - last).total_seconds() / 60) <= 1.5
    oldest = max((now - v).total_seconds() / 60 for v in truth.values())
    assert abs(int(shown["最古の取り込み（分前）"].replace(",", "")) - oldest) <= 1.5
    assert shown["取り込み対象"] == "3"

    # ERP intake: posted per channel in the period, and the orders held now (amazon's was posted later).
    intake = frame(at, "連携済み", "保留中")
    assert dict(zip(intake["チャネル"], zip(intake["連携済み"], intake["保留中"], strict=True), strict=True)) == {
        "自社サイト": (1, 0), "楽天市場": (1, 0), "Amazon": (1, 0), "Yahoo!ショッピング": (0, 1)}
    held = frame(at, "保留の理由")
    assert held["注文"].tolist() == ["ichigen-select-10000001"]
    assert held["保留の理由"].tolist() == ["line 2: listing old9000:old9000 maps to no ERP SKU"]

    # Quarantine per source/entity/reason, with its total as a metric.
    quarantine = frame(at, "理由の種類", "件数", "再検出を含む回数")
    expected_q = kit.all(serving, "select source, entity, reason_kind, records, occurrences "
                         "from mart_ingest_quarantine order by records desc")
    assert list(zip(quarantine["ソース"], quarantine["エンティティ"], quarantine["理由の種類"], quarantine["件数"],
                    quarantine["再検出を含む回数"], strict=True)) == expected_q
    assert shown["隔離中のレコード"] == f"{sum(r[3] for r in expected_q):,}"
    assert quarantine["例"].tolist()[0].startswith("gid://shopify/Order/9: created_at")

    # Drift per channel over listed SKUs only.
    drift = frame(at, "一致", "差異あり", "未取得")
    expected_d = {
        names[c]: (i, d, n, u)
        for c, i, d, n, u in kit.all(
            serving,
            "select channel, count(*) filter (where status = 'in_sync'), count(*) filter (where status = 'drift'), "
            "count(*) filter (where status = 'not_seen'), coalesce(sum(abs(drift_quantity)), 0) "
            "from mart_sync_drift where is_listed group by channel",
        )
    }
    assert {
        row["チャネル"]: (row["一致"], row["差異あり"], row["未取得"], row["差異の合計（個）"])
        for row in drift.to_dict("records")
    } == expected_d == {"自社サイト": (1, 1, 1, 2), "楽天市場": (0, 1, 0, 3)}

    # Stock lag over time: the mart's figures per day of sale and channel.
    assert "在庫反映の遅れ（推移）" in [h.value for h in at.subheader]
    lag = frame(at, "販売日", "95%（秒）")
    expected_lag = kit.all(serving, "select sale_date_jst, channel, sales, reflected, not_yet_pushed, lag_p50_s, "
                                    "lag_p95_s, lag_max_s from mart_stock_sync_lag order by 1, 2")
    assert [(r["販売日"].date() if hasattr(r["販売日"], "date") else r["販売日"], r["チャネル"], r["他チャネルの販売"],
             r["反映済み"], r["未送信"], r["中央値（秒）"], r["95%（秒）"], r["最大（秒）"])
            for r in lag.to_dict("records")] == [(d, names[c], *rest) for d, c, *rest in expected_lag]
    assert len(expected_lag) == 4


def test_sync_filters_and_english(serving: Path, run_app, kit) -> None:
    at = open_sync(run_app)
    at.sidebar.radio(key="filter_period").set_value("90d").run()
    at.sidebar.multiselect(key="filter_channels").set_value(["shopify"]).run()
    assert_clean(at)
    today = kit.today()
    counts = dict(kit.all(serving, PUSHES, [today - timedelta(days=89), today, ["shopify"]]))
    assert {m.label: m.value for m in at.metric}["ガードレールで停止"] == f"{counts['refused']:,}" == "2"

    at.sidebar.radio(key="lang").set_value("en").run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Sync health"]
    assert [m.label for m in at.metric] == [
        "Sources / entities",
        "Oldest ingest (min ago)",
        "Quarantined records",
        "Applied",
        "Failed",
        "Refused by guard rails",
    ]
    assert "Stock lag over time" in [h.value for h in at.subheader]
    assert "Reason" in frame(at, "Reason").columns
