-- One row per Shopify order line, unnested from the latest version of each order (lines are landed inside
-- their order, D4). An order edit that removes a line keeps the line with current_quantity 0.
{{ config(zstd_columns=['line_item_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
{%- set text_inputs = ['raw_sku', 'raw_title'] %}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('shopify', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'], columns='order_id, line_items, _batch_id, _fetched_at') }}

),

unnested as materialized (  -- read twice: its distinct texts, its rows (D240)

    select
        order_id,
        line_number,
        line.line_item_id,
        line.sku                                as raw_sku,
        line.variant_id,
        line.inventory_item_id,
        line.title                              as raw_title,
        line.quantity,
        line.current_quantity,
        {{ jpy_from_decimal_string('line.unit_price') }}  as unit_price_jpy
    from (
        select order_id, unnest(line_items) as line, generate_subscripts(line_items, 1) as line_number
        from latest
    )

),

texts as (

    {{ nfkc_per_distinct('unnested', text_inputs, {'sku': 'raw_sku', 'title': 'raw_title'}) }}

)

select
    cast(l.line_item_id as varchar)                             as line_item_id,
    cast(l.order_id as varchar)                                 as order_id,
    cast(l.line_number as integer)                              as line_number,
    t.sku,
    cast(l.variant_id as varchar)                               as variant_id,
    cast(l.inventory_item_id as varchar)                        as inventory_item_id,
    t.title,
    cast(l.quantity as bigint)                                  as quantity,
    cast(l.current_quantity as bigint)                          as current_quantity,
    l.unit_price_jpy,
    cast(l.quantity as bigint) * l.unit_price_jpy                as line_total_jpy

from unnested as l
left join texts as t
    on {{ per_distinct_match('t', 'l', text_inputs) }}
