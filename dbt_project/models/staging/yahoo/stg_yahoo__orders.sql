-- One row per Yahoo!ショッピング order: the latest version landed (highest Version, then fetch time).
-- Money is already integer JPY (tax included); timestamps UTC; text NFKC. Status codes as Yahoo sends them.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('yahoo', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_id'], 'version', columns='* exclude (_raw, items)') }}

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
    {{ nfkc("nullif(concat_ws(' ', bill_last_name, bill_first_name), '')") }}           as buyer_name,
    {{ nfkc("nullif(concat_ws(' ', bill_last_name_kana, bill_first_name_kana), '')") }} as buyer_name_kana,
    {{ nfkc('bill_mail_address') }}                                 as buyer_email,
    {{ nfkc('bill_phone_number') }}                                 as buyer_phone,
    {{ nfkc('bill_zip_code') }}                                     as buyer_postal_code,
    {{ nfkc('bill_prefecture') }}                                   as buyer_prefecture,
    {{ nfkc('bill_city') }}                                         as buyer_city,
    {{ nfkc('bill_address1') }}                                     as buyer_address1,
    {{ nfkc('bill_address2') }}                                     as buyer_address2,
    cast(_batch_id as varchar)                                      as _batch_id,
    cast(_fetched_at as timestamptz)                                as _fetched_at

from latest
