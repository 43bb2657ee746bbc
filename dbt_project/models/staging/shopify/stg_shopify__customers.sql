-- One row per Shopify customer: the latest version landed. Names NFKC; Shopify keeps no reading (kana) of its
-- own, so name_kana is null here (shops that collect フリガナ keep it in a metafield: not landed yet).
-- full_name is family name first, as Japanese shops show it.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('shopify', 'customers') }}

),

latest as (

    {{ latest_version('source', ['customer_id'], columns='* exclude (_raw)') }}

)

select
    cast(customer_id as varchar)                                    as customer_id,
    {{ nfkc('last_name') }}                                         as last_name,
    {{ nfkc('first_name') }}                                        as first_name,
    nullif(concat_ws(' ', {{ nfkc('last_name') }}, {{ nfkc('first_name') }}), '')  as full_name,
    cast(null as varchar)                                           as name_kana,
    lower({{ nfkc('email') }})                                      as email,
    {{ nfkc('phone') }}                                             as phone,
    {{ nfkc('zip') }}                                               as postal_code,
    {{ nfkc('province') }}                                          as prefecture,
    {{ nfkc('city') }}                                              as city,
    {{ nfkc('address1') }}                                          as address1,
    cast(created_at as timestamptz)                                 as created_at,
    cast(updated_at as timestamptz)                                 as updated_at,
    cast(_batch_id as varchar)                                      as _batch_id,
    cast(_fetched_at as timestamptz)                                as _fetched_at
from latest
