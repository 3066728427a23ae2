"""Content hygiene: PHI on lock screens, hard-coded identifiers, variables the analysis
cannot follow, accessibility."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from toolkit.analysis import TagUse, analyze_campaign
from toolkit.findings import Finding, Pos, Severity
from toolkit.lint import CampaignContext, RepoContext
from toolkit.models import Repo
from toolkit.rules.base import Rule, finding
from toolkit.rules.phi import PART_NAMES, field_class
from toolkit.rules.tracking import host_in, images_without_alt
from toolkit.yamlpos import Located

# --- CNT-001 -----------------------------------------------------------------------------


def check_lock_screen(ctx: CampaignContext) -> Iterator[Finding]:
    for use in ctx.analysis.uses_in("subject", "preheader", "from_name"):
        cls = field_class(ctx.repo, use.field)
        where = PART_NAMES[use.part]
        if cls == "clinical":
            yield finding("CNT-001", f"the {where} shows clinical field contact.{use.field}: it "
                          "appears on lock screens and in inbox lists, and S/MIME never encrypts "
                          "it; move it into the message body", use.pos)
        elif cls == "identifier":
            yield Finding(rule="CNT-001", severity=Severity.WARNING, pos=use.pos,
                          message=f"the {where} shows identifier contact.{use.field}, visible on "
                          "lock screens and never encrypted; prefer the message body")


# --- CNT-002 -----------------------------------------------------------------------------

SYNTHETIC_DOMAINS = ("example.org", "example.com", "example.net")
# RFC 2606 reserved top-level domains: nobody receives mail there either
_RESERVED_TLDS = (".test", ".example", ".invalid", ".localhost")

_SSN = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b")
_DATE = (r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|"
         r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}|"
         r"\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{4})")
_DOB = re.compile(rf"\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)\b"
                  rf"[^\w\n]{{0,5}}(?:\s*\w+){{0,2}}?[^\w\n]{{0,3}}{_DATE}", re.I)
_PHONE = re.compile(r"^\s*(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}\s*$")
# "logo@2x.png" is a file name, not an address
_FILE_SUFFIX = re.compile(r"\.(?:png|jpe?g|gif|webp|svg|css|js|html?|mjml)$", re.I)


# Cheap tests that a text may hold a match, before the costly patterns run (CNT-002 scans
# every campaign file: bench/lint.md). _SSN starts with a lookbehind, which the regex
# engine tries at every position; its digits alone are found much faster, and a pattern
# that starts with a literal character faster still: every match of _SSN_SHAPE contains
# one of _SSN_HINT (a campaign's ISO schedule date does too, so both run).
_SSN_HINT = re.compile(r"-\d\d-\d")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
# Each way _DOB starts contains one of these words, matched ignoring case. Under
# re.IGNORECASE only two characters match these letters without lower() turning them
# into them: U+0131 (dotless i) and U+0130 (I with dot, which lowers to "i" + U+0307).
_DOB_WORDS = ("dob", "d.o.b", "birth", "born")


def _may_name_a_birth_date(text: str) -> bool:
    low = text.lower()
    return (any(w in low for w in _DOB_WORDS) or "\u0131" in text or "\u0130" in text)


def ssn_is_synthetic(area: str) -> bool:
    return area == "000" or area.startswith("9")


def email_is_synthetic(domain: str, verified: Iterable[str]) -> bool:
    domain = domain.lower()
    return (host_in(domain, list(SYNTHETIC_DOMAINS) + list(verified))
            or domain.endswith(_RESERVED_TLDS))


def phone_is_synthetic(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return digits[-7:].startswith("55501")


def _identifier_patterns(
    ctx: RepoContext,
) -> list[tuple[str, re.Pattern[str], re.Pattern[str] | None]]:
    """(field, pattern, hint) for each identifier field with a pattern. The hint is the
    field's pattern without the surrounding lookarounds: every match of the pattern is a
    match of the hint at the same place, and the hint, often starting with literal text
    (`VH-[0-9]{7}`), is found in a fraction of the time; a text without it is not scanned."""
    out = []
    for name, spec in ctx.repo.fields.items():
        if spec.cls != "identifier" or not spec.pattern:
            continue
        body = spec.pattern.removeprefix("^").removeprefix(r"\A").removesuffix("$")
        body = body.removesuffix(r"\Z")
        try:
            rx = re.compile(rf"(?<![\w-])(?:{body})(?![\w-])")
        except re.error:
            continue  # an invalid pattern is a schema problem, not a hard-coded identifier
        try:
            hint: re.Pattern[str] | None = re.compile(f"(?:{body})")
        except re.error:
            hint = None
        out.append((name, rx, hint))
    return out


def _scan_text(rel: str, text: str, verified: tuple[str, ...],
               patterns: list[tuple[str, re.Pattern[str], re.Pattern[str] | None]],
               ) -> Iterator[tuple[Pos, str]]:
    """(position, what) for every hard-coded identifier in a file's text. The value itself
    is never repeated: it may be real PHI."""

    def pos(offset: int) -> Pos:
        line_start = text.rfind("\n", 0, offset) + 1
        return Pos(rel, text.count("\n", 0, offset) + 1, offset - line_start + 1)

    if _SSN_HINT.search(text) and _SSN_SHAPE.search(text):  # every _SSN match is one
        for m in _SSN.finditer(text):
            if not ssn_is_synthetic(m.group(1)):
                yield pos(m.start()), "an SSN-like number"
    if _may_name_a_birth_date(text):
        for m in _DOB.finditer(text):
            yield pos(m.start()), "a date of birth"
    if "@" in text:
        for m in _EMAIL.finditer(text):
            domain = m.group(1)
            if not _FILE_SUFFIX.search(domain) and not email_is_synthetic(domain, verified):
                yield pos(m.start()), "an email address outside verified_domains"
    for name, rx, hint in patterns:
        if hint is not None and not hint.search(text):
            continue
        for m in rx.finditer(text):
            yield pos(m.start()), f"a value matching the pattern of '{name}'"


def _persona_values(data: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _persona_values(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _persona_values(v, (*path, i))
    elif isinstance(data, str):
        yield path, data


def _check_personas(ctx: RepoContext, verified: tuple[str, ...]) -> Iterator[Finding]:
    for name, persona in ctx.repo.personas.items():
        raw = ctx.repo.documents.get("fixtures/personas.yaml", {}).get(name)
        loc: Located = persona.loc
        for path, value in _persona_values(raw if raw is not None else persona.contact, ()):
            key = str(path[0]).lower() if path else ""
            problem = None
            emails = _EMAIL.findall(value)
            if any(not email_is_synthetic(d, verified) for d in emails):
                problem = ("an email address that is not obviously synthetic; use example.org, "
                           "example.com, example.net or a verified domain")
            elif ("phone" in key or _PHONE.match(value)) and re.search(r"\d{3}\D?\d{4}", value) \
                    and not phone_is_synthetic(value):
                problem = "a phone number that is not obviously synthetic; use 555-01xx numbers"
            elif any(not ssn_is_synthetic(m.group(1)) for m in _SSN.finditer(value)):
                problem = "an SSN that is not obviously synthetic; use SSNs starting 000 or 9xx"
            if problem:
                where = ".".join(str(p) for p in path)
                yield finding("CNT-002", f"persona '{name}', {where}: {problem}", loc.at(*path))


def check_hard_coded_identifiers(ctx: RepoContext) -> Iterator[Finding]:
    repo = ctx.repo
    cfg = repo.config
    verified = cfg.organization.verified_domains if cfg is not None else ()
    patterns = _identifier_patterns(ctx)
    files: list[tuple[str, str, str | None]] = []
    files += [(t.file, t.source, None) for t in repo.templates.values()]
    for cid, camp in repo.campaigns.items():
        files.append((camp.file, _read(repo, camp.file), cid))
    files += [(seg.file, _read(repo, seg.file), None) for seg in repo.segments.values()]
    for rel, text, cid in files:
        for pos, what in _scan_text(rel, text, verified, patterns):
            yield finding("CNT-002", f"hard-coded identifier: {what}; remove it (identifiers "
                          "come only from contact fields, and examples must be synthetic)",
                          pos, campaign=cid)
    yield from _check_personas(ctx, verified)


def _read(repo: Repo, rel: str) -> str:
    """The text the loader read (the same bytes it loaded), else the file on disk."""
    text = repo.texts.get(rel)
    if text is not None:
        return text
    try:
        return (repo.root / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


# --- CNT-003 -----------------------------------------------------------------------------


def check_unfollowable(ctx: RepoContext) -> Iterator[Finding]:
    """The analysis problems of every campaign, once each: a problem in a shared template
    belongs to the template (no campaign), one in campaign.yaml to its campaign. The
    problems' own rule ids (CFG-001 template syntax, CFG-002 missing partial) are kept."""
    seen: set[tuple[str, Pos, str]] = set()
    for cid in sorted(ctx.repo.campaigns):
        camp = ctx.repo.campaigns[cid]
        for p in analyze_campaign(ctx.repo, camp).problems:
            key = (p.rule, p.pos, p.message)
            if key in seen:
                continue
            seen.add(key)
            yield p.with_(campaign=cid if p.file == camp.file else None)


# --- CNT-004 -----------------------------------------------------------------------------


def _images(tags: tuple[TagUse, ...]) -> list[TagUse]:
    """The images of the body. An <mj-attributes> default (<mj-image alt> or <mj-all alt>)
    gives every image an alt; the defaults themselves are not images."""
    inside, images = False, []
    for tag in tags:
        if tag.name == "mj-attributes":
            inside = True
        elif tag.name in ("mj-body", "mj-section", "mj-wrapper", "mj-column"):
            inside = False
        if inside:
            if tag.name in ("mj-image", "mj-all") and tag.attr("alt") is not None:
                return []
        elif tag.name in ("mj-image", "img"):
            images.append(tag)
    return images


# id(tags) -> (tags, images, the <mjml> root): the analysis' tags are one tuple per template
# (toolkit.analysis), shared by every campaign using it, so each is scanned once; the
# identity check makes a recycled id harmless
_STATIC_TAGS: dict[int, tuple[tuple[TagUse, ...], list[TagUse], TagUse | None]] = {}


def _static_tags(tags: tuple[TagUse, ...]) -> tuple[list[TagUse], TagUse | None]:
    hit = _STATIC_TAGS.get(id(tags))
    if hit is None or hit[0] is not tags:
        if len(_STATIC_TAGS) >= 256:
            _STATIC_TAGS.clear()
        hit = _STATIC_TAGS[id(tags)] = (
            tags, _images(tags), next((t for t in tags if t.name == "mjml"), None))
    return hit[1], hit[2]


def check_accessibility(ctx: CampaignContext) -> Iterator[Finding]:
    analysis = ctx.analysis
    template = ctx.repo.template_for(ctx.campaign)
    if template is None or not analysis.complete:
        return
    images, root = _static_tags(analysis.tags)
    static_missing = False
    for tag in images:
        if tag.attr("alt") is None:
            static_missing = True
            yield finding("CNT-004", f"<{tag.name}> without alt text; add alt=\"...\" describing "
                          "the image (alt=\"\" if it is only decoration)", tag.pos)
    if not static_missing:
        for message in ctx.renders:
            if images_without_alt(message.html):
                yield finding("CNT-004", "the rendered message has an image without alt text; "
                              "add alt=\"...\" to every image", Pos(template.file, 1))
                break
    lang = root.attr("lang") if root is not None else None
    if lang is None or not lang.strip():
        pos = root.pos if root is not None else Pos(template.file, 1)
        yield finding("CNT-004", "the document has no language; add lang=\"en\" (or the "
                      "message's language) to <mjml>", pos)


RULES = (
    Rule(
        id="CNT-001",
        severity=Severity.ERROR,
        summary="A clinical field in the subject, preheader or from name (identifier fields "
        "there are a warning).",
        citation="45 CFR 164.502(b), 164.312(e)(1): lock-screen previews and headers are not "
        "protected by S/MIME",
        fix="Keep subject, preheader and from name generic (\"A message about your care\"); put "
        "clinical details in the body, behind encryption where required.",
        scope="campaign",
        check=check_lock_screen,
    ),
    Rule(
        id="CNT-002",
        severity=Severity.ERROR,
        summary="A hard-coded identifier in a template, campaign or segment; personas that are "
        "not obviously synthetic.",
        citation="45 CFR 164.514(b)(2) (the 18 identifiers); 164.502(a)",
        fix="Remove SSNs, dates of birth, real email addresses and values matching an "
        "identifier pattern from templates, campaigns and segments. Personas use SSNs starting "
        "000 or 9xx, addresses at example.org/example.com/example.net or a verified domain, "
        "and 555-01xx phone numbers.",
        scope="repo",
        check=check_hard_coded_identifiers,
    ),
    Rule(
        id="CNT-003",
        severity=Severity.ERROR,
        summary="A template or subject uses a variable that is neither a schema field "
        "(`contact.<field>`) nor a built-in, or reaches contact data in a way the analysis "
        "cannot follow.",
        citation="DESIGN.md §2 (templates reach contact data only as contact.<field>); "
        "45 CFR 164.502(b)",
        fix="Write `contact.<field>` with a field from policy/fields.yaml, or one of sender, "
        "organization, campaign, unsubscribe_url, view_online_url, now. Do not alias `contact`, "
        "pass it to macros, or index it with a computed key: pass the field itself.",
        scope="repo",
        check=check_unfollowable,
    ),
    Rule(
        id="CNT-004",
        severity=Severity.WARNING,
        summary="Accessibility: an image without alt text; no `lang` on the document.",
        citation="WCAG 2.1 1.1.1 (non-text content), 3.1.1 (language of page); Section 1557 of "
        "the ACA (45 CFR 92.204)",
        fix="Give every <mj-image> an alt text (alt=\"\" for decoration) and the <mjml> root a "
        "lang attribute.",
        scope="campaign",
        check=check_accessibility,
    ),
)
