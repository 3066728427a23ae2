"""`campaign build`: the preview site is complete, self-contained and byte-for-byte reproducible."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ROOT, run_campaign

from toolkit.rules import RULES
from toolkit.site import slug

SCAFFOLD = ROOT / "toolkit" / "scaffold"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    res = run_campaign("build", "--out", str(out), root=ROOT)
    assert res.returncode in (0, 1), res.stderr
    assert f"open {out / 'index.html'}" in res.stdout
    return out


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_build_twice_gives_identical_bytes(site: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    res = run_campaign("build", "--out", str(again), root=ROOT)
    assert res.returncode in (0, 1), res.stderr
    first, second = files(site), files(again)
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []


def test_site_has_every_page(site: Path) -> None:
    names = set(files(site))
    campaigns = sorted(p.name for p in (ROOT / "campaigns").iterdir() if p.is_dir())
    assert {"index.html", "rules/index.html"} <= names
    assert {f"campaigns/{c}.html" for c in campaigns} <= names
    assert {f"rules/{r}.html" for r in RULES} <= names


def test_index_lists_every_campaign(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Previews use synthetic personas only" in index
    assert ('<a href="campaigns/spring-newsletter.html">Valley Health News, spring edition</a>'
            in index)
    row = index[index.index('id="c-annual-appeal"'):]
    row = row[: row.index("</tr>")]
    for text in ("fundraising (164.514(f))", "grateful-patients", "giving@valleyhealth.example.org",
                 "Help us care for our community", "Your gift supports care close to home",
                 "not approved", "missing: legal"):
        assert text in row
    assert re.search(r"<td>no</td>", row)  # fundraising is not commercial


def test_campaign_page_shows_message_text_headers_and_findings(site: Path) -> None:
    page = (site / "campaigns" / "partner-fitness-offer.html").read_text(encoding="utf-8")
    assert page.count("<iframe") >= 2
    assert 'class="desktop"' in page and 'class="mobile"' in page
    assert "srcdoc=" in page
    assert "Text version" in page
    assert "See the offer (https://valleyhealth.example.org/partners/riverside-fitness)" in page
    assert "From: Valley Health &lt;care@valleyhealth.example.org&gt;" in page
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in page
    assert 'id="findings"' in page
    assert "required: scope <strong>partner-offers</strong>" in page
    assert "Who: age at least 18 and not deceased" in page
    assert "<code>first_name</code>" in page
    assert "Persona <code>" in page and "synthetic" in page


class _Refs(HTMLParser):
    """Every resource a page (or an iframe's srcdoc) would load, and every link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[str] = []
        self.links: list[str] = []
        self.css: list[str] = []
        self.docs: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("src", "srcset", "background", "poster", "data"):
            if key in a:
                self.loads.append(a[key])
        if tag == "link":
            self.loads.append(a.get("href", ""))
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if "style" in a:
            self.css.append(a["style"])
        if "srcdoc" in a:
            self.docs.append(a["srcdoc"])
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def refs(html: str) -> list[_Refs]:
    p = _Refs()
    p.feed(html)
    out = [p]
    for doc in p.docs:
        out += refs(doc)
    return out


def test_nothing_is_loaded_from_the_network(site: Path) -> None:
    remote = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
    for rel, data in files(site).items():
        if not rel.endswith(".html"):
            continue
        for r in refs(data.decode("utf-8")):
            assert [u for u in r.loads if remote.match(u)] == [], rel
            for css in r.css:
                assert "@import" not in css, rel
                assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", css, re.IGNORECASE), rel


def test_internal_links_resolve(site: Path) -> None:
    for path in site.rglob("*.html"):
        for r in refs(path.read_text(encoding="utf-8"))[:1]:
            for href in r.links:
                if re.match(r"^[a-z]+:", href) or href.startswith("#"):
                    continue
                target = (path.parent / href.split("#")[0]).resolve()
                assert target.is_file(), f"{path.relative_to(site)} links to missing {href}"


def test_eml_downloads_are_complete_messages(site: Path) -> None:
    emls = sorted((site / "messages").rglob("*.eml"))
    assert emls
    raw = emls[0].read_bytes()
    assert raw.startswith(b"From: ") and b"\r\n\r\n--=_" in raw


@pytest.fixture
def broken_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    t = root / "templates" / "appointment-reminder.mjml"
    t.write_text(t.read_text(encoding="utf-8").replace("<mj-section>", "<mj-column>", 1)
                 .replace("</mj-section>", "</mj-column>", 1), encoding="utf-8")
    return root


def test_build_with_lint_errors_writes_the_site_and_exits_1(broken_repo: Path) -> None:
    res = run_campaign("build", root=broken_repo)
    assert res.returncode == 1
    assert "lint found errors: see the site or run `campaign lint`" in res.stderr
    page = (broken_repo / "site" / "campaigns" / "appointment-reminder.html").read_text(
        encoding="utf-8")
    assert "MJML: &lt;mj-column&gt; cannot be inside &lt;mj-body&gt;" in page
    assert "templates/appointment-reminder.mjml:6:5" in page
    assert f"Fix: {RULES['CFG-001'].fix}" in page
    index = (broken_repo / "site" / "index.html").read_text(encoding="utf-8")
    assert '<span class="count error" title="errors">2 errors</span>' in index


def test_build_clean_scaffold_exits_0_and_replaces_its_own_site(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    first = run_campaign("build", root=root)
    assert first.returncode == 0, first.stdout + first.stderr
    (root / "site" / "campaigns" / "stale.html").write_text("old", encoding="utf-8")
    again = run_campaign("build", root=root)
    assert again.returncode == 0
    assert not (root / "site" / "campaigns" / "stale.html").exists()


def test_build_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    res = run_campaign("build", "--out", str(tmp_path / "mine"), root=root)
    assert res.returncode == 2
    assert "is not empty and was not written by `campaign build`" in res.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_build_rejects_a_bad_time(tmp_path: Path) -> None:
    res = run_campaign("build", "--at", "next tuesday", root=SCAFFOLD)
    assert res.returncode == 2
    assert "--at: 'next tuesday' is not an ISO-8601 time" in res.stderr


def test_segments_in_plain_words() -> None:
    from toolkit.loader import load_repo
    from toolkit.site.words import describe

    repo, _ = load_repo(ROOT)
    words = {sid: describe(s.where) for sid, s in repo.segments.items()}
    assert words["adults-65-plus"] == "age at least 65 and care status is active and not deceased"
    assert words["diabetes-adults"] == (
        "age at least 18 and care status is active and "
        "(conditions includes E11 or conditions includes E10) and not deceased")
    assert words["refill-due"] == (
        "current prescription is known and refill due date within 10 days of the send date "
        "(before or after) and not deceased")
    assert describe(None) == "everyone in the contact source"


def test_inline_stylesheet_is_not_html_escaped(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    style = index[index.index("<style>"): index.index("</style>")]
    assert 'font-family: "Segoe UI"' in style
    assert "&#34;" not in style and "&quot;" not in style


def test_persona_names_cannot_escape_the_site(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    personas = root / "fixtures" / "personas.yaml"
    personas.write_text(personas.read_text(encoding="utf-8").replace("alex:", '"../../x y":'),
                        encoding="utf-8")
    res = run_campaign("build", root=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert slug("../../x y") == "_.._x_y"
    assert (root / "site" / "messages" / "appointment-reminder" / "_.._x_y.eml").is_file()
    assert not (tmp_path / "x y.eml").exists()
    page = (root / "site" / "campaigns" / "appointment-reminder.html").read_text(encoding="utf-8")
    assert 'href="../messages/appointment-reminder/_.._x_y.eml"' in page
