{#-
    RFM scores from thresholds (var customer_rank; DECISIONLOG 23). With n ascending thresholds t1 < … < tn:
      score_at_most(x, t):  x ≤ t1 → n+1, x ≤ t2 → n, …, x ≤ tn → 2, else (or NULL) 1   (recency: fewer days is better)
      score_at_least(x, t): x ≥ tn → n+1, …, x ≥ t1 → 2, else (or NULL) 1              (frequency, monetary)
    Thresholds must be ascending numbers: anything else is a compile error.
-#}
{% macro ichigen_check_thresholds(name, thresholds) -%}
    {%- if thresholds is string or thresholds | length == 0 -%}
        {{ exceptions.raise_compiler_error("var customer_rank." ~ name ~ " must be a non-empty list, got " ~ thresholds) }}
    {%- endif -%}
    {%- for t in thresholds -%}
        {%- if not loop.first and (t | float) <= (thresholds[loop.index0 - 1] | float) -%}
            {{ exceptions.raise_compiler_error("var customer_rank." ~ name ~ " must be ascending, got " ~ thresholds) }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{% macro score_at_most(expr, thresholds, name) -%}
{{- ichigen_check_thresholds(name, thresholds) -}}
case
    {%- for t in thresholds %}
    when {{ expr }} <= {{ t | float }} then {{ thresholds | length + 1 - loop.index0 }}
    {%- endfor %}
    else 1
end
{%- endmacro %}

{% macro score_at_least(expr, thresholds, name) -%}
{{- ichigen_check_thresholds(name, thresholds) -}}
case
    {%- for t in thresholds | reverse %}
    when {{ expr }} >= {{ t | float }} then {{ thresholds | length + 1 - loop.index0 }}
    {%- endfor %}
    else 1
end
{%- endmacro %}
