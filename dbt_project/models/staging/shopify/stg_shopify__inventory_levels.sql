-- One row per Shopify inventory item × location: the stock level the channel last reported (latest version).
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('shopify', 'inventory_levels') }}

),

latest as (

    {{ latest_version('source', ['inventory_item_id', 'location_id'], columns='* exclude (_raw)') }}

)

select
    cast(inventory_item_id as varchar) || '@' || cast(location_id as varchar)  as inventory_level_key,
    cast(inventory_item_id as varchar)              as inventory_item_id,
    cast(location_id as varchar)                    as location_id,
    {{ nfkc('sku') }}                               as sku,
    cast(variant_id as varchar)                     as variant_id,
    cast(available as bigint)                       as available,
    cast(on_hand as bigint)                         as on_hand,
    cast(updated_at as timestamptz)                 as updated_at,
    cast(_batch_id as varchar)                      as _batch_id,
    cast(_fetched_at as timestamptz)                as _fetched_at
from latest
