{#-
    round_to_step(expr, step, mode)

    Rounds a non-negative exact decimal price to a multiple of `step` (integer JPY, > 0) and returns a BIGINT.
    `mode` is a SQL expression giving 'up' | 'down' | 'nearest' (nearest: halves go up, 1985 → 1990 at step 10).
    Everything stays in exact decimal and integer arithmetic (no float), using
        down:    floor(x / n) · n       = (floor(x) // n) · n
        up:      ceil(x / n) · n        = ((ceil(x) + n − 1) // n) · n
        nearest: floor(x / n + ½) · n   = (floor(2x + n) // 2n) · n
    Any other mode gives NULL (and the not_null tests on the price columns fail).
-#}
{% macro round_to_step(expr, step, mode) -%}
case {{ mode }}
    when 'down' then (cast(floor({{ expr }}) as bigint) // ({{ step }})) * ({{ step }})
    when 'up' then ((cast(ceil({{ expr }}) as bigint) + ({{ step }}) - 1) // ({{ step }})) * ({{ step }})
    when 'nearest' then (cast(floor(2 * ({{ expr }}) + ({{ step }})) as bigint) // (2 * ({{ step }}))) * ({{ step }})
end
{%- endmacro %}


{#- A decimal as short text for `explain`: 5.00 → '5', 2.50 → '2.5', 0.00 → '0'. -#}
{% macro short_decimal(expr) -%}
rtrim(rtrim(cast({{ expr }} as varchar), '0'), '.')
{%- endmacro %}
