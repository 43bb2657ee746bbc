-- One row per quarantined source record (every source and entity). Quarantine files are written once per
-- batch and never re-landed, but a record that keeps failing is quarantined again by every look-back fetch:
-- `occurrences` counts those repeats and only the latest is kept per (source, entity, record_key, reason).
with source as (

    select * from {{ source_or_empty('quarantine', 'records') }}

),

typed as (

    select
        cast(source as varchar)                     as source,
        cast(entity as varchar)                     as entity,
        cast(batch_id as varchar)                   as batch_id,
        cast(record_key as varchar)                 as record_key,
        {{ nfkc('reason') }}                        as reason,
        cast(raw as varchar)                        as raw,
        cast(quarantined_at as timestamptz)         as quarantined_at
    from source

)

select
    *,
    -- a record without a key is its own occurrence (the raw text tells them apart)
    count(*) over (partition by source, entity, coalesce(record_key, raw), reason)  as occurrences,
    min(quarantined_at) over (partition by source, entity, coalesce(record_key, raw), reason)  as first_quarantined_at
from typed
qualify row_number() over (
    partition by source, entity, coalesce(record_key, raw), reason
    order by quarantined_at desc, batch_id desc
) = 1
