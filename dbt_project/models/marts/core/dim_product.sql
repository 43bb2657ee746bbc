-- One row per ERP SKU (the product master), with where it is listed. Per-channel flags and references are
-- pivoted from int_products__channel_listings (matched listings only). A SKU listed by several variants of one
-- channel keeps the lowest listing id as its reference and counts them in <channel>_listing_count.
-- is_bundle: the ERP bundle master (int_products__bundle_components) defines the SKU as a bundle.
{%- set listing_channels = ['shopify'] %}
with products as (

    select * from {{ ref('stg_erp__products') }}

),

listings as (

    select channel, sku, listing_id, inventory_item_id
    from {{ ref('int_products__channel_listings') }}
    where sku is not null

),

per_channel as (

    select
        sku,
        {%- for channel in listing_channels %}
        cast(count(*) filter (where channel = '{{ channel }}') as bigint)          as {{ channel }}_listing_count,
        min(listing_id) filter (where channel = '{{ channel }}')                    as {{ channel }}_listing_id,
        arg_min(inventory_item_id, listing_id) filter (where channel = '{{ channel }}') as {{ channel }}_inventory_item_id,
        {%- endfor %}
        cast(count(distinct channel) as bigint)                                     as listed_channel_count
    from listings
    group by sku

),

bundles as (

    select bundle_sku, cast(count(*) as bigint) as component_count
    from {{ ref('int_products__bundle_components') }}
    group by bundle_sku

)

select
    p.sku,
    p.jan,
    p.is_valid_jan,
    p.name,
    p.name_kana,
    p.category,
    p.size,
    p.color,
    p.tax_class,
    p.tax_rate,
    p.list_price_tax_excl,
    p.list_price_tax_incl,
    p.safety_stock,
    {%- for channel in listing_channels %}
    coalesce(l.{{ channel }}_listing_count, 0) > 0                 as listed_on_{{ channel }},
    coalesce(l.{{ channel }}_listing_count, 0)                     as {{ channel }}_listing_count,
    l.{{ channel }}_listing_id                                     as {{ channel }}_variant_id,
    l.{{ channel }}_inventory_item_id                              as {{ channel }}_inventory_item_id,
    {%- endfor %}
    coalesce(l.listed_channel_count, 0)                            as listed_channel_count,
    b.bundle_sku is not null                                       as is_bundle,
    coalesce(b.component_count, 0)                                 as bundle_component_count,
    p.updated_at                                                   as updated_at_utc
from products as p
left join per_channel as l
    on l.sku = p.sku
left join bundles as b
    on b.bundle_sku = p.sku
