-- One row per push attempt (SKU × field × attempt of a sync run), as reverse sync logged it (D7), every
-- channel's folder unioned. Push-log files are written once per run and never re-landed: nothing to
-- de-duplicate.
{%- set channels = ['shopify', 'rakuten', 'amazon', 'yahoo'] %}
{% for channel in channels %}
select
    cast(run_id as varchar)                         as run_id,
    cast(channel as varchar)                        as channel,
    cast(field as varchar)                          as field,
    {{ nfkc('sku') }}                               as sku,
    cast(target_ref as varchar)                     as target_ref,
    cast(old_value as bigint)                       as old_value,
    cast(new_value as bigint)                       as new_value,
    cast(status as varchar)                         as status,
    cast(error as varchar)                          as error,
    cast(planned_at as timestamptz)                 as planned_at,
    cast(pushed_at as timestamptz)                  as pushed_at,
    cast(attempt as integer)                        as attempt
from {{ source_or_empty('push_log', channel) }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
