-- Stock lag over time: per JST day of sale and channel, how long after a sale on ANOTHER channel this channel
-- was next sent the SKU's stock (the first applied stock push of the SKU to it at or after the sale; the push
-- log, D7). Over the last var stock_lag_days JST days of sales (default 14), counted back from the newest
-- order date. A sale that moved no target (already 0, inside the buffer) is reflected by the SKU's next push
-- anyway, so the figures are an upper bound; sales with no push yet are counted as not_yet_pushed.
{%- set days = var('stock_lag_days', 14) | int %}
with sales as (

    select l.channel as sale_channel, l.sku, l.order_date_jst, o.ordered_at_utc
    from {{ ref('fct_order_lines') }} as l
    inner join {{ ref('fct_orders') }} as o
        on o.order_key = l.order_key
    where l.order_status <> 'cancelled'
      and l.order_date_jst > (select max(order_date_jst) from {{ ref('fct_order_lines') }}) - {{ days }}

),

listed as (

    select distinct channel, sku
    from {{ ref('mart_channel_stock_targets') }}

),

pairs as (

    select s.sale_channel, s.sku, s.order_date_jst, s.ordered_at_utc, c.channel as channel
    from sales as s
    inner join listed as c
        on c.sku = s.sku
        and c.channel <> s.sale_channel

),

pushes as (

    select channel, sku, pushed_at
    from {{ ref('stg_push_log__attempts') }}
    where field = 'stock' and status = 'applied' and pushed_at is not null

),

matched as (

    select p.order_date_jst, p.channel, p.ordered_at_utc, u.pushed_at
    from pairs as p
    asof left join pushes as u
        on u.channel = p.channel
        and u.sku = p.sku
        and u.pushed_at >= p.ordered_at_utc

)

select
    order_date_jst                                                              as sale_date_jst,
    channel,
    cast(count(*) as bigint)                                                    as sales,
    cast(count(pushed_at) as bigint)                                            as reflected,
    cast(count(*) - count(pushed_at) as bigint)                                 as not_yet_pushed,
    round(quantile_cont(epoch(pushed_at - ordered_at_utc), 0.5), 1)             as lag_p50_s,
    round(quantile_cont(epoch(pushed_at - ordered_at_utc), 0.95), 1)            as lag_p95_s,
    round(max(epoch(pushed_at - ordered_at_utc)), 1)                            as lag_max_s
from matched
group by order_date_jst, channel
