-- One row per Amazon order: the latest version landed. Money: decimal strings -> integer JPY (tax-inclusive);
-- timestamps UTC; text NFKC. The buyer columns follow the shared contract (buyer_* from buyer and the
-- delivery address; Amazon has no kana and relays e-mail through a masked address).
with source as not materialized (  -- read three times by latest_version()

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
    {{ nfkc('buyer_name') }}                                            as buyer_name,
    cast(null as varchar)                                               as buyer_name_kana,
    {{ nfkc('buyer_email') }}                                           as buyer_email,
    {{ nfkc('recipient_phone') }}                                       as buyer_phone,
    {{ nfkc('recipient_postal_code') }}                                 as buyer_postal_code,
    {{ nfkc('recipient_state_or_region') }}                             as buyer_prefecture,
    {{ nfkc('recipient_city') }}                                        as buyer_city,
    {{ nfkc('recipient_address_line1') }}                               as buyer_address1,
    {{ nfkc('recipient_address_line2') }}                               as buyer_address2,
    cast(_batch_id as varchar)                                          as _batch_id,
    cast(_fetched_at as timestamptz)                                    as _fetched_at

from latest
