{#-
    fetched_since_last_build(expr)

    For incremental models: on an incremental run, a `where` clause keeping rows whose `expr` (a fetch time)
    is newer than the newest `_fetched_at` already in the table minus var incremental_lookback_hours (default
    24). On a first run, a --full-refresh, or when the existing table has no `_fetched_at` column yet (a table
    built before the model became incremental), it renders nothing: every row is (re)processed, and
    on_schema_change='append_new_columns' adds the column.
-#}
{% macro fetched_since_last_build(expr) -%}
{%- if is_incremental() -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- if '_fetched_at' in existing -%}
        {%- set hours = var('incremental_lookback_hours', 24) | int -%}
        {%- if hours < 0 -%}
            {{ exceptions.raise_compiler_error("var incremental_lookback_hours must be >= 0, got " ~ hours) }}
        {%- endif %}
where {{ expr }} > (
    select coalesce(max(_fetched_at), cast('1970-01-01 00:00:00+00' as timestamptz)) - to_hours({{ hours }})
    from {{ this }}
)
    {%- endif -%}
{%- endif -%}
{%- endmacro %}
