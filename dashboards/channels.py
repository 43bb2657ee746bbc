"""Sales channels as the dashboards show them: display order, names (ja/en) and chart colours."""

from __future__ import annotations

from collections.abc import Iterable

from dashboards.i18n import TEXTS, t

# Display order; a channel the marts hold but this list does not know sorts after these, by slug.
ORDER: tuple[str, ...] = ("shopify", "rakuten", "amazon", "yahoo", "pos", "b2b")

# One colour per channel, stable whatever the filter, so a channel keeps its colour on every chart.
COLORS: dict[str, str] = {
    "shopify": "#5B8C3A",
    "rakuten": "#BF0000",
    "amazon": "#FF9900",
    "yahoo": "#7B3FA0",
    "pos": "#2F6DB5",
    "b2b": "#6B6B6B",
}
_FALLBACK_COLORS = ("#17BECF", "#BCBD22", "#8C564B", "#E377C2", "#7F7F7F")


def name(slug: str, lang_: str | None = None) -> str:
    """Display name, e.g. `rakuten` → 楽天市場; an unknown slug is shown as it is."""
    key = f"channel.{slug}"
    return t(key, lang_=lang_) if key in TEXTS else slug


def ordered(slugs: Iterable[str]) -> list[str]:
    known = {s: i for i, s in enumerate(ORDER)}
    return sorted(set(slugs), key=lambda s: (known.get(s, len(known)), s))


def color(slug: str) -> str:
    if slug in COLORS:
        return COLORS[slug]
    return _FALLBACK_COLORS[sum(map(ord, slug)) % len(_FALLBACK_COLORS)]
