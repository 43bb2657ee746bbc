-- One row per JST calendar day × channel with at least one order. Cancelled orders are excluded; returned
-- orders are kept (gross sales, before returns). Columns as in DECISIONS.md D6.
select
    order_date_jst,
    channel,
    count(*)                        as orders,
    -- DuckDB sums bigint into hugeint (int128), which Arrow/Polars readers cannot hold: back to bigint
    cast(sum(units) as bigint)      as units,
    cast(sum(total_jpy) as bigint)  as gross_sales_jpy
from {{ ref('fct_orders') }}
where status <> 'cancelled'
group by order_date_jst, channel
