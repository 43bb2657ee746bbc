-- One row per channel order, every channel in one shape, with the unified status from the seed
-- order_status_map: each status field of the order (and the cancellation) points to a candidate status;
-- the candidate with the lowest precedence wins (the rule is written down in seeds/_seeds.yml).
-- An order whose codes are unknown gets no candidate from them; the known_status_code tests on staging
-- fail the build in that case, and status is tested not_null downstream.
with status_map as (

    select channel, status_field, channel_code, unified_status, precedence
    from {{ ref('order_status_map') }}

),

shopify_orders as (

    select * from {{ ref('stg_shopify__orders') }}

),

shopify_units as (

    select order_id, cast(sum(quantity) as bigint) as units
    from {{ ref('stg_shopify__order_lines') }}
    group by order_id

),

shopify_status_candidates as (

    select o.order_id, m.unified_status, m.precedence
    from shopify_orders as o
    inner join status_map as m
        on m.channel = 'shopify'
        and m.status_field = 'displayFinancialStatus'
        and m.channel_code = o.financial_status

    union all

    select o.order_id, m.unified_status, m.precedence
    from shopify_orders as o
    inner join status_map as m
        on m.channel = 'shopify'
        and m.status_field = 'displayFulfillmentStatus'
        and m.channel_code = o.fulfillment_status

    union all

    select o.order_id, m.unified_status, m.precedence
    from shopify_orders as o
    inner join status_map as m
        on m.channel = 'shopify'
        and m.status_field = 'cancellation'
        and m.channel_code = 'CANCELLED'
    where o.is_cancelled

),

shopify_status as (

    select order_id, arg_min(unified_status, precedence) as status
    from shopify_status_candidates
    group by order_id

),

shopify as (

    select
        'shopify'                                           as channel,
        o.order_id                                          as order_id,
        o.order_name                                        as order_name,
        coalesce(o.processed_at, o.created_at)              as ordered_at_utc,
        o.updated_at                                        as updated_at_utc,
        s.status                                            as status,
        o.financial_status                                  as channel_financial_status,
        o.fulfillment_status                                as channel_fulfillment_status,
        o.total_jpy                                         as total_jpy,
        o.customer_id                                       as customer_id,
        coalesce(u.units, 0)                                as units,
        o._fetched_at                                       as _fetched_at
    from shopify_orders as o
    left join shopify_status as s
        on s.order_id = o.order_id
    left join shopify_units as u
        on u.order_id = o.order_id

),

amazon_orders as (

    select * from {{ ref('stg_amazon__orders') }}

),

amazon_units as (

    select order_id, cast(sum(quantity) as bigint) as units
    from {{ ref('stg_amazon__order_lines') }}
    group by order_id

),

amazon_status_candidates as (

    select o.order_id, m.unified_status, m.precedence
    from amazon_orders as o
    inner join status_map as m
        on m.channel = 'amazon'
        and m.status_field = 'fulfillmentStatus'
        and m.channel_code = o.fulfillment_status

    union all

    select o.order_id, m.unified_status, m.precedence
    from amazon_orders as o
    inner join status_map as m
        on m.channel = 'amazon'
        and m.status_field = 'packageStatus'
        and m.channel_code = o.package_status

),

amazon as (

    select
        'amazon'                                            as channel,
        o.order_id                                          as order_id,
        o.order_id                                          as order_name,
        o.created_at                                        as ordered_at_utc,
        o.updated_at                                        as updated_at_utc,
        s.status                                            as status,
        cast(null as varchar)                               as channel_financial_status,
        o.fulfillment_status                                as channel_fulfillment_status,
        o.total_jpy                                         as total_jpy,
        o.buyer_email                                       as customer_id,  -- the per-buyer relay address
        coalesce(u.units, 0)                                as units,
        o._fetched_at                                       as _fetched_at
    from amazon_orders as o
    left join (
        select order_id, arg_min(unified_status, precedence) as status
        from amazon_status_candidates
        group by order_id
    ) as s
        on s.order_id = o.order_id
    left join amazon_units as u
        on u.order_id = o.order_id

),

rakuten_orders as (

    select * from {{ ref('stg_rakuten__orders') }}

),

rakuten_units as (

    select order_id, cast(sum(quantity) as bigint) as units
    from {{ ref('stg_rakuten__order_lines') }}
    group by order_id

),

rakuten_status as (

    -- orderProgress, the derived payment code and the return code each point to a candidate status
    select c.order_id, arg_min(m.unified_status, m.precedence) as status
    from (
        select order_id, 'orderProgress' as status_field, status_code as code from rakuten_orders
        union all
        select order_id, 'payment', payment_status_code from rakuten_orders
        union all
        select order_id, 'changeReason', return_code from rakuten_orders where return_code is not null
    ) as c
    inner join status_map as m
        on m.channel = 'rakuten'
        and m.status_field = c.status_field
        and m.channel_code = c.code
    group by c.order_id

),

rakuten as (

    select
        'rakuten'                                           as channel,
        o.order_id                                          as order_id,
        o.order_name                                        as order_name,
        o.created_at                                        as ordered_at_utc,
        o.updated_at                                        as updated_at_utc,
        s.status                                            as status,
        o.payment_status_code                               as channel_financial_status,
        o.status_code                                       as channel_fulfillment_status,
        o.total_jpy                                         as total_jpy,
        cast(null as varchar)                               as customer_id,
        coalesce(u.units, 0)                                as units,
        o._fetched_at                                       as _fetched_at
    from rakuten_orders as o
    left join rakuten_status as s
        on s.order_id = o.order_id
    left join rakuten_units as u
        on u.order_id = o.order_id

),

yahoo_orders as (

    select * from {{ ref('stg_yahoo__orders') }}

),

yahoo_status as (

    -- OrderStatus, PayStatus and ShipStatus each point to a candidate; the lowest precedence wins.
    select c.order_id, arg_min(m.unified_status, m.precedence) as status
    from (
        select order_id, 'OrderStatus' as status_field, order_status as code from yahoo_orders
        union all
        select order_id, 'PayStatus', pay_status from yahoo_orders
        union all
        select order_id, 'ShipStatus', ship_status from yahoo_orders
    ) as c
    inner join status_map as m
        on m.channel = 'yahoo'
        and m.status_field = c.status_field
        and m.channel_code = c.code
    group by c.order_id

),

yahoo as (

    select
        'yahoo'                                             as channel,
        o.order_id                                          as order_id,
        o.order_id                                          as order_name,
        o.created_at                                        as ordered_at_utc,
        o.updated_at                                        as updated_at_utc,
        s.status                                            as status,
        o.pay_status                                        as channel_financial_status,
        o.ship_status                                       as channel_fulfillment_status,
        o.total_jpy                                         as total_jpy,
        cast(null as varchar)                               as customer_id,
        coalesce(u.units, 0)                                as units,
        o._fetched_at                                       as _fetched_at
    from yahoo_orders as o
    left join yahoo_status as s
        on s.order_id = o.order_id
    left join (
        select order_id, cast(sum(quantity) as bigint) as units
        from {{ ref('stg_yahoo__order_lines') }}
        group by order_id
    ) as u
        on u.order_id = o.order_id

),

unioned as (

    select * from shopify
    union all
    select * from yahoo
    union all
    select * from rakuten
    union all
    select * from amazon
    -- other channels are unioned here as they are landed (rakuten, amazon, yahoo, pos, b2b)

)

select
    channel || ':' || order_id                              as order_key,
    channel,
    order_id,
    order_name,
    ordered_at_utc,
    {{ jst_date('ordered_at_utc') }}                        as order_date_jst,
    updated_at_utc,
    status,
    channel_financial_status,
    channel_fulfillment_status,
    coalesce(status in ('pending_payment', 'awaiting_shipment'), false)  as is_open,
    total_jpy,
    customer_id,
    units,
    _fetched_at
from unioned
