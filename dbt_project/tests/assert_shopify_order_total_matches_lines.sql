-- Every Shopify order adds up, to the yen (0 JPY tolerance):
--   total_jpy = Σ(quantity × unit_price_jpy) + shipping_jpy − discounts_jpy
-- Japanese shops show tax-inclusive prices, so tax is inside the line prices and not added again.
-- A failure means money was mis-parsed (decimal strings -> integer JPY) or lines were lost in the unnest.
with lines as (

    select order_id, sum(line_total_jpy) as lines_jpy
    from {{ ref('stg_shopify__order_lines') }}
    group by order_id

)

select
    o.order_id,
    o.total_jpy,
    coalesce(l.lines_jpy, 0)                                            as lines_jpy,
    o.shipping_jpy,
    o.discounts_jpy,
    o.total_jpy - (coalesce(l.lines_jpy, 0) + coalesce(o.shipping_jpy, 0) - coalesce(o.discounts_jpy, 0)) as difference_jpy
from {{ ref('stg_shopify__orders') }} as o
left join lines as l
    on l.order_id = o.order_id
where o.total_jpy <> coalesce(l.lines_jpy, 0) + coalesce(o.shipping_jpy, 0) - coalesce(o.discounts_jpy, 0)
