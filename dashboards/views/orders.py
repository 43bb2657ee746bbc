"""受注 / Orders: the open backlog by unified status and age, late shipments, cancellations and returns.

- Backlog: orders now `pending_payment` (入金待ち) or `awaiting_shipment` (発送待ち) in the chosen channels,
  by age = now − ordered_at (<1 day, 1–3, 3–7, >7 days). The period filter does not apply: a backlog is now.
- Late shipments: awaiting shipment for more than `LATE_SHIPMENT_DAYS` days.
- Cancellations and returns: orders placed in the chosen period (JST order date) by channel, with rates.

"Now" is taken to the minute and passed to SQL, so cached results (keyed by the published version and the
query's parameters) never show a stale age for more than a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from dashboards import channels as ch
from dashboards import data, filters
from dashboards.export import csv_download_button
from dashboards.formatting import count, jst_timestamp
from dashboards.i18n import lang, t

LATE_SHIPMENT_DAYS = 2  # awaiting shipment longer than this is late
OPEN_STATUSES = ("pending_payment", "awaiting_shipment")
BUCKETS = ("lt1", "d1_3", "d3_7", "gt7")  # ages: < 1 day, 1–3 days, 3–7 days, > 7 days

CHANNELS_SQL = "select distinct channel from fct_orders"

AGE = "date_diff('second', ordered_at_utc, $now::TIMESTAMPTZ) / 3600.0"

BACKLOG_SQL = f"""
select
    status,
    case when {AGE} < 24 then 'lt1' when {AGE} < 72 then 'd1_3' when {AGE} < 168 then 'd3_7' else 'gt7' end
        as bucket,
    count(*)::BIGINT as orders
from fct_orders
where status in ('pending_payment', 'awaiting_shipment')
  and list_contains($channels, channel)
group by all
"""

LATE_SQL = f"""
select channel, order_name, ordered_at_utc, round({AGE} / 24, 1)::DOUBLE as age_days, total_jpy
from fct_orders
where status = 'awaiting_shipment'
  and {AGE} > $late_hours
  and list_contains($channels, channel)
order by ordered_at_utc
"""

CANCELLED_SQL = """
select
    channel,
    count(*)::BIGINT as orders,
    count(*) filter (where status = 'cancelled')::BIGINT as cancelled,
    count(*) filter (where status = 'returned')::BIGINT as returned
from fct_orders
where order_date_jst between $start and $end
  and list_contains($channels, channel)
group by channel
"""


def now_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def backlog(serving: data.Published, flt: filters.Filters, now: datetime) -> pl.DataFrame:
    return serving.query(BACKLOG_SQL, {"now": now, "channels": list(flt.channels)})


def late(serving: data.Published, flt: filters.Filters, now: datetime) -> pl.DataFrame:
    return serving.query(
        LATE_SQL, {"now": now, "channels": list(flt.channels), "late_hours": LATE_SHIPMENT_DAYS * 24}
    )


def cancellations(serving: data.Published, flt: filters.Filters) -> pl.DataFrame:
    frame = serving.query(
        CANCELLED_SQL, {"start": flt.period.start, "end": flt.period.end, "channels": list(flt.channels)}
    )
    order = ch.ordered(frame["channel"].to_list())
    return frame.with_columns(
        pl.col("channel")
        .replace_strict({c: i for i, c in enumerate(order)}, return_dtype=pl.Int32)
        .alias("r")
    ).sort("r")


def headline(backlog_: pl.DataFrame, late_: pl.DataFrame, cancel: pl.DataFrame) -> dict[str, int]:
    by_status = {s: int(backlog_.filter(pl.col("status") == s)["orders"].sum()) for s in OPEN_STATUSES}
    return {
        **by_status,
        "late": late_.height,
        "cancelled": int(cancel["cancelled"].sum()),
        "returned": int(cancel["returned"].sum()),
    }


def show_metrics(figures: dict[str, int]) -> None:
    specs = (
        ("pending_payment", t("orders.metric.pending_payment"), None),
        ("awaiting_shipment", t("orders.metric.awaiting_shipment"), None),
        ("late", t("orders.metric.late"), t("orders.metric.late.help", days=LATE_SHIPMENT_DAYS)),
        ("cancelled", t("orders.metric.cancelled"), None),
        ("returned", t("orders.metric.returned"), None),
    )
    for column, (key, label, help_) in zip(st.columns(len(specs)), specs, strict=True):
        column.metric(label, count(figures[key]), help=help_, border=True)


def backlog_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per open status, one column per age bucket, and the total."""
    rows = []
    for status in OPEN_STATUSES:
        sub = frame.filter(pl.col("status") == status)
        cells = {b: int(sub.filter(pl.col("bucket") == b)["orders"].sum()) for b in BUCKETS}
        rows.append(
            {
                t("orders.col.status"): t(f"orders.status.{status}"),
                **{t(f"orders.bucket.{b}"): cells[b] for b in BUCKETS},
                t("orders.col.total"): sum(cells.values()),
            }
        )
    return pl.DataFrame(rows)


def late_table(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        {
            t("common.col.channel"): [ch.name(c) for c in frame["channel"].to_list()],
            t("orders.col.order"): frame["order_name"].to_list(),
            t("orders.col.ordered_at"): [jst_timestamp(v) for v in frame["ordered_at_utc"].to_list()],
            t("orders.col.age_days"): frame["age_days"].to_list(),
            t("orders.col.amount"): frame["total_jpy"].to_list(),
        },
        schema_overrides={t("orders.col.age_days"): pl.Float64, t("orders.col.amount"): pl.Int64},
    )


def cancel_table(frame: pl.DataFrame) -> pl.DataFrame:
    orders = frame["orders"]
    return pl.DataFrame(
        {
            t("common.col.channel"): [ch.name(c) for c in frame["channel"].to_list()],
            t("orders.col.orders"): orders,
            t("orders.col.cancelled"): frame["cancelled"],
            t("orders.col.returned"): frame["returned"],
            t("orders.col.cancel_rate"): (frame["cancelled"] / orders * 100).round(1),
            t("orders.col.return_rate"): (frame["returned"] / orders * 100).round(1),
        }
    )


def render() -> None:
    st.title(t("orders.title"))
    serving = data.require_published()
    if serving is None:
        return
    now = now_minute()
    try:
        known = serving.query(CHANNELS_SQL)
        if known.is_empty():
            st.info(t("orders.no_data"))
            return
        flt = filters.sidebar(known["channel"].to_list())
        st.caption(t("orders.caption", now=jst_timestamp(now)))
        if not flt.channels:
            st.info(t("filters.no_channels"))
            return
        st.caption(flt.summary())
        open_ = backlog(serving, flt, now)
        late_ = late(serving, flt, now)
        cancel = cancellations(serving, flt)
    except data.ServingError as exc:
        st.error(str(exc), icon=":material/error:")
        return

    show_metrics(headline(open_, late_, cancel))

    st.subheader(t("orders.backlog.title"))
    if open_.is_empty():
        st.success(t("orders.backlog.empty"), icon=":material/check_circle:")
    else:
        st.dataframe(backlog_table(open_), hide_index=True, width="stretch")

    st.subheader(t("orders.late.title", days=LATE_SHIPMENT_DAYS))
    if late_.is_empty():
        st.success(t("orders.late.none"), icon=":material/check_circle:")
    else:
        readable = late_table(late_)
        st.dataframe(
            readable,
            hide_index=True,
            width="stretch",
            column_config={t("orders.col.amount"): st.column_config.NumberColumn(format="yen")},
        )
        csv_download_button(readable, f"ichigen_late_shipments_{now:%Y%m%d%H%M}_{lang()}.csv")

    st.subheader(t("orders.cancel.title"))
    if cancel.is_empty():
        st.info(t("orders.cancel.empty"))
    else:
        st.dataframe(cancel_table(cancel), hide_index=True, width="stretch")


render()
