{#-
    as_of()

    The instant the time-dependent marts are computed for (order age, active sale windows): the var `as_of`
    (an ISO-8601 UTC text, e.g. '2026-11-23T12:00:00Z') when given, else the build's current_timestamp.
    Unit tests pin it with `overrides: {vars: {as_of: ...}}`; production leaves it unset.
-#}
{% macro as_of() -%}
{%- set value = var('as_of', none) -%}
{%- if value is none or value == '' -%}
current_timestamp
{%- else -%}
cast('{{ value }}' as timestamptz)
{%- endif -%}
{%- endmacro %}
