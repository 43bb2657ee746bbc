-- One row per ERP product (the product master), latest version. The ERP keeps list prices tax-exclusive;
-- Japanese law requires tax-inclusive display, so the tax-inclusive price is derived here:
-- floor(list price × (1 + rate)), rate 10 % standard / 8 % reduced (exact decimal arithmetic).
with source as (

    select * from {{ source_or_empty('erp', 'products') }}

),

latest as (

    select * exclude (_raw) from source
    {{ latest_version(['sku']) }}

),

normalised as (

    select
        {{ nfkc('sku') }}                               as sku,
        {{ nfkc('jan') }}                               as jan,
        {{ nfkc('name') }}                              as name,
        {{ nfkc('name_kana') }}                         as name_kana,
        {{ nfkc('category') }}                          as category,
        {{ nfkc('size') }}                              as size,
        {{ nfkc('color') }}                             as color,
        cast(list_price as bigint)                      as list_price_tax_excl,
        lower({{ nfkc('tax_class') }})                  as tax_class,
        cast(safety_stock as bigint)                    as safety_stock,
        cast(updated_at as timestamptz)                 as updated_at,
        cast(_batch_id as varchar)                      as _batch_id,
        cast(_fetched_at as timestamptz)                as _fetched_at
    from latest

)

select
    sku,
    jan,
    {{ is_valid_jan('jan') }}                                               as is_valid_jan,
    name,
    name_kana,
    category,
    size,
    color,
    list_price_tax_excl,
    tax_class,
    cast({{ tax_rate('tax_class') }} as decimal(4, 2))                      as tax_rate,
    cast(floor(list_price_tax_excl * (1 + {{ tax_rate('tax_class') }})) as bigint)  as list_price_tax_incl,
    safety_stock,
    updated_at,
    _batch_id,
    _fetched_at
from normalised
