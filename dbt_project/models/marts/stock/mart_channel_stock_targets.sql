-- One row per channel × ERP SKU the channel lists: the stock quantity reverse sync should set.
--   available_to_sell = greatest(sellable_on_hand − open_order_units − safety_stock, 0)
--   target_quantity   = greatest(available_to_sell − channel_buffer, 0)
-- Policy: shared pool with a per-channel buffer (var stock_channel_buffers; default_safety_stock for products
-- without their own). Columns as in DECISIONS.md D6.
{%- set buffers = var('stock_channel_buffers', {}) or {} %}
{%- set default_safety_stock = var('default_safety_stock', 0) | int %}
{%- if default_safety_stock < 0 %}
    {{ exceptions.raise_compiler_error("var default_safety_stock must be >= 0, got " ~ default_safety_stock) }}
{%- endif %}
{%- for channel, buffer in buffers.items() %}
    {%- if buffer | int < 0 %}
        {{ exceptions.raise_compiler_error("var stock_channel_buffers." ~ channel ~ " must be >= 0, got " ~ buffer) }}
    {%- endif %}
{%- endfor %}

with listed as (

    select distinct channel, sku
    from {{ ref('int_products__channel_listings') }}
    where sku is not null

),

products as (

    select sku, safety_stock
    from {{ ref('stg_erp__products') }}

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

channel_buffers as (

    {%- for channel, buffer in buffers.items() %}
    select '{{ channel }}' as channel, cast({{ buffer | int }} as bigint) as channel_buffer
    {%- if not loop.last %} union all{% endif %}
    {%- else %}
    select cast(null as varchar) as channel, cast(null as bigint) as channel_buffer where false
    {%- endfor %}

),

inputs as (

    select
        l.channel,
        l.sku,
        cast(coalesce(s.sellable_on_hand, 0) as bigint)                         as sellable_on_hand,
        cast(coalesce(r.open_order_units, 0) as bigint)                         as open_order_units,
        cast(coalesce(p.safety_stock, {{ default_safety_stock }}) as bigint)   as safety_stock,
        cast(coalesce(b.channel_buffer, 0) as bigint)                           as channel_buffer
    from listed as l
    inner join products as p
        on p.sku = l.sku
    left join sellable_stock as s
        on s.sku = l.sku
    left join reservations as r
        on r.sku = l.sku
    left join channel_buffers as b
        on b.channel = l.channel

),

computed as (

    select
        *,
        greatest(sellable_on_hand - open_order_units - safety_stock, 0)        as available_to_sell,
        sellable_on_hand - open_order_units - safety_stock - channel_buffer     as unclamped_target
    from inputs

)

select
    channel,
    sku,
    sellable_on_hand,
    open_order_units,
    safety_stock,
    available_to_sell,
    channel_buffer,
    greatest(available_to_sell - channel_buffer, 0)                            as target_quantity,
    -- e.g. 'on_hand 12 − open 2 − safety 1 − buffer 1 = 8'; when clamped: '... = -3 → 0'
    'on_hand ' || sellable_on_hand
        || ' − open ' || open_order_units
        || ' − safety ' || safety_stock
        || ' − buffer ' || channel_buffer
        || ' = ' || unclamped_target
        || case when unclamped_target < 0 then ' → 0' else '' end               as explain
from computed
