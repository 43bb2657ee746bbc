{#-
    latest_version(key_columns, order_by)

    A `qualify` clause keeping one row per key: the latest version. The ingest look-back re-lands recent
    records by design (DECISIONS.md D4), so every staging model over the landing zone de-duplicates.
    Ties on the source's updated_at are broken by the fetch time, then by batch id (deterministic).
-#}
{% macro latest_version(key_columns, updated_at='updated_at') -%}
qualify row_number() over (
    partition by {{ key_columns | join(', ') }}
    order by {{ updated_at }} desc nulls last, _fetched_at desc nulls last, _batch_id desc
) = 1
{%- endmacro %}
