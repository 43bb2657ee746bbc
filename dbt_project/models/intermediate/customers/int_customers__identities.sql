-- One row per identity record: everything that says "a person (or account) bought or registered here",
-- from every customer-ish source, in one shape, with the three matching keys (macros/identity.sql):
--   email_key     NFKC + lower; the marketplaces' masked relay addresses are no key
--   phone_key     digits, +81 → 0, 10–11 digits
--   kana_zip_key  katakana reading without spaces || '|' || 7-digit postal code (both needed)
-- member_key = '<slug>:<the source's own id>' names the record; several rows may share one (a Shopify
-- customer and each of its orders) and resolve together. order_key links order-derived rows to their order.
-- The source's own id is not a column of its own: it is member_key's (or, for an order, order_key's) part after
-- the slug; a third copy of 6.6M ids had no reader (DECISIONS.md D230).
-- source_priority orders the sources for survivorship in dim_customer (1 = most trusted: the ERP master).
--
-- Adding a source = one CTE selecting these columns + one `union all` line below (e.g. rakuten buyers:
--   select 'rakuten:' || order_id, 'rakuten', 'order', 'rakuten:' || order_id, buyer_name,
--          buyer_name_kana, buyer_email, buyer_phone, buyer_postal_code, buyer_prefecture, buyer_address1,
--          false, null, 4, updated_at from ref('stg_rakuten__orders')).
-- The sources and their union are read twice (the distinct key inputs, the rows): `not materialized` scans the
-- staging tables twice instead of holding 6.6M wide rows in memory (3 GB and a spill → 0.8 GB at 10M lines, D194).
with erp_accounts as not materialized (

    select
        'erp:' || customer_code                         as member_key,
        'erp'                                           as source,
        'account'                                       as record_kind,
        cast(null as varchar)                           as order_key,
        coalesce(company_name, contact_name)            as full_name,
        coalesce(contact_name_kana, company_name_kana)  as name_kana,
        email,
        phone,
        postal_code,
        prefecture,
        address1,
        true                                            as is_b2b,
        erp_rank,
        1                                               as source_priority,
        updated_at
    from {{ ref('stg_erp__customers') }}

),

shopify_customers as not materialized (

    select
        'shopify:' || customer_id, 'shopify', 'customer', cast(null as varchar),
        full_name, name_kana, email, phone, postal_code, prefecture, address1,
        false, cast(null as varchar), 2, updated_at
    from {{ ref('stg_shopify__customers') }}

),

pos_members as not materialized (

    select
        'pos:' || member_id, 'pos', 'member', cast(null as varchar),
        name, name_kana, email, phone, postal_code, cast(null as varchar), cast(null as varchar),
        false, cast(null as varchar), 3, _fetched_at
    from {{ ref('stg_pos__members') }}

),

-- Shopify orders: an order with a customer belongs to that customer's record (its e-mail may add a key);
-- a guest order is its own record, matched by its e-mail.
shopify_orders as not materialized (

    select
        'shopify:' || coalesce(customer_id, order_id), 'shopify', 'order', 'shopify:' || order_id,
        cast(null as varchar), cast(null as varchar), email, cast(null as varchar), cast(null as varchar),
        cast(null as varchar), cast(null as varchar),
        false, cast(null as varchar), 4, updated_at
    from {{ ref('stg_shopify__orders') }}

),

-- Marketplace buyers: each order is its own record (the malls give no customer id we could trust across
-- orders; Rakuten and Amazon relay e-mail addresses are no key), merged by phone and kana + postal code.
rakuten_buyers as not materialized (

    select
        'rakuten:' || order_id, 'rakuten', 'order', 'rakuten:' || order_id,
        buyer_name, buyer_name_kana, buyer_email, buyer_phone, buyer_postal_code, buyer_prefecture, buyer_address1,
        false, cast(null as varchar), 4, updated_at
    from {{ ref('stg_rakuten__orders') }}

),

amazon_buyers as not materialized (

    select
        'amazon:' || order_id, 'amazon', 'order', 'amazon:' || order_id,
        buyer_name, buyer_name_kana, buyer_email, buyer_phone, buyer_postal_code, buyer_prefecture, buyer_address1,
        false, cast(null as varchar), 4, updated_at
    from {{ ref('stg_amazon__orders') }}

),

yahoo_buyers as not materialized (

    select
        'yahoo:' || order_id, 'yahoo', 'order', 'yahoo:' || order_id,
        buyer_name, buyer_name_kana, buyer_email, buyer_phone, buyer_postal_code, buyer_prefecture, buyer_address1,
        false, cast(null as varchar), 4, updated_at
    from {{ ref('stg_yahoo__orders') }}

),

unioned as not materialized (

    select * from erp_accounts
    union all select * from shopify_customers
    union all select * from pos_members
    union all select * from shopify_orders
    union all select * from rakuten_buyers
    union all select * from amazon_buyers
    union all select * from yahoo_buyers

),

-- The matching keys are functions of four raw values only. Computed once per distinct combination (a few per
-- buyer) and joined back, the string work scales with buyers, not with orders (DECISIONS.md D150).
key_inputs as (

    select distinct email, phone, name_kana, postal_code from unioned

),

normalised as (

    select
        email,
        phone,
        name_kana,
        postal_code,
        {{ nfkc('email') }}                                                 as email_text,
        {{ nfkc('phone') }}                                                 as phone_text,
        {{ nfkc('name_kana') }}                                             as name_kana_text,
        {{ nfkc('postal_code') }}                                           as postal_code_text
    from key_inputs

),

keyed as (

    select
        email,
        phone,
        name_kana,
        postal_code,
        {{ email_key('email_text', normalised=true) }}                      as email_key,
        {{ phone_key('phone_text', normalised=true) }}                      as phone_key,
        {{ kana_name('name_kana_text', normalised=true) }} || '|'
            || {{ postal_code_digits('postal_code_text', normalised=true) }}  as kana_zip_key
    from normalised

)

select
    u.member_key,
    u.source,
    u.record_kind,
    u.order_key,
    u.full_name,
    u.name_kana,
    u.email,
    u.phone,
    u.postal_code,
    u.prefecture,
    u.address1,
    u.is_b2b,
    u.erp_rank,
    u.source_priority,
    u.updated_at,
    k.email_key,
    k.phone_key,
    k.kana_zip_key
from unioned as u
left join keyed as k
    on  k.email is not distinct from u.email
    and k.phone is not distinct from u.phone
    and k.name_kana is not distinct from u.name_kana
    and k.postal_code is not distinct from u.postal_code
