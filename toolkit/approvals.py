"""Approval records bound to a campaign's content digest (docs/approvals.md).

A record is a small JSON file under approvals/<campaign>/ that a reviewer can
read in the pull request. Its Ed25519 signature covers a canonical
serialization of every other field, so the digest, role, approver, time and
(for pull-request reviews) the reviewer's login cannot be changed without the
key. A record counts for a role when:

- its signature verifies with the public key it names;
- that key is listed in policy/approvers.yaml with that role, or, for a record
  made from a pull-request review, the key is the CI key (an approvers.yaml
  entry with role `github-review`) and the reviewer's GitHub login is listed
  with that role;
- its digest is the campaign's current digest.

Anything else is explained: which role is missing, and for a stale record which
inputs changed since it was signed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from toolkit import keys
from toolkit.digest import canonical_json, combine, digest_parts
from toolkit.errors import UserError
from toolkit.limits import MAX_RECORD_BYTES, BadFile, read_text
from toolkit.models import Approver, Repo

FORMAT = "campaign-approval/v1"
# The approvers.yaml role that marks the CI key allowed to sign records made from reviews.
CI_ROLE = "github-review"
_SIGNED_PREFIX = FORMAT.encode("ascii") + b"\n"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ReviewRef:
    """The pull-request review a CI-signed record was made from."""

    reviewer: str  # GitHub login of the human who approved
    review_id: int
    url: str
    pull_request: int
    commit: str  # the commit the review approved

    def as_dict(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "review_id": self.review_id,
            "url": self.url,
            "pull_request": self.pull_request,
            "commit": self.commit,
        }


@dataclass(frozen=True)
class ApprovalStatus:
    valid: bool
    reasons: list[str]  # why not valid: one or more lines per missing role
    approved_roles: list[str]
    missing_roles: list[str]
    digest: str = ""
    # records that verified, as (role, approver, file); for reports and the audit log
    approvals: list[tuple[str, str, str]] = field(default_factory=list)
    # problems with records for roles that are approved anyway (reported, never ignored silently)
    warnings: list[str] = field(default_factory=list)


# --- records ---------------------------------------------------------------------------


def signed_bytes(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "signature"}
    return _SIGNED_PREFIX + canonical_json(body)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _detail_hashes(repo: Repo, campaign_id: str) -> dict[str, str]:
    """Finer hashes than the digest parts, only to explain a change (never to decide validity)."""
    camp = repo.campaigns[campaign_id]
    doc = repo.documents.get(camp.file) or {}
    waivers = doc.get("waivers") if isinstance(doc, dict) else None
    return {"waivers": hashlib.sha256(canonical_json(waivers or [])).hexdigest()}


def approvals_dir(repo: Repo, campaign_id: str) -> Path:
    return repo.root / "approvals" / campaign_id


def record_path(
    repo: Repo, campaign_id: str, role: str, public_key: str, review: ReviewRef | None = None
) -> Path:
    who = f"github-{review.reviewer}" if review else keys.fingerprint(public_key)
    return approvals_dir(repo, campaign_id) / _SAFE.sub("_", f"{role}-{who}.json")


def make_record(
    repo: Repo,
    campaign_id: str,
    *,
    role: str,
    approver: str,
    key: Ed25519PrivateKey,
    review: ReviewRef | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    parts = digest_parts(repo, campaign_id)
    record: dict[str, Any] = {
        "format": FORMAT,
        "campaign": campaign_id,
        "digest": combine(parts),
        "role": role,
        "approver": approver,
        "public_key": keys.public_line(key),
        "approved_at": now or _now(),
        "review": review.as_dict() if review else None,
        "parts": parts,
        "details": _detail_hashes(repo, campaign_id),
    }
    record["signature"] = keys.b64(key.sign(signed_bytes(record)))
    return record


def write_record(repo: Repo, record: dict[str, Any], review: ReviewRef | None = None) -> Path:
    """Write (or replace) this approver's record for the role; atomically."""
    path = record_path(repo, record["campaign"], record["role"], record["public_key"], review)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def approver_for_key(repo: Repo, public_key: str, role: str) -> Approver | None:
    for a in repo.approvers:
        if a.public_key.strip() == public_key and a.role == role:
            return a
    return None


def approve(
    repo: Repo, campaign_id: str, *, role: str, key: Ed25519PrivateKey
) -> tuple[Path, dict[str, Any]]:
    """Sign the current digest as `role`; the key must be listed with that role."""
    if role == CI_ROLE:
        raise UserError(
            f"'{CI_ROLE}' marks the CI key that signs review records; it approves "
            "nothing by itself",
            fix="pass the role you review for, e.g. --role legal",
        )
    line = keys.public_line(key)
    who = approver_for_key(repo, line, role)
    if who is None:
        roles = sorted({a.role for a in repo.approvers if a.public_key.strip() == line})
        held = f" (it is listed for: {', '.join(roles)})" if roles else ""
        raise UserError(
            f"this key is not listed with role '{role}' in policy/approvers.yaml{held}",
            fix=f"add an entry with role: {role} and public_key: {line} (reviewed by legal)",
        )
    record = make_record(repo, campaign_id, role=role, approver=who.name, key=key)
    return write_record(repo, record), record


# --- verification ----------------------------------------------------------------------


def _describe_part(name: str, campaign_id: str) -> str:
    kind, _, rest = name.partition(":")
    return {
        "campaign": f"campaign file campaigns/{campaign_id}/campaign.yaml",
        "template": f"template templates/{rest}",
        "segment": f"segment segments/{rest}.yaml",
        "fields": "contact schema policy/fields.yaml",
        "purpose": f"purpose '{rest}' in policy/purposes.yaml",
        "authorization": f"authorization form policy/authorizations/{rest}.yaml",
        "sender": f"sender '{rest}' in toolkit.yaml",
        "relay": f"relay '{rest}' in toolkit.yaml",
        "unsubscribe": "unsubscribe settings in toolkit.yaml",
        "organization": "organization in toolkit.yaml",
        "toolkit": "the toolkit's major version",
    }.get(kind, name)


def changed_inputs(
    record: dict[str, Any], parts: dict[str, str], details: dict[str, str], campaign_id: str
) -> list[str]:
    """Human phrases for each input that differs between a record and now."""
    old = record.get("parts")
    if not isinstance(old, dict):
        return ["(the record lists no inputs, so the change cannot be named)"]
    out: list[str] = []
    for name in sorted(set(old) | set(parts)):
        what = _describe_part(name, campaign_id)
        if name not in parts:
            out.append(f"{what} no longer used")
        elif name not in old:
            out.append(f"{what} added")
        elif old[name] != parts[name]:
            old_details = record.get("details") or {}
            if name == "campaign" and old_details.get("waivers") not in (
                None,
                details.get("waivers"),
            ):
                out.append(f"waivers in campaigns/{campaign_id}/campaign.yaml changed")
            else:
                out.append(f"{what} changed")
    return out


def _check_record(
    repo: Repo, campaign_id: str, rel: str, record: Any
) -> tuple[str | None, str | None]:
    """(role, None) when the record's signature and signer hold; (role or None, problem) if not."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None, f"{rel}: not an approval record ({FORMAT}); remove it or re-approve"
    role = record.get("role") if isinstance(record.get("role"), str) else None
    for key in ("campaign", "digest", "role", "approver", "public_key", "approved_at", "signature"):
        if not isinstance(record.get(key), str):
            return role, f"{rel}: field '{key}' is missing or not text; re-approve"
    if record["campaign"] != campaign_id:
        return role, f"{rel}: record is for campaign '{record['campaign']}', not '{campaign_id}'"
    try:
        signature = keys.unb64(record["signature"])
    except ValueError:
        return role, f"{rel}: signature is not valid base64: the record was damaged or forged"
    if not keys.verify(record["public_key"], signature, signed_bytes(record)):
        return (
            role,
            f"{rel}: signature does not verify: the record was edited or forged after signing",
        )
    review = record.get("review")
    if role == CI_ROLE:
        return role, f"{rel}: role '{CI_ROLE}' approves nothing by itself"
    if review is None:
        if approver_for_key(repo, record["public_key"], role or "") is None:
            return role, (
                f"{rel}: key {record['public_key']} is not listed with role '{role}' "
                "in policy/approvers.yaml"
            )
        return role, None
    if not isinstance(review, dict) or not isinstance(review.get("reviewer"), str):
        return role, f"{rel}: 'review' must name the reviewer's GitHub login"
    if approver_for_key(repo, record["public_key"], CI_ROLE) is None:
        return role, (
            f"{rel}: signed by {record['public_key']}, which is not the CI review key "
            f"(an approvers.yaml entry with role '{CI_ROLE}')"
        )
    login = review["reviewer"].lower()
    if not any(a.role == role and (a.github or "").lower() == login for a in repo.approvers):
        return role, (
            f"{rel}: GitHub reviewer '{review['reviewer']}' is not listed with role '{role}' "
            "(github: login) in policy/approvers.yaml"
        )
    return role, None


def load_records(repo: Repo, campaign_id: str) -> list[tuple[str, Any]]:
    """(repo-relative path, parsed JSON or None when unreadable) for every record file."""
    folder = approvals_dir(repo, campaign_id)
    out: list[tuple[str, Any]] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        rel = path.relative_to(repo.root).as_posix()
        try:  # records come in pull requests too: size, encoding, links, nesting bounded
            text = read_text(path, MAX_RECORD_BYTES, "approval record", inside=repo.root)
            out.append((rel, json.loads(text)))
        except (OSError, BadFile, json.JSONDecodeError, RecursionError):
            out.append((rel, None))
    return out


def approver_key_problems(repo: Repo) -> list[str]:
    """Entries of approvers.yaml whose key cannot be parsed: they can approve nothing."""
    out = []
    for a in repo.approvers:
        if not a.public_key.strip():
            continue  # a review-only approver (github: login) holds no key
        try:
            keys.parse_public_line(a.public_key)
        except keys.KeyFormatError as exc:
            out.append(
                f"{a.pos('public_key')}: approver '{a.name}': {exc}; this entry approves nothing"
            )
    return out


def approval_status(repo: Repo, campaign_id: str) -> ApprovalStatus:
    """Are the approvals valid for the current digest? Raises UserError for an unknown id."""
    parts = digest_parts(repo, campaign_id)
    digest = combine(parts)
    details = _detail_hashes(repo, campaign_id)
    required = list(repo.config.approvals.required_roles) if repo.config else []
    if not required:
        return ApprovalStatus(
            False,
            [
                "toolkit.yaml approvals.required_roles is empty: nothing may be sent "
                "without an approval; name at least one role"
            ],
            [],
            [],
            digest,
        )

    approved: dict[str, list[tuple[str, str]]] = {}
    problems: dict[str | None, list[str]] = {}
    for rel, record in load_records(repo, campaign_id):
        role, problem = _check_record(repo, campaign_id, rel, record)
        if problem is None and record["digest"] != digest:
            changes = "; ".join(
                changed_inputs(record, parts, details, campaign_id)
                or ["the content digest's format"]
            )
            problem = (
                f"{rel}: {role} approval by {record['approver']} "
                f"at {record['approved_at']} is stale: "
                f"{changes} since it was approved"
            )
        if problem is None:
            approved.setdefault(role or "", []).append((record["approver"], rel))
        else:
            problems.setdefault(role, []).append(problem)

    missing = [r for r in required if r not in approved]
    reasons: list[str] = []
    for r in missing:
        reasons.append(
            f"role '{r}' has no valid approval for {digest}"
            + (
                ":"
                if problems.get(r)
                else f"; run `campaign approve {campaign_id} --role {r} --key FILE`"
            )
        )
        reasons.extend(f"  {p}" for p in problems.pop(r, []))
    warnings = [p for ps in problems.values() for p in ps] + approver_key_problems(repo)
    return ApprovalStatus(
        valid=not missing,
        reasons=reasons,
        approved_roles=[r for r in required if r in approved],
        missing_roles=missing,
        digest=digest,
        approvals=[(r, who, rel) for r in required for who, rel in approved.get(r, [])],
        warnings=warnings,
    )
