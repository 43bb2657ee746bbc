-- One row per channel listing (a Shopify product variant), matched to the ERP product it sells:
--   1. by seller SKU: the listing's SKU equals an ERP SKU (the normal case), else
--   2. by JAN: the listing's barcode is a valid JAN that exactly one ERP product carries.
-- Unmatched listings stay here with sku null (shown, never guessed); they get no stock target.
with erp_products as (

    select sku, jan from {{ ref('stg_erp__products') }}

),

unique_jans as (

    select jan, min(sku) as sku
    from erp_products
    where jan is not null
    group by jan
    having count(*) = 1

),

shopify_listings as (

    select
        'shopify'               as channel,
        v.variant_id            as listing_id,
        v.sku                   as channel_sku,
        v.barcode               as channel_barcode,
        v.is_valid_jan          as channel_barcode_is_valid_jan,
        v.inventory_item_id     as inventory_item_id,
        v.price_jpy             as channel_price_jpy,
        by_sku.sku              as sku_by_seller_sku,
        by_jan.sku              as sku_by_jan
    from {{ ref('stg_shopify__product_variants') }} as v
    left join erp_products as by_sku
        on by_sku.sku = v.sku
    left join unique_jans as by_jan
        on v.is_valid_jan
        and by_jan.jan = v.barcode

),

amazon_listings as (

    -- Amazon seller SKUs are matched upper-cased (the ERP's SKUs are), then by JAN
    select
        'amazon'                        as channel,
        l.sku                           as listing_id,
        l.sku                           as channel_sku,
        l.jan                           as channel_barcode,
        l.is_valid_jan                  as channel_barcode_is_valid_jan,
        cast(null as varchar)           as inventory_item_id,
        l.price_jpy                     as channel_price_jpy,
        by_sku.sku                      as sku_by_seller_sku,
        by_jan.sku                      as sku_by_jan
    from {{ ref('stg_amazon__listings') }} as l
    left join erp_products as by_sku
        on by_sku.sku = upper(l.sku)
    left join unique_jans as by_jan
        on l.is_valid_jan
        and by_jan.jan = l.jan

),

rakuten_listings as (

    -- merchantDefinedSkuId upper-cased (Rakuten shops often key lower-case codes), then the JAN
    select
        'rakuten'               as channel,
        r.listing_id            as listing_id,
        r.sku                   as channel_sku,
        r.jan                   as channel_barcode,
        r.is_valid_jan          as channel_barcode_is_valid_jan,
        cast(null as varchar)   as inventory_item_id,
        r.price_jpy             as channel_price_jpy,
        by_sku.sku              as sku_by_seller_sku,
        by_jan.sku              as sku_by_jan
    from {{ ref('stg_rakuten__listings') }} as r
    left join erp_products as by_sku
        on by_sku.sku = upper(r.sku)
    left join unique_jans as by_jan
        on r.is_valid_jan
        and by_jan.jan = r.jan

),

yahoo_listings as (

    -- Yahoo keeps the shop's SKU in the sub code, lower-cased by many stores: matched upper-cased.
    select
        'yahoo'                 as channel,
        y.listing_code          as listing_id,
        y.seller_sku            as channel_sku,
        y.jan                   as channel_barcode,
        y.is_valid_jan          as channel_barcode_is_valid_jan,
        cast(null as varchar)   as inventory_item_id,
        y.price_jpy             as channel_price_jpy,
        by_sku.sku              as sku_by_seller_sku,
        by_jan.sku              as sku_by_jan
    from {{ ref('stg_yahoo__listings') }} as y
    left join erp_products as by_sku
        on by_sku.sku = upper(y.seller_sku)
    left join unique_jans as by_jan
        on y.is_valid_jan
        and by_jan.jan = y.jan

),

unioned as (

    select * from shopify_listings
    union all
    select * from yahoo_listings
    union all
    select * from rakuten_listings
    union all
    select * from amazon_listings
    -- other channels' listings are unioned here as they are landed

)

select
    channel || ':' || listing_id                            as listing_key,
    channel,
    listing_id,
    channel_sku,
    channel_barcode,
    inventory_item_id,
    channel_price_jpy,
    coalesce(sku_by_seller_sku, sku_by_jan)                 as sku,
    case
        when sku_by_seller_sku is not null then 'seller_sku'
        when sku_by_jan is not null then 'jan'
    end                                                     as match_method
from unioned
