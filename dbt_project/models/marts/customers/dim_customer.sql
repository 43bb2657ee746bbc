-- One row per unified customer (int_customers__resolved), with the best value of each attribute by the
-- survivorship rule: for each attribute separately, the non-null value from the most trusted source
-- (source_priority: 1 ERP account, 2 Shopify customer, 3 POS member, 4 order-derived buyer), ties → the
-- most recently updated record, then the smallest member_key. So an ERP contact e-mail beats a Shopify one,
-- but a Shopify phone fills in where the ERP has none.
with identities as (

    select i.*, r.unified_customer_id
    from {{ ref('int_customers__identities') }} as i
    inner join {{ ref('int_customers__resolved') }} as r on r.member_key = i.member_key

),

{%- set attributes = ['full_name', 'name_kana', 'email', 'phone', 'postal_code', 'prefecture', 'address1'] %}

-- The identity records are already one per set of details (marketplace buyers repeat theirs on every order,
-- D233), so the survivorship reads them directly; D229's grouping into candidates first is no longer needed.
survived as (

    select
        unified_customer_id,
        {%- for a in attributes %}
        first({{ a }} order by source_priority, updated_at desc nulls last, member_key) filter (where {{ a }} is not null)  as {{ a }},
        {%- endfor %}
        list_sort(list_distinct(list(source)))                          as sources
    from identities
    group by unified_customer_id

),

-- The member keys straight from int_customers__resolved (one row per member_key, tested unique and not null),
-- not from the identity records: the same sorted list without a distinct over every record (D192).
members as (

    select
        unified_customer_id,
        list(member_key order by member_key)                            as member_keys
    from {{ ref('int_customers__resolved') }}
    group by unified_customer_id

),

orders as (

    select
        o.unified_customer_id,
        min(o.ordered_at_utc)                                           as first_order_at_utc,
        max(o.ordered_at_utc)                                           as last_order_at_utc,
        cast(count(*) as bigint)                                        as lifetime_orders
    from {{ ref('fct_orders') }} as o
    where o.unified_customer_id is not null
      and o.status is distinct from 'cancelled'
    group by o.unified_customer_id

)

select
    s.unified_customer_id,
    s.full_name,
    s.name_kana,
    s.email,
    s.phone,
    s.postal_code,
    s.prefecture,
    s.address1,
    s.sources,
    m.member_keys,
    cast(len(m.member_keys) as bigint)                                  as member_count,
    o.first_order_at_utc,
    o.last_order_at_utc,
    coalesce(o.lifetime_orders, 0)                                      as lifetime_orders,
    r.is_b2b,
    r.erp_rank,
    r.rank_tier                                                         as current_rank,
    r.rfm_score
from survived as s
inner join members as m on m.unified_customer_id = s.unified_customer_id
left join orders as o on o.unified_customer_id = s.unified_customer_id
left join {{ ref('mart_customer_rank') }} as r on r.unified_customer_id = s.unified_customer_id
