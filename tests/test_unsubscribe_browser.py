"""A person in a real browser (headless Chromium): open the link, choose, press the button."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from unsubscribe_helpers import AUDIT_KEY, SECRET, scaffold_repo, serve, store_of

from toolkit.pseudonym import pseudonym
from toolkit.tokens import make_token
from toolkit.unsubscribe import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PSEUDO = pseudonym("pat.doe@example.org", AUDIT_KEY)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.mark.parametrize("label,kind,sentence", [
    (None, "commercial", "Example Clinic will send you no more promotional email."),
    ("Stop all email from Example Clinic", "all", "Example Clinic will send you no more email."),
])
def test_open_choose_press_confirm(browser: Browser, tmp_path: Path, label: str | None,
                                   kind: str, sentence: str) -> None:
    repo = scaffold_repo(tmp_path / "repo")
    token = make_token(SECRET, pseudonym=PSEUDO, campaign="spring-checkup", kind="commercial")
    with serve(create_app(repo, secrets=[SECRET])) as base:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{base}/unsubscribe/{token}")

        assert page.locator("h1").inner_text() == "Unsubscribe from Example Clinic email"
        default = page.get_by_label("Stop promotional email from Example Clinic")
        assert default.is_checked()
        # the hashed inline style applied: CSP let it through, and nothing else was loaded
        button = page.get_by_role("button", name="Unsubscribe")
        assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(11, 87, 208)"
        assert page.evaluate("document.scripts.length") == 0
        with store_of(repo) as store:
            assert store.list() == []  # opening the page changed nothing

        if label:
            page.get_by_label(label).check()
        button.click()
        page.get_by_role("heading", name="You are unsubscribed").wait_for()

        assert page.locator("h1").inner_text() == "You are unsubscribed"
        assert page.title() == "Unsubscribed – Example Clinic"
        assert sentence in page.locator("main").inner_text()
        assert problems == []
        page.close()
    with store_of(repo) as store:
        assert [(e.pseudonym, e.kind, e.source) for e in store.list()] == [
            (PSEUDO, kind, "unsubscribe-page:spring-checkup")]


def test_altered_link_shows_the_error_page(browser: Browser, tmp_path: Path) -> None:
    repo = scaffold_repo(tmp_path / "repo")
    token = make_token(SECRET, pseudonym=PSEUDO, campaign="spring-checkup", kind="commercial")
    with serve(create_app(repo, secrets=[SECRET])) as base:
        page = browser.new_page()
        response = page.goto(f"{base}/unsubscribe/{token.replace('.commercial.', '.all.')}")
        assert response is not None and response.status == 400
        assert page.locator("h1").inner_text() == "This unsubscribe link is not valid"
        assert page.get_by_role("button").count() == 0
        page.close()
    with store_of(repo) as store:
        assert store.list() == []


def test_keyboard_alone_can_choose_and_submit(browser: Browser, tmp_path: Path) -> None:
    repo = scaffold_repo(tmp_path / "repo")
    token = make_token(SECRET, pseudonym=PSEUDO, campaign="spring-checkup", kind="fundraising")
    with serve(create_app(repo, secrets=[SECRET])) as base:
        page = browser.new_page()
        page.goto(f"{base}/unsubscribe/{token}")
        page.keyboard.press("Tab")       # focus lands on the checked radio of the group
        assert page.evaluate("document.activeElement.id") == "choice-kind"
        page.keyboard.press("ArrowDown")  # moves the choice to "Stop all email"
        assert page.get_by_label("Stop all email from Example Clinic").is_checked()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Unsubscribe"
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="You are unsubscribed").wait_for()
        page.close()
    with store_of(repo) as store:
        assert [(e.kind, e.source) for e in store.list()] == [
            ("all", "unsubscribe-page:spring-checkup")]
