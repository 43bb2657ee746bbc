-- One row per channel × ERP SKU the channel lists: the tax-inclusive price reverse sync should show.
--
--   regular_price_raw     = list_price_tax_excl × (1 + markup_pct / 100) × (1 + tax_rate)     exact decimal
--   regular_price_tax_incl = round_to_step(regular_price_raw, rounding_step, rounding)          integer JPY
--   sale (a window of seed price_schedules active at as_of: starts_at_utc ≤ as_of < ends_at_utc):
--       fixed  sale_price_tax_incl as written, or
--       pct    round_to_step(regular_price_raw × (1 − discount_pct / 100), rounding_step, rounding)
--   target_price_tax_incl = the sale price when a window is active, else the regular price
--
-- Japanese practice (総額表示): the price shown is tax-inclusive and computed from the tax-exclusive master
-- price; the tax is applied to the marked-up price BEFORE rounding, and the rounding is the channel's own rule
-- (var price_rules: up | down | nearest to its step; a channel not named rounds down to its dim_channel step,
-- i.e. 端数切り捨て, the usual default). Rounding once, at the end, keeps the customer-facing price on the step
-- and never double-rounds. Rules come from var price_rules; see dbt_project.yml.
{%- set rules = var('price_rules', {}) or {} %}
{%- for channel, rule in rules.items() %}
    {%- set rounding = rule.get('rounding', 'down') %}
    {%- if rounding not in ('up', 'down', 'nearest') %}
        {{ exceptions.raise_compiler_error("var price_rules." ~ channel ~ ".rounding must be up, down or nearest, got " ~ rounding) }}
    {%- endif %}
    {%- if rule.get('rounding_step') is not none and rule.get('rounding_step') | int < 1 %}
        {{ exceptions.raise_compiler_error("var price_rules." ~ channel ~ ".rounding_step must be a whole number >= 1, got " ~ rule.get('rounding_step')) }}
    {%- endif %}
    {%- if rule.get('markup_pct', 0) | float <= -100 %}
        {{ exceptions.raise_compiler_error("var price_rules." ~ channel ~ ".markup_pct must be > -100, got " ~ rule.get('markup_pct')) }}
    {%- endif %}
{%- endfor %}

with listed as (

    select
        channel,
        sku,
        cast(count(*) as bigint)                    as listing_count,
        min(channel_price_jpy)                      as current_channel_price_jpy
    from {{ ref('int_products__channel_listings') }}
    where sku is not null
    group by channel, sku

),

products as (

    select sku, list_price_tax_excl, tax_class, tax_rate
    from {{ ref('stg_erp__products') }}

),

channels as (

    select channel, price_step
    from {{ ref('dim_channel') }}

),

rules as (

    {%- for channel, rule in rules.items() %}
    select
        '{{ channel }}'                                                     as channel,
        cast({{ rule.get('markup_pct', 0) | float }} as decimal(7, 2))      as markup_pct,
        cast({{ rule.get('rounding_step') | int if rule.get('rounding_step') is not none else 'null' }} as bigint)  as rounding_step,
        '{{ rule.get('rounding', 'down') }}'                                as rounding
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as varchar) as channel, cast(null as decimal(7, 2)) as markup_pct,
           cast(null as bigint) as rounding_step, cast(null as varchar) as rounding
    where false
    {%- endfor %}

),

inputs as (

    select
        l.channel,
        l.sku,
        p.list_price_tax_excl,
        p.tax_class,
        cast(p.tax_rate as decimal(4, 2))                                   as tax_rate,
        coalesce(r.markup_pct, cast(0 as decimal(7, 2)))                    as markup_pct,
        cast(coalesce(r.rounding_step, c.price_step, 1) as bigint)          as rounding_step,
        coalesce(r.rounding, 'down')                                        as rounding,
        l.listing_count,
        l.current_channel_price_jpy,
        {{ as_of() }}                                                       as as_of_utc
    from listed as l
    inner join products as p
        on p.sku = l.sku
    left join rules as r
        on r.channel = l.channel
    left join channels as c
        on c.channel = l.channel

),

regular as (

    select
        *,
        cast(list_price_tax_excl as decimal(18, 0))
            * (1 + markup_pct * 0.01)
            * (1 + tax_rate)                                                as regular_price_raw
    from inputs

),

active_sales as (

    select
        s.channel,
        s.sku,
        s.starts_at_utc,
        s.ends_at_utc,
        s.discount_pct,
        r.regular_price_raw * (1 - s.discount_pct * 0.01)                   as sale_price_raw,
        coalesce(
            s.sale_price_tax_incl,
            {{ round_to_step('r.regular_price_raw * (1 - s.discount_pct * 0.01)', 'r.rounding_step', 'r.rounding') }}
        )                                                                   as sale_price_tax_incl
    from {{ ref('price_schedules') }} as s
    inner join regular as r
        on r.channel = s.channel
        and r.sku = s.sku
    where s.starts_at_utc <= r.as_of_utc
      and r.as_of_utc < s.ends_at_utc
    -- several active windows: the one that started last wins; ties go to the lower price
    qualify row_number() over (
        partition by s.channel, s.sku
        order by s.starts_at_utc desc, sale_price_tax_incl asc
    ) = 1

),

priced as (

    select
        r.*,
        {{ round_to_step('r.regular_price_raw', 'r.rounding_step', 'r.rounding') }}  as regular_price_tax_incl,
        cast(s.sale_price_tax_incl as bigint)                               as sale_price_tax_incl,
        s.sale_price_raw,
        s.discount_pct                                                      as sale_discount_pct,
        s.starts_at_utc                                                     as sale_starts_at_utc,
        s.ends_at_utc                                                       as sale_ends_at_utc
    from regular as r
    left join active_sales as s
        on s.channel = r.channel
        and s.sku = r.sku

)

select
    channel,
    sku,
    list_price_tax_excl,
    tax_class,
    tax_rate,
    markup_pct,
    rounding_step,
    rounding,
    regular_price_tax_incl,
    sale_price_tax_incl is not null                                         as is_on_sale,
    sale_price_tax_incl,
    sale_discount_pct,
    sale_starts_at_utc,
    sale_ends_at_utc,
    coalesce(sale_price_tax_incl, regular_price_tax_incl)                   as target_price_tax_incl,
    current_channel_price_jpy,
    coalesce(sale_price_tax_incl, regular_price_tax_incl) - current_channel_price_jpy  as price_change_jpy,
    listing_count,
    as_of_utc,
    -- e.g. 'list 1800 × (1 + 5 %) × (1 + 10 %) = 2079.00 → up to 10 = 2080; sale 20 % off: 1663.20 → up to 10 = 1670'
    'list ' || list_price_tax_excl
        || ' × (1 + ' || {{ short_decimal('markup_pct') }} || ' %)'
        || ' × (1 + ' || {{ short_decimal('tax_rate * 100') }} || ' %)'
        || ' = ' || cast(round(regular_price_raw, 2) as decimal(18, 2))
        || ' → ' || rounding || ' to ' || rounding_step
        || ' = ' || regular_price_tax_incl
        || case
            when sale_price_tax_incl is null then ''
            when sale_discount_pct is not null then
                '; sale ' || {{ short_decimal('sale_discount_pct') }} || ' % off: '
                || cast(round(sale_price_raw, 2) as decimal(18, 2))
                || ' → ' || rounding || ' to ' || rounding_step || ' = ' || sale_price_tax_incl
            else '; sale price ' || sale_price_tax_incl
           end
        || case when sale_price_tax_incl is not null
            then ' (until ' || strftime(sale_ends_at_utc at time zone 'UTC', '%Y-%m-%d %H:%M') || ' UTC)'
            else '' end                                                     as explain
from priced
