-- One row per bundle × component (the bundle explosion), from the ERP bundle master: how many units of each
-- component one bundle consumes. One level deep: a component that is itself a bundle fails the test
-- `component_is_not_a_bundle` (nested bundles are not exploded).
select
    b.bundle_sku,
    b.component_sku,
    b.quantity                                              as component_quantity,
    exists (select 1 from {{ ref('stg_erp__bundles') }} as n where n.bundle_sku = b.component_sku)  as component_is_bundle
from {{ ref('stg_erp__bundles') }} as b
where b.quantity > 0
