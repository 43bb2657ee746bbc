{#-
    Generic test: the combination of `combination_of_columns` is unique (what dbt_utils offers; we keep no
    package dependency, so `dbt deps` is never needed). Fails with one row per duplicated combination.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
