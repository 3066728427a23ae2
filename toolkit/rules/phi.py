"""Where PHI goes: minimum necessary, fundraising fields, encryption of clinical content,
refill targeting and newsletters in disguise. These rules read the template analysis
(toolkit/analysis), so a field used in a partial or a macro counts where it is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from toolkit.analysis import FieldUse
from toolkit.findings import Finding, Severity
from toolkit.lint import CampaignContext
from toolkit.models import FieldSpec, Leaf, Repo
from toolkit.rules.base import Rule, finding

PART_NAMES = {"subject": "subject", "preheader": "preheader", "template": "template",
              "from_name": "sender's from name"}

# A "drug field" (HIPAA-MKT-003): a clinical field about medication that is not the one
# currently prescribed drug. Words are matched in the field's name and description.
_DRUG_WORDS = re.compile(r"medication|medicine|drug|prescri|pharmac|\brx\b")


def field_class(repo: Repo, name: str) -> str | None:
    spec = repo.fields.get(name)
    if spec is not None:
        return spec.cls
    # the reserved `email` key is one of the 18 identifiers even when fields.yaml omits it
    return "identifier" if name == "email" else None


def is_drug_field(name: str, spec: FieldSpec) -> bool:
    if spec.cls != "clinical" or spec.prescription:
        return False
    words = re.sub(r"[^a-z]+", " ", f"{name} {spec.description or ''}".lower())
    return bool(_DRUG_WORDS.search(words))


def segment_leaves(ctx: CampaignContext) -> list[Leaf]:
    seg = ctx.repo.segments.get(ctx.campaign.segment)
    return seg.leaves() if seg is not None else []


def clinical_uses(ctx: CampaignContext) -> tuple[list[Leaf], list[FieldUse]]:
    """The segment conditions and content uses that touch a clinical field (three rules
    ask for each campaign: computed once per campaign)."""
    got = ctx._cache.get("clinical_uses")
    if got is None:
        repo = ctx.repo
        got = ctx._cache["clinical_uses"] = (
            tuple(leaf for leaf in segment_leaves(ctx)
                  if field_class(repo, leaf.field) == "clinical"),
            tuple(u for u in ctx.analysis.field_uses if field_class(repo, u.field) == "clinical"))
    leaves, uses = got  # type: ignore[misc]
    return list(leaves), list(uses)


def _where(use: FieldUse) -> str:
    return PART_NAMES.get(use.part, use.part)


# --- HIPAA-MIN-001 / 002 ----------------------------------------------------------------


def check_min_necessary(ctx: CampaignContext) -> Iterator[Finding]:
    c = ctx.campaign
    allowed = set(c.phi_fields)
    for use in ctx.analysis.field_uses:
        # reserved keys (id, email, ...) are not fields unless fields.yaml declares them
        if use.field in allowed or use.field not in ctx.repo.fields:
            continue
        yield finding("HIPAA-MIN-001",
                      f"the {_where(use)} uses contact.{use.field}, which is not in phi_fields; "
                      f"add '{use.field}' to phi_fields in {c.file} or stop using it", use.pos)


def check_unused_phi_fields(ctx: CampaignContext) -> Iterator[Finding]:
    c, analysis = ctx.campaign, ctx.analysis
    if not analysis.complete:  # a syntax error or a missing partial hides uses
        return
    used = analysis.fields_used
    for i, name in enumerate(c.phi_fields):
        if name in ctx.repo.fields and name not in used:
            yield finding("HIPAA-MIN-002", f"phi_fields lists '{name}', but the content never uses "
                          "it (segment conditions do not count); remove it", c.pos("phi_fields", i))


# --- HIPAA-FR-001 -------------------------------------------------------------------------


def _fundraising_ok(repo: Repo, name: str) -> bool:
    spec = repo.fields.get(name)
    # reserved keys (email, no_email, ...) are operational, not PHI used for targeting
    return spec is None or spec.fundraising


def check_fundraising_fields(ctx: CampaignContext) -> Iterator[Finding]:
    if ctx.base_purpose != "fundraising":
        return
    repo = ctx.repo
    hint = "mark it `fundraising: true` in policy/fields.yaml only if 164.514(f)(1) permits it"
    for leaf in segment_leaves(ctx):
        if not _fundraising_ok(repo, leaf.field):
            yield finding("HIPAA-FR-001",
                          f"fundraising segment filters on '{leaf.field}', which is not a "
                          f"fundraising field; remove the condition, or {hint}",
                          leaf.loc.at("field"))
    for use in ctx.analysis.field_uses:
        if not _fundraising_ok(repo, use.field):
            yield finding("HIPAA-FR-001",
                          f"fundraising {_where(use)} uses contact.{use.field}, which is not a "
                          f"fundraising field; remove it, or {hint}", use.pos)


# --- HIPAA-SEC-001 --------------------------------------------------------------------------


def check_clinical_encryption(ctx: CampaignContext) -> Iterator[Finding]:
    c, cfg = ctx.campaign, ctx.repo.config
    d = c.delivery
    if cfg is None or d.encryption != "tls-required" or d.require_unencrypted_consent:
        return
    relay = cfg.relays.get(d.relay)
    if relay is None or relay.guarantees_encryption:
        return  # a missing relay is CFG-002
    _, uses = clinical_uses(ctx)
    if not uses:
        return
    names = ", ".join(sorted({u.field for u in uses}))
    yield finding("HIPAA-SEC-001",
                  f"content uses clinical fields ({names}) and is sent tls-required through "
                  f"relay '{d.relay}', which does not guarantee encryption to the recipient; "
                  "use encryption smime-required or smime-preferred, a relay with "
                  "guarantees_encryption: true, or set delivery.require_unencrypted_consent: true",
                  c.pos("delivery", "encryption"))


# --- HIPAA-MKT-003 ----------------------------------------------------------------------------


def check_refill_target(ctx: CampaignContext) -> Iterator[Finding]:
    if ctx.base_purpose != "refill-reminder":
        return
    c, repo = ctx.campaign, ctx.repo
    seg = repo.segments.get(c.segment)
    if seg is not None:
        rx = [leaf for leaf in seg.leaves()
              if (spec := repo.fields.get(leaf.field)) is not None and spec.prescription]
        if not rx:
            marked = sorted(n for n, s in repo.fields.items() if s.prescription)
            known = ", ".join(marked) if marked else "none is declared in policy/fields.yaml"
            yield finding("HIPAA-MKT-003", f"refill reminder segment '{seg.id}' does not filter on "
                          "a currently prescribed drug; add a condition on a field marked "
                          f"prescription: true ({known})", c.pos("segment"))
    for use in ctx.analysis.field_uses:
        spec = repo.fields.get(use.field)
        if spec is not None and is_drug_field(use.field, spec):
            yield finding("HIPAA-MKT-003",
                          f"refill reminder {_where(use)} names contact.{use.field}, a drug "
                          "field other than the currently prescribed drug; name only the field "
                          "marked prescription: true", use.pos)


# --- HIPAA-MKT-004 ----------------------------------------------------------------------------


def check_marketing_authorization(ctx: CampaignContext) -> Iterator[Finding]:
    c, base = ctx.campaign, ctx.base_purpose
    if base == "marketing" and c.authorization is None:
        yield finding("HIPAA-MKT-004", "marketing requires the recipient's authorization; add "
                      "`authorization: {scope: NAME}` naming a form in policy/authorizations/",
                      c.pos("purpose"))
    if base != "general-newsletter":
        return
    leaves, uses = clinical_uses(ctx)
    for leaf in leaves:
        yield finding("HIPAA-MKT-004", f"a general newsletter targeted on clinical field "
                      f"'{leaf.field}' is marketing in disguise; remove the condition, or make it "
                      "purpose: marketing with an authorization", leaf.loc.at("field"))
    for use in uses:
        yield finding("HIPAA-MKT-004", f"a general newsletter whose {_where(use)} uses clinical "
                      f"field contact.{use.field} is marketing in disguise; remove it, or make it "
                      "purpose: marketing with an authorization", use.pos)


RULES = (
    Rule(
        id="HIPAA-MKT-003",
        severity=Severity.ERROR,
        summary="A refill-reminder must target a currently prescribed drug: its segment filters "
        "on a field marked `prescription: true`, and its content names no other drug field.",
        citation="45 CFR 164.501 marketing (2)(i)",
        fix="Add a segment condition on the field marked `prescription: true` (for example "
        "`{field: current_prescription, op: exists}`), and name only that drug in the content. "
        "A drug field is a clinical field whose name or description mentions medication, "
        "medicine, drug, prescription, pharmacy or Rx and that is not `prescription: true`.",
        scope="campaign",
        check=check_refill_target,
    ),
    Rule(
        id="HIPAA-MKT-004",
        severity=Severity.ERROR,
        summary="`purpose: marketing` requires `authorization.scope`; a general-newsletter whose "
        "segment or content uses a clinical field is targeted marketing in disguise.",
        citation="45 CFR 164.508(a)(3)",
        fix="For marketing, add `authorization: {scope: NAME}` with a form in "
        "policy/authorizations/NAME.yaml. For a newsletter, drop clinical conditions and fields, "
        "or make it `purpose: marketing` under an authorization.",
        scope="campaign",
        check=check_marketing_authorization,
    ),
    Rule(
        id="HIPAA-FR-001",
        severity=Severity.ERROR,
        summary="A fundraising campaign's segment or content uses a field not marked "
        "`fundraising: true`.",
        citation="45 CFR 164.514(f)(1)",
        fix="Fundraising may use only demographics, dates of care, department, treating "
        "physician, outcome and health insurance status: remove other fields from the segment "
        "and the content, and mark the permitted ones `fundraising: true` in policy/fields.yaml.",
        scope="campaign",
        check=check_fundraising_fields,
    ),
    Rule(
        id="HIPAA-MIN-001",
        severity=Severity.ERROR,
        summary="Content (subject, preheader, template, partials) uses a contact field not "
        "listed in `phi_fields`.",
        citation="45 CFR 164.502(b), 164.514(d) (minimum necessary)",
        fix="List the field in the campaign's `phi_fields` if the message needs it (reviewers see "
        "that list), or remove it from the content.",
        scope="campaign",
        check=check_min_necessary,
    ),
    Rule(
        id="HIPAA-MIN-002",
        severity=Severity.WARNING,
        summary="`phi_fields` lists a field the content never uses.",
        citation="45 CFR 164.502(b) (minimum necessary)",
        fix="Remove the field from `phi_fields`: the allowlist should name exactly what the "
        "content uses. Fields used only in the segment do not belong there.",
        scope="campaign",
        check=check_unused_phi_fields,
    ),
    Rule(
        id="HIPAA-SEC-001",
        severity=Severity.ERROR,
        summary="Content uses a clinical field, yet delivery is `tls-required` through a relay "
        "that does not guarantee encryption, for recipients who did not accept unencrypted email.",
        citation="45 CFR 164.312(e)(1); HHS FAQ on patients who prefer unencrypted email "
        "(164.522(b))",
        fix="Set `delivery.encryption: smime-required` (or `smime-preferred`), send through a "
        "relay with `guarantees_encryption: true`, set `delivery.require_unencrypted_consent: "
        "true` to send only to recipients with `unencrypted_email_ok`, or remove the clinical "
        "fields from the content.",
        scope="campaign",
        check=check_clinical_encryption,
    ),
)
