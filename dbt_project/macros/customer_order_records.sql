{#- customer_order_records(): every channel order that names its buyer, one row each, in the shape of the
    identity records (int_customers__identities) plus the order's own key:
      order_key   '<slug>:<order id>'
      owner_key   the member the order belongs to when the channel says so (a Shopify order of a customer:
                  'shopify:<customer id>'); null for a guest order and for every marketplace order (the malls
                  give no customer id we could trust across orders; Rakuten and Amazon relay e-mail addresses
                  are no key), which are named by their orders and merged by their keys.
    Shared by the identity records (which keep one record per distinct set of buyer details) and the order links
    (which find each order's record again), so both read the orders the same way (DECISIONS.md D233).
    Adding a channel = one `union all` block here. -#}
{% macro customer_order_records() -%}
    select
        'shopify:' || order_id                          as order_key,
        'shopify:' || customer_id                       as owner_key,
        'shopify'                                       as source,
        cast(null as varchar)                           as full_name,
        cast(null as varchar)                           as name_kana,
        email,
        cast(null as varchar)                           as phone,
        cast(null as varchar)                           as postal_code,
        cast(null as varchar)                           as prefecture,
        cast(null as varchar)                           as address1,
        updated_at
    from {{ ref('stg_shopify__orders') }}
    {%- for slug in ['rakuten', 'amazon', 'yahoo'] %}
    union all
    select
        '{{ slug }}:' || order_id, cast(null as varchar), '{{ slug }}',
        buyer_name, buyer_name_kana, buyer_email, buyer_phone, buyer_postal_code, buyer_prefecture, buyer_address1,
        updated_at
    from {{ ref('stg_' ~ slug ~ '__orders') }}
    {%- endfor %}
{%- endmacro %}


{#- The columns that tell one order's buyer details from another's: an order's identity record is the one with the
    same values in all of them (`null_safe_match`, NULL matching NULL). -#}
{% macro customer_order_detail_columns() -%}
    {{ return(['source', 'full_name', 'name_kana', 'email', 'phone', 'postal_code', 'prefecture', 'address1']) }}
{%- endmacro %}
