-- One row per channel order, every channel in one shape, with the unified status from the seed
-- order_status_map: each status field of the order (and the cancellation) points to a candidate status;
-- the candidate with the lowest precedence wins (the rule is written down in seeds/_seeds.yml).
-- An order whose codes are unknown gets no candidate from them; the known_status_code tests on staging
-- fail the build in that case, and status is tested not_null downstream.
-- The status is a function of the order's status codes alone, so it is worked out once per distinct
-- combination of codes (a few dozen per channel) and joined to the orders on the codes, not per order
-- (DECISIONS.md D151).
-- Each channel's orders are read twice (its code combinations, its rows): `not materialized` scans the table
-- twice instead of holding all of its rows in memory as a CTE (2.1 GB → 0.9 GB at 10M lines, DECISIONS.md D194).
-- A view (DECISIONS.md D228): fct_orders reads all of it once and stores it; fct_order_lines and the open
-- reservations read only the columns they need (key, date, status), so no 6.5M-row copy is written in between.
-- Its key, not-null columns and status are tested on fct_orders, which holds every order of this view.
{{ config(materialized='view') }}
with status_map as (

    select channel, status_field, channel_code, unified_status, precedence
    from {{ ref('order_status_map') }}

),

shopify_orders as not materialized (

    select * from {{ ref('stg_shopify__orders') }}

),

shopify_units as (

    select order_id, cast(sum(quantity) as bigint) as units
    from {{ ref('stg_shopify__order_lines') }}
    group by order_id

),

shopify_codes as (

    select distinct financial_status, fulfillment_status, is_cancelled from shopify_orders

),

shopify_status_candidates as (

    select o.financial_status, o.fulfillment_status, o.is_cancelled, m.unified_status, m.precedence
    from shopify_codes as o
    inner join status_map as m
        on m.channel = 'shopify'
        and m.status_field = 'displayFinancialStatus'
        and m.channel_code = o.financial_status

    union all

    select o.financial_status, o.fulfillment_status, o.is_cancelled, m.unified_status, m.precedence
    from shopify_codes as o
    inner join status_map as m
        on m.channel = 'shopify'
        and m.status_field = 'displayFulfillmentStatus'
        and m.channel_code = o.fulfillment_status

    union all

    select o.financial_status, o.fulfillment_status, o.is_cancelled, m.unified_status, m.precedence
    from shopify_codes as o
    inner join status_map as m
        on m.channel = 'shopify'
        and m.status_field = 'cancellation'
        and m.channel_code = 'CANCELLED'
    where o.is_cancelled

),

shopify_status as (

    select financial_status, fulfillment_status, is_cancelled, arg_min(unified_status, precedence) as status
    from shopify_status_candidates
    group by financial_status, fulfillment_status, is_cancelled

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
        on  s.financial_status is not distinct from o.financial_status
        and s.fulfillment_status is not distinct from o.fulfillment_status
        and s.is_cancelled is not distinct from o.is_cancelled
    left join shopify_units as u
        on u.order_id = o.order_id

),

amazon_orders as not materialized (

    select * from {{ ref('stg_amazon__orders') }}

),

amazon_units as (

    select order_id, cast(sum(quantity) as bigint) as units
    from {{ ref('stg_amazon__order_lines') }}
    group by order_id

),

amazon_codes as (

    select distinct fulfillment_status, package_status from amazon_orders

),

amazon_status_candidates as (

    select o.fulfillment_status, o.package_status, m.unified_status, m.precedence
    from amazon_codes as o
    inner join status_map as m
        on m.channel = 'amazon'
        and m.status_field = 'fulfillmentStatus'
        and m.channel_code = o.fulfillment_status

    union all

    select o.fulfillment_status, o.package_status, m.unified_status, m.precedence
    from amazon_codes as o
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
        select fulfillment_status, package_status, arg_min(unified_status, precedence) as status
        from amazon_status_candidates
        group by fulfillment_status, package_status
    ) as s
        on  s.fulfillment_status is not distinct from o.fulfillment_status
        and s.package_status is not distinct from o.package_status
    left join amazon_units as u
        on u.order_id = o.order_id

),

rakuten_orders as not materialized (

    select * from {{ ref('stg_rakuten__orders') }}

),

rakuten_units as (

    select order_id, cast(sum(quantity) as bigint) as units
    from {{ ref('stg_rakuten__order_lines') }}
    group by order_id

),

rakuten_codes as (

    select distinct status_code, payment_status_code, return_code from rakuten_orders

),

rakuten_status as (

    -- orderProgress, the derived payment code and the return code each point to a candidate status
    select c.status_code, c.payment_status_code, c.return_code, arg_min(m.unified_status, m.precedence) as status
    from (
        select *, 'orderProgress' as status_field, status_code as code from rakuten_codes
        union all
        select *, 'payment', payment_status_code from rakuten_codes
        union all
        select *, 'changeReason', return_code from rakuten_codes where return_code is not null
    ) as c
    inner join status_map as m
        on m.channel = 'rakuten'
        and m.status_field = c.status_field
        and m.channel_code = c.code
    group by c.status_code, c.payment_status_code, c.return_code

),

rakuten as (

    select
        'rakuten'                                           as channel,
        o.order_id                                          as order_id,
        o.order_id                                          as order_name,
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
        on  s.status_code is not distinct from o.status_code
        and s.payment_status_code is not distinct from o.payment_status_code
        and s.return_code is not distinct from o.return_code
    left join rakuten_units as u
        on u.order_id = o.order_id

),

yahoo_orders as not materialized (

    select * from {{ ref('stg_yahoo__orders') }}

),

yahoo_codes as (

    select distinct order_status, pay_status, ship_status from yahoo_orders

),

yahoo_status as (

    -- OrderStatus, PayStatus and ShipStatus each point to a candidate; the lowest precedence wins. Yahoo has
    -- no return status: a return is a cancellation after delivery (OrderStatus 4 with ShipStatus 4), which
    -- the derived field `returnAfterDelivery` points to `returned`.
    select c.order_status, c.pay_status, c.ship_status, arg_min(m.unified_status, m.precedence) as status
    from (
        select *, 'OrderStatus' as status_field, order_status as code from yahoo_codes
        union all
        select *, 'PayStatus', pay_status from yahoo_codes
        union all
        select *, 'ShipStatus', ship_status from yahoo_codes
        union all
        select *, 'returnAfterDelivery', 'RETURN' from yahoo_codes where order_status = '4' and ship_status = '4'
    ) as c
    inner join status_map as m
        on m.channel = 'yahoo'
        and m.status_field = c.status_field
        and m.channel_code = c.code
    group by c.order_status, c.pay_status, c.ship_status

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
        on  s.order_status is not distinct from o.order_status
        and s.pay_status is not distinct from o.pay_status
        and s.ship_status is not distinct from o.ship_status
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
