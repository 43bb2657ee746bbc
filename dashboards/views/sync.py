"""同期 / Sync health: last ingest per source/entity, push results per channel, guard-rail refusals.

- Last ingest: max(`_fetched_at`) of every staging model in the serving copy that carries it
  (`stg_<source>__<entity>`), with its age in minutes at the time the page is drawn.
- Pushes: `staging.stg_push_log__attempts` (the push log, DECISIONS.md D7) in the chosen period (JST date of
  the push) and channels: applied / failed / refused / stale / dry_run counts and the last push per channel.
- Guard-rail refusals: attempts with status `refused` and the guard's reason (`error`).
- Quarantine: `main.mart_ingest_quarantine` — records ingestion could not land, per source, entity and kind
  of reason, with an example (the records themselves: `staging.stg_quarantine__records`).
- Drift per channel: `main.mart_sync_drift` — listed SKUs in sync / drifting / not yet seen, and the units off.
- ERP intake (受注連携, DECISIONS.md D40): orders posted to the ERP per channel in the period, and the orders held
  now (the latest intake record of the order says `held`) with the reason, so a person can fix the mapping.
- Stock lag over time: `main.mart_stock_sync_lag` — per JST day and channel, seconds from a sale on another
  channel to the next stock push of that SKU to this channel (p50 / p95 / max, and sales not pushed yet).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from dashboards import channels as ch
from dashboards import data, filters
from dashboards.formatting import count, jst_timestamp
from dashboards.i18n import t

PUSH_LOG = "staging.stg_push_log__attempts"
PUSH_STATUSES = ("applied", "failed", "refused", "stale", "dry_run")

FETCHED_MODELS_SQL = """
select table_schema, table_name
from information_schema.columns
where table_catalog = current_database()
  and column_name = '_fetched_at'
  and table_name like 'stg\\_%' escape '\\'
order by table_name
"""

PUSH_LOG_EXISTS_SQL = """
select count(*) as n
from information_schema.tables
where table_catalog = current_database() and table_schema = 'staging' and table_name = 'stg_push_log__attempts'
"""

PUSH_CHANNELS_SQL = f"select distinct channel from {PUSH_LOG}"

TABLE_EXISTS_SQL = """
select count(*) as n
from information_schema.tables
where table_catalog = current_database() and table_schema = $schema and table_name = $name
"""

QUARANTINE_SQL = """
select source, entity, reason_kind, records, occurrences, last_quarantined_at, example_reason, example_record_key
from main.mart_ingest_quarantine
order by records desc, source, entity, reason_kind
"""

LAG_SQL = """
select sale_date_jst, channel, sales, reflected, not_yet_pushed, lag_p50_s, lag_p95_s, lag_max_s
from main.mart_stock_sync_lag
order by sale_date_jst, channel
"""

DRIFT_SQL = """
select
    channel,
    count(*) filter (where status = 'in_sync')::BIGINT      as in_sync,
    count(*) filter (where status = 'drift')::BIGINT        as drift,
    count(*) filter (where status = 'not_seen')::BIGINT     as not_seen,
    coalesce(sum(abs(drift_quantity)), 0)::BIGINT           as units_off
from main.mart_sync_drift
where is_listed
group by channel
"""

PUSH_DAY = "cast(timezone('Asia/Tokyo', coalesce(pushed_at, planned_at)) as date)"

PUSH_SQL = f"""
select
    channel,
    {", ".join(f"count(*) filter (where status = '{s}')::BIGINT as {s}" for s in PUSH_STATUSES)},
    max(coalesce(pushed_at, planned_at)) as last_push
from {PUSH_LOG}
where {PUSH_DAY} between $start and $end
  and list_contains($channels, channel)
  and field in ('stock', 'price')
group by channel
"""

INTAKE_SQL = f"""
with latest as (
    select channel, target_ref, arg_max(status, planned_at) as status
    from {PUSH_LOG}
    where field = 'erp_intake' and status in ('applied', 'held')
    group by channel, target_ref
)
select
    channel,
    (select count(distinct p.target_ref) from {PUSH_LOG} as p
     where p.field = 'erp_intake' and p.status = 'applied' and p.channel = l.channel
       and {PUSH_DAY.replace("pushed_at", "p.pushed_at").replace("planned_at", "p.planned_at")} between $start and $end
    )::BIGINT as posted,
    count(*) filter (where status = 'held')::BIGINT as held
from latest as l
where list_contains($channels, channel)
group by channel
"""

HELD_SQL = f"""
select channel, target_ref, arg_max(error, planned_at) as reason, min(planned_at) as first_held_at
from {PUSH_LOG}
where field = 'erp_intake' and status in ('applied', 'held') and list_contains($channels, channel)
group by channel, target_ref
having arg_max(status, planned_at) = 'held'
order by first_held_at, channel, target_ref
"""

REFUSALS_SQL = f"""
select coalesce(pushed_at, planned_at) as attempted_at, channel, sku, field, old_value, new_value, error
from {PUSH_LOG}
where status = 'refused'
  and field in ('stock', 'price')
  and {PUSH_DAY} between $start and $end
  and list_contains($channels, channel)
order by attempted_at desc, channel, sku
"""


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def last_ingest(serving: data.Published) -> pl.DataFrame:
    """model, source, entity, last_fetched (UTC) for every staging model with `_fetched_at`."""
    models = serving.query(FETCHED_MODELS_SQL)
    if models.is_empty():
        return pl.DataFrame(schema={"model": pl.String, "last_fetched": pl.Datetime("us", "UTC")})
    union = "\nunion all\n".join(
        f"select '{table}' as model, max(_fetched_at) as last_fetched from {ident(schema)}.{ident(table)}"
        for schema, table in models.rows()
    )
    return serving.query(f"select * from ({union}) order by model")


def table_exists(serving: data.Published, schema: str, name: str) -> bool:
    """A serving copy published before a model existed lacks its table: the page then shows what it has."""
    return int(serving.query(TABLE_EXISTS_SQL, {"schema": schema, "name": name})["n"][0]) > 0


def split_model(name: str) -> tuple[str, str]:
    """`stg_shopify__orders` → (`shopify`, `orders`)."""
    base = name.removeprefix("stg_")
    source, _, entity = base.partition("__")
    return source, entity or base


def age_minutes(last: datetime | None, now: datetime) -> int | None:
    if last is None:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return int((now - last).total_seconds() // 60)


def ingest_table(frame: pl.DataFrame, now: datetime) -> pl.DataFrame:
    models = frame["model"].to_list()
    lasts = frame["last_fetched"].to_list()
    return pl.DataFrame(
        {
            t("sync.col.source"): [split_model(m)[0] for m in models],
            t("sync.col.entity"): [split_model(m)[1] for m in models],
            t("sync.col.last_fetched"): [jst_timestamp(v) if v else "—" for v in lasts],
            t("sync.col.age_minutes"): [age_minutes(v, now) for v in lasts],
            t("sync.col.model"): models,
        },
        schema_overrides={t("sync.col.age_minutes"): pl.Int64},
    )


def push_table(frame: pl.DataFrame) -> pl.DataFrame:
    order = ch.ordered(frame["channel"].to_list())
    frame = frame.sort(
        pl.col("channel").replace_strict({c: i for i, c in enumerate(order)}, return_dtype=pl.Int32)
    )
    return pl.DataFrame(
        {
            t("common.col.channel"): [ch.name(c) for c in frame["channel"].to_list()],
            **{t(f"sync.col.{s}"): frame[s] for s in PUSH_STATUSES},
            t("sync.col.last_push"): [jst_timestamp(v) if v else "—" for v in frame["last_push"].to_list()],
        }
    )


def refusals_table(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        {
            t("sync.col.pushed_at"): [
                jst_timestamp(v) if v else "—" for v in frame["attempted_at"].to_list()
            ],
            t("common.col.channel"): [ch.name(c) for c in frame["channel"].to_list()],
            t("common.col.sku"): frame["sku"],
            t("sync.col.field"): frame["field"],
            t("sync.col.old_value"): frame["old_value"],
            t("sync.col.new_value"): frame["new_value"],
            t("sync.col.error"): frame["error"],
        }
    )


def intake_table(frame: pl.DataFrame) -> pl.DataFrame:
    order = ch.ordered(frame["channel"].to_list())
    frame = frame.sort(
        pl.col("channel").replace_strict({c: i for i, c in enumerate(order)}, return_dtype=pl.Int32)
    )
    return pl.DataFrame(
        {
            t("common.col.channel"): [ch.name(c) for c in frame["channel"].to_list()],
            t("sync.col.posted"): frame["posted"],
            t("sync.col.held"): frame["held"],
        }
    )


def held_table(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        {
            t("common.col.channel"): [ch.name(c) for c in frame["channel"].to_list()],
            t("sync.col.order"): frame["target_ref"],
            t("sync.col.held_reason"): frame["reason"],
            t("sync.col.held_since"): [jst_timestamp(v) for v in frame["first_held_at"].to_list()],
        }
    )


def quarantine_table(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        {
            t("sync.col.source"): frame["source"],
            t("sync.col.entity"): frame["entity"],
            t("sync.col.reason"): frame["reason_kind"],
            t("sync.col.records"): frame["records"],
            t("sync.col.occurrences"): frame["occurrences"],
            t("sync.col.last_quarantined"): [
                jst_timestamp(v) if v else "—" for v in frame["last_quarantined_at"].to_list()
            ],
            t("sync.col.example"): [
                f"{key}: {reason}" if key else reason
                for key, reason in zip(frame["example_record_key"].to_list(), frame["example_reason"].to_list(),
                                       strict=True)
            ],
        }
    )


def drift_table(frame: pl.DataFrame) -> pl.DataFrame:
    order = ch.ordered(frame["channel"].to_list())
    frame = frame.sort(
        pl.col("channel").replace_strict({c: i for i, c in enumerate(order)}, return_dtype=pl.Int32)
    )
    return pl.DataFrame(
        {
            t("common.col.channel"): [ch.name(c) for c in frame["channel"].to_list()],
            **{t(f"sync.col.{s}"): frame[s] for s in ("in_sync", "drift", "not_seen", "units_off")},
        }
    )


def lag_table(frame: pl.DataFrame) -> pl.DataFrame:
    names = [ch.name(c) for c in frame["channel"].to_list()]
    return frame.select(
        pl.col("sale_date_jst").alias(t("sync.lag.col.date")),
        pl.Series(t("common.col.channel"), names, dtype=pl.String),
        pl.col("sales").alias(t("sync.lag.col.sales")),
        pl.col("reflected").alias(t("sync.lag.col.reflected")),
        pl.col("not_yet_pushed").alias(t("sync.lag.col.not_yet_pushed")),
        pl.col("lag_p50_s").alias(t("sync.lag.col.p50")),
        pl.col("lag_p95_s").alias(t("sync.lag.col.p95")),
        pl.col("lag_max_s").alias(t("sync.lag.col.max")),
    )


def show_lag(lag: pl.DataFrame | None) -> None:
    """Stock lag over time: p95 per day and channel as a chart, the figures on demand."""
    st.subheader(t("sync.lag.title"))
    st.caption(t("sync.lag.caption"))
    if lag is None or lag.filter(pl.col("reflected") > 0).is_empty():
        st.info(t("sync.lag.none"))
        return
    chart = lag.filter(pl.col("lag_p95_s").is_not_null()).with_columns(
        pl.col("channel").map_elements(ch.name, return_dtype=pl.String)
    ).pivot(on="channel", index="sale_date_jst", values="lag_p95_s").sort("sale_date_jst")
    st.line_chart(chart, x="sale_date_jst", y_label=t("sync.lag.col.p95"))
    with st.expander(t("sync.lag.table")):
        st.dataframe(lag_table(lag), hide_index=True, width="stretch")


def show_ingest(frame: pl.DataFrame, now: datetime) -> None:
    st.subheader(t("sync.ingest.title"))
    st.caption(t("sync.ingest.caption"))
    if frame.is_empty():
        st.info(t("sync.ingest.empty"))
    else:
        st.dataframe(ingest_table(frame, now), hide_index=True, width="stretch")


def render() -> None:
    st.title(t("sync.title"))
    serving = data.require_published()
    if serving is None:
        return
    now = datetime.now(UTC)
    st.caption(t("sync.caption", now=jst_timestamp(now)))
    try:
        has_log = int(serving.query(PUSH_LOG_EXISTS_SQL)["n"][0]) > 0
        channels = serving.query(PUSH_CHANNELS_SQL)["channel"].to_list() if has_log else []
        pushes = refusals = intake = held = None
        flt = None
        if channels:
            flt = filters.sidebar(channels)
            if flt.channels:
                params = {"start": flt.period.start, "end": flt.period.end, "channels": list(flt.channels)}
                pushes = serving.query(PUSH_SQL, params)
                refusals = serving.query(REFUSALS_SQL, params)
                intake = serving.query(INTAKE_SQL, params)
                held = serving.query(HELD_SQL, {"channels": list(flt.channels)})
        ingest = last_ingest(serving)
        quarantine = (serving.query(QUARANTINE_SQL)
                      if table_exists(serving, "main", "mart_ingest_quarantine") else None)
        drift = serving.query(DRIFT_SQL) if table_exists(serving, "main", "mart_sync_drift") else None
        lag = serving.query(LAG_SQL) if table_exists(serving, "main", "mart_stock_sync_lag") else None
    except data.ServingError as exc:
        st.error(str(exc), icon=":material/error:")
        return

    ages = [a for a in (age_minutes(v, now) for v in ingest["last_fetched"].to_list()) if a is not None]
    specs = [
        (t("sync.metric.sources"), count(ingest.height)),
        (t("sync.metric.oldest"), count(max(ages)) if ages else "—"),
    ]
    if quarantine is not None:
        specs.append((t("sync.metric.quarantined"), count(int(quarantine["records"].sum()))))
    if pushes is not None:
        specs += [
            (t(f"sync.metric.{s}"), count(int(pushes[s].sum()) if not pushes.is_empty() else 0))
            for s in ("applied", "failed", "refused")
        ]
    for column, (label, value) in zip(st.columns(len(specs)), specs, strict=True):
        column.metric(label, value, border=True)

    show_ingest(ingest, now)
    show_lag(lag)

    st.subheader(t("sync.quarantine.title"))
    st.caption(t("sync.quarantine.caption"))
    if quarantine is None or quarantine.is_empty():
        st.success(t("sync.quarantine.none"), icon=":material/check_circle:")
    else:
        st.dataframe(quarantine_table(quarantine), hide_index=True, width="stretch")

    st.subheader(t("sync.drift.title"))
    st.caption(t("sync.drift.caption"))
    if drift is None or drift.is_empty():
        st.info(t("sync.drift.none"))
    else:
        st.dataframe(drift_table(drift), hide_index=True, width="stretch")

    st.subheader(t("sync.push.title"))
    if not channels:
        st.info(t("sync.push.none"))
        return
    assert flt is not None
    if not flt.channels:
        st.info(t("filters.no_channels"))
        return
    st.caption(flt.summary())
    if pushes is None or pushes.is_empty():
        st.info(t("sync.push.empty"))
    else:
        st.dataframe(push_table(pushes), hide_index=True, width="stretch")

    st.subheader(t("sync.intake.title"))
    st.caption(t("sync.intake.caption"))
    if intake is None or intake.is_empty():
        st.info(t("sync.intake.none"))
    else:
        st.dataframe(intake_table(intake), hide_index=True, width="stretch")
        if held is not None and not held.is_empty():
            st.warning(t("sync.intake.held", n=held.height), icon=":material/pending_actions:")
            st.dataframe(held_table(held), hide_index=True, width="stretch")

    st.subheader(t("sync.refusals.title"))
    if refusals is None or refusals.is_empty():
        st.success(t("sync.refusals.none"), icon=":material/check_circle:")
    else:
        st.dataframe(refusals_table(refusals), hide_index=True, width="stretch")


render()
