{#-
    Matching keys for customer identity resolution (int_customers__identities; DECISIONLOG 22).
    Each returns NULL when the value cannot identify a person, so a NULL key never merges anything.
    `normalised=true`: expr is already nfkc() text (nfkc is idempotent), so the macro does not expand nfkc()
    again; each macro names its input several times, and one nfkc() per input keeps the query small to plan.
-#}

{#- e-mail: NFKC, trimmed, lower-cased. The marketplaces' masked relay addresses (楽天 *@pc.fw.rakuten.ne.jp,
    Amazon *@marketplace.amazon.co.jp) are per order, not per person: they are no key. Needs an '@'. -#}
{% macro email_key(expr, normalised=false) -%}
{%- set text = expr if normalised else nfkc(expr) -%}
case
    when lower({{ text }}) similar to '.+@.+'
     and not regexp_matches(lower({{ text }}), '@(pc\.fw\.rakuten\.ne\.jp|marketplace\.amazon\.co\.jp)$')
        then lower({{ text }})
end
{%- endmacro %}


{#- phone: NFKC, digits only, the country code +81 (also 81 / 81(0)) replaced by the trunk 0, so
    '+81 90-1234-5678', '０９０（１２３４）５６７８' and '09012345678' are one key. Japanese numbers are 10–11 digits
    with the 0; anything shorter is no key. -#}
{% macro phone_key(expr, normalised=false) -%}
{%- set text = expr if normalised else nfkc(expr) -%}
{%- set digits = "regexp_replace(coalesce(" ~ text ~ ", ''), '[^0-9]', '', 'g')" -%}
{%- set national = "case when " ~ digits ~ " like '810%' then substr(" ~ digits ~ ", 3) when " ~ digits ~ " like '81%' then '0' || substr(" ~ digits ~ ", 3) else " ~ digits ~ " end" -%}
case when length({{ national }}) between 10 and 11 and ({{ national }}) like '0%' then {{ national }} end
{%- endmacro %}


{#- postal code: NFKC digits only ('〒135-0063' → '1350063'); exactly 7 digits or NULL. -#}
{% macro postal_code_digits(expr, normalised=false) -%}
{%- set text = expr if normalised else nfkc(expr) -%}
case when length(regexp_replace(coalesce({{ text }}, ''), '[^0-9]', '', 'g')) = 7
    then regexp_replace({{ text }}, '[^0-9]', '', 'g') end
{%- endmacro %}


{#- kana name: NFKC (half-width → full-width katakana), hiragana → katakana, every space removed:
    'ﾔﾏﾀﾞ ﾀﾛｳ', 'やまだ たろう' and 'ヤマダ　タロウ' are all 'ヤマダタロウ'. Only kana (and ー) count: a name with kanji or
    latin letters in its "kana" field is no key. -#}
{% macro kana_name(expr, normalised=false) -%}
{%- set text = expr if normalised else nfkc(expr) -%}
{%- set folded = "regexp_replace(translate(" ~ text ~ ", " ~ ichigen_hiragana() ~ ", " ~ ichigen_katakana() ~ "), '\\s', '', 'g')" -%}
case when regexp_full_match({{ folded }}, '[\x{30A1}-\x{30FA}\x{30FC}]+') then {{ folded }} end
{%- endmacro %}

{% macro ichigen_hiragana() -%}
'ぁあぃいぅうぇえぉおかがきぎくぐけげこごさざしじすずせぜそぞただちぢっつづてでとどなにぬねのはばぱひびぴふぶぷへべぺほぼぽまみむめもゃやゅゆょよらりるれろゎわゐゑをんゔゕゖ'
{%- endmacro %}

{% macro ichigen_katakana() -%}
'ァアィイゥウェエォオカガキギクグケゲコゴサザシジスズセゼソゾタダチヂッツヅテデトドナニヌネノハバパヒビピフブプヘベペホボポマミムメモャヤュユョヨラリルレロヮワヰヱヲンヴヵヶ'
{%- endmacro %}
