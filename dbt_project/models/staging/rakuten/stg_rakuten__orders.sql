-- One row per Rakuten order: the latest version landed. Money is integer JPY already (RMS sends integers);
-- timestamps UTC; text NFKC. Status codes as RMS sends them, plus two derived codes the status map reads:
-- payment_status_code (PAID / UNPAID for prepaid methods without a payment date / DEFERRED: card
-- authorisation or 代引) and return_code (RETURN when a change reason says 返品).
{{ config(zstd_columns=['order_id']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version(), once for the buyers

    select * from {{ source_or_empty('rakuten', 'orders') }}

),

latest as (

    {{ latest_version('source', ['order_number'], 'update_datetime', columns='* exclude (_raw, items)') }}

),

{%- set buyer_inputs = ['orderer_family_name', 'orderer_first_name', 'orderer_family_name_kana',
                        'orderer_first_name_kana', 'orderer_email_address', 'orderer_phone_number',
                        'orderer_zip_code', 'orderer_prefecture', 'orderer_city', 'orderer_sub_address'] %}

{#- each buyer column of the shared contract and the landed text it is normalised from -#}
{%- set buyer_columns = {
    'buyer_name': "concat_ws(' ', orderer_family_name, orderer_first_name)",
    'buyer_name_kana': "concat_ws(' ', orderer_family_name_kana, orderer_first_name_kana)",
    'buyer_email': 'orderer_email_address',
    'buyer_phone': 'orderer_phone_number',
    'buyer_postal_code': 'orderer_zip_code',
    'buyer_prefecture': 'orderer_prefecture',
    'buyer_address1': "concat_ws('', orderer_city, orderer_sub_address)",
} %}

-- The buyer's text normalised once per distinct buyer (DECISIONS.md D227).
buyers as (

    {{ nfkc_per_distinct('source', buyer_inputs, buyer_columns) }}

)

select
    cast(order_number as varchar)                               as order_id,
    cast(order_datetime as timestamptz)                         as created_at,
    cast(update_datetime as timestamptz)                        as updated_at,
    {{ jst_date('cast(order_datetime as timestamptz)') }}       as created_date_jst,
    cast(order_progress as varchar)                             as status_code,
    case
        when payment_date is not null then 'PAID'
        when settlement_method in ('銀行振込', 'コンビニ決済') then 'UNPAID'
        else 'DEFERRED'
    end                                                         as payment_status_code,
    case when list_has_any(change_reason_details, [2, 15]) then 'RETURN' end  as return_code,
    cast(order_progress as bigint) in (800, 900)                as is_cancelled,
    {{ nfkc('settlement_method') }}                             as payment_method,
    cast(payment_date as varchar)                               as payment_date_jst,
    cast(total_price as bigint) - coalesce(cast(coupon_all_total_price as bigint), 0)  as total_jpy,
    cast(goods_price as bigint)                                 as goods_jpy,
    cast(postage_price as bigint)                               as shipping_jpy,
    coalesce(cast(coupon_all_total_price as bigint), 0)         as discounts_jpy,
    coalesce(cast(used_point as bigint), 0)                     as points_jpy,
    cast(request_price as bigint)                               as request_jpy,
    {%- for column in buyer_columns %}
    b.{{ column }},
    {%- endfor %}
    cast(_batch_id as varchar)                                  as _batch_id,
    cast(_fetched_at as timestamptz)                            as _fetched_at
from latest
left join buyers as b
    on {{ per_distinct_match('b', 'latest', buyer_inputs) }}
