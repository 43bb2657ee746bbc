-- One row per Shopify product variant (what the shop lists), latest version.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('shopify', 'product_variants') }}

),

latest as (

    {{ latest_version('source', ['variant_id'], columns='* exclude (_raw)') }}

),

normalised as (

    select
        cast(variant_id as varchar)                     as variant_id,
        {{ nfkc('sku') }}                               as sku,
        {{ nfkc('barcode') }}                           as barcode,
        {{ jpy_from_decimal_string('price') }}          as price_jpy,
        cast(inventory_item_id as varchar)              as inventory_item_id,
        cast(product_id as varchar)                     as product_id,
        {{ nfkc('product_title') }}                     as product_title,
        {{ nfkc('variant_title') }}                     as variant_title,
        cast(updated_at as timestamptz)                 as updated_at,
        cast(_batch_id as varchar)                      as _batch_id,
        cast(_fetched_at as timestamptz)                as _fetched_at
    from latest

)

select
    variant_id,
    sku,
    barcode,
    {{ is_valid_jan('barcode') }}   as is_valid_jan,
    price_jpy,
    inventory_item_id,
    product_id,
    product_title,
    variant_title,
    updated_at,
    _batch_id,
    _fetched_at
from normalised
