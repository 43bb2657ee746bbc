{#-
    Shared by the staging models of the file sources (pos, b2b, carrier), landed by ingestion.files.

    file_lineage_columns(): the landing columns saying where a row came from, typed.
    newest_file(key_columns): a `qualify` keeping, per key, every row of the newest file holding that key —
    a re-sent file (a corrected POS day, a revised purchase order) replaces the older file's rows as a whole,
    lines that disappeared included. Ties on the landing time are broken by the file's mtime, name and hash,
    so one file wins deterministically.
-#}
{% macro file_lineage_columns() -%}
        cast(file_name as varchar)                      as file_name,
        cast(file_row as bigint)                        as file_row,
        cast(file_sha256 as varchar)                    as file_sha256,
        cast(file_modified_at as timestamptz)           as file_modified_at,
        cast(_batch_id as varchar)                      as _batch_id,
        cast(_fetched_at as timestamptz)                as _fetched_at
{%- endmacro %}


{% macro newest_file(key_columns) -%}
qualify dense_rank() over (
    partition by {{ key_columns | join(', ') }}
    order by _fetched_at desc, file_modified_at desc, file_name desc, file_sha256 desc
) = 1
{%- endmacro %}
