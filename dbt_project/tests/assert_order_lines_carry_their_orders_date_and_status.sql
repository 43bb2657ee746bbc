-- fct_order_lines carries its order's date and status (for period queries without the join, D76): both
-- incremental marts must agree line for line. Fails with the lines that disagree or lost their order.
select l.order_line_key, l.order_date_jst, l.order_status, o.order_date_jst as order_date, o.status
from {{ ref('fct_order_lines') }} as l
left join {{ ref('fct_orders') }} as o
    on o.order_key = l.order_key
where o.order_key is null
   or l.order_date_jst is distinct from o.order_date_jst
   or l.order_status is distinct from o.status
