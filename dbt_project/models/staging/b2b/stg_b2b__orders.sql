-- One row per B2B purchase order line. A buyer who revises an order sends the whole 発注書 again: the
-- newest file holding a (customer, PO number) replaces every line of that order from older files.
-- Prices stay tax-exclusive, as B2B trades (the tax-inclusive view needs the product's tax class: marts).
with source as (

    select * from {{ source_or_empty('b2b', 'orders') }}

),

typed as (

    select
        {{ nfkc('customer_code') }}                     as customer_code,
        {{ nfkc('po_number') }}                         as po_number,
        cast(ordered_on as date)                        as ordered_on,
        cast(requested_delivery_on as date)             as requested_delivery_on,
        {{ nfkc('jan') }}                               as jan,
        {{ nfkc('product_name') }}                      as product_name,
        cast(quantity as bigint)                        as quantity,
        cast(unit_price_tax_excl as bigint)             as unit_price_tax_excl_jpy,
        cast(sheet_name as varchar)                     as sheet_name,
        {{ file_lineage_columns() }}
    from source

),

newest_file_per_order as (

    select * from typed
    {{ newest_file(['customer_code', 'po_number']) }}

),

numbered as (

    select
        *,
        row_number() over (partition by customer_code, po_number order by sheet_name, file_row) as line_no
    from newest_file_per_order

)

select
    customer_code || '|' || po_number || '|' || cast(line_no as varchar)   as order_line_key,
    customer_code || '|' || po_number                                      as order_key,
    customer_code,
    po_number,
    cast(line_no as integer)                                               as line_no,
    ordered_on,
    requested_delivery_on,
    jan,
    {{ is_valid_jan('jan') }}                                              as is_valid_jan,
    product_name,
    quantity,
    unit_price_tax_excl_jpy,
    unit_price_tax_excl_jpy * quantity                                     as line_total_tax_excl_jpy,
    file_name,
    file_row,
    _batch_id,
    _fetched_at
from numbered
