-- One row per channel order line (all channels). Columns as in DECISIONS.md D6, plus _fetched_at (when the
-- order version the line belongs to was fetched), which drives the incremental load.
-- sku is the ERP SKU the line resolved to; a line that matched no ERP product keeps the channel's seller SKU
-- so it stays visible (int_order_lines__unified has both).
--
-- Incremental (delete+insert on order_key, i.e. all lines of an order are replaced together, so a line that
-- disappears from a newer order version disappears here too): only orders fetched since the newest
-- _fetched_at in the table minus var incremental_lookback_hours are reprocessed. A product matched to a
-- listing later does not re-resolve old lines' sku until `dbt build --full-refresh`.
--
-- order_date_jst and order_status are the order's (fct_orders), carried so that "units sold per SKU over a
-- period" reads this table alone: at 10M lines the join to fct_orders was the stock page's whole cost (D76).
-- A changed status arrives with a newer fetch, which replaces the order's lines. Not sorted on write: at 10M
-- lines a sort of the whole table ran out of dbt's DuckDB memory limit (D73), and the scan of three narrow
-- columns is what the join cost. Lines stored before these columns existed are reprocessed once.
-- The key and id columns (one value per row) are stored with zstd: zstd_columns, DECISIONS.md D236.
{%- set since_last_build = fetched_since_last_build('o._fetched_at') %}
{{ config(
    materialized='incremental',
    unique_key='order_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    zstd_columns=['order_line_key', 'order_key'],
) }}
select
    l.order_line_key,
    l.order_key,
    l.channel,
    coalesce(l.erp_sku, l.channel_sku)  as sku,
    l.quantity,
    l.unit_price_jpy,
    l.line_total_jpy,
    o.order_date_jst,
    o.status                            as order_status,
    o._fetched_at
from {{ ref('int_order_lines__unified') }} as l
inner join {{ ref('int_orders__unified') }} as o
    on o.order_key = l.order_key
{{ since_last_build }}
{%- if is_incremental() and since_last_build | trim %}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    {%- if 'order_status' not in existing %} or true {%- endif %}
{%- endif %}
