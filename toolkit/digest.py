"""The content digest that approvals sign (docs/digest.md).

A campaign's digest is a SHA-256 over named parts, one per input that decides
what a recipient gets or who gets it. Each part is itself a SHA-256:

- YAML inputs are hashed in a canonical form of their *loaded data* (JSON with
  sorted keys and no whitespace), so re-indenting, flow vs block style,
  comments and key order never change the digest, while any change of meaning
  does;
- templates and partials are hashed as their exact source text, because every
  character of a template can reach the message.

The digest is `sha256:` + SHA-256 of a versioned header and the sorted
`name=hex` lines of the parts, so `digest_parts` explains any change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta

from toolkit import MAJOR_VERSION
from toolkit.errors import UserError
from toolkit.jinja_env import make_env
from toolkit.models import PURPOSES, Campaign, Repo

FORMAT = "campaign-digest/v1"


def _plain(value: Any) -> Any:
    """Loaded YAML data as JSON-able values (keys as strings, dates as ISO text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def canonical_json(value: Any) -> bytes:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _doc(repo: Repo, rel: str) -> Any:
    return repo.documents.get(rel)


def _config_section(repo: Repo, *path: str) -> Any:
    node = _doc(repo, "toolkit.yaml")
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def reached_templates(repo: Repo, name: str) -> list[str]:
    """The template and every template it includes, imports or extends, recursively.

    A template that cannot be parsed, or that names a template only at run time
    (`{% include some_variable %}`), reaches every template: the digest must not
    miss a file that could end up in the message.
    """
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in repo.templates:
            continue
        seen.add(current)
        refs = _references(repo.root, repo.templates[current].source)
        if None in refs:
            return sorted(repo.templates)
        todo.extend(r for r in refs if r is not None)
    return sorted(seen)


@lru_cache(maxsize=4096)
def _references(root: Path, source: str) -> tuple[str | None, ...]:
    """Templates a source names (None: one named only at run time, or a syntax error)."""
    try:
        ast = make_env(root / "templates").parse(source)
    except TemplateSyntaxError:
        return (None,)
    return tuple(meta.find_referenced_templates(ast))


def require_campaign(repo: Repo, campaign_id: str) -> Campaign:
    """The loaded campaign, or a UserError (exit 2) saying why there is none."""
    camp = repo.campaigns.get(campaign_id)
    if camp is not None:
        return camp
    if f"campaigns/{campaign_id}/campaign.yaml" in repo.documents:
        raise UserError(f"campaign '{campaign_id}' does not load",
                        where=f"campaigns/{campaign_id}/campaign.yaml",
                        fix=f"run `campaign lint {campaign_id}` and correct the reported errors")
    known = ", ".join(sorted(repo.campaigns)) or "none"
    raise UserError(f"unknown campaign '{campaign_id}' (known: {known})",
                    fix="pass the name of a folder under campaigns/")


def digest_parts(repo: Repo, campaign_id: str) -> dict[str, str]:
    """Input name -> SHA-256 hex of its canonical form. Raises UserError for an unknown id."""
    camp = require_campaign(repo, campaign_id)
    parts: dict[str, str] = {
        "campaign": _sha(canonical_json(_doc(repo, camp.file))),  # includes its waivers
        "toolkit": _sha(f"major={MAJOR_VERSION}".encode()),
    }

    template = repo.template_for(camp)
    if template is not None:
        for name in reached_templates(repo, template.name):
            parts[f"template:{name}"] = _sha(repo.templates[name].source.encode("utf-8"))

    segment = repo.segments.get(camp.segment)
    if segment is not None:
        parts[f"segment:{segment.id}"] = _sha(canonical_json(_doc(repo, segment.file)))

    parts["fields"] = _sha(canonical_json(_doc(repo, "policy/fields.yaml")))

    if camp.purpose is not None and camp.purpose not in PURPOSES:
        # an organization purpose: its mapping onto a built-in one decides the rules that apply
        spec = (_doc(repo, "policy/purposes.yaml") or {}).get("purposes", {}).get(camp.purpose)
        parts[f"purpose:{camp.purpose}"] = _sha(canonical_json(spec))

    if camp.authorization is not None:
        scope = camp.authorization.scope
        for ext in ("yaml", "yml"):
            rel = f"policy/authorizations/{scope}.{ext}"
            if rel in repo.documents:
                parts[f"authorization:{scope}"] = _sha(canonical_json(repo.documents[rel]))
                break

    sender = _config_section(repo, "senders", camp.sender)
    parts[f"sender:{camp.sender}"] = _sha(canonical_json(sender))
    relay = camp.delivery.relay
    parts[f"relay:{relay}"] = _sha(canonical_json(_config_section(repo, "relays", relay)))
    parts["unsubscribe"] = _sha(canonical_json(_config_section(repo, "unsubscribe")))
    # name, postal address, domains, fonts and language all reach the message or its checks
    parts["organization"] = _sha(canonical_json(_config_section(repo, "organization")))
    return dict(sorted(parts.items()))


def combine(parts: dict[str, str]) -> str:
    body = FORMAT + "\n" + "".join(f"{name}={hexd}\n" for name, hexd in sorted(parts.items()))
    return "sha256:" + _sha(body.encode("utf-8"))


def campaign_digest(repo: Repo, campaign_id: str) -> str:
    """`sha256:<hex>` over every input of the campaign. Raises UserError for an unknown id."""
    return combine(digest_parts(repo, campaign_id))
