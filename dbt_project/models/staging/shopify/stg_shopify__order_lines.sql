-- One row per Shopify order line, unnested from the latest version of each order (lines are landed inside
-- their order, D4). An order edit that removes a line keeps the line with current_quantity 0.
{{ config(zstd_columns=['line_item_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('shopify', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'], columns='order_id, line_items, _batch_id, _fetched_at') }}

),

unnested as (

    select
        order_id,
        unnest(line_items)                      as line,
        generate_subscripts(line_items, 1)      as line_number
    from latest

)

select
    cast(line.line_item_id as varchar)                          as line_item_id,
    cast(order_id as varchar)                                   as order_id,
    cast(line_number as integer)                                as line_number,
    {{ nfkc('line.sku') }}                                      as sku,
    cast(line.variant_id as varchar)                            as variant_id,
    cast(line.inventory_item_id as varchar)                     as inventory_item_id,
    {{ nfkc('line.title') }}                                    as title,
    cast(line.quantity as bigint)                               as quantity,
    cast(line.current_quantity as bigint)                       as current_quantity,
    {{ jpy_from_decimal_string('line.unit_price') }}            as unit_price_jpy,
    cast(line.quantity as bigint)
        * {{ jpy_from_decimal_string('line.unit_price') }}      as line_total_jpy

from unnested
