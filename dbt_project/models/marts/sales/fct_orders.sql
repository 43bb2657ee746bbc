-- One row per channel order (all channels), with the unified status. Columns as in DECISIONS.md D6, plus
-- _fetched_at (when the kept version was fetched), which drives the incremental load.
--
-- Incremental (delete+insert on order_key): a build reprocesses only the orders whose kept version was fetched
-- since the newest _fetched_at in the table minus var incremental_lookback_hours (macro
-- fetched_since_last_build); re-merging an unchanged order writes the same row, so a rebuild over the same
-- landing zone changes nothing. A change of the status map seed needs `dbt build --full-refresh`.
-- unified_customer_id (int_customers__order_links) can change when identities merge: orders whose stored id
-- differs from the current link are reprocessed too (and all of them when the column is new).
-- The key and id columns (one value per row) are stored with zstd: zstd_columns, DECISIONS.md D236.
{%- set since_last_build = fetched_since_last_build('o._fetched_at') %}
{{ config(
    materialized='incremental',
    unique_key='order_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    zstd_columns=['order_key', 'order_id', 'order_name'],
) }}
select
    o.order_key,
    o.channel,
    o.order_id,
    o.order_name,
    o.ordered_at_utc,
    o.order_date_jst,
    o.updated_at_utc,
    o.status,
    o.channel_financial_status,
    o.channel_fulfillment_status,
    o.is_open,
    o.total_jpy,
    o.customer_id,
    o.units,
    o._fetched_at,
    c.unified_customer_id
from {{ ref('int_orders__unified') }} as o
left join {{ ref('int_customers__order_links') }} as c
    on c.order_key = o.order_key
{{ since_last_build }}
{%- if is_incremental() and since_last_build | trim %}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
    or {% if 'unified_customer_id' in existing -%}
    o.order_key in (
        select t.order_key
        from {{ this }} as t
        left join {{ ref('int_customers__order_links') }} as cl on cl.order_key = t.order_key
        where t.unified_customer_id is distinct from cl.unified_customer_id
    )
    {%- else -%} true {%- endif %}
{%- endif %}
