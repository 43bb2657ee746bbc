-- One row per Rakuten variant: the stock the mall showed in the newest snapshot.
with source as (

    select * from {{ source_or_empty('rakuten', 'stock') }}

),

latest as (

    select * exclude (_raw) from source
    {{ latest_version(['listing_id']) }}

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
