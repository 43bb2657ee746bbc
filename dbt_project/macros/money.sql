{#-
    jpy_from_decimal_string(expr)

    Shopify sends money as decimal strings ("1980.0", "1980.00"). The yen has no minor unit, so we keep
    integer JPY: cast to decimal(18,2), round half away from zero, cast to bigint. NULL stays NULL.
-#}
{% macro jpy_from_decimal_string(expr) -%}
cast(round(cast({{ expr }} as decimal(18, 2))) as bigint)
{%- endmacro %}


{#-
    jst_date(ts)

    The calendar date in Japan (Asia/Tokyo) of a UTC timestamp(tz). Business days, daily sales and the dashboard
    all use the JST date.
    Japan has kept UTC+9 without daylight saving since 1951, so the date is the one of the instant's epoch
    microseconds shifted by nine hours: integer arithmetic, the same date as icu's `at time zone 'Asia/Tokyo'`
    for every instant since 1951 (1948–1951 summers had DST), at a tenth of its cost (6.5M orders: 0.04 against
    0.55 CPU s, DECISIONS.md D239). NULL stays NULL.
-#}
{% macro jst_date(ts) -%}
cast(make_timestamp(epoch_us({{ ts }}) + 32400000000) as date)
{%- endmacro %}


{#-
    tax_rate(tax_class)

    Japanese consumption tax: 'standard' 10 %, 'reduced' 8 % (food, newspapers). Anything else -> NULL (and the
    accepted_values test on tax_class fails, so an unknown class never prices silently).
-#}
{% macro tax_rate(tax_class) -%}
case {{ tax_class }} when 'standard' then 0.10 when 'reduced' then 0.08 end
{%- endmacro %}
