-- One row per channel order line, every channel in one shape, with the line's product resolved to the
-- ERP SKU: through the channel listing it was sold from (variant), else the line's seller SKU when it is an
-- ERP SKU. A line that matches neither keeps erp_sku null (it reserves no ERP stock).
--
-- A view over the staging tables (DECISIONS.md D191): its readers (fct_order_lines, open reservations, its
-- tests, the ERP intake) each scan the four staging line tables and join the small listing tables, which costs
-- less than writing 10M lines a second time into the warehouse file. It reads tables of the warehouse only, so
-- the published serving copy answers it by itself.
{{ config(materialized='view') }}
-- Both lookups are grouped on their join keys (one row per key already: listing_key and the ERP sku are tested
-- unique upstream, and a failed test stops the build before this view is read). A left join to a grouped key
-- adds no rows, so DuckDB leaves it out of every query that reads no erp_sku: the tests on the keys scan the
-- staging lines alone.
with listings as (

    select channel, listing_id, any_value(sku) as sku
    from {{ ref('int_products__channel_listings') }}
    group by channel, listing_id

),

erp_skus as (

    select sku from {{ ref('stg_erp__products') }} group by sku

),

shopify_lines as (

    select
        'shopify'                   as channel,
        l.line_item_id              as line_id,
        l.order_id                  as order_id,
        l.line_number               as line_number,
        l.sku                       as channel_sku,
        l.variant_id                as listing_id,
        l.quantity                  as quantity,
        l.current_quantity          as current_quantity,
        l.unit_price_jpy            as unit_price_jpy,
        l.line_total_jpy            as line_total_jpy
    from {{ ref('stg_shopify__order_lines') }} as l

),

amazon_lines as (

    select
        'amazon'                    as channel,
        l.line_id                   as line_id,
        l.order_id                  as order_id,
        l.line_number               as line_number,
        l.seller_sku                as channel_sku,
        l.seller_sku                as listing_id,
        l.quantity                  as quantity,
        l.current_quantity          as current_quantity,
        l.unit_price_jpy            as unit_price_jpy,
        l.line_total_jpy            as line_total_jpy
    from {{ ref('stg_amazon__order_lines') }} as l

),

rakuten_lines as (

    select
        'rakuten'                   as channel,
        l.line_id                   as line_id,
        l.order_id                  as order_id,
        l.line_number               as line_number,
        l.sku                       as channel_sku,
        l.listing_id                as listing_id,
        l.quantity                  as quantity,
        l.current_quantity          as current_quantity,
        l.unit_price_jpy            as unit_price_jpy,
        l.line_total_jpy            as line_total_jpy
    from {{ ref('stg_rakuten__order_lines') }} as l

),

yahoo_lines as (

    select
        'yahoo'                     as channel,
        l.line_id                   as line_id,
        l.order_id                  as order_id,
        l.line_number               as line_number,
        l.sub_code                  as channel_sku,
        l.listing_code              as listing_id,
        l.quantity                  as quantity,
        l.current_quantity          as current_quantity,
        l.unit_price_jpy            as unit_price_jpy,
        l.line_total_jpy            as line_total_jpy
    from {{ ref('stg_yahoo__order_lines') }} as l

),

unioned as (

    select * from shopify_lines
    union all
    select * from yahoo_lines
    union all
    select * from rakuten_lines
    union all
    select * from amazon_lines
    -- other channels' lines are unioned here as they are landed

)

select
    u.channel || ':' || u.line_id                           as order_line_key,
    u.channel || ':' || u.order_id                          as order_key,
    u.channel,
    u.line_id,
    u.order_id,
    u.line_number,
    u.channel_sku,
    coalesce(li.sku, e.sku)                                 as erp_sku,
    u.quantity,
    u.current_quantity,
    u.unit_price_jpy,
    u.line_total_jpy
from unioned as u
left join listings as li
    on li.channel = u.channel
    and li.listing_id = u.listing_id
left join erp_skus as e
    on e.sku = u.channel_sku
