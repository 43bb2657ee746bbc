-- One row per channel × ERP SKU the channel lists: the stock quantity reverse sync should set.
--
-- The pool (available_to_sell) per SKU:
--   plain SKU:  greatest(sellable_on_hand − open_order_units − safety_stock, 0)
--               (open_order_units includes the components reserved by open bundle orders)
--   bundle:     greatest(min over components of floor(component available_to_sell / component quantity)
--               − the bundle's own safety_stock, 0); a component without stock counts 0
-- Then the channel's allocation policy (var stock_allocation_policies; DECISIONLOG 25):
--   shared   allocated = pool
--   ratio    allocated = floor(pool × ratio)
--   priority allocated = pool, except while pool < var stock_low_threshold: 0 unless the channel has the
--            best (lowest) priority among the priority channels listing the SKU
--   target_quantity = greatest(allocated − channel_buffer, 0)   (var stock_channel_buffers)
-- The explain columns say which rule gave the number; `explain` writes it out.
{%- set buffers = var('stock_channel_buffers', {}) or {} %}
{%- set policies = var('stock_allocation_policies', {}) or {} %}
{%- set low_threshold = var('stock_low_threshold', 0) | int %}
{%- set default_safety_stock = var('default_safety_stock', 0) | int %}
{%- if default_safety_stock < 0 %}
    {{ exceptions.raise_compiler_error("var default_safety_stock must be >= 0, got " ~ default_safety_stock) }}
{%- endif %}
{%- if low_threshold < 0 %}
    {{ exceptions.raise_compiler_error("var stock_low_threshold must be >= 0, got " ~ low_threshold) }}
{%- endif %}
{%- for channel, buffer in buffers.items() %}
    {%- if buffer | int < 0 %}
        {{ exceptions.raise_compiler_error("var stock_channel_buffers." ~ channel ~ " must be >= 0, got " ~ buffer) }}
    {%- endif %}
{%- endfor %}
{%- for channel, rule in policies.items() %}
    {%- if rule.get('policy') not in ['shared', 'ratio', 'priority'] %}
        {{ exceptions.raise_compiler_error("var stock_allocation_policies." ~ channel ~ ".policy must be shared, ratio or priority, got " ~ rule.get('policy')) }}
    {%- endif %}
    {%- if rule.get('policy') == 'ratio' and not (0 <= (rule.get('ratio', -1) | float) <= 1) %}
        {{ exceptions.raise_compiler_error("var stock_allocation_policies." ~ channel ~ ".ratio must be between 0 and 1, got " ~ rule.get('ratio')) }}
    {%- endif %}
    {%- if rule.get('policy') == 'priority' and (rule.get('priority', 0) | int) < 1 %}
        {{ exceptions.raise_compiler_error("var stock_allocation_policies." ~ channel ~ ".priority must be an integer >= 1, got " ~ rule.get('priority')) }}
    {%- endif %}
{%- endfor %}

with listed as (

    select distinct channel, sku
    from {{ ref('int_products__channel_listings') }}
    where sku is not null

),

products as (

    select sku, cast(coalesce(safety_stock, {{ default_safety_stock }}) as bigint) as safety_stock
    from {{ ref('stg_erp__products') }}

),

components as (

    select bundle_sku, component_sku, component_quantity
    from {{ ref('int_products__bundle_components') }}

),

sellable_stock as (

    select sku, cast(sum(on_hand) as bigint) as sellable_on_hand
    from {{ ref('fct_stock_position') }}
    where is_sellable
    group by sku

),

reservations as (

    select sku, open_order_units
    from {{ ref('int_stock__open_reservations') }}

),

-- every ERP SKU as if it were a plain product (bundles' own rows are replaced below)
plain_pool as (

    select
        p.sku,
        cast(coalesce(s.sellable_on_hand, 0) as bigint)                                 as sellable_on_hand,
        cast(coalesce(r.open_order_units, 0) as bigint)                                 as open_order_units,
        p.safety_stock,
        coalesce(s.sellable_on_hand, 0) - coalesce(r.open_order_units, 0) - p.safety_stock  as unclamped_pool
    from products as p
    left join sellable_stock as s on s.sku = p.sku
    left join reservations as r on r.sku = p.sku

),

bundle_pool as (

    select
        c.bundle_sku                                                                    as sku,
        min(floor(greatest(coalesce(pp.unclamped_pool, 0), 0) / c.component_quantity))  as component_sets,
        string_agg(c.component_sku || ' ' || greatest(coalesce(pp.unclamped_pool, 0), 0)
                   || ' ÷ ' || c.component_quantity
                   || ' = ' || cast(floor(greatest(coalesce(pp.unclamped_pool, 0), 0) / c.component_quantity) as bigint),
                   ', ' order by c.component_sku)                                       as components_text
    from components as c
    left join plain_pool as pp on pp.sku = c.component_sku
    group by c.bundle_sku

),

pool as (

    select
        pp.sku,
        b.sku is not null                                                               as is_bundle,
        pp.sellable_on_hand,
        pp.open_order_units,
        pp.safety_stock,
        case when b.sku is null then pp.unclamped_pool
             else cast(b.component_sets as bigint) - pp.safety_stock end                as unclamped_pool,
        case when b.sku is null
            then 'on_hand ' || pp.sellable_on_hand || ' − open ' || pp.open_order_units
                 || ' − safety ' || pp.safety_stock
            else 'bundle min(' || b.components_text || ') − safety ' || pp.safety_stock
        end                                                                             as pool_text
    from plain_pool as pp
    left join bundle_pool as b on b.sku = pp.sku

),

channel_rules as (

    {%- set channels = (buffers.keys() | list + policies.keys() | list) | unique | list %}
    {%- for channel in channels %}
    {%- set rule = policies.get(channel, {}) %}
    select
        '{{ channel }}'                                                                  as channel,
        cast({{ buffers.get(channel, 0) | int }} as bigint)                             as channel_buffer,
        '{{ rule.get('policy', 'shared') }}'                                           as allocation_policy,
        {{ "cast('" ~ rule.get('ratio') ~ "' as decimal(9, 4))" if rule.get('policy') == 'ratio' else 'cast(null as decimal(9, 4))' }}  as allocation_ratio,
        {{ rule.get('priority') | int if rule.get('policy') == 'priority' else 'cast(null as integer)' }}  as channel_priority
    {%- if not loop.last %} union all{% endif %}
    {%- else %}
    select cast(null as varchar) as channel, cast(null as bigint) as channel_buffer,
           cast(null as varchar) as allocation_policy, cast(null as decimal(9, 4)) as allocation_ratio,
           cast(null as integer) as channel_priority
    where false
    {%- endfor %}

),

inputs as (

    select
        l.channel,
        l.sku,
        p.is_bundle,
        p.sellable_on_hand,
        p.open_order_units,
        p.safety_stock,
        p.unclamped_pool,
        greatest(p.unclamped_pool, 0)                                                   as available_to_sell,
        p.pool_text,
        coalesce(r.allocation_policy, 'shared')                                         as allocation_policy,
        r.allocation_ratio,
        r.channel_priority,
        cast(coalesce(r.channel_buffer, 0) as bigint)                                   as channel_buffer
    from listed as l
    inner join pool as p on p.sku = l.sku
    left join channel_rules as r on r.channel = l.channel

),

with_priority as (

    select
        *,
        greatest(unclamped_pool, 0) < {{ low_threshold }}                               as is_low_stock,
        min(channel_priority) over (partition by sku)                                   as top_priority
    from inputs

),

allocated as (

    select
        *,
        cast(case allocation_policy
            when 'ratio' then floor(available_to_sell * allocation_ratio)
            when 'priority' then case when is_low_stock and channel_priority > top_priority then 0
                                      else available_to_sell end
            else available_to_sell
        end as bigint)                                                                  as allocated_quantity
    from with_priority

)

select
    channel,
    sku,
    is_bundle,
    sellable_on_hand,
    open_order_units,
    safety_stock,
    available_to_sell,
    allocation_policy,
    allocation_ratio,
    channel_priority,
    is_low_stock,
    allocated_quantity,
    channel_buffer,
    greatest(allocated_quantity - channel_buffer, 0)                                    as target_quantity,
    -- shared, plain SKU: 'on_hand 12 − open 2 − safety 1 − buffer 1 = 8'; clamped: '… = -3 → 0'.
    -- otherwise the pool first, then the policy step, then the buffer.
    case
        when allocation_policy = 'shared'
            then pool_text || ' − buffer ' || channel_buffer || ' = ' || (unclamped_pool - channel_buffer)
                 || case when unclamped_pool - channel_buffer < 0 then ' → 0' else '' end
        else pool_text || ' = ' || unclamped_pool || case when unclamped_pool < 0 then ' → 0' else '' end
            || case allocation_policy
                when 'ratio' then '; ratio ' || cast(allocation_ratio as double) || ': floor(' || available_to_sell
                     || ' × ' || cast(allocation_ratio as double) || ') = ' || allocated_quantity
                when 'priority' then
                    case when not is_low_stock then '; not low (≥ {{ low_threshold }}): all priority channels'
                         when channel_priority > top_priority then '; low (< {{ low_threshold }}): priority '
                              || channel_priority || ' yields to priority ' || top_priority || ' → 0'
                         else '; low (< {{ low_threshold }}): priority ' || channel_priority || ' is the top'
                    end
               end
            || ' − buffer ' || channel_buffer || ' = ' || (allocated_quantity - channel_buffer)
            || case when allocated_quantity - channel_buffer < 0 then ' → 0' else '' end
    end                                                                                 as explain
from allocated
