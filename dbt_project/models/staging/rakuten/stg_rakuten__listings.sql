-- One row per Rakuten item variant (manageNumber:variantId), the latest snapshot, with the shop's SKU and JAN.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('rakuten', 'listings') }}

),

latest as (

    {{ latest_version('source', ['listing_id'], columns='* exclude (_raw)') }}

),

normalised as (

    select
        cast(listing_id as varchar)                     as listing_id,
        cast(manage_number as varchar)                  as manage_number,
        cast(variant_id as varchar)                     as variant_id,
        {{ nfkc('item_number') }}                       as item_number,
        {{ nfkc('title') }}                             as title,
        {{ nfkc('merchant_defined_sku_id') }}           as sku,
        {{ nfkc('jan') }}                               as jan,
        {{ jpy_from_decimal_string('standard_price') }} as price_jpy,
        cast(updated_at as timestamptz)                 as updated_at,
        cast(_batch_id as varchar)                      as _batch_id,
        cast(_fetched_at as timestamptz)                as _fetched_at
    from latest

)

select
    listing_id, manage_number, variant_id, item_number, title, sku, jan,
    {{ is_valid_jan('jan') }}   as is_valid_jan,
    price_jpy, updated_at, _batch_id, _fetched_at
from normalised
