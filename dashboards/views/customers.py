"""顧客 / Customers: unified customers (one person across every channel, the stores and the B2B accounts).

- Headline: unified customers, customers seen in two or more sources (the identity resolution at work), repeat
  customers (two or more lifetime orders), B2B accounts.
- Rank distribution: customers per RFM tier (`main.mart_customer_rank.rank_tier`), tiers best first (ordered by
  `tier_position`, 1 = best); movement: the tier now against the tier 30 days earlier, when the model publishes
  `previous_rank_tier` and `previous_tier_position`.
- RFM scatter: recency (days) against monetary (JPY) in the window, colour = tier, size = frequency.
- Top customers: by monetary in the window, with their sources; B2B accounts with the ERP rank next to the tier.
- The channel filter keeps customers who appear in at least one chosen source; the period filter does not
  apply (RFM has its own rolling window, shown in the caption).
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import channels as ch
from dashboards import data, filters
from dashboards.export import csv_download_button
from dashboards.formatting import count, jst_timestamp
from dashboards.i18n import lang, t

TOP_N = 50

SOURCES_SQL = "select distinct unnest(sources) as source from main.dim_customer order by 1"

COLUMNS_SQL = """
select column_name from information_schema.columns
where table_catalog = current_database() and table_schema = 'main' and table_name = 'mart_customer_rank'
"""

CUSTOMERS_SQL = """
select
    c.unified_customer_id, c.full_name, c.name_kana, c.sources, c.member_count, c.lifetime_orders,
    c.is_b2b, c.erp_rank, r.rank_tier, r.rfm_score, r.recency_days, r.frequency, r.monetary_jpy,
    r.last_order_at_utc, r.window_days, r.as_of_utc{previous}
from main.dim_customer as c
inner join main.mart_customer_rank as r using (unified_customer_id)
where len(list_intersect(c.sources, $sources)) > 0
"""


def customers(serving: data.Published, sources: list[str]) -> pl.DataFrame:
    has_previous = "previous_tier_position" in serving.query(COLUMNS_SQL)["column_name"].to_list()
    sql = CUSTOMERS_SQL.format(
        previous=", r.tier_position, r.previous_rank_tier, r.previous_tier_position" if has_previous else ""
    )
    return serving.query(sql, {"sources": sources})


def tier_order(frame: pl.DataFrame) -> list[str]:
    """Tiers best first: by the model's tier_position when published, else by the lowest RFM score in each."""
    if "tier_position" in frame.columns:
        return frame.group_by("rank_tier").agg(pl.col("tier_position").min()).sort("tier_position")["rank_tier"].to_list()
    floors = frame.group_by("rank_tier").agg(pl.col("rfm_score").min().alias("floor")).sort("floor", descending=True)
    return floors["rank_tier"].to_list()


def headline(frame: pl.DataFrame) -> dict[str, int]:
    return {
        "customers": frame.height,
        "cross_source": frame.filter(pl.col("sources").list.len() > 1).height,
        "repeat": frame.filter(pl.col("lifetime_orders") >= 2).height,
        "b2b": frame.filter(pl.col("is_b2b")).height,
    }


def distribution(frame: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    counts = frame.group_by("rank_tier").agg(pl.len().alias("customers"))
    position = {tier: i for i, tier in enumerate(order)}
    return counts.with_columns(
        pl.col("rank_tier").replace_strict(position, return_dtype=pl.Int32).alias("r")
    ).sort("r").drop("r")


def movement(frame: pl.DataFrame) -> pl.DataFrame | None:
    """Customers moved up / unchanged / down / new against 30 days ago (positions: 1 = best tier); None when the
    model does not publish the earlier tier."""
    if "previous_tier_position" not in frame.columns:
        return None
    moved = frame.with_columns(
        pl.when(pl.col("previous_tier_position").is_null()).then(pl.lit("new"))
        .when(pl.col("tier_position") == pl.col("previous_tier_position")).then(pl.lit("same"))
        .when(pl.col("tier_position") < pl.col("previous_tier_position")).then(pl.lit("up"))
        .otherwise(pl.lit("down")).alias("move")
    )
    return moved.group_by("move").agg(pl.len().alias("customers"))


def show_metrics(figures: dict[str, int]) -> None:
    specs = ("customers", "cross_source", "repeat", "b2b")
    for column, key in zip(st.columns(len(specs)), specs, strict=True):
        column.metric(t(f"customers.metric.{key}"), count(figures[key]), help=t(f"customers.metric.{key}.help"),
                      border=True)


def top_table(frame: pl.DataFrame) -> pl.DataFrame:
    top = frame.sort(["monetary_jpy", "frequency", "unified_customer_id"], descending=[True, True, False]).head(TOP_N)
    return pl.DataFrame(
        {
            t("customers.col.name"): top["full_name"],
            t("customers.col.kana"): top["name_kana"],
            t("customers.col.tier"): top["rank_tier"],
            t("customers.col.monetary"): top["monetary_jpy"],
            t("customers.col.frequency"): top["frequency"],
            t("customers.col.recency"): top["recency_days"],
            t("customers.col.sources"): [", ".join(ch.name(s) for s in row) for row in top["sources"].to_list()],
            t("customers.col.lifetime_orders"): top["lifetime_orders"],
            t("customers.col.last_order"): [jst_timestamp(v) if v else "—" for v in top["last_order_at_utc"].to_list()],
            t("customers.col.id"): top["unified_customer_id"],
        }
    )


def b2b_table(frame: pl.DataFrame) -> pl.DataFrame:
    b2b = frame.filter(pl.col("is_b2b")).sort(["erp_rank", "monetary_jpy"], descending=[False, True], nulls_last=True)
    return pl.DataFrame(
        {
            t("customers.col.name"): b2b["full_name"],
            t("customers.col.erp_rank"): b2b["erp_rank"],
            t("customers.col.tier"): b2b["rank_tier"],
            t("customers.col.monetary"): b2b["monetary_jpy"],
            t("customers.col.frequency"): b2b["frequency"],
            t("customers.col.sources"): [", ".join(ch.name(s) for s in row) for row in b2b["sources"].to_list()],
            t("customers.col.id"): b2b["unified_customer_id"],
        }
    )


def scatter(frame: pl.DataFrame, order: list[str]) -> alt.Chart:
    plotted = frame.filter(pl.col("recency_days").is_not_null()).select(
        pl.col("recency_days").alias(t("customers.col.recency")),
        pl.col("monetary_jpy").alias(t("customers.col.monetary")),
        pl.col("frequency").alias(t("customers.col.frequency")),
        pl.col("rank_tier").alias(t("customers.col.tier")),
        pl.col("full_name").alias(t("customers.col.name")),
    )
    return (
        alt.Chart(plotted.to_pandas())
        .mark_circle(opacity=0.6)
        .encode(
            x=alt.X(f"{t('customers.col.recency')}:Q", scale=alt.Scale(reverse=True)),
            y=alt.Y(f"{t('customers.col.monetary')}:Q", scale=alt.Scale(type="symlog")),
            size=alt.Size(f"{t('customers.col.frequency')}:Q", legend=None),
            color=alt.Color(f"{t('customers.col.tier')}:N", sort=order),
            tooltip=list(plotted.columns),
        )
    )


def render() -> None:
    st.title(t("customers.title"))
    serving = data.require_published()
    if serving is None:
        return
    try:
        if not filters_ready(serving):
            st.info(t("customers.no_model"))
            return
        sources = serving.query(SOURCES_SQL)["source"].to_list()
        if not sources:
            st.info(t("customers.no_data"))
            return
        flt = filters.sidebar(sources)
        if not flt.channels:
            st.info(t("filters.no_channels"))
            return
        frame = customers(serving, list(flt.channels))
    except data.ServingError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if frame.is_empty():
        st.info(t("customers.no_data"))
        return
    window = int(frame["window_days"][0])
    st.caption(t("customers.caption", days=window, as_of=jst_timestamp(frame["as_of_utc"][0])))
    order = tier_order(frame)
    show_metrics(headline(frame))

    left, right = st.columns(2)
    with left:
        st.subheader(t("customers.rank.title"))
        dist = distribution(frame, order)
        st.altair_chart(
            alt.Chart(dist.rename({"rank_tier": t("customers.col.tier"),
                                   "customers": t("customers.col.customers")}).to_pandas())
            .mark_bar()
            .encode(x=alt.X(f"{t('customers.col.tier')}:N", sort=order), y=f"{t('customers.col.customers')}:Q"),
            width="stretch",
        )
        moves = movement(frame)
        if moves is None:
            st.caption(t("customers.movement.not_yet"))
        else:
            got = dict(zip(moves["move"].to_list(), moves["customers"].to_list(), strict=True))
            cols = st.columns(4)
            for column, key in zip(cols, ("up", "same", "down", "new"), strict=True):
                column.metric(t(f"customers.movement.{key}"), count(got.get(key, 0)))
    with right:
        st.subheader(t("customers.rfm.title"))
        st.altair_chart(scatter(frame, order), width="stretch")

    st.subheader(t("customers.top.title", n=TOP_N))
    top = top_table(frame)
    st.dataframe(top, hide_index=True, width="stretch",
                 column_config={t("customers.col.monetary"): st.column_config.NumberColumn(format="yen")})
    csv_download_button(top, f"ichigen_top_customers_{lang()}.csv")

    st.subheader(t("customers.b2b.title"))
    b2b = b2b_table(frame)
    if b2b.is_empty():
        st.info(t("customers.b2b.none"))
    else:
        st.dataframe(b2b, hide_index=True, width="stretch",
                     column_config={t("customers.col.monetary"): st.column_config.NumberColumn(format="yen")})


def filters_ready(serving: data.Published) -> bool:
    """A serving copy published before the customer model existed has no dim_customer."""
    return not serving.query(COLUMNS_SQL).is_empty()


render()
