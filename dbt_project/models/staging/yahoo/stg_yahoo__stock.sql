-- One row per Yahoo listing code: the stock the store showed in the newest getStock snapshot.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('yahoo', 'stock') }}

),

latest as (

    {{ latest_version('source', ['listing_code'], '_fetched_at', columns='* exclude (_raw)') }}

)

select
    cast(listing_code as varchar)                   as listing_code,
    cast(item_code as varchar)                      as item_code,
    cast(sub_code as varchar)                       as sub_code,
    cast(quantity as bigint)                        as quantity,
    cast(allow_overdraft as integer)                as allow_overdraft,
    cast(update_time as timestamptz)                as updated_at,
    cast(_batch_id as varchar)                      as _batch_id,
    cast(_fetched_at as timestamptz)                as _fetched_at
from latest
