"""The Stock page (在庫), driven through the router with AppTest; every figure is checked against SQL.

GIVEN the sample serving copy (5 SKUs in two sellable warehouses and one returns warehouse, 45 days of orders,
channel targets for shopify and rakuten), WHEN the stock page runs, THEN its headline figures, days of cover,
stock-outs and channel targets (with their explanations) equal what SQL over the file says.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

STOCK_PAGE = "views/stock.py"

SKU_TRUTH = """
with p as (
    select sku, sum(on_hand) filter (where is_sellable) as sellable, sum(on_hand) filter (where not is_sellable) as other
    from fct_stock_position group by sku
), s as (
    select l.sku, sum(l.quantity) as sold
    from fct_order_lines l, fct_orders o
    where o.order_key = l.order_key and o.status != 'cancelled' and o.order_date_jst >= ? and o.order_date_jst <= ?
    group by l.sku
)
select p.sku, coalesce(p.sellable, 0), coalesce(p.other, 0), coalesce(s.sold, 0),
       case when s.sold > 0 then coalesce(p.sellable, 0) * 28.0 / s.sold end
from p left join s on s.sku = p.sku order by p.sku
"""


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def frame(at: AppTest, *columns: str, index: int = 0):
    """The `index`-th table on the page that has all these columns (st.dataframe keys are not exposed)."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) > index, (columns, [list(d.value.columns) for d in at.dataframe])
    return found[index]


def open_stock(run_app) -> AppTest:
    at = run_app()
    at.switch_page(STOCK_PAGE).run()
    assert_clean(at)
    return at


def truth(serving: Path, kit) -> dict[str, tuple]:
    today = kit.today()
    rows = kit.all(serving, SKU_TRUTH, [today - timedelta(days=27), today])
    return {r[0]: r[1:] for r in rows}


def test_stock_headline_figures_equal_sql(serving: Path, run_app, kit) -> None:
    at = open_stock(run_app)
    assert [t.value for t in at.title] == ["在庫"]
    skus = truth(serving, kit)
    shown = {m.label: m.value for m in at.metric}
    (n_skus,) = kit.one(serving, "select count(distinct sku) from fct_stock_position")
    (sellable,) = kit.one(serving, "select sum(on_hand) from fct_stock_position where is_sellable")
    stockouts = sum(1 for sellable_, *_ in skus.values() if sellable_ == 0)
    low = sum(1 for s, _, _, cover in skus.values() if s > 0 and cover is not None and cover < 14)
    assert shown == {
        "SKU数": f"{n_skus:,}",
        "販売可能在庫": f"{sellable:,}",
        "欠品SKU": f"{stockouts:,}",
        "在庫日数14日未満": f"{low:,}",
    }
    assert stockouts == 2 and low >= 1  # the sample holds both cases

    # Days of cover per SKU: sellable ÷ (units sold in the last 28 JST days ÷ 28); ∞ without sales.
    table = frame(at, "SKU", "在庫日数", index=1)
    assert sorted(table["SKU"]) == sorted(skus)
    for row in table.to_dict("records"):
        sellable_, other, sold, cover = skus[row["SKU"]]
        assert row["販売可能在庫"] == sellable_
        assert row["販売外の倉庫の在庫"] == other
        assert row["販売数（28日）"] == sold
        assert row["在庫日数"] == ("∞" if cover is None else f"{cover:,.1f}"), row
    assert set(table.loc[table["SKU"] == "TS-E", "在庫日数"]) == {"∞"}

    # Stock-outs: sellable on-hand 0, including the SKU that only sits in the returns warehouse.
    outs = frame(at, "SKU", "在庫日数")
    assert sorted(outs["SKU"]) == sorted(s for s, v in skus.items() if v[0] == 0) == ["TS-B", "TS-D"]

    # Position per SKU × warehouse, with a total per SKU equal to all its on-hand.
    position = frame(at, "SKU", "合計")
    totals = dict(kit.all(serving, "select sku, sum(on_hand)::BIGINT from fct_stock_position group by sku"))
    assert dict(zip(position["SKU"], position["合計"], strict=True)) == totals


def test_bundles_show_the_sets_their_components_make(serving: Path, run_app, kit) -> None:
    at = open_stock(run_app)
    bundles = frame(at, "セット商品", "構成品")
    expected = kit.all(serving, "select bundle_sku, component_sku, component_quantity, component_sellable_on_hand, "
                                "sets_from_component, buildable_sets, is_limiting from mart_bundle_stock")
    shown = zip(bundles["セット商品"], bundles["構成品"], bundles["1セットの数"], bundles["販売可能在庫"],
                bundles["この構成品で組める数"], bundles["組める数"], bundles["制約"], strict=True)
    assert sorted(shown) == sorted((b, c, q, s, f, n, "◀" if lim else "") for b, c, q, s, f, n, lim in expected)
    (n_bundles, unbuildable) = kit.one(serving, "select count(distinct bundle_sku), "
                                                "count(distinct bundle_sku) filter (where buildable_sets = 0) "
                                                "from mart_bundle_stock")
    assert (n_bundles, unbuildable) == (2, 1)  # the sample holds a bundle that cannot be made
    assert any(f"セット商品 {n_bundles} 件（うち今の在庫で組めないもの {unbuildable} 件）" in c.value
               for c in at.caption)


def test_channel_targets_show_the_explanation(serving: Path, run_app, kit) -> None:
    at = open_stock(run_app)
    targets = frame(at, "計算式")
    expected = kit.all(
        serving, "select channel, sku, target_quantity, explain from mart_channel_stock_targets order by 1, 2"
    )
    names = {"shopify": "自社サイト", "rakuten": "楽天市場"}
    shown = sorted(
        zip(targets["チャネル"], targets["SKU"], targets["連携数"], targets["計算式"], strict=True)
    )
    assert shown == sorted((names[c], s, q, e) for c, s, q, e in expected)

    # "Why does Rakuten show N for TS-A?" — the answer is the mart's explain text.
    at.selectbox(key="stock_why").set_value("rakuten|TS-A").run()
    assert_clean(at)
    (target, explain) = kit.one(
        serving,
        "select target_quantity, explain from mart_channel_stock_targets where channel = 'rakuten' and sku = 'TS-A'",
    )
    answer = next(i.value for i in at.info if "TS-A" in i.value)
    assert answer == f"楽天市場 の TS-A は **{target}** 点: `{explain}`"

    # The channel filter narrows the targets.
    at.sidebar.multiselect(key="filter_channels").set_value(["rakuten"]).run()
    assert_clean(at)
    narrowed = frame(at, "計算式")
    (n,) = kit.one(serving, "select count(*) from mart_channel_stock_targets where channel = 'rakuten'")
    assert len(narrowed) == n and set(narrowed["チャネル"]) == {"楽天市場"}


def test_stock_in_english(serving: Path, run_app) -> None:
    at = open_stock(run_app)
    japanese = [m.value for m in at.metric]
    at.sidebar.radio(key="lang").set_value("en").run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Stock"]
    assert [m.label for m in at.metric] == ["SKUs", "Sellable on hand", "Stock-outs", "Cover under 14 days"]
    assert [m.value for m in at.metric] == japanese
    assert frame(at, "Days of cover", "Sellable on hand") is not None
    assert frame(at, "Explanation", "Target") is not None
    assert frame(at, "Bundle", "Sets possible", "Limits") is not None
