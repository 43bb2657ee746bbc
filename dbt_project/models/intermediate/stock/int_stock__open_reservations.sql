-- Units per ERP SKU held by open channel orders (status pending_payment or awaiting_shipment), i.e. sold on
-- a channel but not yet taken out of ERP stock. In the walking skeleton no order is posted to the ERP yet,
-- so every open order reserves; once ERP order intake exists, orders the ERP has received drop out here.
-- Units = current_quantity (after edits/removals). A partially fulfilled order still reserves all its units
-- (conservative: never oversell).
select
    l.erp_sku                               as sku,
    cast(sum(coalesce(l.current_quantity, l.quantity)) as bigint)  as open_order_units,
    count(distinct l.order_key)             as open_orders
from {{ ref('int_order_lines__unified') }} as l
inner join {{ ref('int_orders__unified') }} as o
    on o.order_key = l.order_key
where o.is_open
  and l.erp_sku is not null
group by l.erp_sku
