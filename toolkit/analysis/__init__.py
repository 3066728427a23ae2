"""Template analysis: which contact fields a campaign's content uses, and where they go.

`analyze_campaign(repo, campaign)` walks the subject, the preheader, the sender's from
name (when it is a Jinja string) and the template with every partial and macro it
reaches. It records each `contact.<field>` with its position, every URL attribute of
the output with the variables that flow into it, the tags of the output (for image
and language checks), and problems: Jinja syntax (CFG-001), missing partials
(CFG-002) and anything it cannot follow (CNT-003). What it follows and what it
refuses is in docs/analysis.md.

Each template's walk is cached per repository root, template name and field set,
and re-used while the sources it read are unchanged: many campaigns share a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from toolkit.analysis.html import HOLE, TagUse, UrlUse, is_url_attr
from toolkit.analysis.scope import BUILTINS, CANNOT_FOLLOW, FieldUse, Parsed
from toolkit.analysis.walker import Walker
from toolkit.findings import Finding, Pos
from toolkit.jinja_env import make_env, make_string_env
from toolkit.limits import MAX_TEMPLATE_BYTES, BadFile, check_template, read_text
from toolkit.models import Campaign, Repo

__all__ = [
    "BUILTINS", "CANNOT_FOLLOW", "HOLE", "CampaignAnalysis", "FieldUse", "TagUse", "UrlUse",
    "analyze_campaign", "is_url_attr",
]


@dataclass(frozen=True)
class CampaignAnalysis:
    campaign: str
    field_uses: tuple[FieldUse, ...]
    url_uses: tuple[UrlUse, ...]
    tags: tuple[TagUse, ...]
    files: tuple[str, ...]
    problems: tuple[Finding, ...]
    builtins_used: frozenset[str]
    # every template name the analysis looked up, with the source it found (None: none):
    # what the lint cache keys a campaign's template inputs on (toolkit.lint_cache)
    template_reads: tuple[tuple[str, str | None], ...] = ()

    @property
    def fields_used(self) -> frozenset[str]:
        return frozenset(u.field for u in self.field_uses)

    @property
    def complete(self) -> bool:
        """False when a syntax error or a missing partial hid part of the content."""
        return not any(p.rule in ("CFG-001", "CFG-002") for p in self.problems)

    def uses_in(self, *parts: str) -> list[FieldUse]:
        return [u for u in self.field_uses if u.part in parts]


@dataclass(frozen=True)
class _TemplateResult:
    uses: tuple[FieldUse, ...]
    urls: tuple[UrlUse, ...]
    tags: tuple[TagUse, ...]
    files: tuple[str, ...]
    problems: tuple[Finding, ...]
    builtins: frozenset[str]
    reads: tuple[tuple[str, str | None], ...] = ()


# (root, template name, fields) -> (sources read: ((name, source or None), ...), result)
_Key = tuple[str, str, frozenset[str]]
_CACHE: dict[_Key, tuple[tuple[tuple[str, str | None], ...], _TemplateResult]] = {}
_CACHE_MAX = 2048


@lru_cache(maxsize=4096)
def _parse(root: Path, name: str, source: str) -> Parsed:
    parsed = Parsed(file=f"templates/{name}", lines=source.splitlines())
    try:
        parsed.ast = _tree(root, name, source)
    except TemplateSyntaxError as exc:
        parsed.error = (exc.message or "invalid syntax", exc.lineno or 1)
    return parsed


def _tree(root: Path, name: str, source: str) -> nodes.Template:
    return make_env(root / "templates").parse(source, name, f"templates/{name}")


def walked_tree(root: Path, name: str, source: str) -> nodes.Template | None:
    """The template's syntax tree as the analysis parsed and walks it (kept per text), or
    None when it does not parse. To read or to compile unoptimized (toolkit.render), never
    to change: Jinja's optimizer would fold constants in place (`contact["first" ~
    "_name"]` into a plain field the analysis would then follow instead of reporting)."""
    return _parse(root, name, source).ast


def parsed_string(source: str) -> nodes.Template | None:
    """A subject's or preheader's syntax tree as the analysis parsed it (kept per text), or
    None when it does not parse. To read or compile unoptimized, never to change."""
    got = _parse_string(source)
    return got if isinstance(got, nodes.Template) else None


@lru_cache(maxsize=8192)
def _parse_string(source: str) -> nodes.Template | TemplateSyntaxError:
    try:
        return _string_env().parse(source)
    except TemplateSyntaxError as exc:
        return exc


@lru_cache(maxsize=1)
def _string_env() -> Any:
    return make_string_env()


def _source(repo: Repo, name: str) -> str | None:
    tpl = repo.templates.get(name)
    if tpl is not None:
        return tpl.source
    # a partial that is not .mjml (the loader only collects .mjml): read it from disk
    base = (repo.root / "templates").resolve()
    path = (base / name).resolve()
    if base not in path.parents or not path.is_file():
        return None
    try:  # held to the limits the loader applies to .mjml templates (toolkit/limits.py)
        text = read_text(path, MAX_TEMPLATE_BYTES, "template")
        check_template(text)
        return text
    except (OSError, BadFile):
        return None


# (template name, fields) -> result, for the one Repo object last analysed: its sources do
# not change, so the entries of _CACHE need checking against them once, not per campaign
_CHECKED: dict[tuple[str, frozenset[str]], _TemplateResult] = {}
_CHECKED_FOR: list[Any] = []  # [that Repo, frozenset of its field names]


def _repo_fields(repo: Repo) -> frozenset[str]:
    """The repository's field names, as every analysis of it keys on them (made once per
    Repo, not per campaign); a new Repo empties _CHECKED and _STRING_WALKS."""
    if not _CHECKED_FOR or _CHECKED_FOR[0] is not repo:
        _CHECKED.clear()
        _STRING_WALKS.clear()
        _CHECKED_FOR[:] = [repo, frozenset(repo.fields)]
    return _CHECKED_FOR[1]  # type: ignore[no-any-return]


def _analyze_template(repo: Repo, name: str, fields: frozenset[str]) -> _TemplateResult:
    _repo_fields(repo)
    checked = _CHECKED.get((name, fields))
    if checked is not None:
        return checked
    result = _analyze_template_uncached(repo, name, fields)
    _CHECKED[(name, fields)] = result
    return result


def _analyze_template_uncached(repo: Repo, name: str, fields: frozenset[str]
                               ) -> _TemplateResult:
    key = (str(repo.root), name, fields)
    hit = _CACHE.get(key)
    if hit is not None and all(_source(repo, n) == s for n, s in hit[0]):
        return hit[1]
    read: dict[str, str | None] = {}

    def resolve(tname: str) -> Parsed | None:
        src = _source(repo, tname)
        read[tname] = src
        if src is None:
            return None
        return _parse(repo.root, tname, src)

    walker = Walker(resolve, fields)
    top = resolve(name)
    if top is not None and top.error is not None:
        message, line = top.error
        walker.problems.append(Finding(rule="CFG-001", pos=Pos(top.file, line),
                                       message=f"template syntax: {message}; fix the Jinja syntax"))
        walker.files[top.file] = None
    elif top is not None:
        walker.template(top, {})
        walker.uncalled_macros()
    result = _TemplateResult(
        uses=tuple(dict.fromkeys(walker.uses)),
        urls=tuple(walker.urls),
        tags=tuple(walker.tags),
        files=tuple(walker.files),
        problems=tuple(dict.fromkeys(walker.problems)),
        builtins=frozenset(walker.builtins),
        reads=tuple(read.items()),
    )
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = (tuple(read.items()), result)
    return result


def _analyze_string(source: str, pos: Pos, part: str, fields: frozenset[str]) -> Walker:
    walker = Walker(lambda _name: None, fields, part=part)
    walker.file = pos.file
    walker.line_offset = pos.line - 1
    walker.default_column = pos.column
    try:  # the template nesting limits: a sender's from_name is not checked at load
        check_template(source)
    except BadFile as exc:
        walker.problems.append(Finding(rule="CFG-001", pos=pos, message=f"{part}: {exc.message}"))
        return walker
    ast = _parse_string(source)
    if isinstance(ast, TemplateSyntaxError):
        message = f"{part}: template syntax: {ast.message}; fix the Jinja syntax"
        walker.problems.append(Finding(rule="CFG-001", pos=pos, message=message))
        return walker
    walker.line_offset = pos.line - 1
    walker.body(ast.body, {})
    return walker


# (text, part, fields) -> what _analyze_string finds in it, placed as if the text began at
# line 1, column 0; for the one Repo object last analysed (see _repo_fields). Campaigns
# share subjects and preheaders: each distinct one is walked once, then only placed.
_STRING_WALKS: dict[tuple[str, str, frozenset[str]],
                    tuple[tuple[FieldUse, ...], tuple[Finding, ...], frozenset[str]] | None] = {}
_TEXT_START = Pos("", 1, 0)


def _string_uses(source: str, pos: Pos, part: str, fields: frozenset[str]
                 ) -> tuple[list[FieldUse], list[Finding], frozenset[str]]:
    """What _analyze_string returns for the text at pos. A string has no source lines for
    the walker to look columns up in, so every position it reports is at the text's own
    column, on the text's line plus the line within the text: the walk at _TEXT_START,
    moved to pos, is the walk at pos (checked: otherwise the text is walked at pos)."""
    key = (source, part, fields)
    if key not in _STRING_WALKS:
        w = _analyze_string(source, _TEXT_START, part, fields)
        placed = [u.pos for u in w.uses] + [p.pos for p in w.problems]
        movable = all(p.file == "" and p.column == 0 for p in placed)
        _STRING_WALKS[key] = (
            (tuple(w.uses), tuple(w.problems), frozenset(w.builtins)) if movable else None)
    got = _STRING_WALKS[key]
    if got is None:
        w = _analyze_string(source, pos, part, fields)
        return w.uses, w.problems, frozenset(w.builtins)
    uses, problems, builtins = got
    file, lines, column = pos.file, pos.line - 1, pos.column
    return ([FieldUse(u.field, Pos(file, u.pos.line + lines, column), u.part) for u in uses],
            [p.with_(pos=Pos(file, p.pos.line + lines, column)) for p in problems], builtins)


# id(campaign) -> (repo, campaign, analysis): lint asks once per rule family and once for
# CNT-003 over all campaigns; the identity check makes a recycled id harmless.
_BY_CAMPAIGN: dict[int, tuple[Repo, Campaign, CampaignAnalysis]] = {}


def analyze_campaign(repo: Repo, campaign: Campaign) -> CampaignAnalysis:
    hit = _BY_CAMPAIGN.get(id(campaign))
    if hit is not None and hit[0] is repo and hit[1] is campaign:
        return hit[2]
    analysis = _analyze_campaign(repo, campaign)
    if _BY_CAMPAIGN and next(iter(_BY_CAMPAIGN.values()))[0] is not repo:
        _BY_CAMPAIGN.clear()  # one repository at a time: do not keep old ones alive
    _BY_CAMPAIGN[id(campaign)] = (repo, campaign, analysis)
    return analysis


def _analyze_campaign(repo: Repo, campaign: Campaign) -> CampaignAnalysis:
    fields = _repo_fields(repo)
    uses: list[FieldUse] = []
    problems: list[Finding] = []
    builtins: set[str] = set()
    # plain text (no "{") has nothing to parse, and its position is not looked up
    strings: list[tuple[str, Pos, str]] = []
    if "{" in campaign.subject:
        strings.append((campaign.subject, campaign.pos("subject"), "subject"))
    if "{" in campaign.preheader:
        strings.append((campaign.preheader, campaign.pos("preheader"), "preheader"))
    sender = repo.config.senders.get(campaign.sender) if repo.config is not None else None
    if sender is not None and sender.from_name and "{" in sender.from_name:
        strings.append((sender.from_name, sender.pos("from_name"), "from_name"))
    template = repo.template_for(campaign)
    if not strings and template is not None:
        # the common case, nothing to add to the template's own analysis (its uses and
        # problems are without duplicates already): no per-campaign merging
        result = _analyze_template(repo, template.name, fields)
        return CampaignAnalysis(
            campaign=campaign.id, field_uses=result.uses, url_uses=result.urls,
            tags=result.tags, files=result.files, problems=result.problems,
            builtins_used=result.builtins, template_reads=result.reads,
        )
    for source, pos, part in strings:
        string_uses, string_problems, string_builtins = _string_uses(source, pos, part, fields)
        uses += string_uses
        problems += string_problems
        builtins |= string_builtins
    urls: tuple[UrlUse, ...] = ()
    tags: tuple[TagUse, ...] = ()
    files: tuple[str, ...] = ()
    reads: tuple[tuple[str, str | None], ...] = ()
    if template is not None:
        result = _analyze_template(repo, template.name, fields)
        uses += result.uses
        problems += result.problems
        builtins |= result.builtins
        urls, tags, files, reads = result.urls, result.tags, result.files, result.reads
    return CampaignAnalysis(
        campaign=campaign.id,
        field_uses=tuple(dict.fromkeys(uses)),
        url_uses=urls,
        tags=tags,
        files=files,
        problems=tuple(dict.fromkeys(problems)),
        builtins_used=frozenset(builtins),
        template_reads=reads,
    )
