"""The built preview site in headless Chromium, from file:// with no network."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import ROOT

from toolkit.loader import load_repo
from toolkit.site import build_site

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "site"
    repo, load_findings = load_repo(ROOT)
    build_site(repo, load_findings, out)
    return out


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def visit(browser, url: str, shot: Path) -> tuple[object, list[str]]:
    """Open url; return the page and every problem seen: console errors, page errors,
    requests that leave file:// (aborted)."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def route(r) -> None:
        url = r.request.url
        if url.startswith(("file:", "data:", "about:")):
            r.continue_()
        else:
            problems.append(f"network request: {url}")
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    page.screenshot(path=str(shot), full_page=True)
    return page, problems


def check_links(page, site: Path) -> None:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    assert hrefs
    for href in hrefs:
        parsed = urlparse(href)
        if parsed.scheme != "file":
            continue
        target = Path(unquote(parsed.path))
        assert target.is_file(), f"broken link {href}"
        assert site.resolve() in target.resolve().parents


def test_index_opens_offline(browser, site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "index.png"
    page, problems = visit(browser, (site / "index.html").as_uri(), shot)
    assert problems == []
    text = page.inner_text("body")
    assert "Previews use synthetic personas only" in text
    assert "Valley Health News, spring edition" in text
    assert page.locator("table.campaigns tbody tr").count() == len(
        [p for p in (ROOT / "campaigns").iterdir() if p.is_dir()])
    assert shot.stat().st_size > 20_000  # a blank page is a few KB
    check_links(page, site)
    page.close()


def test_campaign_page_shows_the_message(browser, site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "campaign.png"
    page, problems = visit(browser, (site / "campaigns" / "spring-newsletter.html").as_uri(), shot)
    assert problems == []
    assert "Text version" in page.inner_text("body")
    frames = [f for f in page.frames if f != page.main_frame]
    assert len(frames) >= 2
    for frame in frames:  # desktop and mobile renders of the message
        assert "Valley Health News" in frame.inner_text("body")
    desktop = page.locator("iframe.desktop").first.bounding_box()
    mobile = page.locator("iframe.mobile").first.bounding_box()
    assert desktop and mobile and desktop["width"] > mobile["width"]
    assert shot.stat().st_size > 50_000
    check_links(page, site)
    page.close()


def test_a_rule_page_opens(browser, site: Path, tmp_path: Path) -> None:
    page, problems = visit(browser, (site / "rules" / "CFG-001.html").as_uri(),
                           tmp_path / "rule.png")
    assert problems == []
    assert "CFG-001" in page.inner_text("h1")
    check_links(page, site)
    page.close()


def test_remote_resource_would_be_caught(browser, tmp_path: Path) -> None:
    """The harness itself: a page that loads from the network must fail the checks."""
    page_file = tmp_path / "bad.html"
    page_file.write_text('<!doctype html><p>x</p><img src="http://127.0.0.1:9/x.png">',
                         encoding="utf-8")
    page, problems = visit(browser, page_file.as_uri(), tmp_path / "bad.png")
    assert any(p.startswith("network request: http://127.0.0.1:9/x.png") for p in problems)
    page.close()
