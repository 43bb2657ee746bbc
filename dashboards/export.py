"""Downloads people open in Excel: CSV in UTF-8 with a byte-order mark.

Excel on Japanese Windows reads a CSV without a BOM as Shift_JIS (CP932) and garbles every Japanese
character; with the BOM it reads UTF-8. Dates are written `YYYY-MM-DD` and figures as plain integers, so
Excel recognises them and can sum them (the yen formatting is for the screen only).
"""

from __future__ import annotations

import polars as pl

CSV_MIME = "text/csv"


def csv_bytes(frame: pl.DataFrame) -> bytes:
    return frame.write_csv(date_format="%Y-%m-%d", datetime_format="%Y-%m-%d %H:%M:%S").encode("utf-8-sig")


def csv_download_button(frame: pl.DataFrame, file_name: str, label: str | None = None) -> None:
    """The one CSV download every page offers (no rerun on click; the file is built from the shown rows)."""
    import streamlit as st

    from dashboards.i18n import t

    st.download_button(
        label or t("common.download"),
        data=csv_bytes(frame),
        file_name=file_name,
        mime=CSV_MIME,
        on_click="ignore",
        icon=":material/download:",
    )
