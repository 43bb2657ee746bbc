{#-
    Model config `zstd_columns`: text columns stored with DuckDB's zstd compression instead of the default
    (DECISIONS.md D236).

    DuckDB analyses and compresses every text column with dict_fsst when a table is written. For columns
    where nearly every value is distinct (order and line keys and ids, millions of rows) that dictionary saves
    little and is the costliest part of the write; zstd writes the same column in about 60 % of the CPU, to
    about the same size, and reads back as fast. Low-cardinality columns (channel, status, SKU) keep dict_fsst,
    which suits them far better, so the columns are named per model, not chosen globally.

    A column's compression can only be given where the table is created, so a model with `zstd_columns`
    is created from its query's own column types (DESCRIBE) with `using compression zstd` on those columns,
    then filled by an insert, in place of dbt-duckdb's `create table as`. Every other model, and temporary
    tables (an incremental run's new rows, in memory), go through dbt-duckdb's macro unchanged. Rows appended
    by later incremental runs keep the column's compression.
-#}
{% macro duckdb__create_table_as(temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none) -%}
    {%- set zstd_columns = config.get('zstd_columns') or [] -%}
    {%- set contract_config = config.get('contract') -%}
    {%- if zstd_columns and language == 'sql' and not temporary and not (contract_config and contract_config.enforced)
          and not partitioned_by and not sorted_by -%}
        {{ create_table_with_zstd_columns(relation, compiled_code, zstd_columns) }}
    {%- else -%}
        {{ dbt.duckdb__create_table_as(temporary, relation, compiled_code, language, partitioned_by, sorted_by) }}
    {%- endif -%}
{%- endmacro %}


{% macro create_table_with_zstd_columns(relation, compiled_code, zstd_columns) -%}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- set described = run_query("describe select * from (\n" ~ compiled_code ~ "\n) as model_subq") -%}
        {%- set names = described.columns['column_name'].values() | list -%}
        {%- set wanted = zstd_columns | map('lower') | list -%}
        {%- set present = names | map('lower') | list -%}
        {%- for column in wanted if column not in present -%}
            {{ exceptions.raise_compiler_error("zstd_columns of " ~ model.name ~ ": no column " ~ column
                                               ~ " in the model's query (columns: " ~ names | join(', ') ~ ")") }}
        {%- endfor -%}
        {%- for row in described.rows -%}
            {%- do columns.append(adapter.quote(row['column_name']) ~ ' ' ~ row['column_type']
                                  ~ (' using compression zstd' if row['column_name'] | lower in wanted else '')) -%}
        {%- endfor -%}
    {%- endif %}
    create table {{ relation }} (
        {{ columns | join(',\n        ') }}
    );
    insert into {{ relation }}
    select * from (
        {{ compiled_code }}
    ) as model_subq;
{%- endmacro %}
