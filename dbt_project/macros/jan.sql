{#-
    is_valid_jan(expr)

    TRUE when the text is a JAN code (= EAN/GTIN) with a correct check digit: 13 digits (JAN標準) or 8 digits
    (JAN短縮). Weights from the right, the check digit excluded: 3, 1, 3, 1, ...; the check digit is
    (10 - sum mod 10) mod 10. FALSE for NULL, other lengths or non-digits. Apply it to the normalised text
    (full-width digits are mapped by nfkc() first).
-#}
{% macro is_valid_jan(expr) -%}
coalesce(case
    when regexp_full_match({{ expr }}, '[0-9]{13}') then
        (10 - (
            {%- for i in range(12) %}
            cast(substr({{ expr }}, {{ i + 1 }}, 1) as integer) * {{ 3 if (12 - i) % 2 == 1 else 1 }}{{ ' +' if not loop.last }}
            {%- endfor %}
        ) % 10) % 10 = cast(substr({{ expr }}, 13, 1) as integer)
    when regexp_full_match({{ expr }}, '[0-9]{8}') then
        (10 - (
            {%- for i in range(7) %}
            cast(substr({{ expr }}, {{ i + 1 }}, 1) as integer) * {{ 3 if (7 - i) % 2 == 1 else 1 }}{{ ' +' if not loop.last }}
            {%- endfor %}
        ) % 10) % 10 = cast(substr({{ expr }}, 8, 1) as integer)
    else false
end, false)
{%- endmacro %}
