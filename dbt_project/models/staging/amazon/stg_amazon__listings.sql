-- One row per Amazon listing (seller SKU), latest version: the SKU ↔ ASIN/JAN mapping, price and the stock
-- Amazon shows (merchant-fulfilled DEFAULT channel).
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('amazon', 'listings') }}

),

latest as (

    {{ latest_version('source', ['sku'], columns='* exclude (_raw)') }}

),

normalised as (

    select
        cast(sku as varchar)                            as sku,
        cast(asin as varchar)                           as asin,
        {{ nfkc('parent_sku') }}                        as parent_sku,
        cast(product_type as varchar)                   as product_type,
        {{ nfkc('item_name') }}                         as item_name,
        {{ nfkc('jan') }}                               as jan,
        {{ jpy_from_decimal_string('price') }}          as price_jpy,
        cast(quantity as bigint)                        as quantity,
        coalesce(list_contains(statuses, 'BUYABLE'), false)  as is_buyable,
        cast(created_at as timestamptz)                 as created_at,
        cast(updated_at as timestamptz)                 as updated_at,
        cast(_batch_id as varchar)                      as _batch_id,
        cast(_fetched_at as timestamptz)                as _fetched_at
    from latest

)

select *, {{ is_valid_jan('jan') }} as is_valid_jan
from normalised
