"""ichigen dashboards: the router. Run with `streamlit run dashboards/app.py`.

Draws what every page shares — the language switch at the top of the sidebar and the published version at
its foot — and runs the page chosen in the menu. The pages are listed in `dashboards/views/__init__.py`.
The data location comes from `ichigen.toml` (`paths.serving`) or `$ICHIGEN_SERVING_PATH`.
"""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from dashboards import data
from dashboards.formatting import jst_timestamp
from dashboards.i18n import language_switch, t
from dashboards.views import PAGES
from ichigen.config import ConfigError


def navigation() -> StreamlitPage:
    pages: dict[str, list] = {}
    for spec in PAGES:
        page = st.Page(spec.path, title=t(spec.title_key), icon=spec.icon, url_path=spec.url_path)
        pages.setdefault(t(spec.section) if spec.section else "", []).append(page)
    return st.navigation(pages if len(pages) > 1 else next(iter(pages.values())), position="sidebar")


def footer() -> None:
    """The published version and time (JST), at the foot of the sidebar."""
    try:
        current = data.published()
    except ConfigError:
        current = None  # the page says why; the footer just has nothing to show
    bar = st.sidebar
    bar.divider()
    if current is None:
        bar.caption(t("footer.not_published"))
    elif current.from_manifest:
        bar.caption(t("footer.version", version=current.version))
        if current.published_at:
            bar.caption(t("footer.published_at", when=jst_timestamp(current.published_at)))
    else:
        bar.caption(t("footer.published_at_mtime", when=jst_timestamp(current.published_at)))


language_switch()  # first, so everything below (the browser tab's title too) speaks the chosen language
st.set_page_config(page_title=t("app.title"), page_icon=":material/storefront:", layout="wide")
navigation().run()
footer()
