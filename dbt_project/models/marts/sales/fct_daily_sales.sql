-- One row per JST calendar day × channel with at least one order. Cancelled orders are excluded; returned
-- orders are kept (gross sales, before returns). Columns as in DECISIONS.md D6.
select
    order_date_jst,
    channel,
    count(*)                        as orders,
    sum(units)                      as units,
    sum(total_jpy)                  as gross_sales_jpy
from {{ ref('fct_orders') }}
where status <> 'cancelled'
group by order_date_jst, channel
