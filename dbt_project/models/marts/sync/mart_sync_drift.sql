-- One row per channel × ERP SKU (channels with at least one listing × the ERP product master): the stock
-- target against what the channel last showed, and the last push.
--   channel_quantity = `available` of the channel's stock level (Shopify: inventory item × location, latest
--                      landed version) for the SKU's listing; with several levels (several variants or
--                      locations) the one farthest from the target is shown and channel_level_count says how many
--   drift_quantity   = channel_quantity − target_quantity
--   status           = not_listed (the channel lists no variant of the SKU) | not_seen (listed, but no stock
--                      level landed yet) | in_sync (every level equals the target) | drift
-- The landed level can be older than our last push: pushed_since_seen says the next ingest will confirm it.
-- Prices (every channel): the price target against the price the channel's landed listing shows
--   price_drift_jpy = channel_price_jpy − target_price_jpy; price_status in_sync | drift | not_seen | not_listed
with channels as (

    select distinct channel
    from {{ ref('int_products__channel_listings') }}

),

products as (

    select sku from {{ ref('stg_erp__products') }}

),

targets as (

    select channel, sku, target_quantity
    from {{ ref('mart_channel_stock_targets') }}

),

shopify_levels as (

    select
        'shopify'                   as channel,
        l.sku,
        i.inventory_level_key       as level_key,
        i.available,
        i._fetched_at               as seen_at
    from {{ ref('stg_shopify__inventory_levels') }} as i
    inner join {{ ref('int_products__channel_listings') }} as l
        on l.channel = 'shopify'
        and l.inventory_item_id = i.inventory_item_id
    where l.sku is not null

),

levels as (

    select * from shopify_levels
    -- other channels' stock levels are unioned here as they are landed

),

worst_level as (

    select
        v.channel,
        v.sku,
        v.available                                                         as channel_quantity,
        v.seen_at                                                           as channel_seen_at_utc,
        cast(count(*) over (partition by v.channel, v.sku) as bigint)       as channel_level_count,
        cast(count(*) filter (where v.available <> t.target_quantity)
            over (partition by v.channel, v.sku) as bigint)                 as levels_in_drift
    from levels as v
    inner join targets as t
        on t.channel = v.channel
        and t.sku = v.sku
    qualify row_number() over (
        partition by v.channel, v.sku
        order by abs(v.available - t.target_quantity) desc, v.available desc, v.level_key
    ) = 1

),

applied_pushes as (

    select
        channel,
        sku,
        arg_max(new_value, pushed_at)                                       as last_pushed_quantity,
        max(pushed_at)                                                      as last_pushed_at_utc
    from {{ ref('stg_push_log__attempts') }}
    where field = 'stock'
      and status = 'applied'
    group by channel, sku

),

prices as (

    select channel, sku, target_price_tax_incl, current_channel_price_jpy
    from {{ ref('mart_channel_price_targets') }}

),

applied_price_pushes as (

    select
        channel,
        sku,
        arg_max(new_value, pushed_at)                                       as last_pushed_price_jpy,
        max(pushed_at)                                                      as last_price_pushed_at_utc
    from {{ ref('stg_push_log__attempts') }}
    where field = 'price'
      and status = 'applied'
    group by channel, sku

),

attempts as (

    select
        channel,
        sku,
        arg_max(status, coalesce(pushed_at, planned_at))                    as last_attempt_status,
        max(coalesce(pushed_at, planned_at))                                as last_attempt_at_utc
    from {{ ref('stg_push_log__attempts') }}
    where field = 'stock'
    group by channel, sku

)

select
    c.channel,
    p.sku,
    t.sku is not null                                                       as is_listed,
    t.target_quantity,
    w.channel_quantity,
    w.channel_quantity - t.target_quantity                                  as drift_quantity,
    coalesce(w.channel_level_count, 0)                                      as channel_level_count,
    w.channel_seen_at_utc,
    a.last_pushed_quantity,
    a.last_pushed_at_utc,
    coalesce(a.last_pushed_at_utc > w.channel_seen_at_utc, false)           as pushed_since_seen,
    x.last_attempt_status,
    x.last_attempt_at_utc,
    case
        when t.sku is null then 'not_listed'
        when w.sku is null then 'not_seen'
        when w.levels_in_drift = 0 then 'in_sync'
        else 'drift'
    end                                                                     as status,
    pr.target_price_tax_incl                                                as target_price_jpy,
    pr.current_channel_price_jpy                                            as channel_price_jpy,
    pr.current_channel_price_jpy - pr.target_price_tax_incl                 as price_drift_jpy,
    ap.last_pushed_price_jpy,
    ap.last_price_pushed_at_utc,
    case
        when pr.sku is null then 'not_listed'
        when pr.current_channel_price_jpy is null then 'not_seen'
        when pr.current_channel_price_jpy = pr.target_price_tax_incl then 'in_sync'
        else 'drift'
    end                                                                     as price_status
from channels as c
cross join products as p
left join targets as t
    on t.channel = c.channel
    and t.sku = p.sku
left join worst_level as w
    on w.channel = c.channel
    and w.sku = p.sku
left join applied_pushes as a
    on a.channel = c.channel
    and a.sku = p.sku
left join attempts as x
    on x.channel = c.channel
    and x.sku = p.sku
left join prices as pr
    on pr.channel = c.channel
    and pr.sku = p.sku
left join applied_price_pushes as ap
    on ap.channel = c.channel
    and ap.sku = p.sku
