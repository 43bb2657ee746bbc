-- One row per ERP product (the product master), latest version. The ERP keeps list prices tax-exclusive;
-- Japanese law requires tax-inclusive display, so the tax-inclusive price is derived here:
-- floor(list price × (1 + rate)), rate 10 % standard / 8 % reduced (exact decimal arithmetic).
-- is_bundle (D35) arrived later than the other columns: a landing zone whose batches all predate it has no such
-- column at all (read_parquet's union_by_name only fills it when some batch has it), so it is probed first.
{%- set products = source_or_empty('erp', 'products') -%}
{%- set has_is_bundle = true -%}
{%- if execute -%}
    {%- set probe = run_query("select count(*) from (describe select * from " ~ products ~ ") where column_name = 'is_bundle'") -%}
    {%- set has_is_bundle = probe.columns[0].values()[0] | int > 0 -%}
{%- endif %}
with source as not materialized (  -- read three times by latest_version()

    select * from {{ products }}

),

latest as (

    {{ latest_version('source', ['sku'], columns='* exclude (_raw)') }}

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
        {% if has_is_bundle %}coalesce(cast(is_bundle as boolean), false){% else %}false{% endif %} as is_bundle,
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
    is_bundle,
    updated_at,
    _batch_id,
    _fetched_at
from normalised
