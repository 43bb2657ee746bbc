-- One row per tracking number (送り状番号), the latest file's version of it. Dates are JST calendar dates as
-- the carrier prints them; `shipped_at_utc` is the start of the ship day in Japan, in UTC, for joins on time.
with source as (

    select * from {{ source_or_empty('carrier', 'trackings') }}

),

latest as (

    select * exclude (_raw) from source
    qualify row_number() over (
        partition by replace({{ nfkc('tracking_number') }}, '-', '')
        order by _fetched_at desc, file_modified_at desc, file_name desc, file_row desc
    ) = 1

)

select
    replace({{ nfkc('tracking_number') }}, '-', '')                as tracking_number,
    {{ nfkc('order_reference') }}                                   as order_reference,
    cast(shipped_on as date)                                        as shipped_on_jst,
    cast(expected_delivery_on as date)                              as expected_delivery_on_jst,
    timezone('Asia/Tokyo', cast(shipped_on as timestamp))           as shipped_at_utc,
    cast(file_name as varchar)                                      as file_name,
    cast(file_row as bigint)                                        as file_row,
    cast(_batch_id as varchar)                                      as _batch_id,
    cast(_fetched_at as timestamptz)                                as _fetched_at
from latest
