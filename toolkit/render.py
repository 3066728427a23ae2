"""Rendering: Jinja (sandboxed, strict, autoescaped) renders MJML, then
mjml-python compiles it to HTML, with the fixes of DESIGN.md "Rendering notes"
(docs/rendering.md):

- whitespace inside attribute values is collapsed before compiling, because
  mjml-python turns a line break there into a literal `\\n` and the style is lost;
- `<mj-style inline="inline">` CSS is taken out before compiling and inlined into
  the compiled HTML with css-inline (remote stylesheets off), as mjml does with juice;
- fonts are the organization's own (`organization.fonts`), none by default, so
  no message makes a mail client fetch fonts from a third party;
- the campaign's preheader becomes the `<mj-preview>` when the template has none;
- the text alternative comes from the compiled HTML (toolkit.plaintext).

Templates come from the loaded repository (the same text the digest hashes),
never re-read from disk, and are compiled once per repository and campaign.
MJML structure is validated separately (toolkit.mjml_check), for lint and build.
"""

from __future__ import annotations

import datetime as dt
import re
import traceback
import urllib.parse
import weakref
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import css_inline
import mjml
from jinja2 import (
    BaseLoader,
    Environment,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from toolkit.jinja_env import TemplateContact, make_env, make_string_env
from toolkit.models import Campaign, Repo
from toolkit.plaintext import html_to_text

PREVIEW_UNSUBSCRIBE_URL = "https://unsubscribe.invalid/preview-token"
PREVIEW_VIEW_ONLINE_URL = "https://view.invalid/preview"
# Previews (build, lint, `campaign render`) render "as of" the campaign's schedule, or this
# fixed moment when it has none, so that the same inputs always give the same bytes.
PREVIEW_NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


class RenderError(Exception):
    """A campaign cannot render. `message` never quotes contact data."""

    def __init__(self, message: str, file: str, line: int = 1, *, refused: str | None = None):
        super().__init__(f"{file}:{line}: {message}")
        self.message = message
        self.file = file
        self.line = line
        # the rule (CFG-001, CFG-002 for a missing partial) when the template itself cannot
        # render (sandbox, limits, endless recursion), whatever the contact: lint reports it
        # (toolkit.mjml_check), unlike a field one persona lacks
        self.refused = refused


@dataclass(frozen=True)
class RenderedMessage:
    campaign: str
    persona: str | None
    subject: str
    preheader: str
    html: str
    text: str
    mjml: str


# --- MJML fixes -------------------------------------------------------------------------

# an attribute value (after `=`) holding a tab or line break; `<` and `>` excluded so
# that text between tags is never taken for a value
_ATTR_WS = re.compile(r"""=(\s*)("[^"<>]*[\t\n\r][^"<>]*"|'[^'<>]*[\t\n\r][^'<>]*')""")
_SPACES = re.compile(r"\s+")
_INLINE_STYLE = re.compile(
    r"""<mj-style\b[^>]*?\binline\s*=\s*["']inline["'][^>]*>(.*?)</mj-style\s*>""", re.DOTALL)
_HEAD_OPEN = re.compile(r"<mj-head\b[^>]*>")
_ROOT_OPEN = re.compile(r"<mjml\b[^>]*>")


def _collapse(m: re.Match[str]) -> str:
    value = m.group(2)
    quote = value[0]
    return "=" + quote + _SPACES.sub(" ", value[1:-1]).strip() + quote


def normalize_attributes(source: str) -> str:
    """Collapse whitespace runs inside attribute values to one space."""
    return _ATTR_WS.sub(_collapse, source)


def extract_inline_styles(source: str) -> tuple[str, str]:
    """(MJML without its `mj-style inline="inline"` blocks, their CSS joined)."""
    if "mj-style" not in source:
        return source, ""
    css: list[str] = []

    def take(m: re.Match[str]) -> str:
        css.append(m.group(1))
        return ""

    return _INLINE_STYLE.sub(take, source), "\n".join(css)


def add_preview(source: str, preheader: str) -> str:
    """Put the preheader in `<mj-preview>` unless the template has its own."""
    if not preheader or "<mj-preview" in source:
        return source
    preview = f"<mj-preview>{escape(preheader)}</mj-preview>"
    m = _HEAD_OPEN.search(source)
    if m:
        return source[: m.end()] + preview + source[m.end():]
    m = _ROOT_OPEN.search(source)
    if m:
        return source[: m.end()] + f"<mj-head>{preview}</mj-head>" + source[m.end():]
    return source


@dataclass(frozen=True)
class _Compiled:
    """What a campaign needs to render, compiled once."""

    template: Template
    subject: Template
    preheader: Template
    fonts: dict[str, str]


@lru_cache(maxsize=64)
def _inliner(css: str) -> css_inline.CSSInliner:
    return css_inline.CSSInliner(
        inline_style_tags=False,  # only the mj-style inline CSS, like mjml's juice step
        keep_style_tags=True,
        keep_link_tags=True,
        load_remote_stylesheets=False,
        extra_css=css,
    )


def compile_mjml(source: str, *, fonts: dict[str, str]) -> str:
    """Rendered MJML -> HTML with the fixes above (preview already added)."""
    source, css = extract_inline_styles(normalize_attributes(source))
    html = mjml.mjml2html(source, fonts=fonts)
    return _inliner(css).inline(html) if css else html


# --- compiled templates, per repository ---------------------------------------------------

@dataclass
class RepoCache:
    """What is computed once per loaded repository (a Repo is immutable): the Jinja
    environment, compiled campaigns, persona previews; other stages may add theirs."""

    env: SandboxedEnvironment
    compiled: dict[str, _Compiled] = field(default_factory=dict)
    previews: dict[tuple[str, str, str], RenderedMessage] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


_REPOS: dict[int, RepoCache] = {}


# control characters other than tab and line breaks, and the noncharacters U+FFFE and
# U+FFFF (in contact data from odd exports): invalid in HTML, and MJML stops at them
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _no_controls(value: Any) -> Any:
    """Jinja `finalize`: every value a template prints loses its control characters."""
    if isinstance(value, str) and _CONTROLS.search(value):
        cleaned = _CONTROLS.sub("", value)
        return Markup(cleaned) if isinstance(value, Markup) else cleaned
    return value


class _RepoLoader(BaseLoader):
    """The repository's loaded templates (never the disk). A template the analysis parsed
    already (toolkit.analysis, same environment settings) is compiled from that tree
    rather than parsed again: parsing was 40% of compiling a template. The environment
    compiles unoptimized (repo_cache): Jinja's optimizer folds constants in the tree in
    place, which the analysis must not see (`contact["first" ~ "_name"]` would become a
    plain field), and folding saves nothing on the few renders a repository makes."""

    def __init__(self, repo: Repo):
        self.repo = repo

    def get_source(self, environment: Environment, name: str) -> tuple[str, str, Any]:
        t = self.repo.templates.get(name)
        if t is None:
            raise TemplateNotFound(name)
        return t.source, t.file, lambda: True

    def load(self, environment: Environment, name: str,
             globals: MutableMapping[str, Any] | None = None) -> Template:
        from toolkit.analysis import walked_tree

        source, file, uptodate = self.get_source(environment, name)
        tree = walked_tree(self.repo.root, name, source) if not environment.optimized else None
        if tree is None:  # a syntax error: let Jinja's own parse raise it
            return super().load(environment, name, globals)
        code = environment.compile(tree, name, file)
        return environment.template_class.from_code(environment, code, globals or {},
                                                    uptodate)


def repo_cache(repo: Repo) -> RepoCache:
    """The cache of one loaded repository, dropped when the Repo is garbage-collected."""
    key = id(repo)
    got = _REPOS.get(key)
    if got is None:
        env = make_env(repo.root / "templates").overlay(loader=_RepoLoader(repo),
                                                        finalize=_no_controls, optimized=False)
        got = _REPOS[key] = RepoCache(env)
        weakref.finalize(repo, _REPOS.pop, key, None)
    return got


def repo_env(repo: Repo) -> SandboxedEnvironment:
    """The Jinja environment over the repository's loaded templates (not the disk),
    with the configuration of toolkit.jinja_env. File names are repository-relative."""
    return repo_cache(repo).env


def _compiled(repo: Repo, campaign: Campaign) -> _Compiled:
    cache = repo_cache(repo)
    env, per_repo = cache.env, cache.compiled
    got = per_repo.get(campaign.id)
    if got is not None:
        return got
    template = repo.template_for(campaign)
    if template is None:
        raise RenderError(f"template '{campaign.template}' not found under templates/",
                          campaign.file, campaign.pos("template").line)
    try:
        main = env.get_template(template.name)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax: {exc.message}", exc.filename or template.file,
                          exc.lineno or 1) from None
    except TemplateError as exc:
        raise _template_error(exc, template.file) from None
    strings = {}
    for key in ("subject", "preheader"):
        try:
            strings[key] = _string_template(getattr(campaign, key))
        except TemplateSyntaxError as exc:
            raise RenderError(f"{key}: template syntax: {exc.message}", campaign.file,
                              campaign.pos(key).line) from None
    cfg = repo.config
    fonts = dict(cfg.organization.fonts) if cfg is not None else {}
    got = _Compiled(main, strings["subject"], strings["preheader"], fonts)
    per_repo[campaign.id] = got
    return got


@lru_cache(maxsize=1024)
def _string_template(source: str) -> Template:
    """Subjects and preheaders, compiled once per distinct text (campaigns often share them),
    from the tree the analysis parsed when it did (unoptimized, like templates: nothing
    folds that tree)."""
    from toolkit.analysis import parsed_string

    tree = parsed_string(source)
    return _STRING_ENV.from_string(tree if tree is not None else source)


_STRING_ENV = make_string_env()
_STRING_ENV.optimized = False


def _template_error(exc: BaseException, default_file: str) -> RenderError:
    """Where in the templates a render failed. The message names the problem, never a value."""
    file, line = default_file, 1
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("templates/"):
            file, line = frame.filename, frame.lineno or 1
    if isinstance(exc, TemplateNotFound):  # the loader collects only .mjml files
        detail = (f"partial '{exc.name}' not found under templates/ (partials are .mjml files); "
                  "create it or fix the name")
    elif isinstance(exc, TemplateError):
        # UndefinedError and SecurityError name variables and attributes, not their values
        detail = exc.message or type(exc).__name__
    elif isinstance(exc, RecursionError):
        detail = ("the template recurses too deeply: a macro or recursive loop calls itself "
                  "without end")
    elif isinstance(exc, MemoryError):
        detail = "the template needs more memory than there is (docs/format.md, \"Limits\")"
    else:
        detail = (f"{type(exc).__name__} while rendering "
                  "(a filter or operation got an unsuitable value)")
    refused = ("CFG-002" if isinstance(exc, TemplateNotFound) else "CFG-001"
               if isinstance(exc, (SecurityError, RecursionError, MemoryError)) else None)
    return RenderError(detail, file, line, refused=refused)


# --- rendering ----------------------------------------------------------------------------


def preview_now(campaign: Campaign) -> dt.datetime:
    """The fixed moment previews render at: the schedule, or PREVIEW_NOW."""
    s = campaign.schedule
    if isinstance(s, dt.datetime):
        return s if s.tzinfo else s.replace(tzinfo=dt.UTC)
    if isinstance(s, dt.date):
        return dt.datetime(s.year, s.month, s.day, 9, 0, tzinfo=dt.UTC)
    return PREVIEW_NOW


def template_context(repo: Repo, campaign: Campaign, contact: dict[str, Any], *,
                     unsubscribe_url: str, view_online_url: str,
                     now: dt.datetime) -> dict[str, Any]:
    cfg = repo.config
    assert cfg is not None
    sender = cfg.senders[campaign.sender]
    return {
        # a null field is as unknown as an absent one: undefined, never printed as "None"
        "contact": TemplateContact.of(contact),
        "sender": {
            "from_name": sender.from_name,
            "from_address": sender.from_address,
            "reply_to": sender.reply_to,
            "ad_label": sender.ad_label,
            "postal_address": sender.postal_address or cfg.organization.postal_address,
        },
        "organization": {"name": cfg.organization.name,
                         "postal_address": cfg.organization.postal_address},
        "campaign": {"id": campaign.id, "title": campaign.title, "purpose": campaign.purpose},
        "unsubscribe_url": unsubscribe_url,
        "view_online_url": view_online_url,
        "now": now,
    }


def render_mjml(repo: Repo, campaign: Campaign, ctx: dict[str, Any]) -> str:
    """Only the Jinja step: the MJML this campaign renders to for one context."""
    comp = _compiled(repo, campaign)
    try:
        return comp.template.render(ctx)
    except Exception as exc:  # reported with its template line, without values
        template = repo.template_for(campaign)
        raise _template_error(exc, template.file if template else campaign.file) from None


def render_campaign(repo: Repo, campaign: Campaign, contact: dict[str, Any], *,
                    persona: str | None = None,
                    unsubscribe_url: str = PREVIEW_UNSUBSCRIBE_URL,
                    view_online_url: str = PREVIEW_VIEW_ONLINE_URL,
                    now: dt.datetime | None = None, text: bool = True) -> RenderedMessage:
    """One message for one contact. Raises RenderError (file, line) when it cannot render.
    `text=False` skips the plain-text part (lint reads only the HTML; it is the costliest step)."""
    ctx = campaign_context(repo, campaign, contact, unsubscribe_url=unsubscribe_url,
                           view_online_url=view_online_url, now=now or dt.datetime.now(dt.UTC))
    subject, preheader = render_strings(repo, campaign, ctx)
    source, html = render_body(repo, campaign, ctx, preheader)
    plain = html_to_text(html) if text else ""
    return RenderedMessage(campaign.id, persona, subject, preheader, html, plain, source)


def campaign_context(repo: Repo, campaign: Campaign, contact: dict[str, Any], *,
                     unsubscribe_url: str, view_online_url: str,
                     now: dt.datetime) -> dict[str, Any]:
    """The template context of one message; RenderError when the campaign cannot render
    (its sender is not defined, its template is missing or does not parse)."""
    if repo.config is None or campaign.sender not in repo.config.senders:
        raise RenderError(f"sender '{campaign.sender}' is not defined in toolkit.yaml",
                          campaign.file, campaign.pos("sender").line)
    _compiled(repo, campaign)
    return template_context(repo, campaign, contact, unsubscribe_url=unsubscribe_url,
                            view_online_url=view_online_url, now=now)


def render_strings(repo: Repo, campaign: Campaign, ctx: dict[str, Any]) -> tuple[str, str]:
    """(subject, preheader) for one context (campaign_context)."""
    comp = _compiled(repo, campaign)
    strings = []
    for key, tmpl in (("subject", comp.subject), ("preheader", comp.preheader)):
        try:
            strings.append(tmpl.render(ctx))
        except Exception as exc:
            err = _template_error(exc, campaign.file)
            raise RenderError(f"{key}: {err.message}", campaign.file,
                              campaign.pos(key).line, refused=err.refused) from None
    return strings[0], strings[1]


def string_names(source: str) -> frozenset[str]:
    """The context variables a subject or preheader text reads (every one when it does
    not parse: the render reports why)."""
    return _string_names(source)


@lru_cache(maxsize=1024)
def _string_names(source: str) -> frozenset[str]:
    from jinja2 import meta

    try:
        return frozenset(meta.find_undeclared_variables(_STRING_ENV.parse(source)))
    except Exception:
        return frozenset({"contact", "sender", "organization", "campaign", "unsubscribe_url",
                          "view_online_url", "now"})


def render_body(repo: Repo, campaign: Campaign, ctx: dict[str, Any],
                preheader: str) -> tuple[str, str]:
    """(the rendered MJML with its preview, the compiled HTML) for one context."""
    comp = _compiled(repo, campaign)
    source = add_preview(render_mjml(repo, campaign, ctx), preheader)
    try:
        html = compile_mjml(source, fonts=comp.fonts)
    except ValueError as exc:
        template = repo.template_for(campaign)
        raise RenderError(f"MJML does not compile ({exc}); `campaign lint` shows the line",
                          template.file if template else campaign.file) from None
    return source, html


def configured_view_online_url(repo: Repo, campaign: Campaign) -> str | None:
    """The campaign's web copy (`organization.view_online_url`, `{campaign}` filled in),
    or None when the organization hosts none: lint then refuses templates that link to
    it (CFG-002), so a real message never carries the preview placeholder."""
    cfg = repo.config
    url = cfg.organization.view_online_url if cfg is not None else None
    if not url:
        return None
    return url.replace("{campaign}", urllib.parse.quote(campaign.id, safe=""))


def moment_key(when: dt.datetime) -> tuple[str, str]:
    """A moment as a cache key: its ISO text and zone (equal datetimes in other zones can
    print otherwise). Kept per datetime object: previews ask for it several times."""
    got = _MOMENTS.get(id(when))
    if got is None or got[0] is not when:
        if len(_MOMENTS) > 4096:
            _MOMENTS.clear()
        got = _MOMENTS[id(when)] = (when, (when.isoformat(), str(when.tzinfo)))
    return got[1]


_MOMENTS: dict[int, tuple[dt.datetime, tuple[str, str]]] = {}


def preview_unsubscribe_url(repo: Repo, campaign: Campaign, contact: dict[str, Any]) -> str:
    """The campaign's real unsubscribe URL with a preview token (toolkit.message)."""
    from toolkit.message import preview_token

    cfg = repo.config
    url = cfg.unsubscribe.url if cfg is not None else None
    if not url:
        return PREVIEW_UNSUBSCRIBE_URL
    # asked by each render and again by the unsubscribe rules: two HMACs each, kept per
    # repository by what the token depends on (the campaign, the contact's email or id)
    urls = repo_cache(repo).extra.setdefault("preview_unsubscribe_url", {})
    key = (campaign.id, str(contact.get("email")), str(contact.get("id")))
    got = urls.get(key)
    if got is None:
        got = urls[key] = url.replace("{token}", preview_token(repo, campaign, contact))
    return got


def render_preview(repo: Repo, campaign: Campaign, persona: str, *,
                   text: bool = True, at: dt.datetime | None = None) -> RenderedMessage:
    """A persona's preview: at a fixed time (`preview_now` unless `at`), with a preview
    unsubscribe token. Deterministic, so computed once per repository: lint and build
    share it. `text=False` may leave the text part empty (lint does not read it).

    A shaped render without its text part (toolkit.render_shapes: lint's) is not kept: it
    costs a few microseconds to make again, and keeping every campaign's renders made a
    lint's memory grow with the repository (about 20 MB at 1,000 campaigns) and cost 5%
    of a cold lint in page faults. Full renders and those with a text part are kept."""
    when = at or preview_now(campaign)
    previews = repo_cache(repo).previews
    key = (campaign.id, persona, moment_key(when))
    got = previews.get(key)
    if got is None:
        from toolkit.render_shapes import shaped_preview

        contact = repo.personas[persona].contact
        urls = {"unsubscribe_url": preview_unsubscribe_url(repo, campaign, contact),
                "view_online_url": configured_view_online_url(repo, campaign)
                or PREVIEW_VIEW_ONLINE_URL}
        got = shaped_preview(repo, campaign, persona, contact, when=when, **urls)
        if got is None:
            got = render_campaign(repo, campaign, contact, persona=persona, now=when,
                                  text=text, **urls)
        elif text:
            got = replace(got, text=html_to_text(got.html))
    elif text and not got.text:
        got = replace(got, text=html_to_text(got.html))
    if text or type(got.html) is str:
        previews[key] = got
    return got


def segment_personas(repo: Repo, campaign: Campaign, at: dt.datetime) -> list[str]:
    """The personas the campaign's segment matches at `at`, in fixture order; none when the
    segment is missing or cannot be evaluated (lint reports why). Once per repository,
    segment and moment: campaigns share segments, and compiling one costs a render."""
    segment = repo.segments.get(campaign.segment)
    if segment is None:
        return []
    matched = repo_cache(repo).extra.setdefault("segment_personas", {})
    key = (campaign.segment, moment_key(at))
    got = matched.get(key)
    if got is None:
        try:
            from toolkit.segment_eval import compile_segment

            test = compile_segment(segment, repo.fields, at)
            got = [name for name, p in repo.personas.items() if test(p.contact)]
        except Exception:
            got = []
        matched[key] = got
    return list(got)


def preview_personas(repo: Repo, campaign: Campaign,
                     at: dt.datetime | None = None) -> list[str]:
    """Whom previews are rendered for (DESIGN.md, fixtures): every persona the segment
    matches at the preview moment, or the first persona when none does."""
    return (segment_personas(repo, campaign, at or preview_now(campaign))
            or list(repo.personas)[:1])


def render_for_lint(repo: Repo, campaign: Campaign) -> list[RenderedMessage]:
    """The renders lint checks: the personas `campaign build` shows (`preview_personas`),
    at the same moment, so the build reuses them. A persona outside the segment is never
    sent the campaign, and rendering every persona cost lint most of its time."""
    out = []
    for name in preview_personas(repo, campaign):
        try:
            out.append(render_preview(repo, campaign, name, text=False))
        except RenderError:  # the analysis and check_mjml report why a template cannot render
            continue
    return out
