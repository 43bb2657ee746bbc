-- Units per ERP SKU held by open channel orders (status pending_payment or awaiting_shipment) that the ERP
-- does not cover yet: sold on a channel but not yet taken out of ERP stock.
-- Rule (DECISIONS.md D40): once the ERP has TAKEN an order (any posted 'order' version of it has intake
-- status taken or shipped), the ERP's own allocation (引当) has moved its units out of the on-hand we read,
-- so the channel side stops reserving them — counting both would hold the units twice. An order posted but
-- still 'new' in the intake is not yet in the ERP's stock: it keeps reserving here.
-- Units = current_quantity (after edits/removals). A partially fulfilled order still reserves all its units
-- (conservative: never oversell).
with taken_by_erp as (

    select distinct order_key
    from {{ ref('stg_erp__order_intakes') }}
    where event = 'order'
      and status in ('taken', 'shipped')

)

select
    l.erp_sku                               as sku,
    cast(sum(coalesce(l.current_quantity, l.quantity)) as bigint)  as open_order_units,
    count(distinct l.order_key)             as open_orders
from {{ ref('int_order_lines__unified') }} as l
inner join {{ ref('int_orders__unified') }} as o
    on o.order_key = l.order_key
where o.is_open
  and l.erp_sku is not null
  and o.order_key not in (select order_key from taken_by_erp)
group by l.erp_sku
