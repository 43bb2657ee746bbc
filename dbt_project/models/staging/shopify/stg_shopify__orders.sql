-- One row per Shopify order: the latest version landed (the ingest look-back re-lands recent orders).
-- Money: decimal strings -> integer JPY. Timestamps stay UTC (timestamptz); JST dates derived.
{{ config(zstd_columns=['order_id', 'order_name']) }}  {#- ids: one value per row (D236) #}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('shopify', 'orders') }}

),

latest as (

    -- _raw and line_items stay behind: the window sort then carries only narrow columns
    {{ latest_version('source', ['order_id'], columns='* exclude (_raw, line_items)') }}

)

select
    cast(order_id as varchar)                                   as order_id,
    {{ nfkc('order_name') }}                                    as order_name,
    cast(created_at as timestamptz)                             as created_at,
    cast(processed_at as timestamptz)                           as processed_at,
    cast(updated_at as timestamptz)                             as updated_at,
    cast(cancelled_at as timestamptz)                           as cancelled_at,
    cancelled_at is not null                                    as is_cancelled,
    {{ jst_date('cast(created_at as timestamptz)') }}           as created_date_jst,
    cast(display_financial_status as varchar)                   as financial_status,
    cast(display_fulfillment_status as varchar)                 as fulfillment_status,
    cast(currency_code as varchar)                              as currency_code,
    {{ jpy_from_decimal_string('total_price') }}                as total_jpy,
    {{ jpy_from_decimal_string('subtotal_price') }}             as subtotal_jpy,
    {{ jpy_from_decimal_string('total_shipping_price') }}       as shipping_jpy,
    {{ jpy_from_decimal_string('total_discounts') }}            as discounts_jpy,
    {{ jpy_from_decimal_string('total_tax') }}                  as tax_jpy,
    cast(customer_id as varchar)                                as customer_id,
    lower({{ nfkc('email') }})                                  as email,
    cast(payment_gateway_names as varchar[])                    as payment_gateway_names,
    cast(_batch_id as varchar)                                  as _batch_id,
    cast(_fetched_at as timestamptz)                            as _fetched_at

from latest
