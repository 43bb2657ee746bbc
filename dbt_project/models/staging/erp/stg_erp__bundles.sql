-- One row per bundle × component from the NEWEST landed snapshot (the bundle master is landed whole each run,
-- like stock: a component removed in the ERP must not live on and hold stock; DECISIONLOG 2 and 24).
-- Several rows for one pair in that snapshot: their quantities are summed (one bundle, one BOM line).
with source as (

    select * from {{ source_or_empty('erp', 'bundles') }}

),

newest as (

    select * exclude (_raw) from source
    where _batch_id = (select max(_batch_id) from source)

)

select
    {{ nfkc('bundle_sku') }}                        as bundle_sku,
    {{ nfkc('component_sku') }}                     as component_sku,
    cast(sum(quantity) as bigint)                   as quantity,
    max(cast(updated_at as timestamptz))            as updated_at,
    max(cast(_batch_id as varchar))                 as _batch_id,
    max(cast(_fetched_at as timestamptz))           as _fetched_at
from newest
group by 1, 2
