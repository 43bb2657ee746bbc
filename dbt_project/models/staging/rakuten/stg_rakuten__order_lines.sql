-- One row per item of the latest version of each Rakuten order (items over all packages). A cancelled or
-- returned order keeps its lines with current_quantity 0 (RMS keeps the ordered units on the item).
{{ config(zstd_columns=['line_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
{%- set text_inputs = ['raw_sku', 'raw_title', 'raw_sku_info'] %}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('rakuten', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_number'], 'update_datetime',
                      columns='order_number, order_progress, change_reason_details, items, _batch_id, _fetched_at') }}

),

unnested as materialized (  -- read twice: its distinct texts, its rows (D240)

    select
        order_number,
        order_progress,
        line_number,
        item.item_detail_id,
        item.manage_number,
        item.variant_id,
        item.merchant_defined_sku_id        as raw_sku,
        item.item_name                      as raw_title,
        item.sku_info                       as raw_sku_info,
        item.units,
        item.price_tax_incl,
        item.tax_rate
    from (
        select order_number, order_progress, unnest(items) as item, generate_subscripts(items, 1) as line_number
        from latest
    )

),

texts as (

    {{ nfkc_per_distinct('unnested', text_inputs, {'sku': 'raw_sku', 'title': 'raw_title', 'sku_info': 'raw_sku_info'}) }}

)

select
    cast(i.order_number as varchar) || ':' || cast(i.item_detail_id as varchar)  as line_id,
    cast(i.order_number as varchar)                             as order_id,
    cast(i.line_number as integer)                              as line_number,
    cast(i.manage_number as varchar) || ':' || cast(i.variant_id as varchar)  as listing_id,
    cast(i.manage_number as varchar)                            as manage_number,
    cast(i.variant_id as varchar)                               as variant_id,
    t.sku,
    t.title,
    t.sku_info,
    cast(i.units as bigint)                                     as quantity,
    case when cast(i.order_progress as bigint) in (800, 900) then 0 else cast(i.units as bigint) end
                                                                as current_quantity,
    cast(i.price_tax_incl as bigint)                            as unit_price_jpy,
    cast(i.tax_rate as double)                                  as tax_rate,
    cast(i.units as bigint) * cast(i.price_tax_incl as bigint)  as line_total_jpy
from unnested as i
left join texts as t
    on {{ per_distinct_match('t', 'i', text_inputs) }}
