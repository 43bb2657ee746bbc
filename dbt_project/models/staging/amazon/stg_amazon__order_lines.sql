-- One row per item of the latest version of each Amazon order (items are landed inside their order).
{{ config(zstd_columns=['line_id', 'order_item_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
{%- set text_inputs = ['raw_seller_sku', 'raw_title'] %}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('amazon', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'],
                      columns='order_id, fulfillment_status, order_items, _batch_id, _fetched_at') }}

),

unnested as materialized (  -- read twice: its distinct texts, its rows (D240)

    select
        order_id,
        fulfillment_status,
        line_number,
        item.order_item_id,
        item.seller_sku                         as raw_seller_sku,
        item.asin,
        item.title                              as raw_title,
        item.quantity_ordered,
        item.quantity_fulfilled,
        {{ jpy_from_decimal_string('item.unit_price') }}  as unit_price_jpy
    from (
        select order_id, fulfillment_status, unnest(order_items) as item,
               generate_subscripts(order_items, 1) as line_number
        from latest
    )

),

texts as (

    {{ nfkc_per_distinct('unnested', text_inputs, {'seller_sku': 'raw_seller_sku', 'title': 'raw_title'}) }}

)

select
    cast(i.order_id as varchar) || ':' || cast(i.order_item_id as varchar)  as line_id,
    cast(i.order_item_id as varchar)                            as order_item_id,
    cast(i.order_id as varchar)                                 as order_id,
    cast(i.line_number as integer)                              as line_number,
    t.seller_sku,
    cast(i.asin as varchar)                                     as asin,
    t.title,
    cast(i.quantity_ordered as bigint)                          as quantity,
    -- a cancelled order keeps its items in the answer; nothing of it is still wanted
    case when i.fulfillment_status = 'CANCELLED' then 0
         else cast(i.quantity_ordered as bigint) end            as current_quantity,
    cast(i.quantity_fulfilled as bigint)                        as quantity_fulfilled,
    i.unit_price_jpy,
    cast(i.quantity_ordered as bigint) * i.unit_price_jpy        as line_total_jpy

from unnested as i
left join texts as t
    on {{ per_distinct_match('t', 'i', text_inputs) }}
