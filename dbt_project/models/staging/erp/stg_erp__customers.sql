-- One row per ERP B2B account (取引先): the latest version landed. Text NFKC (half-width kana readings become
-- full-width), e-mail lower-cased. The ERP's own rank is kept as sent.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('erp', 'customers') }}

),

latest as (

    {{ latest_version('source', ['customer_code'], columns='* exclude (_raw)') }}

)

select
    {{ nfkc('customer_code') }}                     as customer_code,
    {{ nfkc('company_name') }}                      as company_name,
    {{ nfkc('company_name_kana') }}                 as company_name_kana,
    {{ nfkc('contact_name') }}                      as contact_name,
    {{ nfkc('contact_name_kana') }}                 as contact_name_kana,
    lower({{ nfkc('email') }})                      as email,
    {{ nfkc('phone') }}                             as phone,
    {{ nfkc('postal_code') }}                       as postal_code,
    {{ nfkc('prefecture') }}                        as prefecture,
    {{ nfkc('address1') }}                          as address1,
    {{ nfkc('erp_rank') }}                          as erp_rank,
    cast(updated_at as timestamptz)                 as updated_at,
    cast(_batch_id as varchar)                      as _batch_id,
    cast(_fetched_at as timestamptz)                as _fetched_at
from latest
