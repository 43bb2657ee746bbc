-- One row per SKU × warehouse: units on hand in the ERP, from the LATEST SNAPSHOT.
-- The ERP connector lands stock as a full snapshot every run (ingestion/erp.py: a stock row's updated_at is
-- no trustworthy change marker, bulk stock takes rewrite quantities without touching it). So the newest batch
-- is the whole truth: a row missing from it was deleted in the ERP and must not keep selling stale units,
-- which "latest version per key" over all batches would do. Within the batch, latest_version() still
-- guarantees one row per key.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('erp', 'stock') }}

),

latest as (

    -- the newest batch only (batch ids sort by fetch time, D4)
    {{ latest_version('source', ['sku', 'warehouse_code'],
                      columns='* exclude (_raw)',
                      where="_batch_id = (select max(_batch_id) from source)") }}

)

select
    {{ nfkc('sku') }}                               as sku,
    {{ nfkc('warehouse_code') }}                    as warehouse_code,
    cast(on_hand as bigint)                         as on_hand,
    cast(updated_at as timestamptz)                 as updated_at,
    cast(_batch_id as varchar)                      as _batch_id,
    cast(_fetched_at as timestamptz)                as _fetched_at
from latest
