-- One row per Item line of the latest version of each Yahoo order. Yahoo keeps a cancelled order's lines as
-- they were ordered; current_quantity is 0 for them (nothing is sold or reserved).
{{ config(zstd_columns=['line_id', 'order_id']) }}  {#- ids: one value per row (D236) #}
{%- set text_inputs = ['raw_item_id', 'raw_sub_code', 'raw_title', 'raw_option', 'raw_jan'] %}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('yahoo', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'], 'version',
                      columns='order_id, order_status, items, _batch_id, _fetched_at') }}

),

unnested as materialized (  -- read twice: its distinct texts, its rows (D240)

    select
        order_id,
        order_status,
        line_number,
        line.line_id,
        line.item_id                            as raw_item_id,
        line.sub_code                           as raw_sub_code,
        line.title                              as raw_title,
        line.sub_code_option                    as raw_option,
        line.jan                                as raw_jan,
        line.quantity,
        line.unit_price,
        line.item_tax_ratio
    from (
        select order_id, order_status, unnest(items) as line, generate_subscripts(items, 1) as line_number
        from latest
    )

),

texts as (

    {{ nfkc_per_distinct('unnested', text_inputs, {'item_code': 'raw_item_id', 'sub_code': 'raw_sub_code',
                                                   'title': 'raw_title', 'option': 'raw_option', 'jan': 'raw_jan'}) }}

)

select
    cast(l.order_id as varchar) || ':' || cast(coalesce(l.line_id, l.line_number) as varchar)  as line_id,
    cast(l.order_id as varchar)                                     as order_id,
    cast(l.line_number as integer)                                  as line_number,
    t.item_code,
    t.sub_code,
    t.item_code || coalesce(':' || t.sub_code, '')                  as listing_code,
    t.title,
    t.option,
    t.jan,
    cast(l.quantity as bigint)                                      as quantity,
    case when l.order_status = 4 then 0 else cast(l.quantity as bigint) end  as current_quantity,
    cast(l.unit_price as bigint)                                    as unit_price_jpy,
    cast(l.quantity as bigint) * cast(l.unit_price as bigint)       as line_total_jpy,
    cast(l.item_tax_ratio as integer)                               as tax_percent

from unnested as l
left join texts as t
    on {{ per_distinct_match('t', 'l', text_inputs) }}
