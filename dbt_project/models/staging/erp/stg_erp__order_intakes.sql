-- One row per posted channel order version in the ERP's intake (受注連携, DECISIONS.md D40), from the LATEST
-- SNAPSHOT: the connector reads the intake whole every run, because the ERP moves status (new → taken →
-- shipped) in place and a marker row has no reliable change timestamp of its own.
with source as (

    select * from {{ source_or_empty('erp', 'order_intake') }}

),

latest as (

    select * exclude (_raw) from source
    where _batch_id = (select max(_batch_id) from source)  -- batch ids sort by fetch time (D4)

)

select
    cast(intake_id as bigint)                                   as intake_id,
    cast(channel as varchar)                                    as channel,
    cast(channel_order_id as varchar)                           as channel_order_id,
    cast(channel as varchar) || ':' || cast(channel_order_id as varchar)  as order_key,
    cast(order_version as varchar)                              as order_version,
    cast(event as varchar)                                      as event,
    cast(status as varchar)                                     as status,
    cast(erp_order_no as varchar)                               as erp_order_no,
    cast(posted_at as timestamptz)                              as posted_at,
    cast(taken_at as timestamptz)                               as taken_at,
    cast(_batch_id as varchar)                                  as _batch_id,
    cast(_fetched_at as timestamptz)                            as _fetched_at
from latest
