-- One row per bundle × component: how many sets the sellable warehouses can make now, and which component
-- limits it (the stock page's bundle section; the channel targets of a bundle are in
-- mart_channel_stock_targets, which also takes open orders and safety stock off).
with components as (

    select bundle_sku, component_sku, component_quantity
    from {{ ref('int_products__bundle_components') }}

),

sellable as (

    select sku, cast(sum(on_hand) as bigint) as sellable_on_hand
    from {{ ref('fct_stock_position') }}
    where is_sellable
    group by sku

),

per_component as (

    select
        c.bundle_sku,
        c.component_sku,
        c.component_quantity,
        coalesce(s.sellable_on_hand, 0)                                          as component_sellable_on_hand,
        cast(floor(greatest(coalesce(s.sellable_on_hand, 0), 0) / c.component_quantity) as bigint)
                                                                                 as sets_from_component
    from components as c
    left join sellable as s
        on s.sku = c.component_sku

)

select
    bundle_sku,
    component_sku,
    component_quantity,
    component_sellable_on_hand,
    sets_from_component,
    min(sets_from_component) over (partition by bundle_sku)                     as buildable_sets,
    sets_from_component = min(sets_from_component) over (partition by bundle_sku) as is_limiting
from per_component
