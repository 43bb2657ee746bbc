-- One row per channel order that names a buyer: the unified customer it belongs to. Each order finds its identity
-- record again (int_customers__identities keeps one record per distinct set of buyer details, D233): an order of
-- a Shopify customer is that customer's member; a guest or marketplace order belongs to the record of its set of
-- details when that record stands for more than one order, else to the record named by its own order key.
-- A view, read by fct_orders alone: writing 6.5M links at 10M order lines and testing them cost more than the
-- join in fct_orders' query (DECISIONS.md D226). An order linked twice would show twice in fct_orders, whose
-- unique test on order_key fails the build then.
{{ config(materialized='view') }}
with order_records as (

    {{ customer_order_records() }}

),

-- the records that stand for several guest or marketplace orders (order_count > 1 and named by an order)
shared_details as (

    select member_key, {{ customer_order_detail_columns() | join(', ') }}
    from {{ ref('int_customers__identities') }}
    where first_order_key is not null and order_count > 1

)

select
    o.order_key,
    r.unified_customer_id
from order_records as o
left join shared_details as d
    on o.owner_key is null
    and {{ null_safe_match('o', 'd', customer_order_detail_columns()) }}
inner join {{ ref('int_customers__resolved') }} as r
    on r.member_key = coalesce(o.owner_key, d.member_key, o.order_key)
