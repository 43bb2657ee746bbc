-- Quarantine per source × entity × reason, for the sync-health page and for analysts: how many distinct
-- records, when first and last, and one example. A reason is ingestion's text with the offending value quoted
-- in it ("created_at '2026-11-23 10:00' has no UTC offset"), so records group by `reason_kind`: the reason
-- with quoted values replaced by … and long digit runs (JANs, ids) by # — and a full example is kept.
with records as (

    select
        *,
        regexp_replace(
            regexp_replace(reason, '(''[^'']*''|"[^"]*")', '…', 'g'),
            '[0-9]{4,}', '#', 'g'
        ) as reason_kind
    from {{ ref('stg_quarantine__records') }}

)

select
    source,
    entity,
    reason_kind,
    cast(count(*) as bigint)                            as records,
    cast(sum(occurrences) as bigint)                    as occurrences,
    min(first_quarantined_at)                           as first_quarantined_at,
    max(quarantined_at)                                 as last_quarantined_at,
    arg_max(reason, quarantined_at)                     as example_reason,
    arg_max(record_key, quarantined_at)                 as example_record_key
from records
group by source, entity, reason_kind
