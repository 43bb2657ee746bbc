{#-
    Generic test, on a column that refers to another model's key: every row's parent exists (dbt's
    `relationships`) AND the columns this model carries from its parent equal the parent's, in one join.
    `carried` maps this model's column to the parent's, e.g. {order_date_jst: order_date_jst, order_status: status}.
    fct_order_lines carries its order's date and status (D76); checking the relationship and the carried columns
    in two tests joined 10M lines to 6.5M orders twice at the end of the build (D237). NULL equals NULL in the
    comparison. Fails with the rows whose parent is missing or disagrees: the key, and for each carried column
    this model's value and the parent's.
-#}
{% test relationships_carrying_columns(model, column_name, to, field, carried) %}
select
    child.{{ column_name }} as child_key,
    parent.{{ field }} is null as parent_missing
    {%- for child_column, parent_column in carried.items() %},
    child.{{ child_column }} as {{ child_column }},
    parent.{{ parent_column }} as parent_{{ parent_column }}
    {%- endfor %}
from {{ model }} as child
left join {{ to }} as parent
    on parent.{{ field }} = child.{{ column_name }}
where child.{{ column_name }} is not null
  and (
    parent.{{ field }} is null
    {%- for child_column, parent_column in carried.items() %}
    or child.{{ child_column }} is distinct from parent.{{ parent_column }}
    {%- endfor %}
  )
{% endtest %}
