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

-- Records of one customer that agree on source, priority, update time and every attribute are one candidate,
-- named by its smallest member_key: the survivorship order (source_priority, updated_at, member_key) picks the
-- same value from the candidates as from the records. Marketplace buyers repeat their details on every order,
-- so this is a few rows per customer instead of one per order (5.3 → 3.1 CPU s at 10M lines, DECISIONS.md D229).
candidates as (

    select
        unified_customer_id,
        source,
        source_priority,
        updated_at,
        {%- for a in attributes %}
        {{ a }},
        {%- endfor %}
        min(member_key)                                                 as member_key
    from identities
    group by all

),

survived as (

    select
        unified_customer_id,
        {%- for a in attributes %}
        first({{ a }} order by source_priority, updated_at desc nulls last, member_key) filter (where {{ a }} is not null)  as {{ a }},
        {%- endfor %}
        list_sort(list_distinct(list(source)))                          as sources
    from candidates
    group by unified_customer_id

),

-- The member keys straight from int_customers__resolved (one row per member_key, tested unique and not null),
-- not from the 6.6M identity records: the same sorted list without a distinct over every record (D192).
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
