-- Units per ERP SKU held by open channel orders (status pending_payment or awaiting_shipment) that the ERP
-- does not cover yet: sold on a channel but not yet taken out of ERP stock.
-- Rule (DECISIONS.md D40): once the ERP has TAKEN an order (any posted 'order' version of it has intake
-- status taken or shipped), the ERP's own allocation (引当) has moved its units out of the on-hand we read,
-- so the channel side stops reserving them — counting both would hold the units twice. An order posted but
-- still 'new' in the intake is not yet in the ERP's stock: it keeps reserving here.
-- Units = current_quantity (after edits/removals). A partially fulfilled order still reserves all its units
-- (conservative: never oversell). A line of a bundle reserves its components (units × component quantity,
-- int_products__bundle_components) and not the bundle SKU, which has no stock of its own.
with taken_by_erp as (

    select distinct order_key
    from {{ ref('stg_erp__order_intakes') }}
    where event = 'order'
      and status in ('taken', 'shipped')

),

open_lines as (

    select l.erp_sku as sku, l.order_key, coalesce(l.current_quantity, l.quantity) as units
    from {{ ref('int_order_lines__unified') }} as l
    inner join {{ ref('int_orders__unified') }} as o
        on o.order_key = l.order_key
    where o.is_open
      and l.erp_sku is not null
      and o.order_key not in (select order_key from taken_by_erp)

),

exploded as (

    select coalesce(b.component_sku, l.sku) as sku, l.order_key, l.units * coalesce(b.component_quantity, 1) as units
    from open_lines as l
    left join {{ ref('int_products__bundle_components') }} as b
        on b.bundle_sku = l.sku

)

select
    sku,
    cast(sum(units) as bigint)              as open_order_units,
    count(distinct order_key)               as open_orders
from exploded
group by sku
