-- One row per identity record: everything that says "a person (or account) bought or registered here",
-- from every customer-ish source, in one shape, with the three matching keys (macros/identity.sql):
--   email_key     NFKC + lower; the marketplaces' masked relay addresses are no key
--   phone_key     digits, +81 → 0, 10–11 digits
--   kana_zip_key  katakana reading without spaces || '|' || 7-digit postal code (both needed)
-- member_key = '<slug>:<the source's own id>' names the record; several rows may share one (a Shopify
-- customer and the details on its orders) and resolve together. Orders are not records one by one: a record
-- stands for every order with the same buyer details (order_count of them, D233); int_customers__order_links
-- finds each order's record again. The source's own id is member_key's part after the slug (D230).
-- source_priority orders the sources for survivorship in dim_customer (1 = most trusted: the ERP master).
--
-- Adding a source of accounts or members = one CTE selecting these columns + one `union all` line below; a
-- channel's orders = one block in macros/customer_order_records.sql.
with erp_accounts as not materialized (

    select
        'erp:' || customer_code                         as member_key,
        'erp'                                           as source,
        'account'                                       as record_kind,
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
        'shopify:' || customer_id, 'shopify', 'customer',
        full_name, name_kana, email, phone, postal_code, prefecture, address1,
        false, cast(null as varchar), 2, updated_at
    from {{ ref('stg_shopify__customers') }}

),

pos_members as not materialized (

    select
        'pos:' || member_id, 'pos', 'member',
        name, name_kana, email, phone, postal_code, cast(null as varchar), cast(null as varchar),
        false, cast(null as varchar), 3, _fetched_at
    from {{ ref('stg_pos__members') }}

),

-- Every order that names its buyer (macros/customer_order_records.sql), grouped by its set of details: a buyer
-- repeats the same name, kana, e-mail, phone and address on each order, and records with the same details always
-- resolve together, so one record per set stands for all of them (DECISIONS.md D233). It is named by its owner
-- (a Shopify customer) or else by the smallest of its order keys, the key the first of those orders had as a
-- record of its own: the smallest member_key of every component, and so every unified_customer_id, is the same
-- as with one record per order. A guest or marketplace order whose details give no matching key merges with
-- nothing, so such orders stay one record each (order_details_without_keys below).
order_records as not materialized (

    {{ customer_order_records() }}

),

order_details as materialized (  -- small: one row per set of details

    select
        owner_key,
        {{ customer_order_detail_columns() | join(', ') }},
        -- names the record of guest and marketplace orders; a Shopify customer's orders are named by it
        case when owner_key is null then min(order_key) end  as first_order_key,
        count(*)                                        as order_count,
        max(updated_at)                                 as updated_at
    from order_records
    group by owner_key, {{ customer_order_detail_columns() | join(', ') }}

),

order_details_records as not materialized (

    select
        coalesce(owner_key, first_order_key)            as member_key,
        source,
        'order'                                         as record_kind,
        full_name, name_kana, email, phone, postal_code, prefecture, address1,
        false                                           as is_b2b,
        cast(null as varchar)                           as erp_rank,
        4                                               as source_priority,
        updated_at,
        order_count,
        first_order_key
    from order_details

),

unioned as not materialized (

    select *, cast(null as bigint) as order_count, cast(null as varchar) as first_order_key
    from erp_accounts
    union all select *, null, null from shopify_customers
    union all select *, null, null from pos_members
    union all select * from order_details_records

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

),

keyed_records as materialized (  -- read twice below

    select
        u.*,
        k.email_key,
        k.phone_key,
        k.kana_zip_key
    from unioned as u
    left join keyed as k
        on  k.email is not distinct from u.email
        and k.phone is not distinct from u.phone
        and k.name_kana is not distinct from u.name_kana
        and k.postal_code is not distinct from u.postal_code

),

-- Guest and marketplace orders that share details with no matching key: each order is a record of its own again.
order_details_without_keys as (

    select *
    from keyed_records
    where first_order_key is not null and order_count > 1
        and email_key is null and phone_key is null and kana_zip_key is null

)

select
    member_key, source, record_kind, full_name, name_kana, email, phone, postal_code, prefecture, address1,
    is_b2b, erp_rank, source_priority, updated_at, order_count, first_order_key, email_key, phone_key, kana_zip_key
from keyed_records
anti join order_details_without_keys using (member_key)

union all

select
    o.order_key, d.source, d.record_kind, d.full_name, d.name_kana, d.email, d.phone, d.postal_code, d.prefecture,
    d.address1, d.is_b2b, d.erp_rank, d.source_priority, o.updated_at, 1, o.order_key, d.email_key, d.phone_key,
    d.kana_zip_key
from order_details_without_keys as d
inner join order_records as o
    on o.owner_key is null
    and {{ null_safe_match('o', 'd', customer_order_detail_columns()) }}
