"""Every user-facing string of the dashboards, in one ja/en table.

`t(key, **values)` returns the string for the language chosen in the sidebar (`st.session_state["lang"]`),
Japanese by default; `{name}` placeholders are filled from `values`. A page never writes a user-facing
literal of its own: it adds a key here, with both languages (a test checks that every key has both).
"""

from __future__ import annotations

from typing import Final

import streamlit as st

LANGS: Final = ("ja", "en")
DEFAULT_LANG: Final = "ja"
LANG_KEY: Final = "lang"  # session-state key of the language switch
LANG_NAMES: Final = {"ja": "日本語", "en": "English"}

TEXTS: Final[dict[str, dict[str, str]]] = {
    # app shell
    "app.title": {"ja": "ichigen ダッシュボード", "en": "ichigen dashboards"},
    "lang.label": {"ja": "言語 / Language", "en": "言語 / Language"},
    "nav.sales": {"ja": "売上", "en": "Sales"},
    "footer.version": {"ja": "公開バージョン: `{version}`", "en": "Published version: `{version}`"},
    "footer.published_at": {"ja": "公開日時: {when}", "en": "Published at: {when}"},
    "footer.published_at_mtime": {
        "ja": "ファイル更新日時: {when}",
        "en": "File modified at: {when}",
    },
    "footer.not_published": {"ja": "未公開（初回ビルド待ち）", "en": "Not published yet"},
    # serving copy
    "data.not_published.title": {
        "ja": "まだデータが公開されていません",
        "en": "No data has been published yet",
    },
    "data.not_published.body": {
        "ja": "初回のビルドがまだ公開されていません。プロジェクトのフォルダで `make once` を実行すると、"
        "データを取り込み、検証済みのコピーを公開します。公開後にこのページを再読み込みしてください。\n\n"
        "参照先: `{path}`",
        "en": "The first build has not been published yet. Run `make once` in the project folder to ingest "
        "the data and publish a tested copy, then reload this page.\n\nLooking for: `{path}`",
    },
    "data.config_error": {
        "ja": "設定ファイルを読み込めませんでした: {error}",
        "en": "Could not read the configuration: {error}",
    },
    "data.open_error": {
        "ja": "公開データを開けませんでした（`{path}`）: {error}",
        "en": "Could not open the published data (`{path}`): {error}",
    },
    "data.query_error": {
        "ja": "公開データの読み込みに失敗しました: {error}",
        "en": "Reading the published data failed: {error}",
    },
    # shared filters
    "filters.header": {"ja": "絞り込み", "en": "Filters"},
    "filters.period": {"ja": "期間", "en": "Period"},
    "filters.period.7d": {"ja": "過去7日間", "en": "Last 7 days"},
    "filters.period.30d": {"ja": "過去30日間", "en": "Last 30 days"},
    "filters.period.90d": {"ja": "過去90日間", "en": "Last 90 days"},
    "filters.period.custom": {"ja": "期間を指定", "en": "Custom range"},
    "filters.date_range": {"ja": "日付の範囲（日本時間）", "en": "Date range (JST)"},
    "filters.channels": {"ja": "チャネル", "en": "Channels"},
    "filters.channels.placeholder": {"ja": "チャネルを選択", "en": "Choose channels"},
    "filters.no_channels": {
        "ja": "チャネルを1つ以上選択してください。",
        "en": "Choose at least one channel.",
    },
    "filters.summary": {
        "ja": "{start} 〜 {end}（{days}日間、日本時間）　前期間: {prev_start} 〜 {prev_end}",
        "en": "{start} – {end} ({days} days, JST)  ·  previous period: {prev_start} – {prev_end}",
    },
    # channels
    "channel.shopify": {"ja": "自社サイト", "en": "Own site (Shopify)"},
    "channel.rakuten": {"ja": "楽天市場", "en": "Rakuten Ichiba"},
    "channel.amazon": {"ja": "Amazon", "en": "Amazon"},
    "channel.yahoo": {"ja": "Yahoo!ショッピング", "en": "Yahoo! Shopping"},
    "channel.pos": {"ja": "実店舗", "en": "Physical stores"},
    "channel.b2b": {"ja": "卸 (B2B)", "en": "Wholesale (B2B)"},
    # sales page
    "sales.title": {"ja": "売上", "en": "Sales"},
    "sales.caption": {
        "ja": "チャネル別の売上（キャンセルを除く、税込）。データ最終日: {last_day}",
        "en": "Sales by channel (cancelled orders excluded, tax included). Data through: {last_day}",
    },
    "sales.no_data": {
        "ja": "公開データにまだ売上がありません。",
        "en": "The published data holds no sales yet.",
    },
    "sales.metric.gross": {"ja": "売上金額", "en": "Gross sales"},
    "sales.metric.orders": {"ja": "注文数", "en": "Orders"},
    "sales.metric.units": {"ja": "販売点数", "en": "Units sold"},
    "sales.metric.delta_desc": {"ja": "前期間比", "en": "vs previous period"},
    "sales.metric.help": {
        "ja": "前期間（{prev_start} 〜 {prev_end}）: {previous}",
        "en": "Previous period ({prev_start} – {prev_end}): {previous}",
    },
    "sales.chart.title": {"ja": "日別・チャネル別の売上", "en": "Sales by day and channel"},
    "sales.chart.empty": {
        "ja": "選択した期間・チャネルの売上はありません。",
        "en": "No sales in the selected period and channels.",
    },
    "sales.table.expander": {"ja": "明細を表示", "en": "Show the table"},
    "sales.download": {"ja": "CSVをダウンロード", "en": "Download CSV"},
    "sales.col.date": {"ja": "日付", "en": "Date"},
    "sales.col.weekday": {"ja": "曜日", "en": "Weekday"},
    "sales.col.channel_code": {"ja": "チャネルコード", "en": "Channel code"},
    "sales.col.channel": {"ja": "チャネル", "en": "Channel"},
    "sales.col.orders": {"ja": "注文数", "en": "Orders"},
    "sales.col.units": {"ja": "販売点数", "en": "Units"},
    "sales.col.gross": {"ja": "売上金額（円）", "en": "Gross sales (JPY)"},
}

WEEKDAYS: Final = {
    "ja": ("月", "火", "水", "木", "金", "土", "日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def lang() -> str:
    """The language chosen in the sidebar; Japanese when none has been chosen."""
    try:
        value = st.session_state.get(LANG_KEY, DEFAULT_LANG)
    except Exception:  # outside a Streamlit run (plain unit tests)
        value = DEFAULT_LANG
    return value if value in LANGS else DEFAULT_LANG


def t(key: str, /, *, lang_: str | None = None, **values: object) -> str:
    """The string for `key` in the current language (or `lang_`), with `{placeholders}` filled in."""
    entry = TEXTS.get(key)
    if entry is None:
        return key  # visible in the UI and caught by the tests, never a crash
    text = entry.get(lang_ or lang()) or entry[DEFAULT_LANG]
    return text.format(**values) if values else text


def weekday(day_index: int, lang_: str | None = None) -> str:
    """Short weekday name; `day_index` as `date.weekday()` (Monday = 0)."""
    return WEEKDAYS[lang_ or lang()][day_index]


# Widgets whose option labels are translated (see `keep_on_language_change`).
_LOCALISED_WIDGET_KEYS: set[str] = set()


def keep_on_language_change(*keys: str) -> None:
    """Declare widget keys whose *option labels* are translated, so a language switch keeps their value.

    Streamlit sends a radio's or multiselect's value back as the displayed label. After a language switch
    the old label matches no option and Streamlit could reset the widget to its default (losing, say, the
    channels a manager picked). The language switch's callback re-assigns these keys from their current
    values, which Streamlit then shows under the new labels.
    """
    _LOCALISED_WIDGET_KEYS.update(keys)


def _carry_widget_values_over() -> None:
    state = st.session_state
    for key in _LOCALISED_WIDGET_KEYS:
        if key in state:
            state[key] = state[key]


def language_switch() -> str:
    """The sidebar language switch (the app shell calls it before building the navigation)."""
    st.sidebar.radio(
        t("lang.label"),
        options=list(LANGS),
        format_func=LANG_NAMES.__getitem__,
        horizontal=True,
        key=LANG_KEY,
        on_change=_carry_widget_values_over,
        # Kept in the URL as the label (`?lang=English`), so a bookmark or a reload keeps the language;
        # Japanese, the default, leaves the URL clean.
        bind="query-params",
    )
    return lang()


def labels(keys: dict[str, str]) -> dict[str, str]:
    """{value: translated label}, resolved now, for a widget's `format_func=labels(...).__getitem__`.

    A format_func must not look the language up lazily: Streamlit may call it outside the script run.
    """
    return {value: t(key) for value, key in keys.items()}
