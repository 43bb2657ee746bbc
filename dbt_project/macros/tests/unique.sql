{#-
    dbt's `unique` test, worked out in two steps (D238): first the hashes of the key that occur more than once,
    a group by on 64-bit integers; then the keys themselves, grouped only among the rows whose hash repeated
    (none, when the key is unique). The result is exactly dbt's own (a hash collision only lets a row through to
    the exact second step): one row per repeated value with `unique_field` and `n_records`. At 10M order lines
    this is 1.6–2.0 CPU s against 2.0–2.8 for grouping on the key strings. Overrides dbt's default through
    dispatch (the root project's macro comes first), so models keep declaring `unique`.
-#}
{% macro default__test_unique(model, column_name) %}
with repeated_hashes as (

    select hash({{ column_name }}) as key_hash
    from {{ model }}
    where {{ column_name }} is not null
    group by 1
    having count(*) > 1

)

select
    {{ column_name }} as unique_field,
    count(*) as n_records

from {{ model }}
where {{ column_name }} is not null
    and hash({{ column_name }}) in (select key_hash from repeated_hashes)
group by {{ column_name }}
having count(*) > 1
{% endmacro %}
