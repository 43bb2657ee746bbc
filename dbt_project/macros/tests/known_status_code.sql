{#-
    Generic test: every non-null status code in the column appears in the seed `order_status_map` for this
    channel and status field. A code the channel invents tomorrow fails the build (and so blocks publishing)
    instead of being mapped silently to some status. The failing rows name the unknown codes.
-#}
{% test known_status_code(model, column_name, channel, status_field) %}
select {{ column_name }} as unknown_code, count(*) as n_orders
from {{ model }} as o
where {{ column_name }} is not null
  and not exists (
        select 1
        from {{ ref('order_status_map') }} as m
        where m.channel = '{{ channel }}'
          and m.status_field = '{{ status_field }}'
          and m.channel_code = o.{{ column_name }}
  )
group by 1
{% endtest %}
