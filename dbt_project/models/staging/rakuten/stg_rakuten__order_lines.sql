-- One row per item of the latest version of each Rakuten order (items over all packages). A cancelled or
-- returned order keeps its lines with current_quantity 0 (RMS keeps the ordered units on the item).
{{ config(zstd_columns=['line_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('rakuten', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_number'], 'update_datetime',
                      columns='order_number, order_progress, change_reason_details, items, _batch_id, _fetched_at') }}

),

unnested as (

    select
        order_number,
        order_progress,
        change_reason_details,
        unnest(items)                       as item,
        generate_subscripts(items, 1)       as line_number
    from latest

)

select
    cast(order_number as varchar) || ':' || cast(item.item_detail_id as varchar)  as line_id,
    cast(order_number as varchar)                               as order_id,
    cast(line_number as integer)                                as line_number,
    cast(item.manage_number as varchar) || ':' || cast(item.variant_id as varchar)  as listing_id,
    cast(item.manage_number as varchar)                         as manage_number,
    cast(item.variant_id as varchar)                            as variant_id,
    {{ nfkc('item.merchant_defined_sku_id') }}                  as sku,
    {{ nfkc('item.item_name') }}                                as title,
    {{ nfkc('item.sku_info') }}                                 as sku_info,
    cast(item.units as bigint)                                  as quantity,
    case when cast(order_progress as bigint) in (800, 900) then 0 else cast(item.units as bigint) end
                                                                as current_quantity,
    cast(item.price_tax_incl as bigint)                         as unit_price_jpy,
    cast(item.tax_rate as double)                               as tax_rate,
    cast(item.units as bigint) * cast(item.price_tax_incl as bigint)  as line_total_jpy
from unnested
