-- One row per unified customer: RFM over a rolling window and the rank tier (var customer_rank), as of
-- macro as_of(). Orders: every channel's orders except cancelled ones, from fct_orders, which carries each
-- order's unified customer (int_customers__order_links) — one scan instead of joining millions of orders to
-- their links again (DECISIONS.md D153).
--   recency_days  = JST days from the last order (any time up to as_of) to the as_of date; null = never
--   frequency     = orders in the window (as_of − window_days, as_of]
--   monetary_jpy  = Σ total_jpy (tax-inclusive) of those orders
--   r/f/m_score   = 1–(n+1) from the thresholds (macros/rfm.sql); rfm_score = r + f + m
--   rank_tier     = the first tier whose min_score ≤ rfm_score (tiers listed best first), else default_tier
-- B2B accounts keep their ERP rank alongside (erp_rank); the RFM tier is computed for them the same way.
-- tier_position = 1 for the best tier … len(tiers) + 1 for default_tier. Movement: the same RFM computed as of
-- as_of − movement_days (var customer_rank.movement_days, default 30) gives previous_rank_tier and
-- previous_tier_position; both are null for a customer with no order by then (new).
{%- set cfg = var('customer_rank') %}
{%- set window_days = cfg['window_days'] | int %}
{%- set movement_days = cfg.get('movement_days', 30) | int %}
{%- set points = [('', as_of()), ('previous_', '(' ~ as_of() ~ ' - to_days(' ~ movement_days ~ '))')] %}
{%- if window_days < 1 %}
    {{ exceptions.raise_compiler_error("var customer_rank.window_days must be >= 1, got " ~ window_days) }}
{%- endif %}

with customers as (

    select distinct unified_customer_id from {{ ref('int_customers__resolved') }}

),

accounts as (

    select
        r.unified_customer_id,
        bool_or(i.is_b2b)                                               as is_b2b,
        first(i.erp_rank order by i.updated_at desc nulls last, i.member_key) filter (where i.erp_rank is not null)  as erp_rank
    from {{ ref('int_customers__identities') }} as i
    inner join {{ ref('int_customers__resolved') }} as r on r.member_key = i.member_key
    -- only ERP accounts say B2B or carry a rank: the other (millions of order-derived) records add nothing
    where i.is_b2b or i.erp_rank is not null
    group by r.unified_customer_id

),

orders as (

    select unified_customer_id, ordered_at_utc, order_date_jst, total_jpy
    from {{ ref('fct_orders') }}
    where unified_customer_id is not null
      and status is distinct from 'cancelled'
      and ordered_at_utc <= {{ as_of() }}

),
{%- for prefix, point in points %}

{{ prefix }}rfm as (

    select
        unified_customer_id,
        max(ordered_at_utc)                                                                     as last_order_at_utc,
        max(order_date_jst)                                                                     as last_order_date_jst,
        count(*) filter (where ordered_at_utc > {{ point }} - to_days({{ window_days }}))       as frequency,
        cast(coalesce(sum(total_jpy) filter (
            where ordered_at_utc > {{ point }} - to_days({{ window_days }})), 0) as bigint)     as monetary_jpy
    from orders
    where ordered_at_utc <= {{ point }}
    group by unified_customer_id

),

{{ prefix }}measured as (

    select
        c.unified_customer_id,
        r.unified_customer_id is not null                                   as has_ordered,
        r.last_order_at_utc,
        date_diff('day', r.last_order_date_jst, {{ jst_date(point) }})      as recency_days,
        cast(coalesce(r.frequency, 0) as bigint)                            as frequency,
        cast(coalesce(r.monetary_jpy, 0) as bigint)                         as monetary_jpy
    from customers as c
    left join {{ prefix }}rfm as r on r.unified_customer_id = c.unified_customer_id

),

{{ prefix }}scored as (

    select
        *,
        {{ score_at_most('recency_days', cfg['recency_days'], 'recency_days') }}    as r_score,
        {{ score_at_least('frequency', cfg['frequency'], 'frequency') }}            as f_score,
        {{ score_at_least('monetary_jpy', cfg['monetary_jpy'], 'monetary_jpy') }}   as m_score
    from {{ prefix }}measured

),

{{ prefix }}tiered as (

    select
        *,
        r_score + f_score + m_score                         as rfm_score,
        case
            {%- for tier in cfg['tiers'] %}
            when r_score + f_score + m_score >= {{ tier['min_score'] | int }} then '{{ tier['name'] }}'
            {%- endfor %}
            else '{{ cfg['default_tier'] }}'
        end                                                 as rank_tier,
        case
            {%- for tier in cfg['tiers'] %}
            when r_score + f_score + m_score >= {{ tier['min_score'] | int }} then {{ loop.index }}
            {%- endfor %}
            else {{ cfg['tiers'] | length + 1 }}
        end                                                 as tier_position
    from {{ prefix }}scored

){{ "," if not loop.last }}
{%- endfor %}

select
    t.unified_customer_id,
    {{ as_of() }}                                       as as_of_utc,
    {{ window_days }}                                   as window_days,
    t.last_order_at_utc,
    t.recency_days,
    t.frequency,
    t.monetary_jpy,
    t.r_score,
    t.f_score,
    t.m_score,
    t.rfm_score,
    t.rank_tier,
    t.tier_position,
    case when p.has_ordered then p.rank_tier end        as previous_rank_tier,
    case when p.has_ordered then p.tier_position end    as previous_tier_position,
    coalesce(a.is_b2b, false)                           as is_b2b,
    a.erp_rank
from tiered as t
inner join previous_tiered as p on p.unified_customer_id = t.unified_customer_id
left join accounts as a on a.unified_customer_id = t.unified_customer_id
