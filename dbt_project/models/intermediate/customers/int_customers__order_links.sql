-- One row per channel order that names a buyer: the unified customer it belongs to (through the order's own
-- identity record in int_customers__identities). Orders without one (no e-mail, no customer) are absent.
-- No `distinct`: an order has one identity record (staging order ids are unique, each channel's records carry
-- their own prefix) and a member_key one resolved row (D193).
-- A view, read by fct_orders alone: writing 6.5M links at 10M order lines and testing them cost more than the
-- join in fct_orders' query (DECISIONS.md D226). An order linked twice would show twice in fct_orders, whose
-- unique test on order_key fails the build then.
{{ config(materialized='view') }}
select
    i.order_key,
    r.unified_customer_id
from {{ ref('int_customers__identities') }} as i
inner join {{ ref('int_customers__resolved') }} as r
    on r.member_key = i.member_key
where i.order_key is not null
