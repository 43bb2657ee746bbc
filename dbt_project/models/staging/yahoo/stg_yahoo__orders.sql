-- One row per Yahoo!ショッピング order: the latest version landed (highest Version, then fetch time).
-- Money is already integer JPY (tax included); timestamps UTC; text NFKC. Status codes as Yahoo sends them.
{{ config(zstd_columns=['order_id']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version(), once for the buyers

    select * from {{ source_or_empty('yahoo', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'], 'version', columns='* exclude (_raw, items)') }}

),

{%- set buyer_inputs = ['bill_last_name', 'bill_first_name', 'bill_last_name_kana', 'bill_first_name_kana',
                        'bill_mail_address', 'bill_phone_number', 'bill_zip_code', 'bill_prefecture', 'bill_city',
                        'bill_address1', 'bill_address2'] %}

{#- each buyer column of the shared contract and the landed text it is normalised from -#}
{%- set buyer_columns = {
    'buyer_name': "nullif(concat_ws(' ', bill_last_name, bill_first_name), '')",
    'buyer_name_kana': "nullif(concat_ws(' ', bill_last_name_kana, bill_first_name_kana), '')",
    'buyer_email': 'bill_mail_address',
    'buyer_phone': 'bill_phone_number',
    'buyer_postal_code': 'bill_zip_code',
    'buyer_prefecture': 'bill_prefecture',
    'buyer_city': 'bill_city',
    'buyer_address1': 'bill_address1',
    'buyer_address2': 'bill_address2',
} %}

-- The buyer's text normalised once per distinct buyer (DECISIONS.md D227).
buyers as (

    {{ nfkc_per_distinct('source', buyer_inputs, buyer_columns) }}

)

select
    cast(order_id as varchar)                                       as order_id,
    cast(version as bigint)                                         as version,
    cast(order_time as timestamptz)                                 as created_at,
    cast(last_update_time as timestamptz)                           as updated_at,
    {{ jst_date('cast(order_time as timestamptz)') }}               as created_date_jst,
    cast(order_status as varchar)                                   as order_status,
    cast(pay_status as varchar)                                     as pay_status,
    cast(ship_status as varchar)                                    as ship_status,
    order_status = 4                                                as is_cancelled,
    cast(total_price as bigint)                                     as total_jpy,
    cast(ship_charge as bigint)                                     as shipping_jpy,
    cast(discount as bigint)                                        as discounts_jpy,
    cast(use_point as bigint)                                       as points_jpy,
    cast(settle_amount as bigint)                                   as settle_amount_jpy,
    cast(pay_method as varchar)                                     as payment_method,
    {{ nfkc('pay_method_name') }}                                   as payment_method_name,
    cast(pay_date as timestamptz)                                   as paid_at,
    cast(ship_date as timestamptz)                                  as shipped_at,
    cast(ship_complete_date as timestamptz)                         as delivered_at,
    cast(cancel_date as timestamptz)                                as cancelled_at,
    {{ nfkc('ship_invoice_number1') }}                              as tracking_number,
    {%- for column in buyer_columns %}
    b.{{ column }},
    {%- endfor %}
    cast(_batch_id as varchar)                                      as _batch_id,
    cast(_fetched_at as timestamptz)                                as _fetched_at

from latest
left join buyers as b
    on {{ per_distinct_match('b', 'latest', buyer_inputs) }}
