-- One row per channel order line (all channels). Columns as in DECISIONS.md D6, plus _fetched_at (when the
-- order version the line belongs to was fetched), which drives the incremental load.
-- sku is the ERP SKU the line resolved to; a line that matched no ERP product keeps the channel's seller SKU
-- so it stays visible (int_order_lines__unified has both).
--
-- Incremental (delete+insert on order_key, i.e. all lines of an order are replaced together, so a line that
-- disappears from a newer order version disappears here too): only orders fetched since the newest
-- _fetched_at in the table minus var incremental_lookback_hours are reprocessed. A product matched to a
-- listing later does not re-resolve old lines' sku until `dbt build --full-refresh`.
{{ config(
    materialized='incremental',
    unique_key='order_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
select
    l.order_line_key,
    l.order_key,
    l.channel,
    coalesce(l.erp_sku, l.channel_sku)  as sku,
    l.quantity,
    l.unit_price_jpy,
    l.line_total_jpy,
    o._fetched_at
from {{ ref('int_order_lines__unified') }} as l
inner join {{ ref('int_orders__unified') }} as o
    on o.order_key = l.order_key
{{ fetched_since_last_build('o._fetched_at') }}
