{#- null_safe_match(left, right, columns): a join condition, every column equal with NULL matching NULL
    (`is not distinct from`), as `<left>.<column> is not distinct from <right>.<column> and …`. For joins back to
    an aggregate over the same columns (latest_version(), the identity records), where a NULL in a column must
    still find its row. -#}
{% macro null_safe_match(left, right, columns) -%}
    {%- for column in columns %}{{ ' and ' if not loop.first }}{{ left }}.{{ column }} is not distinct from {{ right }}.{{ column }}{% endfor -%}
{%- endmacro %}
