"""SQL: a read-only SQL editor on the serving copy, with the data dictionary and example queries.

Queries run through `dashboards.sql_runner` (own locked-down read-only connection, timeout, row cap). The
timeout is `$ICHIGEN_SQL_TIMEOUT_S` seconds (default 10). Results show as a table or a bar/line chart, and
download as CSV. The dictionary comes from dbt's manifest (`dashboards.dictionary`).
"""

from __future__ import annotations

import os

import polars as pl
import streamlit as st

from dashboards import data, dictionary, sql_runner
from dashboards.export import csv_download_button
from dashboards.i18n import keep_on_language_change, labels, t

ENV_TIMEOUT = "ICHIGEN_SQL_TIMEOUT_S"
TEXT_KEY = "sql_text"
EXAMPLE_KEY = "sql_example"
VIEW_KEY = "sql_view"
RESULT_KEY = "_sql_result"
keep_on_language_change(EXAMPLE_KEY, VIEW_KEY)

EXAMPLES: dict[str, str] = {
    "daily_sales": """select channel, sum(orders) as orders, sum(units) as units, sum(gross_sales_jpy) as gross_sales_jpy
from fct_daily_sales
where order_date_jst >= current_date - interval 30 day
group by channel
order by gross_sales_jpy desc""",
    "backlog": """select status, count(*) as orders, sum(total_jpy) as total_jpy
from fct_orders
group by status
order by orders desc""",
    "stockouts": """select sku, sum(on_hand) filter (where is_sellable) as sellable_on_hand, sum(on_hand) as on_hand
from fct_stock_position
group by sku
having coalesce(sum(on_hand) filter (where is_sellable), 0) = 0
order by sku""",
    "targets": """select channel, sku, target_quantity, explain
from mart_channel_stock_targets
order by channel, sku""",
    "top_skus": """select l.sku, sum(l.quantity) as units, sum(l.line_total_jpy) as sales_jpy
from fct_order_lines as l
join fct_orders as o on o.order_key = l.order_key
where o.status <> 'cancelled'
group by l.sku
order by units desc
limit 10""",
}
VIEWS = ("table", "bar", "line")


def timeout_s() -> float:
    try:
        return float(os.environ.get(ENV_TIMEOUT, sql_runner.DEFAULT_TIMEOUT_S))
    except ValueError:
        return sql_runner.DEFAULT_TIMEOUT_S


def _load_example() -> None:
    choice = st.session_state.get(EXAMPLE_KEY)
    if choice in EXAMPLES:
        st.session_state[TEXT_KEY] = EXAMPLES[choice]
        st.session_state.pop(RESULT_KEY, None)


def execute(serving: data.Published, sql: str) -> dict:
    """Run `sql`; a dict to keep in the session state (result or a message ready to show)."""
    limit = timeout_s()
    out: dict = {"sql": sql, "version": serving.version}
    try:
        result = sql_runner.run(serving.path, sql, timeout_s=limit)
    except sql_runner.EmptyQuery:
        out["error"] = ("info", t("sql.error.empty"))
    except sql_runner.QueryTimeout:
        out["error"] = ("warning", t("sql.error.timeout", timeout=f"{limit:g}"))
    except sql_runner.QueryRefused as exc:
        out["error"] = ("error", t("sql.error.read_only", kind=exc.kind))
    except sql_runner.QueryError as exc:
        message = str(exc)
        if "read-only" in message or "read only" in message:
            out["error"] = ("error", t("sql.error.read_only", kind=message))
        else:
            out["error"] = ("error", t("sql.error.failed", error=message))
    except Exception as exc:  # e.g. the serving file vanished between the check and the open
        out["error"] = ("error", t("sql.error.failed", error=exc))
    else:
        out.update(frame=result.frame, truncated=result.truncated, seconds=result.seconds)
    return out


def show_error(kind: str, message: str) -> None:
    if kind == "warning":
        st.warning(message, icon=":material/timer_off:")
    elif kind == "info":
        st.info(message)
    else:
        st.error(message, icon=":material/block:")


def show_result(out: dict) -> None:
    if "error" in out:
        show_error(*out["error"])
        return
    frame: pl.DataFrame = out["frame"]
    st.caption(t("sql.result.caption", rows=f"{frame.height:,}", seconds=out["seconds"]))
    if out["truncated"]:
        st.warning(t("sql.result.truncated", rows=f"{sql_runner.DEFAULT_MAX_ROWS:,}"))
    if frame.is_empty():
        st.info(t("sql.result.empty"))
        return
    view = st.radio(
        t("sql.view.label"),
        VIEWS,
        format_func=labels({v: f"sql.view.{v}" for v in VIEWS}).__getitem__,
        horizontal=True,
        key=VIEW_KEY,
    )
    if view == "table":
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        numeric = [c for c, dtype in frame.schema.items() if dtype.is_numeric()]
        if not numeric:
            st.info(t("sql.chart.no_numbers"))
        else:
            left, right = st.columns(2)
            x = left.selectbox(t("sql.chart.x"), frame.columns, key="sql_chart_x")
            ys = [c for c in numeric if c != x] or numeric
            y = right.multiselect(t("sql.chart.y"), ys, default=ys[:1], key="sql_chart_y")
            if y:
                source = frame.select(x, *y).with_columns(pl.col(y).cast(pl.Float64))
                if view == "bar":
                    st.bar_chart(source, x=x, y=y)
                else:
                    st.line_chart(source, x=x, y=y)
    csv_download_button(frame.select(pl.all().map_batches(_csv_safe)), "ichigen_query.csv")


def _csv_safe(column: pl.Series) -> pl.Series:
    """Nested values (lists, structs) have no CSV form: write them as text."""
    return column.cast(pl.String) if column.dtype.is_nested() else column


def query_tab(serving: data.Published) -> None:
    state = st.session_state
    state.setdefault(TEXT_KEY, EXAMPLES["daily_sales"])
    names = labels({"": "sql.example.none", **{k: f"sql.example.{k}" for k in EXAMPLES}})
    st.selectbox(
        t("sql.example.label"),
        list(names),
        format_func=names.__getitem__,
        key=EXAMPLE_KEY,
        on_change=_load_example,
    )
    sql = st.text_area(t("sql.editor.label"), key=TEXT_KEY, height=180)
    if st.button(t("sql.run"), type="primary", icon=":material/play_arrow:", key="sql_run"):
        with st.spinner():
            state[RESULT_KEY] = execute(serving, sql)
    out = state.get(RESULT_KEY)
    if out is not None and out["version"] == serving.version:
        show_result(out)


def dictionary_tab(serving: data.Published) -> None:
    rows = serving.query(dictionary.COLUMNS_SQL).rows()
    types = dictionary.types_by_table(rows)
    path = dictionary.manifest_path()
    models: list[dictionary.Model] | None = None
    if path is not None:
        try:
            models = dictionary.from_manifest(path.read_text(encoding="utf-8"), types)
        except (OSError, ValueError, KeyError):
            models = None
    if models is not None and path is not None:
        st.caption(t("sql.dict.caption_manifest", path=path.name if path.parent.name == "target" else path))
    else:
        st.caption(t("sql.dict.caption_schema"))
        models = dictionary.from_schema(types)
    for layer in dictionary.LAYERS:
        in_layer = [m for m in models if m.layer == layer]
        if not in_layer:
            continue
        st.subheader(t(f"sql.dict.layer.{layer}"))
        for model in in_layer:
            first_line = model.description.splitlines()[0] if model.description else ""
            short = first_line if len(first_line) <= 90 else first_line[:89] + "…"
            with st.expander(f"`{model.relation}` {short}", expanded=False):
                if model.description:
                    st.markdown(model.description)
                st.dataframe(
                    pl.DataFrame(
                        {
                            t("sql.dict.col.column"): [c.name for c in model.columns],
                            t("sql.dict.col.type"): [c.type for c in model.columns],
                            t("sql.dict.col.description"): [c.description for c in model.columns],
                        },
                    ),
                    hide_index=True,
                    width="stretch",
                )


def render() -> None:
    st.title(t("sql.title"))
    serving = data.require_published()
    if serving is None:
        return
    st.caption(t("sql.caption", timeout=f"{timeout_s():g}", rows=f"{sql_runner.DEFAULT_MAX_ROWS:,}"))
    query, docs = st.tabs([t("sql.tab.query"), t("sql.tab.dictionary")])
    with query:
        query_tab(serving)
    with docs:
        try:
            dictionary_tab(serving)
        except data.ServingError as exc:
            st.error(str(exc), icon=":material/error:")


render()
