"""The static preview site that `campaign build` writes (docs/preview-site.md).

Self-contained (no network resource: CSS inline, no fonts, scripts or remote
images), deterministic (same inputs, same bytes: sorted iteration, no timestamps,
previews at a fixed moment) and built from personas only, never contact data.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from toolkit.errors import UserError
from toolkit.findings import Finding, Severity
from toolkit.lint import LintResult, run_lint
from toolkit.models import Repo
from toolkit.site.collect import CampaignView, campaign_view

MARKER = ".campaign-site"  # marks a folder this command wrote, and may therefore replace


@dataclass(frozen=True)
class SiteResult:
    out: Path
    lint: LintResult
    findings: tuple[Finding, ...]
    pages: int

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR and not f.waived]


def slug(name: str) -> str:
    """A safe file name for a persona (its YAML key could hold "/" or "..")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "persona"


def _env() -> Environment:
    env = Environment(loader=PackageLoader("toolkit.site", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["url"] = lambda s: quote(str(s), safe="")
    env.filters["slug"] = slug
    # our own stylesheet, inlined: Markup, or autoescape would turn its quotes into entities
    env.globals["css"] = Markup(resources.files("toolkit.site").joinpath("templates/site.css")
                                .read_text(encoding="utf-8"))
    return env


def _prepare_out(out: Path) -> None:
    """Empty a previous site; refuse a folder this command did not write."""
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out} exists and is not a folder", fix="pass --out with a new folder")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UserError(f"{out} is not empty and was not written by `campaign build`",
                            fix="pass --out with an empty or new folder (the build replaces it)")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by `campaign build`; replaced on every build\n",
                              encoding="utf-8")


def _campaign_findings(repo: Repo, cid: str, findings: list[Finding]) -> list[Finding]:
    """The campaign's own findings, plus file-level ones in the files it uses."""
    camp = repo.campaigns[cid]
    files = {camp.file}
    template = repo.template_for(camp)
    if template is not None:
        from toolkit.digest import reached_templates

        files |= {repo.templates[n].file for n in reached_templates(repo, template.name)}
    seg = repo.segments.get(camp.segment)
    if seg is not None:
        files.add(seg.file)
    return [f for f in findings if f.campaign == cid or (f.campaign is None and f.file in files)]


def build_site(repo: Repo, load_findings: list[Finding], out: Path,
               at: dt.datetime | None = None) -> SiteResult:
    """Lint, render every campaign for its personas, and write the site into `out`."""
    lint = run_lint(repo, load_findings)
    findings = list(lint.findings)  # MJML structure problems are CFG-001 findings of lint
    views: list[CampaignView] = [
        campaign_view(repo, repo.campaigns[cid], _campaign_findings(repo, cid, findings), at)
        for cid in sorted(repo.campaigns)
    ]
    from toolkit.rules import RULES

    _prepare_out(out)
    env = _env()
    org = repo.config.organization.name if repo.config else "campaign repository"
    env.globals["rules"] = RULES  # macros see globals, not the page context
    common = {"org": org}
    pages = 0

    def write(rel: str, template: str, **ctx: object) -> None:
        nonlocal pages
        depth = rel.count("/")
        html = env.get_template(template).render(root="../" * depth, **common, **ctx)
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8", newline="\n")
        pages += 1

    loose = [f for f in findings if f.campaign is None and not any(f in v.findings for v in views)]
    write("index.html", "index.html.j2", views=views, loose=loose, total=_totals(findings))
    for v in views:
        write(f"campaigns/{v.id}.html", "campaign.html.j2", v=v)
        for p in v.personas:
            if p.eml:
                path = out / "messages" / v.id / f"{slug(p.name)}.eml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(p.eml)
    used = sorted({f.rule for f in findings})
    write("rules/index.html", "rules.html.j2", used=used)
    for rule in RULES.values():
        write(f"rules/{rule.id}.html", "rule.html.j2", rule=rule,
              hits=[f for f in findings if f.rule == rule.id])
    return SiteResult(out, lint, tuple(findings), pages)


def _totals(findings: list[Finding]) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "gate": 0, "waived": 0}
    for f in findings:
        key = "waived" if f.waived else (f.severity.value if f.severity else "error")
        out[key] = out.get(key, 0) + 1
    return out
