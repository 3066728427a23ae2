"""Preview renders shared by campaigns that differ only in values printed as they are.

Many campaigns use one template, sender and purpose and differ, as far as the template
can see, only in their title, id, unsubscribe and view-online URLs and preheader. Lint and
the preview site render each campaign for its personas; rendering every one in full (Jinja,
then MJML, then CSS inlining) was most of a cold `campaign lint`. Here a *shape* (template,
sender, purpose, persona, moment, and every value that cannot be swapped) is rendered
once with a placeholder in place of each swappable value, and each campaign's message is
that output with its own values put back, character for character.

When the swap gives exactly what a full render gives:

- **The template only prints the value.** A variable is swappable in a template when
  every use of it, in the template and every template it includes, imports or extends, is
  a bare `{{ campaign.title }}` / `{{ campaign.id }}` / `{{ unsubscribe_url }}` /
  `{{ view_online_url }}` outside macros, call blocks, filter blocks and `{% set %}`
  blocks (whose output a template can transform): no filter, test, condition, loop,
  assignment or argument sees it. Any other use puts the variable's real value in the
  shape's key instead (`_printed_only`). The preheader is not a Jinja variable: the
  renderer puts it, escaped, in `<mj-preview>` (render.add_preview).
- **Every step leaves the value's characters alone.** A value is swapped only when it
  is made of characters that Jinja's escaping, the `finalize` hook, MJML and the CSS
  inliner pass through unchanged wherever they land (`_TEXT`, `_URL`: no `& < > " '`,
  no control characters, no runs of or surrounding whitespace, ASCII only); any other
  value goes in the key and is rendered as it is.
- **Checked per shape.** Each shape is rendered twice, with two sets of placeholders of
  different lengths that use every character the classes allow; the shape is used only
  when putting the second set into the first output gives the second output exactly
  (HTML and MJML), and when no placeholder follows an unfinished character reference.
  Otherwise its campaigns render in full.

Rules read facts of the rendered body (links, visible text, URLs: rules/body.py,
rules/tracking.py). For a shaped message these are computed once on the shape's output
and the values put back into them (`ShapedHTML.fact`), under the same check: a fact
function is used this way for a shape only when it maps the second placeholder set's
output exactly. The classes keep the delimiters those scans look for out of a swapped
value: `< > " ' &`, runs of whitespace, `=` in text (an attribute), whitespace in URLs,
and a CSS `url(` (no `l(`, no leading `(` in text, and no `(` right after a placeholder).

tests/test_render_shapes.py compares shaped and full renders, and every fact, for every
example campaign and persona and for generated values.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import nodes

from toolkit.limits import MAX_RENDER_CHARS

if TYPE_CHECKING:
    import datetime as dt

    from toolkit.models import Campaign, Repo
    from toolkit.render import RenderedMessage

# the swappable values, in slot order; the first four are template variables
VARS = ("title", "id", "unsubscribe_url", "view_online_url", "preheader")
_CAMPAIGN_ATTRS = {"title", "id"}
_CONTEXT_NAMES = {"unsubscribe_url", "view_online_url"}

# characters that no step changes and no body scan treats as a delimiter
_TEXT_CHARS = r"A-Za-z0-9.,:;!?/_+%~*@#$()-"
_TEXT = re.compile(rf"[{_TEXT_CHARS}]+(?: [{_TEXT_CHARS}]+)*\Z")
# a CSS `url(` the tracking rule looks for: never made by a value, nor across its edge
# (a value starting with "(", or holding "l(", could finish one begun before it)
_CSS_URL_PART = re.compile(r"[lL]\(|^\(")
_URL = re.compile(r"[A-Za-z0-9._~:/?#@!$*+,;=%-]+\Z")
# a character reference not finished before a placeholder would swallow its characters
_OPEN_REFERENCE = re.compile(r"&[#A-Za-z0-9]*\Z")
# text-like values (title, preheader) may hold spaces, URL-like ones "="
_URLISH = frozenset({"unsubscribe_url", "view_online_url", "id"})
# a campaign id is a folder name: the URL class fits it

_SALT = secrets.token_hex(4)


def _placeholders(tag: str, long: bool) -> dict[str, str]:
    out = {}
    for i, var in enumerate(VARS):
        base = f"zq{tag}{_SALT}{i}"
        if not long:
            out[var] = base + "q"
        elif var in _URLISH:
            out[var] = base + "._~:/?#@!$*+,;=%-q"
        else:
            out[var] = base + " a.b,c:d;e!f?g/h_i+j%k~l*m@n#o$p-q (r) s)q"
    return out


_A = _placeholders("a", long=False)
_B = _placeholders("b", long=True)


def transparent(var: str, value: str) -> bool:
    if var in _URLISH:
        return _URL.match(value) is not None
    return _TEXT.match(value) is not None and _CSS_URL_PART.search(value) is None


# --- which variables a template only prints ------------------------------------------

_CAPTURING = (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)
_LOADING = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def _names(expr: nodes.Node) -> list[str] | None:
    """The constant template names an include/import/extends names, None if computed."""
    if isinstance(expr, nodes.Const) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, nodes.Tuple | nodes.List):
        out = []
        for item in expr.items:
            if not (isinstance(item, nodes.Const) and isinstance(item.value, str)):
                return None
            out.append(item.value)
        return out
    return None


def _scan_template(tree: nodes.Template, bound: set[str], reached: list[str]) -> bool:
    """Adds to `bound` the variables this template uses other than by printing them, and
    to `reached` the templates it loads. False when it loads a template by a computed
    name or inside a capturing block, touches `self`, or uses `super()` other than by
    printing it: nothing is swappable then."""

    def walk(node: nodes.Node, parent: nodes.Node | None, captured: bool) -> bool:
        if isinstance(node, _LOADING):
            names = _names(node.template)
            if names is None or captured:
                return False
            reached.extend(names)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) \
                and node.node.name == "super" and not isinstance(parent, nodes.Output):
            return False  # a parent block's output, as a value a template can transform
        if isinstance(node, nodes.Name):
            if node.name == "self":
                return False
            if node.name in _CONTEXT_NAMES:
                if node.ctx != "load" or captured or not isinstance(parent, nodes.Output):
                    bound.add(node.name)
            elif node.name == "campaign":
                plain = node.ctx == "load" and isinstance(parent, nodes.Getattr) \
                    and parent.attr in ("purpose", *_CAMPAIGN_ATTRS)
                if not plain:
                    bound.update(_CAMPAIGN_ATTRS)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) \
                and node.node.name == "campaign" and node.attr in _CAMPAIGN_ATTRS \
                and (captured or not isinstance(parent, nodes.Output)):
            bound.add(node.attr)
        inner = captured or isinstance(node, _CAPTURING)
        return all(walk(child, node, inner) for child in node.iter_child_nodes())

    return walk(tree, None, False)


def _printed_only(repo: Repo, name: str) -> frozenset[str]:
    """The template variables of VARS that `name` and everything it reaches only print."""
    from toolkit.render import repo_cache

    memo = repo_cache(repo).extra.setdefault("printed_only", {})
    got = memo.get(name)
    if got is not None:
        return got
    from toolkit.analysis import walked_tree

    bound: set[str] = set()
    todo, seen, ok = [name], set(), True
    while todo and ok:
        tname = todo.pop()
        if tname in seen:
            continue
        seen.add(tname)
        tpl = repo.templates.get(tname)
        if tpl is None:
            ok = False
            break
        tree = walked_tree(repo.root, tname, tpl.source)  # the analysis' parse, shared
        if tree is None:
            ok = False
            break
        ok = _scan_template(tree, bound, todo)
    got = frozenset() if not ok else frozenset(VARS[:4]) - bound
    memo[name] = got
    return got


# --- shapes -----------------------------------------------------------------------------

@dataclass
class Shape:
    """One render with placeholders, cut where they stand."""

    slots: tuple[str, ...]  # the swapped variables, in the order of `pieces`' gaps
    pieces: list[str]  # html = pieces[0] + value + pieces[1] + ... (one value per gap)
    mjml_slots: tuple[str, ...]
    mjml_pieces: list[str]
    template: RenderedMessage  # the render with the first placeholders
    other: RenderedMessage  # with the second (facts are checked against it)
    facts: dict[Callable[[str], Any], Any] = field(default_factory=dict)

    def fact(self, fn: Callable[[str], Any], values: dict[str, str]) -> Any:
        """fn(the message's HTML), from fn of the placeholder render; _UNMAPPED if fn
        does not map this shape's placeholders exactly."""
        got = self.facts.get(fn)
        if got is None:
            value = fn(self.template.html)
            marks = _marks(value)
            if _put(value, marks, _A, _B) != fn(self.other.html):
                got = self.facts[fn] = (_UNMAPPED, None)
            else:
                got = self.facts[fn] = (value, marks)
        value, marks = got
        return value if value is _UNMAPPED else _put(value, marks, _A, values)


_UNMAPPED = object()
_MISSING = object()
_A_PREFIX = f"zqa{_SALT}"  # every placeholder of the first set starts so


def _join(pieces: list[str], slots: tuple[str, ...], values: dict[str, str]) -> str:
    if not slots:
        return pieces[0]
    out = [""] * (2 * len(slots) + 1)
    out[0::2] = pieces
    out[1::2] = [values[var] for var in slots]
    return "".join(out)


def _cut(text: str, present: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    """text cut at each placeholder of the first set; None if one follows an open
    character reference or a "(" follows one (see _CSS_URL_PART)."""
    if not present:
        return (), [text]
    by_text = {_A[var]: var for var in present}
    pattern = re.compile("|".join(re.escape(p) for p in sorted(by_text, key=len, reverse=True)))
    slots, pieces, at = [], [], 0
    for m in pattern.finditer(text):
        before = text[at:m.start()]
        if _OPEN_REFERENCE.search(before) or (slots and before.startswith("(")):
            return None
        pieces.append(before)
        slots.append(by_text[m.group()])
        at = m.end()
    pieces.append(text[at:])
    if pieces[-1].startswith("("):
        return None
    return tuple(slots), pieces


def _marks(obj: Any) -> Any:
    """Where in obj (strings, tuples, lists, dicts) the first placeholders stand: None
    where nowhere, for a string the tuple of the variables whose placeholders it holds,
    else the list of the items' marks."""
    if isinstance(obj, str):
        if _A_PREFIX not in obj:
            return None
        return tuple(var for var, text in _A.items() if text in obj)  # the ones it holds
    if isinstance(obj, tuple | list):
        inner = [_marks(x) for x in obj]
    elif isinstance(obj, dict):
        inner = [(_marks(k), _marks(v)) for k, v in obj.items()]
        if all(k is None and v is None for k, v in inner):
            return None
        return inner
    else:
        return None
    return inner if any(m is not None for m in inner) else None


def _put(obj: Any, marks: Any, old: dict[str, str], new: dict[str, str]) -> Any:
    """obj with the placeholders of `old` replaced by `new`'s values where `marks` says."""
    if marks is None:
        return obj
    if type(marks) is tuple:  # a string, and the placeholders it holds
        for var in marks:
            obj = obj.replace(old[var], new[var])
        return obj
    if isinstance(obj, dict):
        return {_put(k, km, old, new): _put(v, vm, old, new)
                for (k, v), (km, vm) in zip(obj.items(), marks, strict=True)}
    items = [_put(x, m, old, new) for x, m in zip(obj, marks, strict=True)]
    return tuple(items) if isinstance(obj, tuple) else items


class ShapedHTML(str):
    """A shaped message's HTML (a str like any other), which knows its shape and values
    so that rules' scans of it come from the shape (`fact`)."""

    shape: Shape
    values: dict[str, str]
    memo: dict[Callable[[str], Any], Any]

    def fact(self, fn: Callable[[str], Any]) -> Any:
        """fn(self), computed on the shape when fn maps it, else on self."""
        got = self.memo.get(fn, _MISSING)
        if got is _MISSING:
            got = self.shape.fact(fn, self.values)
            if got is _UNMAPPED:
                got = fn(str(self))
            self.memo[fn] = got
        return got


def fact(fn: Callable[[str], Any], html: str) -> Any:
    """fn(html), from the shape when html is a ShapedHTML."""
    if type(html) is ShapedHTML:
        return html.fact(fn)
    return fn(html)


# --- rendering through a shape ----------------------------------------------------------

def shaped_preview(repo: Repo, campaign: Campaign, persona: str, contact: dict[str, Any], *,
                   unsubscribe_url: str, view_online_url: str,
                   when: dt.datetime) -> RenderedMessage | None:
    """The preview of `campaign` for `persona` through its shape, or None when it must be
    rendered in full (render.render_campaign, which then raises what is wrong)."""
    from toolkit.render import moment_key, repo_cache

    template = repo.template_for(campaign)
    cache = repo_cache(repo).extra
    try:
        subject, preheader = _strings(repo, campaign, persona, contact, cache,
                                      unsubscribe_url=unsubscribe_url,
                                      view_online_url=view_online_url, when=when)
    except Exception:
        return None
    if template is None:
        return None
    printed = _printed_only(repo, template.name)
    values = {"title": campaign.title, "id": campaign.id, "unsubscribe_url": unsubscribe_url,
              "view_online_url": view_online_url, "preheader": preheader}
    swapped = {}
    kept = []  # the key's part: the values not swapped
    for var, value in values.items():
        if (var in printed or var == "preheader") and _clear(var, value):
            swapped[var] = value
            kept.append(None)
        else:
            kept.append(value)
    key = (template.name, campaign.sender, campaign.purpose, persona, moment_key(when), *kept)
    shapes = cache.setdefault("shapes", {})
    shape = shapes.get(key, _MISSING)
    if shape is _MISSING:
        shape = shapes[key] = _make_shape(repo, campaign, contact, values, swapped, when)
    if shape is None:
        return None
    mjml = _join(shape.mjml_pieces, shape.mjml_slots, swapped)
    if len(mjml) > MAX_RENDER_CHARS:  # the full render says whether Jinja's output fits
        return None
    html = ShapedHTML(_join(shape.pieces, shape.slots, swapped))
    html.shape, html.values, html.memo = shape, swapped, {}
    from toolkit.render import RenderedMessage

    return RenderedMessage(campaign.id, persona, subject, preheader, html, "", mjml)


def _strings(repo: Repo, campaign: Campaign, persona: str, contact: dict[str, Any],
             cache: dict[str, Any], *, unsubscribe_url: str, view_online_url: str,
             when: dt.datetime) -> tuple[str, str]:
    """(subject, preheader) of a preview, kept per everything their texts read."""
    from toolkit.render import campaign_context, moment_key, render_strings

    names = _string_names(campaign.subject, campaign.preheader)
    key = (campaign.subject, campaign.preheader, persona, moment_key(when), campaign.sender,
           (campaign.id, campaign.title, campaign.purpose) if "campaign" in names else None,
           unsubscribe_url if "unsubscribe_url" in names else None,
           view_online_url if "view_online_url" in names else None)
    memo = cache.setdefault("preview_strings", {})
    got = memo.get(key)
    if got is None:
        ctx = campaign_context(repo, campaign, contact, unsubscribe_url=unsubscribe_url,
                               view_online_url=view_online_url, now=when)
        got = memo[key] = render_strings(repo, campaign, ctx)
    return got


@lru_cache(maxsize=4096)
def _string_names(subject: str, preheader: str) -> frozenset[str]:
    """What a subject and a preheader read of the context, together."""
    from toolkit.render import string_names

    return string_names(subject) | string_names(preheader)


def _clear(var: str, value: str) -> bool:
    """transparent(), kept per value for those campaigns share or repeat (not the
    unsubscribe URL, which differs for every message)."""
    if var == "unsubscribe_url":
        return transparent(var, value)
    return _clear_kept(var in _URLISH, value)


@lru_cache(maxsize=8192)
def _clear_kept(urlish: bool, value: str) -> bool:
    return transparent("id" if urlish else "title", value)


def _make_shape(repo: Repo, campaign: Campaign, contact: dict[str, Any],
                values: dict[str, str], swapped: dict[str, str],
                when: dt.datetime) -> Shape | None:
    from toolkit.render import RenderedMessage, campaign_context, render_body

    renders = []
    for marks in (_A, _B):
        given = {var: (marks[var] if var in swapped else value) for var, value in values.items()}
        try:
            ctx = campaign_context(repo, campaign, contact,
                                   unsubscribe_url=given["unsubscribe_url"],
                                   view_online_url=given["view_online_url"], now=when)
            ctx["campaign"] = {**ctx["campaign"], "title": given["title"], "id": given["id"]}
            source, html = render_body(repo, campaign, ctx, given["preheader"])
        except Exception:
            return None  # the full render raises, per campaign, what lint reports
        renders.append(RenderedMessage(campaign.id, None, "", "", html, "", source))
    first, second = renders
    present = [var for var in swapped if _A[var] in first.mjml or _A[var] in first.html]
    html_cut = _cut(first.html, present)
    mjml_cut = _cut(first.mjml, present)
    if html_cut is None or mjml_cut is None:
        return None
    b_values = {var: _B[var] for var in swapped}
    if _join(html_cut[1], html_cut[0], b_values) != second.html \
            or _join(mjml_cut[1], mjml_cut[0], b_values) != second.mjml:
        return None
    return Shape(html_cut[0], html_cut[1], mjml_cut[0], mjml_cut[1], first, second)
