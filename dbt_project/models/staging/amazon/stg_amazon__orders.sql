-- One row per Amazon order: the latest version landed. Money: decimal strings -> integer JPY (tax-inclusive);
-- timestamps UTC; text NFKC. The buyer columns follow the shared contract (buyer_* from buyer and the
-- delivery address; Amazon has no kana and relays e-mail through a masked address).
{{ config(zstd_columns=['order_id']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version(), once for the buyers

    select * from {{ source_or_empty('amazon', 'orders') }}

),

latest as (

    -- The package status is a landed column (D154). Batches landed before it was one lack it; then it is read
    -- from _raw, before the window, so the sort carries a short string instead of every order's JSON text
    -- (D72) — reading _raw at all is most of this model's time at 10M order lines.
    {%- if every_landed_file_has('amazon', 'orders', 'package_status') %}
    {%- set kept = "* exclude (order_items, _raw)" %}
    {%- else %}
    {%- set kept = "columns(lambda c: c not in ('order_items', '_raw', 'package_status')),
        json_extract_string(_raw, '$.packages[0].packageStatus.status') as package_status" %}
    {%- endif %}
    {{ latest_version('source', ['order_id'], columns=kept) }}

),

{%- set buyer_inputs = ['buyer_name', 'buyer_email', 'recipient_phone', 'recipient_postal_code',
                        'recipient_state_or_region', 'recipient_city', 'recipient_address_line1',
                        'recipient_address_line2'] %}

{#- each buyer column of the shared contract and the landed text it is normalised from (Amazon sends no kana) -#}
{%- set buyer_columns = {
    'buyer_name': 'buyer_name',
    'buyer_name_kana': 'cast(null as varchar)',
    'buyer_email': 'buyer_email',
    'buyer_phone': 'recipient_phone',
    'buyer_postal_code': 'recipient_postal_code',
    'buyer_prefecture': 'recipient_state_or_region',
    'buyer_city': 'recipient_city',
    'buyer_address1': 'recipient_address_line1',
    'buyer_address2': 'recipient_address_line2',
} %}

-- The buyer's text normalised once per distinct buyer (DECISIONS.md D227).
buyers as (

    {{ nfkc_per_distinct('source', buyer_inputs, buyer_columns) }}

)

select
    cast(order_id as varchar)                                           as order_id,
    cast(created_at as timestamptz)                                     as created_at,
    cast(updated_at as timestamptz)                                     as updated_at,
    {{ jst_date('cast(created_at as timestamptz)') }}                   as created_date_jst,
    cast(fulfillment_status as varchar)                                 as fulfillment_status,
    cast(package_status as varchar)                                     as package_status,
    fulfillment_status = 'CANCELLED'                                    as is_cancelled,
    cast(fulfilled_by as varchar)                                       as fulfilled_by,
    cast(marketplace_id as varchar)                                     as marketplace_id,
    cast(currency_code as varchar)                                      as currency_code,
    {{ jpy_from_decimal_string('grand_total') }}                        as total_jpy,
    {{ jpy_from_decimal_string('item_total') }}                         as items_jpy,
    coalesce({{ jpy_from_decimal_string('shipping_total') }}, 0)        as shipping_jpy,
    coalesce(-{{ jpy_from_decimal_string('discount_total') }}, 0)       as discounts_jpy,
    cast(payment_method as varchar)                                     as payment_method,
    {%- for column in buyer_columns %}
    b.{{ column }},
    {%- endfor %}
    cast(_batch_id as varchar)                                          as _batch_id,
    cast(_fetched_at as timestamptz)                                    as _fetched_at

from latest
left join buyers as b
    on {{ per_distinct_match('b', 'latest', buyer_inputs) }}
