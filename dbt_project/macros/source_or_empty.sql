{#-
    source_or_empty(source_name, table_name)

    Use instead of `source()` for sources read from files (the landing zone, the push log).

    The source's `meta.external_location` (see the _<slug>__sources.yml files) renders to
    `read_parquet('<root>/<slug>/<entity>/**/*.parquet', union_by_name=true)` (DECISIONS.md D4/D6). DuckDB fails
    on a glob that matches no file, and a fresh install has not landed every entity yet. So at compile/run time
    this macro asks DuckDB's `glob()` (through run_query) whether the pattern matches at least one file:

      * yes -> the source's read_parquet call with the pattern replaced by the list of the files it matched
               then: every read of it in the model sees the same files, even where the model reads it more
               than once (latest_version() reads it three times) while new batches land (D224); the build
               holds the landing lock, so none of them goes away (D160). `source()` is still called, so
               lineage stays dbt's own.
      * no  -> `(select cast(null as <type>) as <column>, ... where false)`: an EMPTY relation with the typed
               columns declared in the source yml (every declared column must carry a data_type)

    At parse time (`execute` is false, e.g. `dbt parse` for Dagster's manifest) nothing is queried; the
    `source()` call still records the dependency.
-#}
{% macro source_or_empty(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set pattern = ichigen_source_glob(relation) -%}
    {%- set found = run_query("select file from glob('" ~ pattern | replace("'", "''") ~ "') order by file") -%}
    {%- set files = found.columns[0].values() -%}
    {%- if files | length > 0 -%}
        {%- set quoted -%}
            {%- for file in files %}{{ ', ' if not loop.first }}'{{ file | replace("'", "''") }}'{% endfor -%}
        {%- endset -%}
        {{ return(relation.external | replace("'" ~ pattern ~ "'", "[" ~ quoted ~ "]")) }}
    {%- else -%}
        {{ log("source_or_empty: no file matches " ~ pattern ~ "; " ~ source_name ~ "." ~ table_name ~ " is empty", info=false) }}
        {{ return(ichigen_empty_typed_relation(source_name, table_name)) }}
    {%- endif -%}
{%- endmacro %}


{#- The file pattern inside `read_parquet('<pattern>', ...)` of a source with an external_location. -#}
{% macro ichigen_source_glob(relation) -%}
    {%- set location = relation.external -%}
    {%- if not location or "'" not in location -%}
        {{ exceptions.raise_compiler_error("source_or_empty: " ~ relation ~ " has no read_parquet('<pattern>') external_location") }}
    {%- endif -%}
    {{- return(location.split("'")[1]) -}}
{%- endmacro %}


{#- `(select cast(null as t1) as c1, ... where false)` from the columns declared on the source. -#}
{% macro ichigen_empty_typed_relation(source_name, table_name) -%}
    {%- set nodes = graph.sources.values()
        | selectattr('source_name', 'equalto', source_name)
        | selectattr('name', 'equalto', table_name) | list -%}
    {%- if nodes | length != 1 -%}
        {{ exceptions.raise_compiler_error("source_or_empty: source " ~ source_name ~ "." ~ table_name ~ " not found in the graph") }}
    {%- endif -%}
    {%- set columns = nodes[0].columns.values() | list -%}
    {%- if columns | length == 0 -%}
        {{ exceptions.raise_compiler_error("source_or_empty: source " ~ source_name ~ "." ~ table_name ~ " declares no columns") }}
    {%- endif -%}
    {%- set selects = [] -%}
    {%- for column in columns -%}
        {%- if not column.data_type -%}
            {{ exceptions.raise_compiler_error("source_or_empty: column " ~ column.name ~ " of source " ~ source_name ~ "." ~ table_name ~ " needs a data_type") }}
        {%- endif -%}
        {%- do selects.append("cast(null as " ~ column.data_type ~ ") as " ~ adapter.quote(column.name)) -%}
    {%- endfor -%}
    {{- return("(select " ~ selects | join(", ") ~ " where false)") -}}
{%- endmacro %}
