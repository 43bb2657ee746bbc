"""Every dashboard page in a real browser: `streamlit run` + headless Debian Chromium through Playwright.

GIVEN a small serving copy in tmp (the same builder as the AppTests, `tests/dashboards/conftest.py`) and the
app started with `streamlit run dashboards/app.py` on a free port, WHEN headless Chromium opens every page (in
Japanese, and one in English), THEN each page draws its title and content, shows no exception and no error
alert, and a full-page screenshot is kept in `var/screenshots/` for people to look at.

`make test` installs Debian's `chromium` and `fonts-noto-cjk` when /usr/bin/chromium is missing; without
them this test fails (it never skips).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "var" / "screenshots"
STARTUP_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 30_000

# (url path, query, expected title, what shows the page's content is drawn); the default page (sales) is at /
PAGES = (
    ("", "", "売上", "[data-testid='stMetricValue']"),
    ("stock", "", "在庫", "[data-testid='stMetricValue']"),
    ("orders", "", "受注", "[data-testid='stMetricValue']"),
    ("sync", "", "同期", "[data-testid='stMetricValue']"),
    ("sql", "", "SQL", "[data-testid='stTextArea']"),
    ("stock", "?lang=English", "Stock", "[data-testid='stMetricValue']"),
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _sample_builder():
    """`tests/dashboards/conftest.py` as a module of its own (no test imports a conftest by name)."""
    spec = importlib.util.spec_from_file_location(
        "ichigen_dashboard_samples", ROOT / "tests" / "dashboards" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    samples = _sample_builder()
    tmp = tmp_path_factory.mktemp("browser")
    serving = samples.write_serving(
        tmp / "serving" / "ichigen.duckdb", samples.sample_rows(samples.today_jst()), version="v-browser"
    )
    port = _free_port()
    env = {**os.environ, "ICHIGEN_SERVING_PATH": str(serving)}
    log = (tmp / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboards" / "app.py"),
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--server.address", "127.0.0.1",
            "--server.port", str(port),
            "--server.fileWatcherType", "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"streamlit exited with {proc.returncode}:\n{(tmp / 'streamlit.log').read_text()}"
                )
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within {STARTUP_TIMEOUT_S} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium and fonts-noto-cjk "
            "(apt-get install -y chromium fonts-noto-cjk)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _settle(page) -> None:
    """Wait until the script run is over (the status widget's running icon gone), then a moment for charts."""
    running = page.locator(
        "[data-testid='stStatusWidgetRunningIcon'], [data-testid='stStatusWidgetRunningManIcon']"
    )
    deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
    while running.count() and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.wait_for_timeout(800)


def _assert_no_error(page, name: str) -> None:
    exceptions = page.locator("[data-testid='stException']")
    errors = page.locator("[data-testid='stAlertContentError']")
    assert exceptions.count() == 0, f"{name}: exception shown: {exceptions.all_inner_texts()}"
    assert errors.count() == 0, f"{name}: error shown: {errors.all_inner_texts()}"
    dialogs = page.get_by_role("dialog")  # e.g. Streamlit's "Page not found"
    assert dialogs.count() == 0, f"{name}: dialog shown: {dialogs.all_inner_texts()}"


def test_every_page_renders_without_errors(app_url: str, browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 2000}, locale="ja-JP")
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        for path, query, title, content in PAGES:
            name = f"{path or 'sales'}{'_en' if query else ''}"
            page.goto(f"{app_url}/{path}{query}")
            page.locator("h1", has_text=title).first.wait_for()
            page.locator(content).first.wait_for()
            _settle(page)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
            _assert_no_error(page, name)

        # The SQL page runs its example query in the browser too.
        page.goto(f"{app_url}/sql")
        page.locator("h1", has_text="SQL").first.wait_for()
        page.get_by_role("button", name="実行").click()
        page.locator("[data-testid='stDataFrame']").first.wait_for()
        _settle(page)
        page.screenshot(path=str(SCREENSHOTS / "sql_result.png"), full_page=True)
        _assert_no_error(page, "sql_result")
        page.get_by_role("tab", name="データ辞書").click()
        page.locator("[data-testid='stExpander']").first.wait_for()
        page.locator("[data-testid='stExpander'] summary").first.click()
        _settle(page)
        page.screenshot(path=str(SCREENSHOTS / "sql_dictionary.png"), full_page=True)
        _assert_no_error(page, "sql_dictionary")

        # The shared filters follow the user from page to page (menu navigation, same session).
        page.goto(app_url)
        page.locator("[data-testid='stMetricValue']").first.wait_for()
        page.get_by_text("過去7日間", exact=True).click()
        _settle(page)
        page.locator("[data-testid='stSidebarNav'] a", has_text="受注").click()
        page.locator("h1", has_text="受注").first.wait_for()
        page.locator("[data-testid='stMetricValue']").first.wait_for()
        _settle(page)
        assert page.get_by_role("radio", name="過去7日間").is_checked()
        page.screenshot(path=str(SCREENSHOTS / "orders_after_filter.png"), full_page=True)
        _assert_no_error(page, "orders_after_filter")
    finally:
        context.close()
