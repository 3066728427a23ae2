"""Hostile campaign files (issue 8, item 3): what a pull request can put in a repository.

Each test runs the real `campaign` command on a copy of the scaffold with hostile files,
and checks the exact finding (rule, file, line), the exit code (DESIGN.md §3), that no
traceback is shown, and, for the worst cases, the peak memory of the process. Time is
bounded by the test finishing (each run has a subprocess timeout that fails the test).
Limits: toolkit/limits.py; the sandbox: toolkit/sandbox.py; the record:
docs/security.md ("Hostile files").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import run_campaign

SCAFFOLD = Path(__file__).resolve().parent.parent / "toolkit" / "scaffold"
TEMPLATE = "appointment-reminder"
CAMPAIGN = "appointment-reminder"
HELLO = "<mj-text>Hello {{ contact.first_name }},</mj-text>"  # line 8 of the template
LINE = 8
MEMORY_BOUND_MB = 300
ENV = {"AUDIT_KEY": "test-audit-key-0123456789", "UNSUBSCRIBE_SECRET": "test-unsub-secret-0123",
       "RELAY_USERNAME": "user", "RELAY_PASSWORD": "password"}

LIMIT = ("would exceed 262,144 characters or items, the limit for one render "
         '(docs/format.md, "Limits"); a message cannot be that long')
CANNOT = "error CFG-001 the template cannot render: "


def scaffold(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    return root


def add_campaign(root: Path, name: str, snippet: str) -> str:
    """A campaign `name` with its own template, the scaffold's with `snippet` on line 8."""
    source = (root / "templates" / f"{TEMPLATE}.mjml").read_text(encoding="utf-8")
    assert source.splitlines()[LINE - 1].strip() == HELLO
    (root / "templates" / f"{name}.mjml").write_text(
        source.replace(HELLO, HELLO[:-len("</mj-text>")] + " " + snippet + "</mj-text>"),
        encoding="utf-8")
    folder = root / "campaigns" / name
    folder.mkdir()
    camp = (root / "campaigns" / CAMPAIGN / "campaign.yaml").read_text(encoding="utf-8")
    (folder / "campaign.yaml").write_text(
        camp.replace(f"template: {TEMPLATE}", f"template: {name}"), encoding="utf-8")
    return f"templates/{name}.mjml"


_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(f"\\nmaxrss_kb={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


Run = subprocess.CompletedProcess[str]


def run_measured(*args: str, root: Path, timeout: float = 120,
                 env: dict[str, str] | None = None) -> tuple[Run, float]:
    """The real CLI, with the peak RSS (MB) of its process read by a parent of its own
    (wait4), so that no other child of the test process counts."""
    cmd = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "toolkit", "--root", str(root),
           *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    head, _, tail = proc.stderr.rpartition("\nmaxrss_kb=")
    proc.stderr = head
    return proc, int(tail) / 1024


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in proc.stderr


# --- the Jinja sandbox ---------------------------------------------------------------------

ESCAPES = {
    "mro": ("{{ ''.__class__.__mro__ }}",
            "access to attribute '__class__' of 'str' object is unsafe."),
    "globals": ("{{ cycler.__init__.__globals__ }}",
                "access to attribute '__init__' of 'type' object is unsafe."),
    "context": ("{{ self._TemplateReference__context }}",
                "access to attribute '_TemplateReference__context' of 'TemplateReference' "
                "object is unsafe."),
    "self": ("{{ range.__self__ }}",
             "'function object' has no attribute '__self__'"),
    "format": ("{{ '{0.__class__}'.format(sender) }}",
               "access to attribute '__class__' of 'dict' object is unsafe."),
    "format_filter": ("{{ '%s'|format(organization.__class__) }}",
                      "access to attribute '__class__' of 'dict' object is unsafe."),
    "mutate": ("{{ [].append(1) }}", "access to attribute 'append' of 'list' object is unsafe."),
}

BOMBS = {
    "multiply": ("{{ 'x' * 10**9 }}", f"repeating a value with '*' {LIMIT}"),
    "list_multiply": ("{{ ([1] * 1000) * 100000 }}", f"repeating a value with '*' {LIMIT}"),
    "range": ("{{ range(10**9)|list|length }}",
              'range() of 1,000,000,000 items; the limit is 10,000 (docs/format.md, "Limits")'),
    "percent": ("{{ '%099999999d' % 1 }}", f"a % format width {LIMIT}"),
    "percent_star": ("{{ '%*d' % (999999999, 1) }}",
                     "a '%*' width taken from the arguments is not allowed in templates; write "
                     "the width in the format"),
    "format_width": ("{{ '{:>999999999}'.format('a') }}", f"a format width {LIMIT}"),
    "format_filter_width": ("{{ '%0999999999d'|format(1) }}", f"a % format width {LIMIT}"),
    "center": ("{{ 'a'|center(10**9) }}", f"center() {LIMIT}"),
    "power": ("{{ 10 ** (10 ** 10) }}",
              "the result of '**' would have more than 16,384 bits, the limit for one render "
              '(docs/format.md, "Limits")'),
    "replace": ("{% set s = range(10000)|join %}{{ s|replace('1', s)|length }}",
                f"replace() {LIMIT}"),
    "doubling": ("{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                 "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 f"joining values with '~' {LIMIT}"),
    "nested_loops": ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
                     "{% endfor %}",
                     "more than 20,000 loop iterations and calls in one render, the limit "
                     '(docs/format.md, "Limits"); a template loops over a few items, never '
                     "thousands"),
    "fan_out": ("{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}"
                "{% endmacro %}{{ f(0) }}",
                "more than 20,000 loop iterations and calls in one render, the limit "
                '(docs/format.md, "Limits"); a template loops over a few items, never '
                "thousands"),
    "recursion": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                  "the template recurses too deeply: a macro or recursive loop calls itself "
                  "without end"),
    "recursive_loop": ("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
                       "the template recurses too deeply: a macro or recursive loop calls "
                       "itself without end"),
    "render_50mb": ("{% for i in range(10000) %}{{ 'y' * 5000 }}{% endfor %}",
                    f"the rendered template {LIMIT}"),
    "macro_50mb": ("{% macro big() %}{% for i in range(10000) %}{{ 'y' * 5000 }}{% endfor %}"
                   "{% endmacro %}{% set b = big() %}", f"the rendered template {LIMIT}"),
    "work": ("{% set s = 'x' * 200000 %}{% for i in range(10000) %}"
             "{% set t = s|replace('x', 'y') %}{% endfor %}",
             "more than 33,554,432 characters and items processed by filters, methods and "
             'operators in one render, the limit (docs/format.md, "Limits"); a template formats '
             "a few short values"),
    "aliased_list": ("{% set l = ['x' * 20000] * 10 %}{{ [l, l, l, l, l, l]|string }}",
                     f"the input of |string {LIMIT}"),
}


def test_sandbox_escapes_are_findings_at_their_line(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    files = {name: add_campaign(root, name, snippet) for name, (snippet, _) in ESCAPES.items()}
    files["dict"] = add_campaign(root, "dict", "{{ contact.__dict__ }}")
    proc = run_campaign("lint", root=root)
    assert_clean_failure(proc, 1)
    for name, (_, message) in ESCAPES.items():
        assert f"{files[name]}:{LINE}:1: {CANNOT}{message}\n" in proc.stdout, name
    # contact data: refused by the sandbox, and a name the schema does not know
    assert (f"{files['dict']}:{LINE}:1: {CANNOT}access to attribute '__dict__' of "
            "'TemplateContact' object is unsafe.\n") in proc.stdout
    assert (f"{files['dict']}:{LINE}:53: error CNT-003 '__dict__' is not a field in "
            "policy/fields.yaml; declare it there or fix the name") in proc.stdout
    assert "0 waived in 9 campaigns" in proc.stdout


def test_resource_bombs_are_refused_in_bounded_memory(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    files = {name: add_campaign(root, name, snippet) for name, (snippet, _) in BOMBS.items()}
    proc, rss = run_measured("lint", root=root)
    assert_clean_failure(proc, 1)
    for name, (_, message) in BOMBS.items():
        assert f"{files[name]}:{LINE}:1: {CANNOT}{message}\n" in proc.stdout, name
    assert f"{len(BOMBS)} errors, 0 warnings" in proc.stdout
    assert rss < MEMORY_BOUND_MB, rss


def test_render_build_and_send_refuse_a_50mb_render(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    snippet = BOMBS["render_50mb"][0]
    source = (root / "templates" / f"{TEMPLATE}.mjml").read_text(encoding="utf-8")
    (root / "templates" / f"{TEMPLATE}.mjml").write_text(
        source.replace(HELLO, HELLO[:-len("</mj-text>")] + snippet + "</mj-text>"),
        encoding="utf-8")
    where = f"templates/{TEMPLATE}.mjml:{LINE}"

    proc, rss = run_measured("render", CAMPAIGN, "--persona", "alex", root=root)
    assert_clean_failure(proc, 2)
    assert proc.stderr == (f"Error: {where}: the rendered template {LIMIT}\n  fix: correct the "
                           f"template; `campaign lint {CAMPAIGN}` lists every problem\n")
    assert proc.stdout == ""
    assert rss < MEMORY_BOUND_MB, rss

    proc, rss = run_measured("build", "--out", str(tmp_path / "site"), root=root)
    assert_clean_failure(proc, 1)
    assert "1 campaigns, 1 errors, 0 warnings" in proc.stdout
    assert rss < MEMORY_BOUND_MB, rss

    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text('{"id": "c1", "email": "pat@example.org", "first_name": "Pat", '
                        '"care_status": "active", "next_appointment": '
                        '"2026-11-26T09:00:00+00:00"}\n', encoding="utf-8")
    proc, rss = run_measured("send", CAMPAIGN, "--contacts", str(contacts), root=root, env=ENV)
    assert_clean_failure(proc, 1)
    assert f"refusing to send {CAMPAIGN}; nothing was sent" in proc.stderr
    assert f"    {where}:1: {CANNOT}the rendered template {LIMIT}\n" in proc.stderr
    assert rss < MEMORY_BOUND_MB, rss


def test_the_largest_render_allowed_builds_in_bounded_memory(tmp_path: Path) -> None:
    """2,000 sections (about 240,000 characters of MJML, under the output limit) compile to
    3.5 MB of HTML, which build compiles, converts to text and writes."""
    root = scaffold(tmp_path)
    source = root / "templates" / f"{TEMPLATE}.mjml"
    source.write_text(source.read_text(encoding="utf-8").replace(
        "    {% include", "    {% for i in range(2000) %}<mj-section><mj-column><mj-text>a"
        "</mj-text><mj-image src=\"https://clinic.example.org/x.png\" alt=\"x\"/></mj-column>"
        "</mj-section>{% endfor %}\n    {% include"), encoding="utf-8")
    proc, rss = run_measured("build", "--out", str(tmp_path / "site"), root=root)
    assert_clean_failure(proc, 1)  # MBX-SIZE-001: Gmail clips it
    assert "1 campaigns, 1 errors, 0 warnings" in proc.stdout
    assert rss < MEMORY_BOUND_MB, rss


def test_a_subject_is_sandboxed_too(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    camp = root / "campaigns" / CAMPAIGN / "campaign.yaml"
    text = camp.read_text(encoding="utf-8")
    camp.write_text(text.replace('preheader: "Details of your next appointment"',
                                 "preheader: \"{{ 'x' * 10**9 }}\""), encoding="utf-8")
    proc = run_campaign("lint", root=root)
    assert_clean_failure(proc, 1)
    assert (f"campaigns/{CAMPAIGN}/campaign.yaml:5:12: error CFG-001 preheader cannot render: "
            f"repeating a value with '*' {LIMIT}\n") in proc.stdout


# --- nesting that Python cannot compile ----------------------------------------------------


def test_templates_nested_too_deep_are_refused_when_read(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    blocks = add_campaign(root, "blocks", "{% for i in [1] %}" * 17 + "x" + "{% endfor %}" * 17)
    brackets = add_campaign(root, "brackets", "{{ " + "(" * 200 + "1" + ")" * 200 + " }}")
    operators = add_campaign(root, "operators", "{{ " + " + ".join(["1"] * 66) + " }}")
    camp = root / "campaigns" / CAMPAIGN / "campaign.yaml"
    camp.write_text(camp.read_text(encoding="utf-8").replace(
        '"Details of your next appointment"', '"{{ ' + "[" * 100 + "]" * 100 + ' }}"'),
        encoding="utf-8")
    config = root / "toolkit.yaml"  # a sender's from_name is analysed as Jinja too
    config.write_text(config.read_text(encoding="utf-8").replace(
        "from_name: Example Clinic", 'from_name: "{{ ' + "(" * 300 + "1" + ")" * 300 + ' }}"'),
        encoding="utf-8")
    proc, rss = run_measured("lint", root=root)
    assert_clean_failure(proc, 1)
    out = proc.stdout
    assert (f"{blocks}:{LINE}:1: error CFG-001 more than 16 blocks ({{% for %}} and the like) "
            'open at once, the limit (docs/format.md, "Limits"); move the inner part into a '
            "macro or partial\n") in out
    expr = ("an expression nested more than 32 brackets deep or with more than 64 operators, "
            'the limit (docs/format.md, "Limits"); split it with {% set %}')
    assert f"{brackets}:{LINE}:1: error CFG-001 {expr}\n" in out
    assert f"{operators}:{LINE}:1: error CFG-001 {expr}\n" in out
    assert f"campaigns/{CAMPAIGN}/campaign.yaml:5:12: error CFG-001 preheader: {expr}\n" in out
    assert f"toolkit.yaml:8:16: error CFG-001 from_name: {expr}\n" in out
    assert rss < MEMORY_BOUND_MB, rss


def test_nesting_at_the_limits_still_renders(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    widest = "{{ " + "(" * 31 + " + ".join(["1"] * 65) + ")" * 31 + " }}"
    add_campaign(root, "deepest", "{% if true %}" * 15 + "{% for i in [1] %}{{ "
                 + "(" * 32 + "1" + ")" * 32 + " }} " + widest + "{% endfor %}"
                 + "{% endif %}" * 15)
    proc = run_campaign("render", "deepest", "--persona", "alex", "--format", "text", root=root)
    assert proc.returncode == 0, proc.stderr
    assert "Hello Alex, 1 65" in proc.stdout
    proc = run_campaign("lint", "deepest", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- paths that leave the templates folder -------------------------------------------------


def test_includes_and_links_out_of_the_repository_are_refused(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    secret = tmp_path / "secret.mjml"
    secret.write_text("<mj-text>CI-SECRET-MARKER</mj-text>\n", encoding="utf-8")
    files = {
        "dotdot": add_campaign(root, "dotdot", '{% include "../toolkit.yaml" %}'),
        "absolute": add_campaign(root, "absolute", '{% import "/etc/passwd" as p %}'),
        "extends": add_campaign(root, "extends", '{% extends "../../secret.mjml" %}'),
        "linked": add_campaign(root, "linked", '{% include "partials/linked.mjml" %}'),
        "linked_dir": add_campaign(root, "linked_dir", '{% include "outside/secret.mjml" %}'),
        "html": add_campaign(root, "html", '{% include "partials/x.html" %}'),
    }
    # read by the analysis, but never rendered: partials are .mjml files
    (root / "templates" / "partials" / "x.html").write_text("<mj-text>x</mj-text>\n",
                                                            encoding="utf-8")
    os.symlink(secret, root / "templates" / "partials" / "linked.mjml")
    os.symlink(tmp_path, root / "templates" / "outside")
    # a whole campaign folder linked from elsewhere
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(root / "campaigns" / CAMPAIGN, elsewhere)
    os.symlink(elsewhere, root / "campaigns" / "linked-campaign")

    proc = run_campaign("lint", root=root)
    assert_clean_failure(proc, 1)
    out = proc.stdout
    missing = "error CFG-002 partial '{}' not found under templates/; create it or fix the name"
    assert f"{files['dotdot']}:{LINE}:1: {missing.format('../toolkit.yaml')}\n" in out
    assert f"{files['absolute']}:{LINE}:1: {missing.format('/etc/passwd')}\n" in out
    assert f"{files['extends']}:{LINE}:1: {missing.format('../../secret.mjml')}\n" in out
    assert f"{files['linked_dir']}:{LINE}:1: {missing.format('outside/secret.mjml')}\n" in out
    assert (f"{files['html']}:{LINE}:1: error CFG-002 the template cannot render: partial "
            "'partials/x.html' not found under templates/ (partials are .mjml files); create it "
            "or fix the name\n") in out
    assert ("templates/partials/linked.mjml:1:1: error CFG-001 template is a symbolic link to a "
            "file outside the repository; replace the link with the file itself\n") in out
    assert ("campaigns/linked-campaign/campaign.yaml:1:1: error CFG-001 YAML file is a symbolic "
            "link to a file outside the repository; replace the link with the file itself\n") in out

    site = tmp_path / "site"
    proc = run_campaign("build", "--out", str(site), root=root)
    assert_clean_failure(proc, 1)
    leaked = [p for p in site.rglob("*") if p.is_file() and b"CI-SECRET-MARKER" in p.read_bytes()]
    assert leaked == []
    assert b"root:" not in b"".join(p.read_bytes() for p in site.rglob("*") if p.is_file())


# --- YAML and file encodings ---------------------------------------------------------------


def billion_laughs() -> str:
    lines = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_hostile_yaml_and_encodings_are_findings_at_their_line(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    personas = root / "fixtures" / "personas.yaml"
    personas.write_text(personas.read_text(encoding="utf-8") + billion_laughs(), encoding="utf-8")
    # a small file nested past the limit, and a big one nested past what libyaml survives
    (root / "segments" / "deep.yaml").write_text(
        "description: deep\nwhere:\n  x: " + "[" * 100 + "]" * 100 + "\n", encoding="utf-8")
    (root / "segments" / "deeper.yaml").write_text(
        "description: deeper\nwhere: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    (root / "segments" / "huge.yaml").write_text("description: " + "x" * (2 << 20) + "\n",
                                                 encoding="utf-8")
    (root / "segments" / "latin1.yaml").write_bytes(b"description: ok\n\nwhere: caf\xe9\n")
    (root / "segments" / "nul.yaml").write_bytes(b"description: ok\nwhere:\x00 x\n")
    (root / "templates" / "partials" / "huge.mjml").write_text("x" * (300 << 10),
                                                               encoding="utf-8")
    (root / "templates" / "partials" / "nul.mjml").write_bytes(b"<mj-text>\n\x00</mj-text>\n")
    # a byte order mark is what editors on Windows write: accepted
    config = root / "toolkit.yaml"
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())

    proc, rss = run_measured("lint", root=root)
    assert_clean_failure(proc, 1)
    out = proc.stdout
    limits = '(the limit, docs/format.md "Limits")'
    assert ("fixtures/personas.yaml:20:7: error CFG-001 more than 200,000 values once aliases "
            f"(*name) are expanded {limits}; write the values out or use fewer aliases\n") in out
    assert (f"segments/deep.yaml:3:68: error CFG-001 nested more than 64 levels deep {limits}; "
            "flatten the structure\n") in out
    assert (f"segments/deeper.yaml:2:71: error CFG-001 nested more than 64 levels deep {limits}; "
            "flatten the structure\n") in out
    assert ("segments/huge.yaml:1:1: error CFG-001 YAML file is larger than 1024 KiB, the limit "
            'for one YAML file (docs/format.md, "Limits"); split or shorten it\n') in out
    assert ("segments/latin1.yaml:3:1: error CFG-001 YAML file is not UTF-8 text; save it as "
            "UTF-8\n") in out
    assert ("segments/nul.yaml:2:1: error CFG-001 YAML file contains a NUL byte, which is not "
            "text; remove it\n") in out
    assert ("templates/partials/huge.mjml:1:1: error CFG-001 template is larger than 256 KiB, "
            'the limit for one template (docs/format.md, "Limits"); split or shorten it\n') in out
    assert ("templates/partials/nul.mjml:2:1: error CFG-001 template contains a NUL byte, which "
            "is not text; remove it\n") in out
    assert "toolkit.yaml:" not in out  # the BOM is dropped, the file loads
    assert "8 errors, 0 warnings" in out
    assert rss < MEMORY_BOUND_MB, rss


def test_wrongly_nested_mjml_is_a_finding_at_its_line(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    path = root / "templates" / f"{TEMPLATE}.mjml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "      <mj-column>\n", "      <mj-column>\n        <mj-body><mj-section></mj-section>"
        "</mj-body>\n", 1), encoding="utf-8")
    proc = run_campaign("lint", root=root)
    assert_clean_failure(proc, 1)
    assert (f"templates/{TEMPLATE}.mjml:8:9: error CFG-001 MJML: <mj-body> cannot be inside "
            "<mj-column>; put it inside <mjml>\n") in proc.stdout


def test_ordinary_templates_are_untouched(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    for i, snippet in enumerate(["{{ [1, 2, 3]|join(', ') }}", "{{ '%-5s|' % 'ab' }}",
                                 "{{ '{:>4}'.format(7) }}", "{{ 2 ** 100 }}",
                                 "{% for i in range(10000) %}{% endfor %}"]):
        add_campaign(root, f"ordinary-{i}", snippet)
    proc = run_campaign("lint", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors, 0 warnings, 0 waived in 6 campaigns" in proc.stdout


def test_hostile_approval_records_are_unreadable_not_fatal(tmp_path: Path) -> None:
    root = scaffold(tmp_path)
    records = root / "approvals" / CAMPAIGN
    records.mkdir(parents=True)
    (records / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    (records / "huge.json").write_text(" " * (1 << 20) + "{}", encoding="utf-8")
    proc = run_campaign("verify", CAMPAIGN, root=root)
    assert_clean_failure(proc, 1)
    for name in ("deep", "huge"):
        assert (f"warning: approvals/{CAMPAIGN}/{name}.json: not an approval record "
                "(campaign-approval/v1); remove it or re-approve\n") in proc.stderr
    assert f"{CAMPAIGN}: NOT approved" in proc.stderr
