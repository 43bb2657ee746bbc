{#-
    NFKC-style normalisation of text in DuckDB.

    DuckDB 2.0 ships `nfc_normalize` and `strip_accents` but no NFKC function, and we load no extension
    beyond parquet/json/icu and register no Python UDF (the serving copy must be readable by any DuckDB).
    So this macro implements the part of NFKC that matters for Japanese commerce data, exactly as NFKC does:

      * full-width ASCII (U+FF01-FF5E: ＡＢＣ１２３－＠) -> ASCII, ideographic space (U+3000) -> ' '
      * half-width katakana and punctuation (U+FF5F-FF9F: ｶﾞｷﾞｰ｡｢｣) -> full-width; the half-width sound
        marks ﾞ/ﾟ become the combining marks U+3099/U+309A, and `nfc_normalize` then composes
        カ + U+3099 -> ガ, just as NFKC would
      * full-width signs U+FFE0-FFEE (￥￠￡￢￤ and the half-width arrows/box) -> their compatibility
        characters

    Not covered (multi-character or rarely seen compatibility forms): circled digits ①, squared words ㌔,
    parenthesised ㈱, ligatures ﬁ, superscripts ², half-width Hangul. The mapping (ichigen_nfkc_char) was
    generated with Python's unicodedata.normalize('NFKC', ch) for every character in those ranges whose NFKC
    form is a single character, so it agrees with NFKC character for character.

    Returns NULL for NULL and trims surrounding white space (DuckDB's trim: the Unicode space separators); empty
    strings become NULL.

    Speed (DECISIONS.md D190): one regexp decides. Text made only of characters that neither map nor change
    under NFC (ASCII, Latin-1, kana, CJK ideographs, CJK punctuation: ichigen_nfkc_stable) is only trimmed; any
    other text is mapped character by character and NFC-normalised. The map is a fixed offset for full-width
    ASCII and a lookup by position for the rest: DuckDB's translate() rebuilds its table for every string (~5 µs with
    the 173 mapped characters, against ~0.5 µs here), and nfc_normalize on Japanese text costs more than the
    regexp that proves it would change nothing.
-#}
{% macro nfkc(expr) -%}
{%- set text = 'cast(' ~ expr ~ ' as varchar)' -%}
nullif(trim(case
    when regexp_matches({{ text }}, '[^{{ ichigen_nfkc_stable() }}]')
        then nfc_normalize(array_to_string(list_transform(string_split({{ text }}, ''), lambda nfkc_ch: {{ ichigen_nfkc_char('nfkc_ch') }}), ''))
    else {{ text }}
end), '')
{%- endmacro %}

{#- Characters that stay as they are: not mapped by ichigen_nfkc_char, unchanged by NFC, canonical combining class
    0 and never the second character of a canonical composition (so no neighbour can change them either). Checked
    character by character against Python's unicodedata in tests/dbt/test_nfkc_macro.py. -#}
{% macro ichigen_nfkc_stable() -%}
\x{0}-\x{7F}\x{A0}-\x{FF}\x{2010}-\x{2027}\x{3001}-\x{3029}\x{3030}-\x{303F}\x{3041}-\x{3096}\x{309B}-\x{30FF}\x{31F0}-\x{31FF}\x{4E00}-\x{9FFF}
{%- endmacro %}

{#- One character (a one-character string) to its NFKC form within the covered ranges; any other character as is.
    The half-width forms and the signs are looked up by position in a string of their NFKC forms (a position with
    no single-character form holds the character itself). -#}
{% macro ichigen_nfkc_char(ch) -%}
case
    when {{ ch }} between '！' and '～' then chr(unicode({{ ch }}) - 65248)
    when {{ ch }} = '　' then ' '
    when {{ ch }} between '｟' and 'ﾟ' then substr({{ ichigen_nfkc_halfwidth() }}, unicode({{ ch }}) - 65374, 1)
    when {{ ch }} between '￠' and '￮' then substr({{ ichigen_nfkc_signs() }}, unicode({{ ch }}) - 65503, 1)
    else {{ ch }}
end
{%- endmacro %}

{#- U+FF5F-FF9F in order. -#}
{% macro ichigen_nfkc_halfwidth() -%}
{% raw %}'⦅⦆。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン゙゚'{% endraw %}
{%- endmacro %}

{#- U+FFE0-FFEE in order; U+FFE3 ￣ (two characters under NFKC) and the unassigned U+FFE7 stay themselves. -#}
{% macro ichigen_nfkc_signs() -%}
{% raw %}'¢£¬￣¦¥₩￧│←↑→↓■○'{% endraw %}
{%- endmacro %}


{#-
    nfkc_per_distinct(relation, inputs, outputs): nfkc() worked out once per distinct combination of input
    columns, not once per row. A query with one row per distinct `inputs` of `relation`: `_inputs_hash`, the
    hash of the combination, and `nfkc(expression)` as each `outputs` name. Join it back to the rows with
    `per_distinct_match(<this CTE>, <the rows>, inputs)`, which compares that hash with the row's: one 64-bit
    integer per row instead of every input column null-safely (rakuten's buyers, ten columns over 2.2M orders:
    4.4–4.8 → 3.6–3.9 CPU s for the model, DECISIONS.md D242). NULL hashes like any value, so NULL matches
    NULL. Two distinct combinations with the same hash (a few thousand combinations in 2^64) would join a row
    to two records and double it; every model using this tests its key unique, so such a collision fails the
    build instead of passing unseen.

    For a staging model's buyer columns: a buyer's name, e-mail, phone and address repeat on each of their
    orders, and nfkc() was most of a staging order model's compute at 10M order lines (DECISIONS.md D227). The
    work then scales with buyers, not orders; with no repeat buyer at all it costs a distinct and a join more.
    Read the inputs from the model's landed rows (`source`): a superset of the latest versions, cheap to scan.
    The order-lines models do the same for their item texts (SKU, title, options: a few thousand distinct values
    over millions of lines), reading them from the unnested lines, which they declare `as materialized` so that
    the landed items are decoded once for the texts and the rows (DECISIONS.md D240).
-#}
{% macro nfkc_per_distinct(relation, inputs, outputs) -%}
    select
        hash({{ inputs | join(', ') }}) as _inputs_hash,
        {%- for name, expression in outputs.items() %}
        {{ nfkc(expression) }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from (select distinct {{ inputs | join(', ') }} from {{ relation }}) as _distinct_inputs
{%- endmacro %}


{#- The join condition of a row to its nfkc_per_distinct() record: the same hash of the same input columns. -#}
{% macro per_distinct_match(distinct_alias, rows_alias, inputs) -%}
    {{ distinct_alias }}._inputs_hash = hash(
        {%- for column in inputs %}{{ rows_alias }}.{{ column }}{{ ', ' if not loop.last }}{% endfor -%}
    )
{%- endmacro %}
