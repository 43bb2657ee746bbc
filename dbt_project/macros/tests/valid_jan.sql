{#-
    Generic test: every non-null JAN in the column has a correct check digit (macro is_valid_jan).
    A product without a JAN passes (it can still be matched by seller SKU); a mistyped JAN fails.
-#}
{% test valid_jan(model, column_name) %}
select {{ column_name }} as invalid_jan
from {{ model }}
where {{ column_name }} is not null
  and not ({{ is_valid_jan(column_name) }})
{% endtest %}
