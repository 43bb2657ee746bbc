{#-
    Generic test: every row satisfies `expression` (what dbt_utils.expression_is_true offers; no packages here,
    DECISIONLOG 14). Fails with the rows that do not. Usable on a model or a column (column_name is ignored: write it in the expression).
-#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
