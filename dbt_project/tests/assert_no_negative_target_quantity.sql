-- A storefront must never receive a negative stock quantity (brief: guard rails). Also checks that
-- available_to_sell is never negative and never below the target. Fails with the offending rows.
select *
from {{ ref('mart_channel_stock_targets') }}
where target_quantity < 0
   or available_to_sell < 0
   or target_quantity > available_to_sell
