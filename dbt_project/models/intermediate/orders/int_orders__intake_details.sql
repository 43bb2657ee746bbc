-- What the ERP's order intake needs beyond fct_orders (DECISIONS.md D40): customer e-mail, payment method,
-- shipping and discount, one row per channel order. A channel joins by adding its CTE to `unioned`; a channel
-- not here yet still posts (reverse_sync.erp_intake left-joins this and posts nulls).
with shopify as (

    select
        'shopify'                                           as channel,
        order_id,
        email                                               as customer_email,
        payment_gateway_names[1]                            as payment_method,
        shipping_jpy,
        discounts_jpy                                       as discount_jpy
    from {{ ref('stg_shopify__orders') }}

),

unioned as (

    select * from shopify
    -- other channels are unioned here as they are landed

)

select
    channel || ':' || order_id                              as order_key,
    channel,
    order_id,
    customer_email,
    payment_method,
    cast(shipping_jpy as bigint)                            as shipping_jpy,
    cast(discount_jpy as bigint)                            as discount_jpy
from unioned
