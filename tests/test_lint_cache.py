"""The lint cache (toolkit/lint_cache.py, docs/lint.md "Cache"): every kind of input,
changed alone, changes the findings through the cache exactly as a fresh lint does; the
send gate never reads the cache; a broken cache file is a miss, never an error."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from rule_helpers import CAMPAIGN_FILE, make_repo

from toolkit import lint_cache
from toolkit.findings import Finding
from toolkit.lint import run_lint
from toolkit.lint_cache import CACHE_FILE, LintCache, source_digest, toolkit_digest
from toolkit.loader import load_repo

APPEAL = "campaigns/annual-appeal/campaign.yaml"

# The scaffold plus a fundraising campaign with its own template and segment: two
# campaigns that share nothing but toolkit.yaml, policy, personas and the footer.
APPEAL_FILES = {
    APPEAL: (
        "title: Annual appeal\npurpose: fundraising\nsender: clinic\n"
        'subject: "Support {{ organization.name }}"\ntemplate: appeal\nsegment: donors\n'
        "phi_fields: [first_name, language]\n"
    ),
    "templates/appeal.mjml": (
        '<mjml lang="en">\n  <mj-body>\n    <mj-section>\n      <mj-column>\n'
        "        <mj-text>Dear {{ contact.first_name }}, thank you for your support.</mj-text>\n"
        '        {% if contact.language == "en" %}<mj-text><a href="{{ unsubscribe_url }}">'
        "Opt out of fundraising messages</a></mj-text>{% endif %}\n"
        "      </mj-column>\n    </mj-section>\n"
        '    {% include "partials/footer.mjml" %}\n  </mj-body>\n</mjml>\n'
    ),
    "segments/donors.yaml": 'description: Adults\nwhere: {field: age, op: ">=", value: 18}\n',
}


def _key(findings: list[Finding] | tuple[Finding, ...]) -> list[tuple[object, ...]]:
    return [(f.rule, f.file, f.line, f.column, f.message, str(f.severity), f.campaign,
             f.waived) for f in findings]


def fresh(root: Path) -> list[tuple[object, ...]]:
    repo, load_findings = load_repo(root)
    return _key(run_lint(repo, load_findings).findings)


def cached(root: Path) -> tuple[list[tuple[object, ...]], LintCache]:
    repo, load_findings = load_repo(root)
    cache = LintCache.for_repo(repo)
    return _key(run_lint(repo, load_findings, cache=cache).findings), cache


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_repo(tmp_path, APPEAL_FILES)
    first, cache = cached(root)
    assert (cache.hits, cache.misses) == (0, 2)
    assert first == fresh(root)
    again, cache = cached(root)
    assert (cache.hits, cache.misses) == (2, 0)
    assert again == first
    return root


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# (input, file, old, new, rule that appears, campaigns linted again)
CHANGES = [
    ("campaign file", CAMPAIGN_FILE, 'subject: "Your upcoming visit at {{ organization.name }}"',
     'subject: "Visit ({{ contact.language }})"', "HIPAA-MIN-001", 1),
    ("segment", "segments/donors.yaml", '{field: age, op: ">=", value: 18}',
     '{field: care_status, op: "==", value: active}', "HIPAA-FR-001", 1),
    ("template", "templates/appointment-reminder.mjml", "Hello {{ contact.first_name }},",
     "Hello {{ contact.first_name }} ({{ contact.age }}),", "HIPAA-MIN-001", 1),
    ("partial", "templates/partials/footer.mjml", "{{ organization.name }},",
     "{{ organization.name }} ({{ contact.language }}),", "HIPAA-MIN-001", 2),
    ("toolkit.yaml", "toolkit.yaml", "guarantees_encryption: true",
     "guarantees_encryption: false", "HIPAA-SEC-001", 2),
    ("policy file", "policy/fields.yaml", "age: {type: integer, class: demographic, "
     "fundraising: true}", "age: {type: integer, class: demographic}", "HIPAA-FR-001", 2),
    ("persona", "fixtures/personas.yaml", "language: en", "language: es", "HIPAA-FR-002", 2),
]


@pytest.mark.parametrize("what,rel,old,new,rule,relinted", CHANGES,
                         ids=[c[0] for c in CHANGES])
def test_each_input_changes_the_findings_through_the_cache(
        root: Path, what: str, rel: str, old: str, new: str, rule: str, relinted: int) -> None:
    before = fresh(root)
    assert rule not in {f[0] for f in before}
    edit(root, rel, old, new)
    after, cache = cached(root)
    assert (cache.misses, cache.hits) == (relinted, 2 - relinted), what
    assert rule in {f[0] for f in after}, what
    assert after == fresh(root), what
    # and the new findings are cached in turn
    again, cache = cached(root)
    assert (cache.hits, again) == (2, after)


def test_a_change_of_the_toolkit_voids_every_entry(root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint_cache, "toolkit_digest", lambda: "another toolkit")
    _, cache = cached(root)
    assert (cache.hits, cache.misses) == (0, 2)


def test_the_toolkit_digest_covers_its_version_and_every_source_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit

    package = Path(toolkit.__file__).resolve().parent
    copy = tmp_path / "toolkit"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert source_digest(copy) == source_digest(package)
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.pyc").write_bytes(b"bytecode is not source")
    assert source_digest(copy) == source_digest(package)
    rules = copy / "rules" / "canspam.py"
    rules.write_text(rules.read_text(encoding="utf-8") + "\n# a change\n", encoding="utf-8")
    assert source_digest(copy) != source_digest(package)

    toolkit_digest.cache_clear()
    before = toolkit_digest()
    monkeypatch.setattr(toolkit, "__version__", "99.0.0")
    toolkit_digest.cache_clear()
    try:
        assert toolkit_digest() != before
    finally:
        monkeypatch.undo()
        toolkit_digest.cache_clear()


def test_an_upgraded_library_voids_the_toolkit_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "fakelib").mkdir(parents=True)
    (site / "fakelib" / "__init__.py").write_text("")
    (site / "fakelib-1.0.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(lint_cache, "LIBRARIES", ("fakelib",))
    toolkit_digest.cache_clear()
    try:
        before = toolkit_digest()
        (site / "fakelib-1.0.dist-info").rename(site / "fakelib-1.1.dist-info")
        toolkit_digest.cache_clear()
        assert toolkit_digest() != before
    finally:
        toolkit_digest.cache_clear()


def test_the_preview_moment_is_part_of_the_key(root: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.render

    monkeypatch.setattr(toolkit.render, "PREVIEW_NOW", dt.datetime(2027, 1, 4, 9, 0,
                                                                   tzinfo=dt.UTC))
    _, cache = cached(root)
    assert cache.misses == 2


def test_an_unrelated_campaign_edit_relints_only_that_campaign(root: Path) -> None:
    edit(root, APPEAL, "title: Annual appeal", "title: Annual appeal 2027")
    after, cache = cached(root)
    assert (cache.hits, cache.misses) == (1, 1)
    assert after == fresh(root)


def test_a_template_no_campaign_reaches_relints_nothing(root: Path) -> None:
    (root / "templates" / "unused.mjml").write_text("<mjml><mj-body></mj-body></mjml>\n")
    (root / "templates" / "notes.txt").write_text("not a template\n")
    after, cache = cached(root)
    assert (cache.hits, cache.misses) == (2, 0)
    assert after == fresh(root)


def test_a_partial_found_missing_then_created_relints(root: Path) -> None:
    # `ignore missing`: no finding while it is absent, so the entry keeps the name as absent
    edit(root, "templates/appeal.mjml", '{% include "partials/footer.mjml" %}',
         '{% include "partials/footer.mjml" %}{% include "partials/promo.mjml" '
         "ignore missing %}")
    before, cache = cached(root)
    assert (cache.misses, before) == (1, fresh(root))
    assert "HIPAA-MIN-001" not in {f[0] for f in before}
    (root / "templates" / "partials" / "promo.mjml").write_text(
        "<mj-section><mj-column><mj-text>{{ contact.age }}</mj-text></mj-column>"
        "</mj-section>\n")
    after, cache = cached(root)
    assert (cache.hits, cache.misses) == (1, 1)
    assert "HIPAA-MIN-001" in {f[0] for f in after}
    assert after == fresh(root)


def test_a_campaign_with_analysis_problems_depends_on_every_template(root: Path) -> None:
    edit(root, "templates/appeal.mjml", '{% include "partials/footer.mjml" %}',
         '{% include "partials/footer.mjml" %}{% include "partials/" ~ campaign.id %}')
    before, cache = cached(root)
    assert "CNT-003" in {f[0] for f in before} and before == fresh(root)
    entries = json.loads((root / ".campaign" / CACHE_FILE).read_text())["entries"]
    assert set(entries["annual-appeal"]["deps"]) == {"tree"}
    assert set(entries["appointment-reminder"]["deps"]) == {"templates", "digest"}
    (root / "templates" / "unused.mjml").write_text("<mjml><mj-body></mj-body></mjml>\n")
    after, cache = cached(root)
    assert (cache.hits, cache.misses) == (1, 1)
    assert after == fresh(root)


def test_a_campaign_whose_template_is_missing_relints_when_it_appears(root: Path) -> None:
    edit(root, APPEAL, "template: appeal", "template: appeal-2027")
    before, _ = cached(root)
    assert "CFG-002" in {f[0] for f in before} and before == fresh(root)
    shutil.copy(root / "templates" / "appeal.mjml", root / "templates" / "appeal-2027.mjml")
    after, cache = cached(root)
    assert (cache.hits, cache.misses) == (1, 1)
    assert "CFG-002" not in {f[0] for f in after} and after == fresh(root)


def test_the_cache_folder_ignores_itself_in_git(root: Path) -> None:
    folder = (root / ".campaign" / CACHE_FILE).parent
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_removed_campaign_leaves_the_cache_file(root: Path) -> None:
    shutil.rmtree(root / "campaigns" / "annual-appeal")
    cached(root)
    entries = json.loads((root / ".campaign" / CACHE_FILE).read_text())["entries"]
    assert sorted(entries) == ["appointment-reminder"]


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format": 1, "entries": []}',
                                     '{"format": 1, "entries": {"appointment-reminder": '
                                     '{"key": 3, "findings": "x"}}}', "", "\0\0\0"])
def test_a_broken_cache_file_is_a_miss(root: Path, content: str) -> None:
    edit(root, "toolkit.yaml", "guarantees_encryption: true", "guarantees_encryption: false")
    (root / ".campaign" / CACHE_FILE).write_text(content)
    after, cache = cached(root)
    assert cache.hits == 0
    assert after == fresh(root)
    assert "HIPAA-SEC-001" in {f[0] for f in after}
    _, cache = cached(root)  # rewritten whole
    assert cache.hits == 2


def test_a_malformed_finding_in_the_cache_is_a_miss(root: Path) -> None:
    path = root / ".campaign" / CACHE_FILE
    data = json.loads(path.read_text())
    data["entries"]["appointment-reminder"]["findings"] = [["HIPAA-SEC-001", "x", "f", "1"]]
    path.write_text(json.dumps(data))
    after, cache = cached(root)
    assert (cache.hits, cache.misses) == (1, 1)
    assert after == fresh(root)


def poison(root: Path) -> None:
    """Make appointment-reminder fail HIPAA-SEC-001, then write a cache entry with the
    right key that says it is clean: what a stale or tampered cache could hold."""
    edit(root, "toolkit.yaml", "guarantees_encryption: true", "guarantees_encryption: false")
    repo, _ = load_repo(root)
    cache = LintCache.for_repo(repo)
    for camp in repo.campaigns.values():
        cache.put(camp, [])
    cache.save()


def test_the_send_gate_never_reads_the_cache(root: Path) -> None:
    from toolkit.send.gate import check_gate

    poison(root)
    # the poisoned cache is read by `campaign lint` (so this test is not vacuous) ...
    poisoned, cache = cached(root)
    assert cache.hits == 2 and "HIPAA-SEC-001" not in {f[0] for f in poisoned}
    # ... and never by the gate
    repo, load_findings = load_repo(root)
    gate = check_gate(repo, load_findings, repo.campaigns["appointment-reminder"],
                      now=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    assert any("error HIPAA-SEC-001" in r for r in gate.reasons), gate.reasons
    assert not gate.open


def test_cli_lint_caches_and_no_cache_ignores_the_file(root: Path) -> None:
    from conftest import run_campaign

    poison(root)
    path = root / ".campaign" / CACHE_FILE
    written = path.read_bytes()
    got = run_campaign("lint", "--no-cache", "--format", "json", root=root)
    assert got.returncode == 1, got.stderr
    assert "HIPAA-SEC-001" in {f["rule"] for f in json.loads(got.stdout)["findings"]}
    assert path.read_bytes() == written  # --no-cache neither reads nor writes it
    path.unlink()
    first = run_campaign("lint", "--format", "json", root=root)
    assert first.returncode == 1 and path.is_file()
    second = run_campaign("lint", "--format", "json", root=root)
    assert (second.returncode, second.stdout) == (1, first.stdout)
