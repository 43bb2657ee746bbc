-- One row per SKU × warehouse: units on hand in the ERP and whether that warehouse feeds the channels.
-- A warehouse missing from the warehouse master counts as not sellable. Columns as in DECISIONS.md D6.
select
    s.sku,
    s.warehouse_code,
    coalesce(w.is_sellable, false)  as is_sellable,
    s.on_hand,
    s.updated_at                    as updated_at_utc
from {{ ref('stg_erp__stock') }} as s
left join {{ ref('stg_erp__warehouses') }} as w
    on w.warehouse_code = s.warehouse_code
