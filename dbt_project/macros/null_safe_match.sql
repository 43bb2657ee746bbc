{#- null_safe_match(left, right, columns, left_prefix=''): a join condition, every column equal with NULL matching
    NULL (`is not distinct from`), as `<left>.<left_prefix><column> is not distinct from <right>.<column> and …`.
    For joins back to an aggregate over the same columns (latest_version(), nfkc_per_distinct()), where a NULL in
    a column must still find its row. -#}
{% macro null_safe_match(left, right, columns, left_prefix='') -%}
    {%- for column in columns %}{{ ' and ' if not loop.first }}{{ left }}.{{ left_prefix }}{{ column }} is not distinct from {{ right }}.{{ column }}{% endfor -%}
{%- endmacro %}
