"""HIPAA purpose, remuneration, authorization and retention rules, and the HIPAA gate rules.

(The PHI-flow rules, minimum necessary, fundraising fields, refill targeting and
encryption of clinical content, live in phi.py: they read the template analysis.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from toolkit.findings import Finding, Severity
from toolkit.lint import CampaignContext, RepoContext
from toolkit.models import PURPOSES
from toolkit.rules.base import Rule, finding
from toolkit.rules.body import has_unsubscribe_link

MIN_RETENTION_YEARS = 6

# 164.508(c)(1) core elements and (c)(2) required statements, as keys of the form
AUTH_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("information", "a description of the information to be used or disclosed (164.508(c)(1)(i))"),
    (
        "recipients_of_information",
        "who uses the information and who receives it (164.508(c)(1)(ii)-(iii))",
    ),
    ("purposes", "the purpose of each use or disclosure (164.508(c)(1)(iv))"),
    ("expiration", "an expiration date or event (164.508(c)(1)(v))"),
    ("revocation", "the right to revoke in writing and how to do it (164.508(c)(2)(i))"),
    ("conditioning", "a statement on conditioning treatment or payment (164.508(c)(2)(ii))"),
    (
        "redisclosure",
        "a statement that disclosed information may be redisclosed (164.508(c)(2)(iii))",
    ),
)

# "none" as an expiration is allowed only for research (164.508(c)(1)(v)), not marketing
_NO_EXPIRY = re.compile(
    r"^\s*(none|never|n/?a|no expiration|does not expire|indefinite\w*)\W*$", re.I
)

# a remuneration statement must say the organization is paid, not merely exist
_PAID = re.compile(
    r"\b(pa(id|ys?|yment)|remunerat\w*|compensat\w*|receives?|fees?|sponsor\w*)\b", re.I
)


def _known_purposes(ctx: CampaignContext) -> list[str]:
    return sorted(set(PURPOSES) | set(ctx.repo.purposes))


def check_purpose(ctx: CampaignContext) -> Iterator[Finding]:
    c = ctx.campaign
    if c.purpose is None:
        yield finding(
            "HIPAA-MKT-001",
            "campaign has no 'purpose'; add one of: " + ", ".join(_known_purposes(ctx)),
            c.pos(),
        )
        return
    spec = ctx.repo.purposes.get(c.purpose)
    if c.purpose in PURPOSES:
        if spec is not None and spec.base != c.purpose:
            # the built-in meaning wins; a file that says otherwise misleads reviewers
            yield finding(
                "HIPAA-MKT-001",
                f"policy/purposes.yaml redefines the built-in purpose '{c.purpose}' as "
                f"'{spec.base}'; built-in purposes keep their meaning: rename the organization "
                "purpose",
                spec.key_pos("base") if spec.base else spec.pos(),
            )
        return
    if spec is None:
        yield finding(
            "HIPAA-MKT-001",
            f"purpose '{c.purpose}' is not a known purpose; use one of: "
            + ", ".join(_known_purposes(ctx))
            + " (or map it in policy/purposes.yaml)",
            c.pos("purpose"),
        )
    elif spec.base not in PURPOSES:
        yield finding(
            "HIPAA-MKT-001",
            f"purpose '{c.purpose}' maps onto '{spec.base}', which is not a "
            "built-in purpose; set its base to one of: " + ", ".join(sorted(PURPOSES)),
            spec.pos("base"),
        )


def check_remuneration(ctx: CampaignContext) -> Iterator[Finding]:
    c, base = ctx.campaign, ctx.base_purpose
    if base is None:
        return  # HIPAA-MKT-001 says why
    if c.remuneration == "third-party" and base != "marketing":
        yield finding(
            "HIPAA-MKT-002",
            f"third-party remuneration makes this '{c.purpose}' message "
            "marketing; set 'purpose: marketing' with an authorization scope, or remove the "
            "third-party payment",
            c.pos("remuneration"),
        )
    elif c.remuneration == "cost-based" and base != "refill-reminder":
        yield finding(
            "HIPAA-MKT-002",
            "'remuneration: cost-based' keeps the exemption only for "
            f"refill reminders, not '{c.purpose}'; remove it or set 'purpose: marketing' with "
            "an authorization scope",
            c.pos("remuneration"),
        )


def check_remuneration_statement(ctx: CampaignContext) -> Iterator[Finding]:
    c = ctx.campaign
    if c.remuneration != "third-party" or c.authorization is None:
        return
    form = ctx.repo.authorizations.get(c.authorization.scope)
    if form is None:
        return  # CFG-002 reports the missing form
    path = f"policy/authorizations/{form.scope}.yaml"
    statement = (form.remuneration_statement or "").strip()
    if not statement:
        yield finding(
            "HIPAA-MKT-005",
            f"campaign '{c.id}' is paid for by a third party, but {path} has no "
            "'remuneration_statement'; add one stating that the organization is paid for "
            "these communications",
            form.pos(),
        )
    elif not _PAID.search(statement):
        yield finding(
            "HIPAA-MKT-005",
            f"{path}: 'remuneration_statement' does not say that the "
            "organization is paid; state the payment plainly (e.g. 'Valley Health receives "
            "payment from ... for sending these messages')",
            form.pos("remuneration_statement"),
        )


def check_authorization_forms(ctx: RepoContext) -> Iterator[Finding]:
    for scope, form in sorted(ctx.repo.authorizations.items()):
        path = f"policy/authorizations/{scope}.yaml"
        for key, what in AUTH_ELEMENTS:
            value = getattr(form, key)
            empty = (
                not value
                or (isinstance(value, str) and not value.strip())
                or (isinstance(value, tuple) and not any(str(v).strip() for v in value))
            )
            if key == "expiration" and not empty and _NO_EXPIRY.match(str(value)):
                yield finding(
                    "HIPAA-AUTH-001",
                    f"authorization form '{scope}': expiration '{value}' names no date or event; "
                    "state when the authorization ends (a date, or an event such as 'one year "
                    "after signing')",
                    form.pos(key),
                )
            if empty:
                present = key in (ctx.repo.documents.get(path) or {})
                pos = form.pos(key) if present else form.pos()
                yield finding(
                    "HIPAA-AUTH-001",
                    f"authorization form '{scope}' lacks '{key}': {what}; add it to {path}",
                    pos,
                )


def check_fundraising_opt_out(ctx: CampaignContext) -> Iterator[Finding]:
    if ctx.base_purpose != "fundraising":
        return
    for r in ctx.renders:
        if not has_unsubscribe_link(ctx, r):
            who = f" (rendered for persona '{r.persona}')" if r.persona else ""
            yield finding(
                "HIPAA-FR-002",
                f"the fundraising message body has no opt-out link{who}; add "
                '<a href="{{ unsubscribe_url }}">opt out of fundraising messages</a> to the '
                f"template '{ctx.campaign.template}' or its footer",
                ctx.campaign.pos("template"),
            )
            return


def check_retention(ctx: RepoContext) -> Iterator[Finding]:
    cfg = ctx.repo.config
    if cfg is None:
        return
    years = cfg.audit.retention_years
    if years < MIN_RETENTION_YEARS:
        yield finding(
            "HIPAA-SEC-003",
            f"audit.retention_years is {years:g}; HIPAA documentation must be "
            f"kept at least {MIN_RETENTION_YEARS} years: set it to {MIN_RETENTION_YEARS} or more",
            cfg.audit.pos("retention_years"),
        )


RULES = (
    Rule(
        id="HIPAA-MKT-001",
        severity=Severity.ERROR,
        summary="`purpose` is missing or not a known purpose.",
        citation="45 CFR 164.501 (definitions of treatment, health care operations and marketing)",
        fix="Set `purpose:` to a built-in purpose (appointment-reminder, care-instructions, "
        "lab-results-notice, refill-reminder, care-coordination, health-education, "
        "plan-benefits, fundraising, marketing, general-newsletter) or to an organization "
        "purpose declared in policy/purposes.yaml with such a `base`.",
        scope="campaign",
        check=check_purpose,
        details="The purpose decides which HIPAA category a message falls in and whether "
        "CAN-SPAM's commercial rules apply, so every campaign must state one.",
    ),
    Rule(
        id="HIPAA-MKT-002",
        severity=Severity.ERROR,
        summary="Third-party remuneration requires `purpose: marketing`; `cost-based` "
        "remuneration is allowed only for refill reminders.",
        citation="45 CFR 164.501 marketing (2)(i); HITECH Act 13406(a)",
        fix="If a third party pays for the message, make it `purpose: marketing` with an "
        "`authorization.scope`; otherwise set `remuneration: none`. Only a refill-reminder may "
        "take `cost-based` payment (covering the cost of the message) and stay exempt.",
        scope="campaign",
        check=check_remuneration,
    ),
    Rule(
        id="HIPAA-MKT-005",
        severity=Severity.ERROR,
        summary="With third-party remuneration, the authorization form must state that the "
        "organization is paid for the communication.",
        citation="45 CFR 164.508(a)(3)(ii)",
        fix="Add `remuneration_statement:` to the authorization form (policy/authorizations/"
        "<scope>.yaml), saying plainly that the organization receives payment for sending "
        "these messages and from whom.",
        scope="campaign",
        check=check_remuneration_statement,
    ),
    Rule(
        id="HIPAA-AUTH-001",
        severity=Severity.ERROR,
        summary="An authorization form lacks a core element or required statement.",
        citation="45 CFR 164.508(c)",
        fix="Complete policy/authorizations/<scope>.yaml: `information`, "
        "`recipients_of_information`, `purposes` (a list), `expiration`, `revocation`, "
        "`conditioning` and `redisclosure` must all be present and non-empty.",
        scope="repo",
        check=check_authorization_forms,
    ),
    Rule(
        id="HIPAA-AUTH-002",
        severity=Severity.GATE,
        summary="The recipient holds no authorization of the campaign's scope, or it is expired or "
        "revoked on the send date.",
        citation="45 CFR 164.508(a)(3), 164.508(b)(5)",
        fix="Nothing to fix in the campaign: such recipients are excluded at plan and send time. "
        "Collect signed authorizations (recorded in the contact's `authorizations`) to reach them.",
        scope="gate",
        reasons=("no-authorization", "authorization-expired", "authorization-revoked"),
    ),
    Rule(
        id="HIPAA-FR-002",
        severity=Severity.ERROR,
        summary="A fundraising message lacks a clear opt-out link in its body.",
        citation="45 CFR 164.514(f)(2)(ii)",
        fix="Add a clear opt-out link to the body, e.g. in the footer partial: "
        '<a href="{{ unsubscribe_url }}">opt out of fundraising messages</a>.',
        scope="campaign",
        check=check_fundraising_opt_out,
    ),
    Rule(
        id="HIPAA-CC-001",
        severity=Severity.GATE,
        summary="The recipient asked for no email (confidential communications).",
        citation="45 CFR 164.522(b)",
        fix="Nothing to fix in the campaign: recipients with `no_email: true` are never emailed.",
        scope="gate",
        reasons=("confidential-no-email",),
    ),
    Rule(
        id="HIPAA-SEC-002",
        severity=Severity.GATE,
        summary="S/MIME is required and the recipient has no usable certificate, or plain delivery "
        "needs `unencrypted_email_ok` and the recipient lacks it.",
        citation="45 CFR 164.312(e)(1); 164.522(b)",
        fix="Nothing to fix in the campaign: such recipients are excluded. Use "
        "`encryption: smime-preferred` to fall back to TLS delivery, or collect certificates or "
        "the patient's documented preference for unencrypted email.",
        scope="gate",
        reasons=("no-smime-certificate", "unencrypted-not-consented"),
    ),
    Rule(
        id="HIPAA-SEC-003",
        severity=Severity.ERROR,
        summary="Audit retention in toolkit.yaml is below 6 years.",
        citation="45 CFR 164.316(b)(2)(i)",
        fix="Set `audit.retention_years` in toolkit.yaml to 6 or more.",
        scope="repo",
        check=check_retention,
    ),
)
