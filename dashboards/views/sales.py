"""売上 / Sales: gross sales, orders and units by JST day and channel, from `fct_daily_sales`.

KPIs for the chosen period and channels with the change against the previous period of equal length, a
stacked bar chart by day and channel, the table on demand and a CSV download (UTF-8 with BOM for Excel).
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import channels as ch
from dashboards import data, filters
from dashboards.export import csv_download_button
from dashboards.formatting import count, day, day_with_weekday, delta, yen
from dashboards.i18n import lang, t, weekday

CHANNELS_SQL = """
select channel, max(order_date_jst) as last_day
from fct_daily_sales
group by channel
"""

# The previous period ends the day before the current one starts, so one range covers both.
TOTALS_SQL = """
select
    case when order_date_jst >= $start then 'current' else 'previous' end as period,
    sum(gross_sales_jpy)::BIGINT as gross_sales_jpy,
    sum(orders)::BIGINT as orders,
    sum(units)::BIGINT as units
from fct_daily_sales
where order_date_jst between $previous_start and $end
  and list_contains($channels, channel)
group by all
"""

DAILY_SQL = """
select
    order_date_jst,
    channel,
    sum(orders)::BIGINT as orders,
    sum(units)::BIGINT as units,
    sum(gross_sales_jpy)::BIGINT as gross_sales_jpy
from fct_daily_sales
where order_date_jst between $start and $end
  and list_contains($channels, channel)
group by all
order by order_date_jst, channel
"""

MEASURES = ("gross_sales_jpy", "orders", "units")


def totals(serving: data.Published, flt: filters.Filters) -> dict[str, dict[str, int]]:
    """{'current': {measure: value}, 'previous': {...}}, zeros where a period has no rows."""
    frame = serving.query(
        TOTALS_SQL,
        {
            "start": flt.period.start,
            "end": flt.period.end,
            "previous_start": flt.previous.start,
            "channels": list(flt.channels),
        },
    )
    out = {p: dict.fromkeys(MEASURES, 0) for p in ("current", "previous")}
    for row in frame.iter_rows(named=True):
        out[row["period"]] = {m: int(row[m] or 0) for m in MEASURES}
    return out


def daily(serving: data.Published, flt: filters.Filters) -> pl.DataFrame:
    frame = serving.query(
        DAILY_SQL, {"start": flt.period.start, "end": flt.period.end, "channels": list(flt.channels)}
    )
    # Labels are looked up here, in the script thread (the language lives in the session state), and
    # mapped onto the rows: never call `t()` from inside a Polars expression, which may run on other threads.
    slugs = ch.ordered(frame["channel"].unique().to_list())
    days = frame["order_date_jst"].unique().to_list()
    return frame.with_columns(
        pl.col("channel")
        .replace_strict({s: i for i, s in enumerate(slugs)}, return_dtype=pl.Int32)
        .alias("channel_rank"),
        pl.col("channel")
        .replace_strict({s: ch.name(s) for s in slugs}, return_dtype=pl.String)
        .alias("channel_name"),
        pl.col("order_date_jst")
        .replace_strict({d: day_with_weekday(d) for d in days}, return_dtype=pl.String)
        .alias("day_label"),
        pl.col("order_date_jst")
        .replace_strict({d: weekday(d.weekday()) for d in days}, return_dtype=pl.String)
        .alias("weekday"),
    ).sort("order_date_jst", "channel_rank")


def show_metrics(figures: dict[str, dict[str, int]], flt: filters.Filters) -> None:
    prev = flt.previous
    specs = (
        ("gross_sales_jpy", "sales.metric.gross", yen, True),
        ("orders", "sales.metric.orders", count, False),
        ("units", "sales.metric.units", count, False),
    )
    for column, (measure, label_key, fmt, money) in zip(st.columns(len(specs)), specs, strict=True):
        current, previous = figures["current"][measure], figures["previous"][measure]
        column.metric(
            t(label_key),
            fmt(current),
            delta=delta(current, previous, money=money),
            delta_color="normal" if current != previous else "off",
            delta_description=t("sales.metric.delta_desc"),
            help=t(
                "sales.metric.help",
                prev_start=day(prev.start),
                prev_end=day(prev.end),
                previous=fmt(previous),
            ),
            border=True,
        )


def chart(frame: pl.DataFrame) -> alt.Chart:
    slugs = ch.ordered(frame["channel"].unique().to_list())
    source = frame.with_columns(
        pl.Series("gross_label", [yen(v) for v in frame["gross_sales_jpy"].to_list()], dtype=pl.String)
    )
    return (
        alt.Chart(source)
        .mark_bar()
        .encode(
            # Dates are JST calendar days; read and shown as UTC so no browser time zone shifts them.
            x=alt.X(
                "order_date_jst:T",
                timeUnit="utcyearmonthdate",
                title=None,
                axis=alt.Axis(format="%m/%d", labelAngle=0, labelOverlap=True),
            ),
            y=alt.Y(
                "sum(gross_sales_jpy):Q",
                title=t("sales.col.gross"),
                axis=alt.Axis(labelExpr="'¥' + format(datum.value, ',')"),
            ),
            color=alt.Color(
                "channel_name:N",
                title=t("sales.col.channel"),
                scale=alt.Scale(domain=[ch.name(s) for s in slugs], range=[ch.color(s) for s in slugs]),
                legend=alt.Legend(orient="bottom"),
            ),
            order=alt.Order("channel_rank:Q"),
            tooltip=[
                alt.Tooltip("day_label:N", title=t("sales.col.date")),
                alt.Tooltip("channel_name:N", title=t("sales.col.channel")),
                alt.Tooltip("gross_label:N", title=t("sales.col.gross")),
                alt.Tooltip("orders:Q", title=t("sales.col.orders"), format=","),
                alt.Tooltip("units:Q", title=t("sales.col.units"), format=","),
            ],
        )
        .properties(height=360)
    )


def table(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows as people read them: localised headers, JST date, channel name, integer figures."""
    return frame.select(
        pl.col("order_date_jst").alias(t("sales.col.date")),
        pl.col("weekday").alias(t("sales.col.weekday")),
        pl.col("channel").alias(t("sales.col.channel_code")),
        pl.col("channel_name").alias(t("sales.col.channel")),
        pl.col("orders").alias(t("sales.col.orders")),
        pl.col("units").alias(t("sales.col.units")),
        pl.col("gross_sales_jpy").alias(t("sales.col.gross")),
    )


def render() -> None:
    st.title(t("sales.title"))
    serving = data.require_published()
    if serving is None:
        return
    try:
        known = serving.query(CHANNELS_SQL)
        if known.is_empty():
            st.info(t("sales.no_data"))
            return
        flt = filters.sidebar(known["channel"].to_list())
        st.caption(t("sales.caption", last_day=day(known["last_day"].max())))
        if not flt.channels:
            st.info(t("filters.no_channels"))
            return
        st.caption(flt.summary())
        show_metrics(totals(serving, flt), flt)
        rows = daily(serving, flt)
    except data.ServingError as exc:
        st.error(str(exc), icon=":material/error:")
        return

    st.subheader(t("sales.chart.title"))
    if rows.is_empty():
        st.info(t("sales.chart.empty"))
        return
    st.altair_chart(chart(rows), width="stretch")

    readable = table(rows)
    csv_download_button(readable, f"ichigen_sales_{flt.period.start:%Y%m%d}-{flt.period.end:%Y%m%d}_{lang()}.csv", label=t("sales.download"))
    with st.expander(t("sales.table.expander")):
        st.dataframe(
            readable,
            hide_index=True,
            width="stretch",
            column_config={
                t("sales.col.date"): st.column_config.DateColumn(format="YYYY/MM/DD"),
                t("sales.col.orders"): st.column_config.NumberColumn(format="localized"),
                t("sales.col.units"): st.column_config.NumberColumn(format="localized"),
                t("sales.col.gross"): st.column_config.NumberColumn(format="yen"),
            },
        )


render()
