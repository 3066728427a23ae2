"""The plan: every count checked against an independent re-computation in this file."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import run_campaign
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from email_validator import EmailNotValidError, validate_email
from plan_helpers import CAMPAIGNS, make_repo, write_sources

from toolkit.errors import UserError
from toolkit.loader import load_repo
from toolkit.plan import parse_at, plan
from toolkit.suppression import FILE_NAME, SuppressionStore

AT = "2026-06-15T12:00:00+00:00"
DAY = dt.date(2026, 6, 15)
REASONS = [
    "invalid-email",
    "confidential-no-email",
    "suppressed",
    "no-authorization",
    "authorization-expired",
    "authorization-revoked",
    "no-smime-certificate",
    "unencrypted-not-consented",
    "duplicate",
    "already-sent",
]
KINDS = {
    "reminder": {"all"},
    "promo": {"commercial", "all"},
    "appeal": {"fundraising", "all"},
    "offer": {"commercial", "all"},
    "secure": {"all"},
    "consent": {"all"},
    "preferred": {"all"},
}
DATA_KEY = "11" * 32


def _cert(key: Any, email: str, *, days: tuple[int, int] = (-30, 300), eku: bool = True) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Synthetic Test")])
    start = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start + dt.timedelta(days=days[0]))
        .not_valid_after(start + dt.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    )
    if eku:
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    else:
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


def build_contacts() -> tuple[list[dict[str, Any]], set[int], dict[int, bool], dict[str, set[str]]]:
    """(contacts, indexes of invalid ones, index -> usable certificate, suppressions by kind)."""
    rnd = random.Random(4)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    contacts: list[dict[str, Any]] = []
    invalid: set[int] = set()
    usable: dict[int, bool] = {}
    for i in range(400):
        email = f"person.{i}@example.org"
        c: dict[str, Any] = {
            "id": f"t-{i}",
            "email": email,
            "first_name": rnd.choice(["Ann", "Bo", None]),
            "age": rnd.choice([10, 17, 18, 30, 65, 80, None]),
            "score": rnd.choice([1, 2.5, None]),
            "care_status": rnd.choice(["active", "inactive", None]),
            "conditions": rnd.choice([["E11"], ["E11", "I10"], None]),
            "next_appointment": rnd.choice(["2026-06-20T09:30:00+00:00", None]),
            "last_visit": rnd.choice(["2026-01-02", None]),
            "deceased": rnd.choice([False, False, True, None]),
        }
        r = rnd.random()
        if r < 0.08:
            c["email"] = rnd.choice(
                [
                    "no-at-sign.example.org",
                    f"trailing.{i}@",
                    f" lead.{i}@example.org",
                    f"a..b.{i}@example.org",
                    f"x{i}@localhost",
                    None,
                ]
            )
        elif r < 0.14:
            c["no_email"] = True
        elif r < 0.24 and i > 10:  # the same address as an earlier contact, other letter case
            c["email"] = contacts[rnd.randrange(i)].get("email") or email
            if isinstance(c["email"], str):
                c["email"] = c["email"].upper() if i % 2 else c["email"].title()
        r = rnd.random()
        granted = "2026-01-01"
        if r < 0.3:
            c["authorizations"] = [
                {"scope": "partner", "granted_on": granted, "expires_on": "2027-01-01"}
            ]
        elif r < 0.4:
            c["authorizations"] = [
                {"scope": "partner", "granted_on": granted, "expires_on": "2026-06-15"}
            ]
        elif r < 0.5:
            c["authorizations"] = [
                {"scope": "partner", "granted_on": granted, "revoked_on": "2026-06-01"}
            ]
        elif r < 0.55:
            c["authorizations"] = [{"scope": "other", "granted_on": granted}]
        elif r < 0.6:
            c["authorizations"] = [
                {"scope": "partner", "granted_on": "2026-07-01"}
            ]  # not yet granted
        elif r < 0.65:
            c["authorizations"] = [
                {"scope": "partner", "granted_on": granted, "expires_on": "2026-02-01"},
                {"scope": "partner", "granted_on": "2026-03-01", "revoked_on": None},
            ]
        elif r < 0.7:
            c["authorizations"] = [
                {"scope": "partner", "granted_on": granted, "revoked_on": "2026-05-01"},
                {"scope": "partner", "granted_on": granted, "expires_on": "2026-05-01"},
            ]
        r = rnd.random()
        addr = c["email"] if isinstance(c["email"], str) else "nobody@example.org"
        if r < 0.15:
            c["smime_certificate"], usable[i] = _cert(rsa_key, addr.strip().lower()), True
        elif r < 0.2:
            c["smime_certificate"], usable[i] = _cert(rsa_key, addr, days=(-300, -1)), False
        elif r < 0.25:
            c["smime_certificate"], usable[i] = _cert(ec_key, addr), False
        elif r < 0.3:
            c["smime_certificate"], usable[i] = _cert(rsa_key, "someone.else@example.org"), False
        elif r < 0.33:
            c["smime_certificate"], usable[i] = _cert(rsa_key, addr, eku=False), False
        c["unencrypted_email_ok"] = rnd.choice([True, False, None])
        bad = rnd.random()
        if bad < 0.02:
            c["age"] = "old"
            invalid.add(i)
        elif bad < 0.04:
            c["last_visit"] = "yesterday"
            invalid.add(i)
        elif bad < 0.05:
            c["age"] = 20.5
            invalid.add(i)
        contacts.append(c)
    valid_emails = [
        c["email"]
        for i, c in enumerate(contacts)
        if i not in invalid and isinstance(c.get("email"), str) and "@example.org" in c["email"]
    ]
    sup = {
        "commercial": set(valid_emails[5:25]),
        "fundraising": set(valid_emails[25:45]),
        "all": set(valid_emails[45:55]),
    }
    return contacts, invalid, usable, sup


def reference_plan(
    cid: str,
    contacts: list[dict[str, Any]],
    invalid: set[int],
    usable: dict[int, bool],
    sup: dict[str, set[str]],
) -> dict[str, Any]:
    """A straightforward re-implementation of DESIGN.md §3, sharing no code with toolkit."""
    _, extra = CAMPAIGNS[cid]
    delivery = extra.get("delivery", {})
    encryption = delivery.get("encryption", "tls-required")
    consent = delivery.get("require_unencrypted_consent", False)
    scope = extra.get("authorization", {}).get("scope")
    suppressed = {a.lower() for k in KINDS[cid] for a in sup[k]}
    out = {
        "contacts_read": len(contacts),
        "invalid_records": len(invalid),
        "matched": 0,
        "recipients": 0,
        "excluded": dict.fromkeys(REASONS, 0),
    }
    recipients: set[str] = set()

    def exclude(reason: str) -> None:
        out["excluded"][reason] += 1

    for i, c in enumerate(contacts):
        if i in invalid:
            continue
        if not (isinstance(c.get("age"), int) and c["age"] >= 18 and c.get("deceased") is not True):
            continue
        out["matched"] += 1
        email = c.get("email")
        try:
            validate_email(email, check_deliverability=False)
        except (EmailNotValidError, TypeError):
            exclude("invalid-email")
            continue
        if c.get("no_email") is True:
            exclude("confidential-no-email")
            continue
        if email.lower() in suppressed:
            exclude("suppressed")
            continue
        if scope:
            held = [
                a
                for a in c.get("authorizations") or []
                if a["scope"] == scope and dt.date.fromisoformat(a["granted_on"]) <= DAY
            ]

            def gone(a: dict[str, Any], key: str) -> bool:
                return a.get(key) is not None and dt.date.fromisoformat(a[key]) <= DAY

            if not held:
                exclude("no-authorization")
                continue
            if not any(not gone(a, "expires_on") and not gone(a, "revoked_on") for a in held):
                exclude(
                    "authorization-expired"
                    if any(gone(a, "expires_on") for a in held)
                    else "authorization-revoked"
                )
                continue
        smime = encryption != "tls-required" and usable.get(i, False)
        if encryption == "smime-required" and not smime:
            exclude("no-smime-certificate")
            continue
        if consent and not smime and c.get("unencrypted_email_ok") is not True:
            exclude("unencrypted-not-consented")
            continue
        if email.lower() in recipients:
            exclude("duplicate")
            continue
        recipients.add(email.lower())
        out["recipients"] += 1
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("plan")
    repo = make_repo(tmp / "repo")
    contacts, invalid, usable, sup = build_contacts()
    sources = write_sources(tmp, contacts)
    # stored in another letter case than the contacts: matching is case-insensitive
    got = run_campaign(
        "suppress",
        "add",
        "--kind",
        "fundraising",
        *sorted(a.swapcase() for a in sup["fundraising"]),
        root=repo,
    )
    assert got.returncode == 0, got.stderr
    with SuppressionStore(repo / ".campaign" / FILE_NAME) as store:
        for kind in ("commercial", "all"):
            store.add_many([(a.swapcase(), None) for a in sup[kind]], kind=kind, source="test")
    enc = tmp / "contacts.jsonl.enc"
    got = run_campaign(
        "data", "encrypt", str(sources["jsonl"]), str(enc), env={"CAMPAIGN_DATA_KEY": DATA_KEY}
    )
    assert got.returncode == 0, got.stderr
    return {
        "repo": repo,
        "contacts": contacts,
        "invalid": invalid,
        "usable": usable,
        "sup": sup,
        "sources": sources,
        "enc": enc,
    }


def test_the_fixture_exercises_every_reason(world: dict[str, Any]) -> None:
    seen = set()
    for cid in CAMPAIGNS:
        ref = reference_plan(
            cid, world["contacts"], world["invalid"], world["usable"], world["sup"]
        )
        seen |= {r for r, n in ref["excluded"].items() if n}
        assert ref["recipients"] > 0
    assert seen == set(REASONS) - {"already-sent"}
    assert len(world["invalid"]) >= 5


@pytest.mark.parametrize("cid", sorted(CAMPAIGNS))
def test_every_count_matches_an_independent_computation(world: dict[str, Any], cid: str) -> None:
    repo, _ = load_repo(world["repo"])
    got = plan(repo, cid, str(world["sources"]["jsonl"]), at=parse_at(AT)).to_json()
    want = reference_plan(cid, world["contacts"], world["invalid"], world["usable"], world["sup"])
    assert {k: got[k] for k in want} == want
    assert list(got) == [
        "campaign",
        "digest",
        "contacts_read",
        "invalid_records",
        "matched",
        "recipients",
        "excluded",
    ]
    assert list(got["excluded"]) == REASONS
    assert got["recipients"] == got["matched"] - sum(got["excluded"].values())


def _cli_plan(world: dict[str, Any], cid: str, source: str, fmt: str = "json") -> Any:
    got = run_campaign(
        "plan",
        cid,
        "--contacts",
        source,
        "--at",
        AT,
        "--format",
        fmt,
        root=world["repo"],
        env={"CAMPAIGN_DATA_KEY": DATA_KEY},
    )
    assert got.returncode == 0, got.stderr
    return got


@pytest.mark.parametrize("cid", ["offer", "preferred"])
def test_jsonl_csv_sqlite_and_encrypted_give_identical_plans(
    world: dict[str, Any], cid: str
) -> None:
    src = world["sources"]
    plans = {
        "jsonl": _cli_plan(world, cid, str(src["jsonl"])),
        "csv": _cli_plan(world, cid, str(src["csv"])),
        "sqlite": _cli_plan(world, cid, f"sqlite:///{src['sqlite']}"),
        "enc": _cli_plan(world, cid, str(world["enc"])),
    }
    as_json = {k: json.loads(v.stdout) for k, v in plans.items()}
    assert as_json["jsonl"] == as_json["csv"] == as_json["sqlite"] == as_json["enc"]
    want = reference_plan(cid, world["contacts"], world["invalid"], world["usable"], world["sup"])
    assert {k: as_json["jsonl"][k] for k in want} == want
    assert as_json["jsonl"]["digest"].startswith("sha256:")
    jsonl = src["jsonl"]
    want_lines = [f"{jsonl}:{i + 1}: invalid record: key '" for i in sorted(world["invalid"])]
    got_lines = plans["jsonl"].stderr.splitlines()
    assert [line[: len(w)] for line, w in zip(got_lines, want_lines, strict=True)] == want_lines
    # invalid records are reported by line (row) and key, never by value
    for fmt, got in plans.items():
        lines = got.stderr.strip().splitlines()
        assert len(lines) == len(world["invalid"]), fmt
        assert all("invalid record: key '" in line for line in lines), fmt
        assert (
            "old" not in got.stderr and "yesterday" not in got.stderr and "20.5" not in got.stderr
        )
        assert "example.org" not in got.stderr + got.stdout


def test_markdown_hides_counts_from_1_to_10(world: dict[str, Any]) -> None:
    md = _cli_plan(world, "offer", str(world["sources"]["jsonl"]), "markdown").stdout
    repo, _ = load_repo(world["repo"])
    js = plan(repo, "offer", str(world["sources"]["jsonl"]), at=parse_at(AT)).to_json()
    for reason, n in js["excluded"].items():
        shown = "<11" if 1 <= n <= 10 else str(n)
        assert f"| `{reason}` | {shown} |" in md
    assert f"| contacts read | {js['contacts_read']} |" in md
    assert "| `already-sent` | 0 |" in md
    assert f"| **recipients** | **{js['recipients']}** |" in md
    small = [n for n in js["excluded"].values() if 1 <= n <= 10]
    assert small, "the fixture should have a small count to hide"
    assert "example.org" not in md


def test_text_format_shows_the_same_numbers(world: dict[str, Any]) -> None:
    text = _cli_plan(world, "appeal", str(world["sources"]["jsonl"]), "text").stdout
    repo, _ = load_repo(world["repo"])
    js = plan(repo, "appeal", str(world["sources"]["jsonl"]), at=parse_at(AT)).to_json()
    assert text.startswith(f"plan for appeal ({js['digest']}) as of 2026-06-15T12:00:00Z\n")
    for reason, n in js["excluded"].items():
        assert any(line.split() == ["excluded:", reason, str(n)] for line in text.splitlines())
    assert any(line.split() == ["recipients", str(js["recipients"])] for line in text.splitlines())


def test_at_changes_what_matches(tmp_path: Path) -> None:
    repo_root = make_repo(tmp_path / "repo")
    (repo_root / "segments" / "adults.yaml").write_text(
        "where: {field: next_appointment, op: within_days, value: 7}\n"
    )
    src = tmp_path / "c.jsonl"
    src.write_text(
        '{"email": "a@example.org", "next_appointment": "2026-06-20T09:00:00Z"}\n'
        '{"email": "b@example.org", "next_appointment": "2026-07-20T09:00:00Z"}\n'
    )
    repo, _ = load_repo(repo_root)
    assert plan(repo, "reminder", str(src), at=parse_at("2026-06-15")).matched == 1
    assert plan(repo, "reminder", str(src), at=parse_at("2026-07-15")).matched == 1
    assert plan(repo, "reminder", str(src), at=parse_at("2026-09-01")).matched == 0
    got = run_campaign(
        "plan", "reminder", "--contacts", str(src), "--at", "June 15", root=repo_root
    )
    assert got.returncode == 2
    assert "--at 'June 15' is not an ISO-8601 date or date-time" in got.stderr


def test_pseudonym_suppressions_need_the_audit_key(tmp_path: Path) -> None:
    from toolkit.pseudonym import pseudonym
    from toolkit.suppression import FILE_NAME, SuppressionStore

    repo_root = make_repo(tmp_path / "repo")
    src = tmp_path / "c.jsonl"
    src.write_text('{"email": "A@example.org", "age": 40}\n{"email": "b@example.org", "age": 40}\n')
    with SuppressionStore(repo_root / ".campaign" / FILE_NAME) as store:
        store.add(pseudonym=pseudonym("a@example.org", b"k1"), kind="all", source="unsubscribe")
    env = {"AUDIT_KEY": ""}
    got = run_campaign(
        "plan", "reminder", "--contacts", str(src), "--format", "json", root=repo_root, env=env
    )
    assert got.returncode == 2
    assert "environment variable AUDIT_KEY is not set" in got.stderr
    got = run_campaign(
        "plan",
        "reminder",
        "--contacts",
        str(src),
        "--format",
        "json",
        root=repo_root,
        env={"AUDIT_KEY": "k1"},
    )
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["excluded"]["suppressed"] == 1 and out["recipients"] == 1


def test_already_sent_comes_from_the_ledger(tmp_path: Path) -> None:
    from toolkit.ledger import Change, Ledger
    from toolkit.pseudonym import pseudonym

    repo_root = make_repo(tmp_path / "repo")
    src = tmp_path / "c.jsonl"
    src.write_text(
        "".join(json.dumps({"email": f"p{i}@example.org", "age": 40}) + "\n" for i in range(5))
    )
    ledger = Ledger(repo_root / ".campaign")
    sent = [
        ("reminder", pseudonym("P1@example.org", b"k1")),
        ("promo", pseudonym("p2@example.org", b"k1")),
    ]
    ledger.apply([Change(cid, p, "pending", digest="sha256:x") for cid, p in sent])
    ledger.apply([Change(cid, p, "sent", digest="sha256:x") for cid, p in sent])
    ledger.close()
    got = run_campaign(
        "plan",
        "reminder",
        "--contacts",
        str(src),
        "--format",
        "json",
        root=repo_root,
        env={"AUDIT_KEY": "k1"},
    )
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["excluded"]["already-sent"] == 1 and out["recipients"] == 4
    got = run_campaign(
        "plan", "reminder", "--contacts", str(src), root=repo_root, env={"AUDIT_KEY": ""}
    )
    assert got.returncode == 2 and "AUDIT_KEY" in got.stderr


def test_a_ledger_holding_only_failures_is_still_consulted(tmp_path: Path) -> None:
    """A 5xx refusal is final (the ledger's one rule: send never retries it), so the plan
    counts it as already-sent even when the ledger holds nothing but failures; a 4xx is
    retried by send, so the plan keeps it a recipient."""
    from toolkit.ledger import Change, Ledger
    from toolkit.pseudonym import pseudonym

    repo_root = make_repo(tmp_path / "repo")
    src = tmp_path / "c.jsonl"
    src.write_text(
        "".join(json.dumps({"email": f"p{i}@example.org", "age": 40}) + "\n" for i in range(5))
    )
    refused, deferred = pseudonym("p1@example.org", b"k1"), pseudonym("p2@example.org", b"k1")
    ledger = Ledger(repo_root / ".campaign")
    ledger.apply([Change("reminder", p, "pending", digest="sha256:x") for p in (refused, deferred)])
    ledger.apply([Change("reminder", refused, "failed", code=550, reply="550 no such user"),
                  Change("reminder", deferred, "failed", code=451, reply="451 try later")])
    assert ledger.counts("reminder")["sent"] == 0
    skipped = ledger.skip_set("reminder")  # what a resumed send skips
    ledger.close()
    assert skipped == {refused}
    got = run_campaign("plan", "reminder", "--contacts", str(src), "--format", "json",
                       root=repo_root, env={"AUDIT_KEY": "k1"})
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["excluded"]["already-sent"] == len(skipped) == 1
    assert out["recipients"] == 4


def test_bad_sources_are_exit_2(tmp_path: Path) -> None:
    repo_root = make_repo(tmp_path / "repo")
    missing = tmp_path / "missing.jsonl"
    got = run_campaign("plan", "reminder", "--contacts", str(missing), root=repo_root)
    assert got.returncode == 2
    assert f"contact source {missing} does not exist" in got.stderr
    assert "Traceback" not in got.stderr
    got = run_campaign("plan", "nope", "--contacts", str(missing), root=repo_root)
    assert got.returncode == 2 and "no campaign 'nope' (known: appeal, " in got.stderr
    repo, _ = load_repo(repo_root)
    (tmp_path / "c.txt").write_text("x")
    cases = {
        str(tmp_path / "c.txt"): "cannot tell the format of contact source",
        "sqlite:///" + str(tmp_path / "none.db"): "does not exist",
        "sqlite://host/x.db": "bad SQLite URL",
    }
    for spec, message in cases.items():
        with pytest.raises(UserError, match=message):
            plan(repo, "reminder", spec, at=parse_at(AT))


def test_bundled_contacts_give_every_example_campaign_recipients(example_root: Path) -> None:
    from toolkit.plan import gate_config
    from toolkit.suppression import Matcher

    repo, _ = load_repo(example_root)
    at = parse_at("2026-12-01T12:00:00Z")
    source = str(example_root / "fixtures" / "contacts.jsonl")
    seen: set[str] = set()
    assert repo.campaigns
    for cid, campaign in repo.campaigns.items():
        # the example's own state folder may hold a demo's suppressions and ledger: not here
        config = gate_config(
            repo, campaign, at=at, suppression=Matcher(frozenset(), frozenset()), already_sent=None
        )
        got = plan(repo, cid, source, at=at, config=config)
        assert got.recipients > 0, cid
        assert got.invalid_records == 4 and got.contacts_read == 300
        seen |= {r for r, n in got.excluded.items() if n}
    assert {
        "invalid-email",
        "confidential-no-email",
        "duplicate",
        "no-authorization",
        "authorization-expired",
        "authorization-revoked",
    } <= seen
