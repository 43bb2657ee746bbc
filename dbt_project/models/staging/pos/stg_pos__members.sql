-- One row per POS store member: the latest version landed (the export has no updated_at: the newest fetch
-- wins). Text NFKC, e-mail lower-cased.
with source as not materialized (  -- read three times by latest_version()

    select * from {{ source_or_empty('pos', 'members') }}

),

latest as (

    {{ latest_version('source', ['member_id'], '_fetched_at', columns='* exclude (_raw)') }}

)

select
    {{ nfkc('member_id') }}                         as member_id,
    {{ nfkc('name') }}                              as name,
    {{ nfkc('name_kana') }}                         as name_kana,
    {{ nfkc('phone') }}                             as phone,
    {{ nfkc('postal_code') }}                       as postal_code,
    lower({{ nfkc('email') }})                      as email,
    {{ nfkc('home_store') }}                        as home_store,
    cast(registered_on as date)                     as registered_on,
    cast(_batch_id as varchar)                      as _batch_id,
    cast(_fetched_at as timestamptz)                as _fetched_at
from latest
