{#-
    latest_version(relation, key_columns, updated_at='updated_at', columns='*', where=none)

    A query keeping one row per key of `relation`: the latest version. The ingest look-back re-lands recent
    records by design (DECISIONS.md D4), so every staging model over the landing zone de-duplicates. Ties on the
    source's updated_at are broken by the fetch time, then by batch id (deterministic). `columns` is the select
    list (the key and ordering columns need not be in it), `where` an optional filter applied before the choice.

    Most keys are landed once, and ranking every row to find that out was most of a staging model's time at 10M
    order lines (DECISIONS.md D224). So the keys landed more than once are found first (an aggregate over the
    key columns alone); the rows of the other keys pass as they are, and only the repeated keys' rows are
    ranked. Same rows as ranking everything, NULL keys included (`is not distinct from`).

    `relation` is read three times: name an import CTE declared `as not materialized` (each read is then a
    scan of the files, cheaper than holding every row in memory, D194). The three reads must see the same rows:
    `source_or_empty` pins the landed files when the model is compiled, and the build holds the landing lock,
    so no file goes away in between (D160).
-#}
{% macro latest_version(relation, key_columns, updated_at='updated_at', columns='*', where=none) -%}
{%- set keys = key_columns | join(', ') -%}
{%- set same_key = null_safe_match('_landed', '_repeated', key_columns) -%}
{%- set filter = ('where ' ~ where) if where else '' -%}
    with _repeated as (
        select {{ keys }} from {{ relation }} {{ filter }} group by {{ keys }} having count(*) > 1
    )
    select {{ columns }}
    from {{ relation }} as _landed
    anti join _repeated on {{ same_key }}
    {{ filter }}
    union all
    select * from (
        select {{ columns }}
        from {{ relation }} as _landed
        semi join _repeated on {{ same_key }}
        {{ filter }}
        qualify row_number() over (
            partition by {{ keys }}
            order by {{ updated_at }} desc nulls last, _fetched_at desc nulls last, _batch_id desc
        ) = 1
    )
{%- endmacro %}
