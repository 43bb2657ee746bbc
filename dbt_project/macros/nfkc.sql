{#-
    NFKC-style normalisation of text in DuckDB.

    DuckDB 2.0 ships `nfc_normalize` and `strip_accents` but no NFKC function, and we load no extension
    beyond parquet/json/icu and register no Python UDF (the serving copy must be readable by any DuckDB).
    So this macro implements the part of NFKC that matters for Japanese commerce data, exactly as NFKC does:

      * full-width ASCII (U+FF01-FF5E: ＡＢＣ１２３－＠) -> ASCII, ideographic space (U+3000) -> ' '
      * half-width katakana and punctuation (U+FF61-FF9F: ｶﾞｷﾞｰ｡｢｣) -> full-width; the half-width sound
        marks ﾞ/ﾟ become the combining marks U+3099/U+309A, and `nfc_normalize` then composes
        カ + U+3099 -> ガ, just as NFKC would
      * full-width signs U+FFE0-FFEE (￥￠￡￢￤ and the half-width arrows/box) -> their compatibility
        characters

    Not covered (multi-character or rarely seen compatibility forms): circled digits ①, squared words ㌔,
    parenthesised ㈱, ligatures ﬁ, superscripts ², half-width Hangul. The mapping tables below were generated
    with Python's unicodedata.normalize('NFKC', ch) for every character in those ranges whose NFKC form is a
    single character, so they agree with NFKC character for character.

    Returns NULL for NULL and trims surrounding white space; empty strings become NULL.

    Speed: DuckDB's translate() with a 220-character table costs ~13 µs a string (13 s per million), so it
    only runs on strings that contain a character of those ranges (a regexp test, ~0.2 µs); plain text
    takes the fast path.
-#}
{% macro nfkc(expr) -%}
{%- set text = 'cast(' ~ expr ~ ' as varchar)' -%}
nullif(trim(nfc_normalize(case
    when regexp_matches({{ text }}, '[\x{3000}\x{FF01}-\x{FFEE}]')
        then translate({{ text }}, {{ ichigen_nfkc_from() }}, {{ ichigen_nfkc_to() }})
    else {{ text }}
end)), '')
{%- endmacro %}

{% macro ichigen_nfkc_from() -%}
{% raw %}'！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～｟｠｡｢｣､･ｦｧｨｩｪｫｬｭｮｯｰｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝﾞﾟ￠￡￢￤￥￦￨￩￪￫￬￭￮　'{% endraw %}
{%- endmacro %}

{% macro ichigen_nfkc_to() -%}
{% raw %}'!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~⦅⦆。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン゙゚¢£¬¦¥₩│←↑→↓■○ '{% endraw %}
{%- endmacro %}
