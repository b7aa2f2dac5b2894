import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fedsim.report import render_report
from fedsim.report.html import write_html
from fedsim.results import ClientRecord, save_run
from tests.report.test_render import DP_RUN, finished

SCRIPT = "<script>alert(1)</script>"
SCENARIO = f'x{SCRIPT} & "q" | y'
USERS = [SCRIPT, 'A&B "c" | d']
TIER = "t|<b>[x](http://e.org)</b>"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def hostile_run(tmp_path):
    """A finished DP run whose scenario, tier, user and class names all carry markup."""
    result = finished(
        **{
            **DP_RUN,
            "scenario": SCENARIO,
            "dataset": "kjv",
            "model": "lstm",
            "partitioner": "natural-id",
            "client_users": USERS,
            "class_names": ["<", "&"],
        }
    )
    result.clients = [ClientRecord(c.client, c.examples, 1, 1.5, 1.1, 0.1, tier=TIER) for c in result.clients]
    return save_run(result, tmp_path / "run")


class Page(HTMLParser):
    """Every start tag with its attributes, and each table cell's text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.cells, self._cell = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_user_strings_are_escaped_and_images_embedded(tmp_path):
    # Arrange
    out = hostile_run(tmp_path)
    # Act
    render_report(out)
    text = (out / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    # Assert: no script element; the strings shown as text, each in its own cell
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "x&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; | y" in text  # heading and cell
    assert SCENARIO in page.cells and set(USERS) <= set(page.cells) and TIER in page.cells
    assert "<title>fedsim report: x&lt;script&gt;" in text
    # every image a PNG data URI; no link, URL or local file anywhere
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 3
    assert all(attrs["src"].startswith("data:image/png;base64,iVBORw0KGgo") for attrs in images)
    assert not [attrs for _, attrs in page.tags if "href" in attrs]
    assert {tag for tag, _ in page.tags} <= {"html", "head", "meta", "title", "style", "body"} | {
        "h1", "h2", "h3", "p", "ul", "li", "strong", "em", "code", "img",
        "table", "thead", "tbody", "tr", "th", "td",
    }  # fmt: skip
    assert not [v for _, attrs in page.tags for v in attrs.values() if v and ("http" in v or ".png" in v)]
    assert "<a " not in text and "<p>Resolved scenario: scenario.toml." in text


def test_missing_or_outside_image_is_an_error(tmp_path):
    # Arrange
    out = tmp_path / "r.html"
    # Act / Assert
    with pytest.raises(FileNotFoundError, match="'plot.png' not found"):
        write_html("![p](plot.png)", out_path=out, base_dir=tmp_path, title="t")
    for src in ("http://e.org/p.png", "//e.org/p.png", "/etc/p.png", "../p.png", "data:image/png;base64,AA"):
        with pytest.raises(ValueError, match="image"):
            write_html(f"![p]({src})", out_path=out, base_dir=tmp_path, title="t")
    assert not out.exists()
    # schemes markdown-it refuses stay text
    page = write_html("![p](file:///p.png)", out_path=out, base_dir=tmp_path, title="t").read_text()
    assert "<img" not in page and "![p](file:///p.png)" in page


@pytest.fixture
def chrome(monkeypatch):
    """Headless Chromium through the Debian chromedriver; Selenium Manager never downloads."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (the test extra)")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/install.sh (as root for chromium)")
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
        "--disable-component-update --disable-default-apps --disable-sync --no-first-run "
        "--disable-dev-shm-usage"
    ).split():
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


CHECKS = """
const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
return {
  images: [...document.images].map((i) => [i.complete, i.naturalWidth, i.src.slice(0, 22)]),
  headers: [...document.querySelectorAll("th")].filter(visible).map((e) => e.innerText.trim()),
  cells: [...document.querySelectorAll("td")].map((e) => e.innerText.trim()),
  heading: document.querySelector("h1").innerText,
  scripts: document.scripts.length,
  alerts: window.__alerts,
  links: document.links.length,
  fetched: performance.getEntriesByType("resource").map((e) => e.name),
};
"""


def test_report_html_in_headless_chromium(tmp_path, chrome):
    # Arrange: record any alert() instead of opening a dialog
    out = hostile_run(tmp_path)
    render_report(out)
    chrome.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"},
    )
    # Act
    start = time.perf_counter()
    chrome.get((out / "report.html").as_uri())
    seen = chrome.execute_script(CHECKS)
    elapsed_s = time.perf_counter() - start
    # Assert: three embedded plots, all decoded
    assert len(seen["images"]) == 3
    assert all(done and width > 0 and src == "data:image/png;base64," for done, width, src in seen["images"])
    # the tables, with their headers shown
    assert {"test accuracy", "scenario", "client", "user", "tier", "ε spent"} <= set(seen["headers"])
    # the injected markup displayed as text, never run; nothing linked or fetched
    assert seen["heading"] == f"fedsim report: {SCENARIO}"
    assert SCENARIO in seen["cells"] and SCRIPT in seen["cells"] and TIER in seen["cells"]
    assert seen["scripts"] == 0 and seen["alerts"] == [] and seen["links"] == 0
    assert seen["fetched"] == []
    assert elapsed_s < 30
