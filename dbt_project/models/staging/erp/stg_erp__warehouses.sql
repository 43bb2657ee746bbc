-- One row per ERP warehouse / store, from the LATEST SNAPSHOT (the ERP connector lands warehouses whole
-- every run, like stock; a warehouse missing from the newest batch no longer exists).
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('erp', 'warehouses') }}

),

latest as (

    -- the newest batch only (batch ids sort by fetch time, D4)
    {{ latest_version('source', ['warehouse_code'],
                      columns='* exclude (_raw)',
                      where="_batch_id = (select max(_batch_id) from source)") }}

)

select
    {{ nfkc('warehouse_code') }}                    as warehouse_code,
    {{ nfkc('name') }}                              as name,
    coalesce(cast(sellable as boolean), false)      as is_sellable,
    cast(updated_at as timestamptz)                 as updated_at,
    cast(_batch_id as varchar)                      as _batch_id,
    cast(_fetched_at as timestamptz)                as _fetched_at
from latest
