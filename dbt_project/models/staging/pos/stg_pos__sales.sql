-- One row per POS receipt line. A store may re-send a day's export (corrected): the rows of the newest file
-- holding a receipt replace every line of that receipt from older files. Receipt numbers restart per
-- register and day, so the receipt key includes the JST business date.
with source as (

    select * from {{ source_or_empty('pos', 'sales') }}

),

typed as (

    select
        {{ nfkc('store_code') }}                        as store_code,
        {{ nfkc('register_no') }}                       as register_no,
        {{ nfkc('receipt_no') }}                        as receipt_no,
        cast(transacted_at as timestamptz)              as transacted_at_utc,
        {{ jst_date('cast(transacted_at as timestamptz)') }}  as business_date_jst,
        {{ nfkc('member_id') }}                         as member_id,
        {{ nfkc('jan') }}                               as jan,
        {{ nfkc('product_name') }}                      as product_name,
        cast(quantity as bigint)                        as quantity,
        cast(unit_price as bigint)                      as unit_price_jpy,
        cast(amount as bigint)                          as line_total_jpy,
        {{ file_lineage_columns() }}
    from source

),

newest_file_per_receipt as (

    select * from typed
    {{ newest_file(['store_code', 'register_no', 'business_date_jst', 'receipt_no']) }}

),

numbered as (

    select
        *,
        row_number() over (
            partition by store_code, register_no, business_date_jst, receipt_no order by file_row
        )                                               as line_no
    from newest_file_per_receipt

)

select
    store_code || '|' || register_no || '|' || strftime(business_date_jst, '%Y%m%d') || '|' || receipt_no
        || '|' || cast(line_no as varchar)              as sales_line_key,
    store_code || '|' || register_no || '|' || strftime(business_date_jst, '%Y%m%d') || '|' || receipt_no
                                                        as receipt_key,
    store_code,
    register_no,
    receipt_no,
    cast(line_no as integer)                            as line_no,
    transacted_at_utc,
    business_date_jst,
    member_id,
    jan,
    {{ is_valid_jan('jan') }}                           as is_valid_jan,
    product_name,
    quantity,
    quantity < 0                                        as is_return,
    unit_price_jpy,
    line_total_jpy,
    unit_price_jpy * quantity - line_total_jpy          as discount_jpy,
    file_name,
    file_row,
    _batch_id,
    _fetched_at
from numbered
