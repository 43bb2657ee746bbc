-- One row per Yahoo listing (item code × sub code), latest snapshot. The shop's own SKU sits in the sub code
-- (an item without sub codes: the item code), so seller_sku is that, NFKC'd.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('yahoo', 'listings') }}

),

latest as (

    {{ latest_version('source', ['listing_code'], '_fetched_at', columns='* exclude (_raw)') }}

),

normalised as (

    select
        cast(listing_code as varchar)                   as listing_code,
        {{ nfkc('item_code') }}                         as item_code,
        {{ nfkc('sub_code') }}                          as sub_code,
        {{ nfkc('coalesce(sub_code, item_code)') }}     as seller_sku,
        {{ nfkc('name') }}                              as name,
        {{ nfkc('option') }}                            as option,
        {{ nfkc('jan') }}                               as jan,
        cast(price as bigint)                           as price_jpy,
        cast(tax_ratio as integer)                      as tax_percent,
        cast(display as integer)                        as display,
        cast(update_time as timestamptz)                as updated_at,
        cast(_batch_id as varchar)                      as _batch_id,
        cast(_fetched_at as timestamptz)                as _fetched_at
    from latest

)

select
    listing_code, item_code, sub_code, seller_sku, name, option, jan,
    {{ is_valid_jan('jan') }}       as is_valid_jan,
    price_jpy, tax_percent, display, updated_at, _batch_id, _fetched_at
from normalised
