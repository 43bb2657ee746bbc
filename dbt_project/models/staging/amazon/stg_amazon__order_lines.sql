-- One row per item of the latest version of each Amazon order (items are landed inside their order).
{{ config(zstd_columns=['line_id', 'order_item_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('amazon', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'],
                      columns='order_id, fulfillment_status, order_items, _batch_id, _fetched_at') }}

),

unnested as (

    select
        order_id,
        fulfillment_status,
        unnest(order_items)                      as item,
        generate_subscripts(order_items, 1)      as line_number
    from latest

)

select
    cast(order_id as varchar) || ':' || cast(item.order_item_id as varchar)  as line_id,
    cast(item.order_item_id as varchar)                         as order_item_id,
    cast(order_id as varchar)                                   as order_id,
    cast(line_number as integer)                                as line_number,
    {{ nfkc('item.seller_sku') }}                               as seller_sku,
    cast(item.asin as varchar)                                  as asin,
    {{ nfkc('item.title') }}                                    as title,
    cast(item.quantity_ordered as bigint)                       as quantity,
    -- a cancelled order keeps its items in the answer; nothing of it is still wanted
    case when fulfillment_status = 'CANCELLED' then 0
         else cast(item.quantity_ordered as bigint) end         as current_quantity,
    cast(item.quantity_fulfilled as bigint)                     as quantity_fulfilled,
    {{ jpy_from_decimal_string('item.unit_price') }}            as unit_price_jpy,
    cast(item.quantity_ordered as bigint)
        * {{ jpy_from_decimal_string('item.unit_price') }}      as line_total_jpy

from unnested
