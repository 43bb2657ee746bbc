"""在庫 / Stock: stock position per SKU and warehouse, stock-outs, days of cover, per-channel targets.

- Position: `fct_stock_position` (ERP on-hand per SKU × warehouse); "sellable" sums the warehouses that feed
  the channels.
- Stock-out: a SKU whose sellable on-hand is 0 (it may still sit in a non-sellable warehouse).
- Days of cover: sellable on-hand ÷ average daily units sold over the last `VELOCITY_DAYS` JST days (today
  included), all channels, cancelled orders excluded (`fct_order_lines`, which carries the order's date and
  status: DECISIONS.md D76). No sales: ∞ (blank).
- Targets: `mart_channel_stock_targets` with its `explain` column, for "why does Rakuten show 3?".
- Bundles: `mart_bundle_stock` — per bundle, its components, the sets the sellable shelves can make now and
  the component that limits them (the bundle's channel targets are among the targets above).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import streamlit as st

from dashboards import channels as ch
from dashboards import data, filters
from dashboards.export import csv_download_button
from dashboards.formatting import count, today_jst
from dashboards.i18n import lang, t

VELOCITY_DAYS = 28  # the sales pace behind days of cover
LOW_COVER_DAYS = 14  # "cover under N days" headline

TARGET_CHANNELS_SQL = "select distinct channel from mart_channel_stock_targets"

SKU_SQL = """
with position as (
    select
        sku,
        sum(case when is_sellable then on_hand else 0 end)::BIGINT as sellable_on_hand,
        sum(case when is_sellable then 0 else on_hand end)::BIGINT as other_on_hand
    from fct_stock_position
    group by sku
),
sold as (
    select sku, sum(quantity)::BIGINT as units_sold
    from fct_order_lines
    where order_status <> 'cancelled'
      and order_date_jst between $start and $end
    group by sku
)
select
    p.sku,
    p.sellable_on_hand,
    p.other_on_hand,
    coalesce(s.units_sold, 0)::BIGINT as units_sold,
    round(coalesce(s.units_sold, 0) / $days, 2)::DOUBLE as avg_daily,
    case when coalesce(s.units_sold, 0) > 0
         then round(p.sellable_on_hand / (s.units_sold / $days), 1)::DOUBLE end as days_of_cover
from position as p
left join sold as s on s.sku = p.sku
order by p.sellable_on_hand = 0 desc, days_of_cover asc nulls last, p.sku
"""

POSITION_SQL = """
select sku, warehouse_code, is_sellable, on_hand
from fct_stock_position
order by sku, warehouse_code
"""

TARGETS_SQL = """
select channel, sku, sellable_on_hand, open_order_units, safety_stock, available_to_sell, channel_buffer,
       target_quantity, explain
from mart_channel_stock_targets
where list_contains($channels, channel)
order by channel, sku
"""


BUNDLES_SQL = """
select bundle_sku, component_sku, component_quantity, component_sellable_on_hand, sets_from_component,
       buildable_sets, is_limiting
from mart_bundle_stock
order by buildable_sets, bundle_sku, component_sku
"""


def velocity_window(today: date) -> tuple[date, date]:
    """The last `VELOCITY_DAYS` JST days, today included."""
    return today - timedelta(days=VELOCITY_DAYS - 1), today


def by_sku(serving: data.Published, today: date) -> pl.DataFrame:
    start, end = velocity_window(today)
    return serving.query(SKU_SQL, {"start": start, "end": end, "days": VELOCITY_DAYS})


def headline(skus: pl.DataFrame) -> dict[str, int]:
    cover = skus["days_of_cover"]
    low = skus.filter((pl.col("sellable_on_hand") > 0) & (cover < LOW_COVER_DAYS))
    return {
        "skus": skus.height,
        "sellable": int(skus["sellable_on_hand"].sum()),
        "stockouts": skus.filter(pl.col("sellable_on_hand") == 0).height,
        "low_cover": low.height,
    }


def show_metrics(figures: dict[str, int]) -> None:
    specs = (
        ("skus", t("stock.metric.skus"), None),
        ("sellable", t("stock.metric.sellable"), None),
        ("stockouts", t("stock.metric.stockouts"), t("stock.metric.stockouts.help")),
        (
            "low_cover",
            t("stock.metric.low_cover", days=LOW_COVER_DAYS),
            t("stock.metric.low_cover.help", days=LOW_COVER_DAYS),
        ),
    )
    for column, (key, label, help_) in zip(st.columns(len(specs)), specs, strict=True):
        column.metric(label, count(figures[key]), help=help_, border=True)


def sku_table(skus: pl.DataFrame) -> pl.DataFrame:
    cover = [("∞" if v is None else f"{v:,.1f}") for v in skus["days_of_cover"].to_list()]
    return skus.select(
        pl.col("sku").alias(t("common.col.sku")),
        pl.col("sellable_on_hand").alias(t("stock.col.sellable_on_hand")),
        pl.col("other_on_hand").alias(t("stock.col.other_on_hand")),
        pl.col("units_sold").alias(t("stock.col.units_sold", days=VELOCITY_DAYS)),
        pl.col("avg_daily").alias(t("stock.col.avg_daily")),
        pl.Series(t("stock.col.days_of_cover"), cover, dtype=pl.String),
    )


def position_table(position: pl.DataFrame) -> pl.DataFrame:
    """SKU rows × warehouse columns (on hand), sellable warehouses first, with a total."""
    order = (
        position.select("warehouse_code", "is_sellable")
        .unique()
        .sort(["is_sellable", "warehouse_code"], descending=[True, False])["warehouse_code"]
        .to_list()
    )
    wide = position.pivot(on="warehouse_code", index="sku", values="on_hand", aggregate_function="sum")
    wide = wide.with_columns(pl.col(order).fill_null(0))
    return wide.select(
        pl.col("sku").alias(t("common.col.sku")),
        *[pl.col(w) for w in order],
        pl.sum_horizontal(order).alias(t("stock.col.total")),
    ).sort(t("common.col.sku"))


def targets_table(targets: pl.DataFrame) -> pl.DataFrame:
    order = ch.ordered(targets["channel"].to_list())
    rank = pl.col("channel").replace_strict({c: i for i, c in enumerate(order)}, return_dtype=pl.Int32)
    targets = targets.sort(rank, pl.col("sku"))
    names = [ch.name(c) for c in targets["channel"].to_list()]
    return targets.select(
        pl.Series(t("common.col.channel"), names, dtype=pl.String),
        pl.col("sku").alias(t("common.col.sku")),
        pl.col("target_quantity").alias(t("stock.col.target_quantity")),
        pl.col("explain").alias(t("stock.col.explain")),
        pl.col("sellable_on_hand").alias(t("stock.col.sellable_on_hand")),
        pl.col("open_order_units").alias(t("stock.col.open_order_units")),
        pl.col("safety_stock").alias(t("stock.col.safety_stock")),
        pl.col("available_to_sell").alias(t("stock.col.available_to_sell")),
        pl.col("channel_buffer").alias(t("stock.col.channel_buffer")),
    )


def bundle_table(bundles: pl.DataFrame) -> pl.DataFrame:
    """One row per bundle × component; the components that limit the bundle are marked."""
    return bundles.select(
        pl.col("bundle_sku").alias(t("stock.col.bundle")),
        pl.col("buildable_sets").alias(t("stock.col.buildable_sets")),
        pl.col("component_sku").alias(t("stock.col.component")),
        pl.col("component_quantity").alias(t("stock.col.per_set")),
        pl.col("component_sellable_on_hand").alias(t("stock.col.sellable_on_hand")),
        pl.col("sets_from_component").alias(t("stock.col.sets_from_component")),
        pl.when(pl.col("is_limiting")).then(pl.lit("◀")).otherwise(pl.lit("")).alias(t("stock.col.limiting")),
    )


def show_bundles(bundles: pl.DataFrame) -> None:
    st.subheader(t("stock.bundles.title"))
    if bundles.is_empty():
        st.info(t("stock.bundles.none"), icon=":material/info:")
        return
    per_bundle = bundles.group_by("bundle_sku").agg(pl.col("buildable_sets").first())
    unbuildable = per_bundle.filter(pl.col("buildable_sets") == 0).height
    st.caption(t("stock.bundles.caption", bundles=count(per_bundle.height), unbuildable=count(unbuildable)))
    st.dataframe(bundle_table(bundles), hide_index=True, width="stretch")


def why(targets: pl.DataFrame) -> None:
    """Pick a channel × SKU and read the arithmetic behind the number the channel shows."""
    order = {c: i for i, c in enumerate(ch.ordered(targets["channel"].to_list()))}
    ranked = sorted(targets.iter_rows(named=True), key=lambda r: (order[r["channel"]], r["sku"]))
    rows = {f"{r['channel']}|{r['sku']}": r for r in ranked}
    names = {key: f"{ch.name(r['channel'])} — {r['sku']}" for key, r in rows.items()}
    choice = st.selectbox(t("stock.why.label"), list(rows), format_func=names.__getitem__, key="stock_why")
    if choice in rows:
        row = rows[choice]
        st.info(
            t(
                "stock.why.answer",
                channel=ch.name(row["channel"]),
                sku=row["sku"],
                target=count(row["target_quantity"]),
                explain=row["explain"],
            ),
            icon=":material/calculate:",
        )


def render() -> None:
    st.title(t("stock.title"))
    serving = data.require_published()
    if serving is None:
        return
    today = today_jst()
    try:
        skus = by_sku(serving, today)
        if skus.is_empty():
            st.info(t("stock.no_data"))
            return
        listed = serving.query(TARGET_CHANNELS_SQL)["channel"].to_list()
        flt = filters.sidebar(listed)
        position = serving.query(POSITION_SQL)
        targets = serving.query(TARGETS_SQL, {"channels": list(flt.channels)})
        bundles = serving.query(BUNDLES_SQL)
    except data.ServingError as exc:
        st.error(str(exc), icon=":material/error:")
        return

    st.caption(t("stock.caption", days=VELOCITY_DAYS))
    st.caption(t("common.period_not_used"))
    show_metrics(headline(skus))

    st.subheader(t("stock.stockouts.title"))
    outs = skus.filter(pl.col("sellable_on_hand") == 0)
    if outs.is_empty():
        st.success(t("stock.stockouts.none"), icon=":material/check_circle:")
    else:
        st.dataframe(
            sku_table(outs),
            hide_index=True,
            width="stretch",
            column_config={t("stock.col.avg_daily"): st.column_config.NumberColumn(format="%.2f")},
        )

    st.subheader(t("stock.sku.title"))
    st.caption(t("stock.sku.caption", days=VELOCITY_DAYS))
    readable = sku_table(skus)
    st.dataframe(
        readable,
        hide_index=True,
        width="stretch",
        column_config={t("stock.col.avg_daily"): st.column_config.NumberColumn(format="%.2f")},
    )
    csv_download_button(readable, f"ichigen_stock_{today:%Y%m%d}_{lang()}.csv")

    st.subheader(t("stock.targets.title"))
    st.caption(t("stock.targets.caption"))
    if not flt.channels:
        st.info(t("filters.no_channels"))
    elif targets.is_empty():
        st.info(t("stock.targets.empty"))
    else:
        why(targets)
        st.dataframe(targets_table(targets), hide_index=True, width="stretch")

    st.subheader(t("stock.position.title"))
    sellable = sorted(set(position.filter(pl.col("is_sellable"))["warehouse_code"].to_list()))
    other = sorted(set(position.filter(~pl.col("is_sellable"))["warehouse_code"].to_list()))
    st.caption(
        t("stock.position.caption", sellable=", ".join(sellable) or "—", other=", ".join(other) or "—")
    )
    if not position.is_empty():
        st.dataframe(position_table(position), hide_index=True, width="stretch")

    show_bundles(bundles)


render()
