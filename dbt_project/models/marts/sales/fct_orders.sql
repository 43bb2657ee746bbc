-- One row per channel order (all channels), with the unified status. Columns as in DECISIONS.md D6.
select
    order_key,
    channel,
    order_id,
    order_name,
    ordered_at_utc,
    order_date_jst,
    updated_at_utc,
    status,
    channel_financial_status,
    channel_fulfillment_status,
    is_open,
    total_jpy,
    customer_id,
    units
from {{ ref('int_orders__unified') }}
