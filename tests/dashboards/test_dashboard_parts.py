"""The small parts the pages stand on: strings, formats, periods, channels, CSV, the page list."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from dashboards import channels, filters, formatting, i18n
from dashboards.export import csv_bytes
from dashboards.views import PAGES, VIEWS_DIR

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_every_string_exists_in_japanese_and_english_with_the_same_placeholders() -> None:
    for key, entry in i18n.TEXTS.items():
        assert set(entry) == set(i18n.LANGS), key
        assert all(entry[lang].strip() for lang in i18n.LANGS), key
        assert set(PLACEHOLDER.findall(entry["ja"])) == set(PLACEHOLDER.findall(entry["en"])), key


def test_every_key_the_dashboards_use_is_in_the_table() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in Path(i18n.__file__).parent.rglob("*.py"))
    used = set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", source))
    used |= {spec.title_key for spec in PAGES}
    used |= {f"filters.period.{choice}" for choice in filters.PERIOD_CHOICES}
    used |= {f"channel.{slug}" for slug in channels.ORDER}
    assert used - set(i18n.TEXTS) == set()


def test_japanese_is_the_default_language() -> None:
    assert i18n.DEFAULT_LANG == "ja" and i18n.LANGS[0] == "ja"
    assert i18n.t("sales.title") == "売上"  # outside a Streamlit run: the default
    assert i18n.t("sales.title", lang_="en") == "Sales"
    assert i18n.t("no.such.key") == "no.such.key"


def test_every_view_file_is_in_the_page_list() -> None:
    files = {p.name for p in VIEWS_DIR.glob("*.py") if p.name != "__init__.py"}
    assert files == {spec.file for spec in PAGES}
    assert len({spec.url_path for spec in PAGES}) == len(PAGES)
    assert all(spec.path.is_file() for spec in PAGES)
    # A folder named pages/ beside app.py would switch Streamlit into its legacy multipage mode.
    assert not (VIEWS_DIR.parent / "pages").exists()


@pytest.mark.parametrize(
    ("slug", "ja", "en"),
    [
        ("shopify", "自社サイト", "Own site (Shopify)"),
        ("rakuten", "楽天市場", "Rakuten Ichiba"),
        ("amazon", "Amazon", "Amazon"),
        ("yahoo", "Yahoo!ショッピング", "Yahoo! Shopping"),
        ("pos", "実店舗", "Physical stores"),
        ("b2b", "卸 (B2B)", "Wholesale (B2B)"),
        ("newmall", "newmall", "newmall"),
    ],
)
def test_channel_names(slug: str, ja: str, en: str) -> None:
    assert channels.name(slug, "ja") == ja
    assert channels.name(slug, "en") == en
    assert channels.color(slug).startswith("#")


def test_channels_sort_in_display_order_unknown_last() -> None:
    assert channels.ordered(["b2b", "zzz", "rakuten", "shopify", "aaa"]) == [
        "shopify",
        "rakuten",
        "b2b",
        "aaa",
        "zzz",
    ]


def test_yen_counts_and_deltas() -> None:
    assert formatting.yen(1234567) == "¥1,234,567"
    assert formatting.yen(0) == "¥0"
    assert formatting.yen(-1234) == "-¥1,234"
    assert formatting.count(1234) == "1,234"
    assert formatting.delta(110, 100, money=True) == "+¥10 (+10.0%)"
    assert formatting.delta(90, 100) == "-10 (-10.0%)"
    assert formatting.delta(5, 0) == "+5"
    assert formatting.delta(7, 7) == "±0"


def test_dates_and_times_are_shown_in_jst() -> None:
    assert formatting.day(date(2026, 11, 20), "ja") == "2026/11/20"
    assert formatting.day(date(2026, 11, 20), "en") == "2026-11-20"
    assert formatting.day_with_weekday(date(2026, 11, 20), "ja") == "2026/11/20 (金)"
    # 15:30 UTC on the 23rd is 00:30 on the 24th in Japan
    assert formatting.jst_timestamp(datetime(2026, 11, 23, 15, 30, tzinfo=UTC)) == "2026/11/24 00:30 JST"
    assert formatting.jst_timestamp(datetime(2026, 11, 23, 15, 30)) == "2026/11/24 00:30 JST"  # naive = UTC


def test_periods_and_their_previous_periods() -> None:
    today = date(2026, 11, 24)
    week = filters.period_for("7d", None, today)
    assert (week.start, week.end, week.days) == (date(2026, 11, 18), today, 7)
    assert week.previous() == filters.Period(date(2026, 11, 11), date(2026, 11, 17))
    assert filters.period_for("90d", None, today).days == 90
    custom = filters.period_for("custom", (date(2026, 11, 3), date(2026, 11, 1)), today)
    assert custom == filters.Period(date(2026, 11, 1), date(2026, 11, 3))
    assert custom.previous() == filters.Period(date(2026, 10, 29), date(2026, 10, 31))
    # While a range is being picked the widget holds one date: that day alone.
    assert filters.period_for("custom", (date(2026, 11, 5),), today) == filters.Period(
        date(2026, 11, 5), date(2026, 11, 5)
    )


def test_csv_for_excel_is_utf8_with_bom() -> None:
    frame = pl.DataFrame(
        {"日付": [date(2026, 11, 20)], "チャネル": ["楽天市場"], "売上金額（円）": [1234567]}
    )
    raw = csv_bytes(frame)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [["日付", "チャネル", "売上金額（円）"], ["2026-11-20", "楽天市場", "1234567"]]
