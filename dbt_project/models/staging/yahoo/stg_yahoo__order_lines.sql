-- One row per Item line of the latest version of each Yahoo order. Yahoo keeps a cancelled order's lines as
-- they were ordered; current_quantity is 0 for them (nothing is sold or reserved).
{{ config(zstd_columns=['line_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('yahoo', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'], 'version',
                      columns='order_id, order_status, items, _batch_id, _fetched_at') }}

),

unnested as (

    select
        order_id,
        order_status,
        unnest(items)                       as line,
        generate_subscripts(items, 1)       as line_number
    from latest

)

select
    cast(order_id as varchar) || ':' || cast(coalesce(line.line_id, line_number) as varchar)  as line_id,
    cast(order_id as varchar)                                       as order_id,
    cast(line_number as integer)                                    as line_number,
    {{ nfkc('line.item_id') }}                                      as item_code,
    {{ nfkc('line.sub_code') }}                                     as sub_code,
    {{ nfkc('line.item_id') }}
        || coalesce(':' || {{ nfkc('line.sub_code') }}, '')         as listing_code,
    {{ nfkc('line.title') }}                                        as title,
    {{ nfkc('line.sub_code_option') }}                              as option,
    {{ nfkc('line.jan') }}                                          as jan,
    cast(line.quantity as bigint)                                   as quantity,
    case when order_status = 4 then 0 else cast(line.quantity as bigint) end  as current_quantity,
    cast(line.unit_price as bigint)                                 as unit_price_jpy,
    cast(line.quantity as bigint) * cast(line.unit_price as bigint) as line_total_jpy,
    cast(line.item_tax_ratio as integer)                            as tax_percent

from unnested
