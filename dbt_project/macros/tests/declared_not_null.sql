{#-
    Generic test, declared once per model: every column whose yml declares `constraints: [{type: not_null}]` holds
    no null. One scan of the model checks all of them, where a `not_null` test per column costs a dbt node and a
    scan each (268 of them made up two thirds of a build's tests, D175). The constraints are not enforced by the
    table (no model contract), this test is what enforces them. Fails with one row per column that holds nulls:
    the column's name and how many rows.
    The nulls are counted as `count(*) - count(column)`: DuckDB answers that from the stored column statistics
    when they show the column has no null, without reading the rows (10M order lines: 0.0 against 0.74 CPU s
    for `count(*) filter (where column is null)`, D238); a column that may hold nulls is scanned as before.
-#}
{% test declared_not_null(model) %}
{%- set columns = [] -%}
{%- if execute -%}
    {%- set node = graph.nodes.values() | selectattr("resource_type", "in", ["model", "seed", "snapshot"])
                   | selectattr("alias", "equalto", model.identifier) | first -%}
    {%- for column in node.columns.values() -%}
        {%- if column.constraints | selectattr("type", "equalto", "not_null") | list -%}
            {%- do columns.append(column.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error("declared_not_null on " ~ model.identifier ~ ": no column declares a not_null constraint") }}
    {%- endif -%}
{%- endif -%}
{%- if columns %}
with null_counts as (
    select
    {%- for column in columns %}
        count(*) - count({{ adapter.quote(column) }}) as {{ adapter.quote(column) }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ model }}
)
{%- for column in columns %}
select '{{ column }}' as column_name, {{ adapter.quote(column) }} as null_rows from null_counts where {{ adapter.quote(column) }} > 0
{{ "union all" if not loop.last }}
{%- endfor %}
{%- else %}
select null as column_name, 0 as null_rows where false
{%- endif %}
{% endtest %}
