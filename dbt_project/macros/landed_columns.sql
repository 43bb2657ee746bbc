{#-
    every_landed_file_has(source_name, table_name, column)

    True when every landed file of a source has `column` (DuckDB's parquet_schema over the source's glob, at
    run time; true when nothing is landed yet, since source_or_empty's empty relation has every declared
    column). For a column added to the landed contract later: the model reads it when every batch carries it
    and derives it the old way otherwise, so a landing zone with older batches keeps building unchanged
    (DECISIONS.md D154). At parse time nothing is queried and the answer is false (the old way).
-#}
{% macro every_landed_file_has(source_name, table_name, column) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set pattern = ichigen_source_glob(source(source_name, table_name)) | replace("'", "''") -%}
    {%- set files = run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] | int -%}
    {%- if files == 0 -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set with_column = run_query(
        "select count(distinct file_name) from parquet_schema('" ~ pattern ~ "') where name = '"
        ~ column | replace("'", "''") ~ "'").columns[0].values()[0] | int -%}
    {{ return(with_column == files) }}
{%- endmacro %}
