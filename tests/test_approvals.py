"""Approvals bound to the content digest: approve, verify, and everything that voids them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from approval_helpers import CAMPAIGN, edit, load, make_repo, new_key, set_approvers
from conftest import run_campaign

from toolkit import keys
from toolkit.approvals import approval_status, approve, make_record, write_record
from toolkit.errors import UserError

Key = tuple[Path, str]  # (private key file, public line)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def legal(tmp_path: Path, root: Path) -> tuple[Path, str]:
    key_file, line = new_key(tmp_path / "legal.key")
    set_approvers(root, [{"name": "Privacy Officer", "role": "legal", "public_key": line}])
    return key_file, line


def _approve(root: Path, key_file: Path, role: str = "legal") -> Path:
    path, _ = approve(load(root), CAMPAIGN, role=role, key=keys.load_private_key(key_file))
    return path


def test_approve_then_verify_passes(root: Path, legal: Key) -> None:
    path = _approve(root, legal[0])
    assert path.parent == root / "approvals" / CAMPAIGN
    status = approval_status(load(root), CAMPAIGN)
    assert status.valid
    assert status.approved_roles == ["legal"]
    assert status.missing_roles == []
    assert status.reasons == []
    record = json.loads(path.read_text())
    # a plain file a reviewer can read: who, what, when
    assert record["approver"] == "Privacy Officer"
    assert record["role"] == "legal"
    assert record["digest"] == status.digest
    assert record["public_key"] == legal[1]
    assert record["approved_at"].endswith("Z")
    assert "template:partials/footer.mjml" in record["parts"]


def test_unapproved_campaign_names_the_missing_role(root: Path, legal: Key) -> None:
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.missing_roles == ["legal"]
    assert status.reasons == [
        f"role 'legal' has no valid approval for {status.digest}; "
        f"run `campaign approve {CAMPAIGN} --role legal --key FILE`"
    ]


CHANGES = {
    "template": ("templates/appointment-reminder.mjml", "To change it", "To move it",
                 "template templates/appointment-reminder.mjml changed"),
    "partial": ("templates/partials/footer.mjml", 'font-size="12px"', 'font-size="11px"',
                "template templates/partials/footer.mjml changed"),
    "segment": ("segments/upcoming-appointments.yaml", "value: 7", "value: 14",
                "segment segments/upcoming-appointments.yaml changed"),
    "fields schema": ("policy/fields.yaml", "  deceased:",
                      "  mrn: {type: string, class: identifier}\n  deceased:",
                      "contact schema policy/fields.yaml changed"),
    "authorization form": ("policy/authorizations/reminders.yaml", "one year", "two years",
                           "authorization form policy/authorizations/reminders.yaml changed"),
    "sender": ("toolkit.yaml", "from_name: Example Clinic", "from_name: Example Clinic Team",
               "sender 'clinic' in toolkit.yaml changed"),
    "waiver": (f"campaigns/{CAMPAIGN}/campaign.yaml", "phi_fields:",
               "waivers: [{rule: CANSPAM-001, reason: transactional}]\nphi_fields:",
               f"waivers in campaigns/{CAMPAIGN}/campaign.yaml changed"),
    "subject": (f"campaigns/{CAMPAIGN}/campaign.yaml", "Your upcoming visit", "Your next visit",
                f"campaign file campaigns/{CAMPAIGN}/campaign.yaml changed"),
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_each_digest_input_change_voids_the_approval(root: Path, legal: Key, what: str) -> None:
    rel, old, new, phrase = CHANGES[what]
    record = _approve(root, legal[0])
    assert approval_status(load(root), CAMPAIGN).valid
    edit(root / rel, old, new)

    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.missing_roles == ["legal"]
    approved_at = json.loads(record.read_text())["approved_at"]
    rec = record.relative_to(root).as_posix()
    assert status.reasons[1] == (
        f"  {rec}: legal approval by Privacy Officer at {approved_at} is stale: "
        f"{phrase} since it was approved"
    )


def test_formatting_only_yaml_change_keeps_the_approval(root: Path, legal: Key) -> None:
    _approve(root, legal[0])
    seg = root / "segments" / "upcoming-appointments.yaml"
    seg.write_text("# reviewed by legal\n" + seg.read_text())
    assert approval_status(load(root), CAMPAIGN).valid


def test_key_not_in_approvers_cannot_approve(tmp_path: Path, root: Path, legal: Key) -> None:
    other, line = new_key(tmp_path / "other.key")
    with pytest.raises(UserError) as err:
        _approve(root, other)
    assert "this key is not listed with role 'legal' in policy/approvers.yaml" in err.value.message
    # a record written anyway (by hand, or by an older approvers.yaml) does not count
    repo = load(root)
    rec = write_record(repo, make_record(repo, CAMPAIGN, role="legal", approver="Mallory",
                                         key=keys.load_private_key(other)))
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.reasons[1] == (f"  {rec.relative_to(root).as_posix()}: key {line} is not listed "
                                 "with role 'legal' in policy/approvers.yaml")


def test_removing_an_approver_revokes_their_approvals(root: Path, legal: Key) -> None:
    _approve(root, legal[0])
    set_approvers(root, [])
    assert approval_status(load(root), CAMPAIGN).missing_roles == ["legal"]


def test_wrong_role_fails(tmp_path: Path, root: Path) -> None:
    key_file, line = new_key(tmp_path / "mkt.key")
    set_approvers(root, [{"name": "Marketer", "role": "marketing", "public_key": line}])
    with pytest.raises(UserError) as err:
        _approve(root, key_file)
    assert err.value.message.startswith(
        "this key is not listed with role 'legal' in policy/approvers.yaml "
        "(it is listed for: marketing)")
    # approving as its own role is fine, but legal is still missing
    _approve(root, key_file, role="marketing")
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid and status.missing_roles == ["legal"]


def test_editing_a_signed_record_breaks_its_signature(root: Path, legal: Key) -> None:
    path = _approve(root, legal[0])
    record = json.loads(path.read_text())
    record["role"] = "privacy"  # an attempt to reuse legal's signature for another role
    record["approver"] = "Someone Else"
    path.write_text(json.dumps(record))
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert any("signature does not verify: the record was edited or forged after signing" in w
               for w in status.warnings)


@pytest.mark.parametrize("damage", ["truncated", "forged", "garbage"])
def test_forged_or_truncated_signature_fails(tmp_path: Path, root: Path, legal: Key,
                                             damage: str) -> None:
    path = _approve(root, legal[0])
    record = json.loads(path.read_text())
    sig = record["signature"]
    if damage == "truncated":
        record["signature"] = keys.b64(keys.unb64(sig)[:40])
    elif damage == "forged":  # a valid signature over the same bytes by another key
        from toolkit.approvals import signed_bytes

        other = keys.load_private_key(new_key(tmp_path / "x.key")[0])
        record["signature"] = keys.b64(other.sign(signed_bytes(record)))
    else:
        record["signature"] = sig[:-6] + "!!"
    path.write_text(json.dumps(record))
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    rel = path.relative_to(root).as_posix()
    expected = (f"{rel}: signature is not valid base64: the record was damaged or forged"
                if damage == "garbage" else
                f"{rel}: signature does not verify: the record was edited or forged after signing")
    assert status.reasons[1] == "  " + expected


def test_two_required_roles_need_both(tmp_path: Path, root: Path) -> None:
    legal_key, legal_line = new_key(tmp_path / "legal.key")
    priv_key, priv_line = new_key(tmp_path / "privacy.key")
    set_approvers(root, [
        {"name": "Counsel", "role": "legal", "public_key": legal_line},
        {"name": "Privacy Officer", "role": "privacy", "public_key": priv_line},
    ], roles=["legal", "privacy"])
    _approve(root, legal_key)
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.approved_roles == ["legal"] and status.missing_roles == ["privacy"]
    _approve(root, priv_key, role="privacy")
    status = approval_status(load(root), CAMPAIGN)
    assert status.valid and status.approved_roles == ["legal", "privacy"]


def test_no_required_roles_means_nothing_is_approved(root: Path, legal: Key) -> None:
    set_approvers(root, [{"name": "P", "role": "legal", "public_key": legal[1]}], roles=[])
    _approve(root, legal[0])
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.reasons[0].startswith("toolkit.yaml approvals.required_roles is empty")


def test_approving_again_replaces_the_record(root: Path, legal: Key) -> None:
    first = _approve(root, legal[0])
    edit(root / "segments" / "upcoming-appointments.yaml", "value: 7", "value: 14")
    second = _approve(root, legal[0])
    assert first == second
    assert list((root / "approvals" / CAMPAIGN).iterdir()) == [second]
    assert approval_status(load(root), CAMPAIGN).valid


# --- through the command line ---------------------------------------------------------


def test_keygen_writes_a_private_key_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "me.key"
    r = run_campaign("keygen", "--out", str(out))
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("ed25519:") and len(keys.unb64(line[8:])) == 32
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert (tmp_path / "me.key.pub").read_text().strip() == line
    assert keys.public_line(keys.load_private_key(out)) == line
    before = out.read_bytes()
    r = run_campaign("keygen", "--out", str(out))
    assert r.returncode == 2
    assert f"Error: {out} already exists; refusing to overwrite a key" in r.stderr
    assert out.read_bytes() == before


def test_cli_approve_verify_and_stale(tmp_path: Path, root: Path) -> None:
    out = tmp_path / "legal.key"
    line = run_campaign("keygen", "--out", str(out)).stdout.strip()
    set_approvers(root, [{"name": "Privacy Officer", "role": "legal", "public_key": line}])
    env = {"AUDIT_KEY": "test-audit-key"}

    r = run_campaign("verify", CAMPAIGN, root=root, env=env)
    assert r.returncode == 1
    assert f"{CAMPAIGN}: NOT approved" in r.stderr

    r = run_campaign("approve", CAMPAIGN, "--role", "legal", "--key", str(out), root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert f"wrote approvals/{CAMPAIGN}/legal-{keys.fingerprint(line)}.json" in r.stdout

    r = run_campaign("verify", CAMPAIGN, root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{CAMPAIGN}: approved (legal by Privacy Officer) for sha256:")

    edit(root / "templates" / "appointment-reminder.mjml", "To change it", "To move it")
    r = run_campaign("verify", CAMPAIGN, root=root, env=env)
    assert r.returncode == 1
    assert ("is stale: template templates/appointment-reminder.mjml changed since it was approved"
            in r.stderr)

    r = run_campaign("approve", CAMPAIGN, "--role", "privacy", "--key", str(out), root=root)
    assert r.returncode == 2
    assert "this key is not listed with role 'privacy' in policy/approvers.yaml" in r.stderr
    assert "Traceback" not in r.stderr

    # approve and verify are in the audit log
    r = run_campaign("audit", "verify", root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert "4 entries, chain intact through seq 4 (approve 1, verify 3)" in r.stdout


def test_cli_approve_with_a_missing_key_file_is_a_usage_error(root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    r = run_campaign("approve", CAMPAIGN, "--role", "legal", "--key", str(missing), root=root)
    assert r.returncode == 2
    assert f"{tmp_path / 'nope.key'}: no such key file" in r.stderr


def test_the_ci_role_approves_nothing_by_itself(tmp_path: Path, root: Path) -> None:
    key_file, line = new_key(tmp_path / "ci.key")
    set_approvers(root, [{"name": "CI review key", "role": "github-review", "public_key": line}],
                  roles=["github-review"])
    with pytest.raises(UserError) as err:
        _approve(root, key_file, role="github-review")
    assert err.value.message.startswith("'github-review' marks the CI key")
    repo = load(root)
    write_record(repo, make_record(repo, CAMPAIGN, role="github-review", approver="CI",
                                   key=keys.load_private_key(key_file)))
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.reasons[1].endswith("role 'github-review' approves nothing by itself")


def test_a_malformed_approver_key_is_reported(root: Path, legal: Key) -> None:
    set_approvers(root, [{"name": "Privacy Officer", "role": "legal", "public_key": legal[1]},
                         {"name": "Typo", "role": "legal", "public_key": "ed25519:abc"}])
    _approve(root, legal[0])
    status = approval_status(load(root), CAMPAIGN)
    assert status.valid
    assert status.warnings == ["policy/approvers.yaml:6:15: approver 'Typo': the public key is "
                               "not valid base64; this entry approves nothing"]


def test_cli_verify_all_as_json(root: Path, legal: Key) -> None:
    _approve(root, legal[0])
    r = run_campaign("verify", "--all", "--format", "json", root=root)
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)
    assert result["campaign"] == CAMPAIGN and result["valid"] is True
    assert result["approvals"][0]["approver"] == "Privacy Officer"
    edit(root / "segments" / "upcoming-appointments.yaml", "value: 7", "value: 14")
    r = run_campaign("verify", "--all", "--format", "json", root=root)
    assert r.returncode == 1
    (result,) = json.loads(r.stdout)
    assert result["valid"] is False and result["missing_roles"] == ["legal"]
    assert "segment segments/upcoming-appointments.yaml changed" in result["reasons"][1]
    r = run_campaign("verify", root=root)
    assert r.returncode == 2 and "name the campaigns to verify, or pass --all" in r.stderr


def test_passing_the_public_key_file_is_explained(tmp_path: Path, root: Path, legal: Key) -> None:
    r = run_campaign("approve", CAMPAIGN, "--role", "legal", "--key", f"{legal[0]}.pub", root=root)
    assert r.returncode == 2
    assert (f"Error: {legal[0]}.pub: this is a public key; pass the private key file "
            "(without .pub)") in r.stderr
