{#-
    Custom schemas are used as written (no `<target_schema>_` prefix): marts and seeds in `main`, where
    dashboards, analysts and reverse sync read them (DECISIONS.md D6); staging in `staging`, intermediate in
    `intermediate`, so `main` lists only what people query.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
