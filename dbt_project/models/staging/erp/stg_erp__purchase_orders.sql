-- One row per purchase-order line (po_number × sku), latest version. Incremental in the connector (updated_at with
-- look-back), so a line that was received lands again with its new status; the latest version wins.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('erp', 'purchase_orders') }}

),

latest as (

    {{ latest_version('source', ['po_number', 'sku'], columns='* exclude (_raw)') }}

),

normalised as (

    select
        {{ nfkc('po_number') }}                         as po_number,
        {{ nfkc('sku') }}                               as sku,
        {{ nfkc('warehouse_code') }}                    as warehouse_code,
        cast(quantity as bigint)                        as quantity,
        cast(expected_date as date)                     as expected_date,
        lower({{ nfkc('status') }})                     as status,
        cast(received_at as timestamptz)                as received_at,
        cast(updated_at as timestamptz)                 as updated_at,
        cast(_batch_id as varchar)                      as _batch_id,
        cast(_fetched_at as timestamptz)                as _fetched_at
    from latest

)

select
    po_number,
    sku,
    warehouse_code,
    quantity,
    expected_date,
    status,
    status = 'open'                                     as is_open,
    case when status = 'open' then quantity else 0 end  as open_quantity,
    received_at,
    updated_at,
    _batch_id,
    _fetched_at
from normalised
