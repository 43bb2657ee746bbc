"""The dashboard pages, in menu order. `dashboards/app.py` builds `st.navigation` from this list.

Why `views/` and not `pages/`: a folder named `pages/` beside the entrypoint switches Streamlit into its
legacy multipage mode (`PagesManager.uses_pages_directory`): until the first `st.navigation` call of the
process — and on *every* run under `AppTest`, which resets that flag — Streamlit wraps the entrypoint in an
automatic navigation built from `pages/*.py` and, when the requested URL matches a file name, runs that file
*instead of* `app.py` (no language switch, no footer, no router). With `views/` the router always runs.

Adding a page: write `dashboards/views/<name>.py` (a script that draws the page; shared filters come from
`dashboards.filters`, data from `dashboards.data`, strings from `dashboards.i18n`), add its title key to the
i18n table, add a `PageSpec` here, and give it an AppTest in `tests/dashboards/`. A test checks that every
file in this folder is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VIEWS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PageSpec:
    file: str  # file name in dashboards/views/
    title_key: str  # i18n key of the menu entry
    icon: str  # Material Symbol, e.g. ":material/bar_chart:"
    url_path: str  # stable across languages, so switching language keeps the page
    section: str | None = None  # i18n key of a menu section; None: no section

    @property
    def path(self) -> Path:
        return VIEWS_DIR / self.file


PAGES: tuple[PageSpec, ...] = (
    PageSpec("sales.py", "nav.sales", ":material/bar_chart:", "sales"),
    PageSpec("stock.py", "nav.stock", ":material/inventory_2:", "stock"),
    PageSpec("orders.py", "nav.orders", ":material/receipt_long:", "orders"),
    PageSpec("customers.py", "nav.customers", ":material/group:", "customers"),
    PageSpec("sync.py", "nav.sync", ":material/sync:", "sync"),
    PageSpec("sql.py", "nav.sql", ":material/terminal:", "sql"),
)
