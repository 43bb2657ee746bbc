-- One row per OPEN channel order (pending_payment 入金待ち, awaiting_shipment 発送待ち) with its age at the
-- build time (macro as_of: var `as_of`, else current_timestamp):
--   age_hours  = (as_of − ordered_at_utc) in hours, 1 decimal (floored to 0.1 h, never negative)
--   age_bucket = '<1d' (< 24 h), '1-3d' (24 h ≤ age < 72 h), '3-7d' (72 h ≤ age < 168 h), '>7d' (≥ 168 h)
with open_orders as (

    select *
    from {{ ref('fct_orders') }}
    where status in ('pending_payment', 'awaiting_shipment')

),

aged as (

    select
        *,
        {{ as_of() }}                                                               as as_of_utc,
        greatest(date_diff('second', ordered_at_utc, {{ as_of() }}), 0)           as age_seconds
    from open_orders

)

select
    order_key,
    channel,
    order_id,
    order_name,
    status,
    case status when 'pending_payment' then '入金待ち' when 'awaiting_shipment' then '発送待ち' end  as status_ja,
    ordered_at_utc,
    order_date_jst,
    total_jpy,
    units,
    customer_id,
    as_of_utc,
    cast(floor(age_seconds / 360) / 10 as decimal(10, 1))                           as age_hours,
    case
        when age_seconds < 24 * 3600 then '<1d'
        when age_seconds < 72 * 3600 then '1-3d'
        when age_seconds < 168 * 3600 then '3-7d'
        else '>7d'
    end                                                                             as age_bucket,
    case
        when age_seconds < 24 * 3600 then 1
        when age_seconds < 72 * 3600 then 2
        when age_seconds < 168 * 3600 then 3
        else 4
    end                                                                             as age_bucket_order
from aged
