-- One row per Rakuten variant: the stock the mall showed in the newest snapshot.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('rakuten', 'stock') }}

),

latest as (

    {{ latest_version('source', ['listing_id'], columns='* exclude (_raw)') }}

)

select
    cast(listing_id as varchar)                     as listing_id,
    cast(manage_number as varchar)                  as manage_number,
    cast(variant_id as varchar)                     as variant_id,
    cast(quantity as bigint)                        as quantity,
    cast(updated_at as timestamptz)                 as updated_at,
    cast(_batch_id as varchar)                      as _batch_id,
    cast(_fetched_at as timestamptz)                as _fetched_at
from latest
