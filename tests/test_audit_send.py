"""The audit log of a real send (CLI, TLS relay on loopback): it verifies, it names every kind
of tampering, it holds no PHI, and approvals made with the CLI gate the send."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import run_campaign
from relay_helpers import ScriptedHandler
from send_helpers import CAMPAIGN, contact, sendable

AUDIT = Path(".campaign") / "audit.jsonl"


def send(s) -> object:
    return run_campaign("send", CAMPAIGN, "--contacts", str(s.contacts), root=s.root, env=s.env)


def audit_verify(s) -> object:
    return run_campaign("audit", "verify", root=s.root, env=s.env)


def entries(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / AUDIT).read_text().splitlines()]


def test_a_real_sends_log_verifies_and_names_tampering(tmp_path: Path) -> None:
    handler = ScriptedHandler(refuse=("patient3@example.org",))
    with sendable(tmp_path, n=5, handler=handler) as s:
        r = send(s)
        assert "sent 4, failed 1" in r.stdout, r.stdout + r.stderr
    events = entries(s.root)
    assert [e["event"] for e in events] == ["send-start"] + ["recipient"] * 5 + ["send-end"]
    r = audit_verify(s)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (".campaign/audit.jsonl: 7 entries, chain intact through seq 7 "
                        "(recipient 5, send-end 1, send-start 1)\n")

    r = run_campaign("audit", "report", "--format", "json", root=s.root, env=s.env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["verified"] is True and rep["refusals"] == []
    (one,) = rep["sends"]
    assert (one["campaign"], one["sent"], one["failed"], one["unconfirmed"]) == (CAMPAIGN, 4, 1, 0)
    assert one["digest"] == events[0]["fields"]["digest"] and one["tls"] == "starttls"
    assert one["approvals"] and one["approvals"][0].startswith("legal: ")
    assert one["ended"] == events[-1]["time"]
    text = run_campaign("audit", "report", root=s.root, env=s.env).stdout
    assert "sent 4, failed 1, unconfirmed 0; S/MIME 0" in text

    # no PHI: no address, no name, no field value of any contact
    text = (s.root / AUDIT).read_text()
    for i in range(5):
        rec = contact(i)
        for value in (rec["email"], rec["first_name"], rec["next_appointment"][:10], rec["id"]):
            assert value not in text
    recipients = [e["fields"]["recipient"] for e in events if e["event"] == "recipient"]
    assert all(r.startswith("r_") for r in recipients)

    log = s.root / AUDIT
    original = log.read_text()
    lines = original.splitlines(keepends=True)

    def tampered(new_lines: list[str]) -> str:
        log.write_text("".join(new_lines))
        r = audit_verify(s)
        log.write_text(original)
        assert r.returncode == 1
        assert r.stderr.startswith(".campaign/audit.jsonl: audit log FAILED verification\n")
        return r.stderr

    # a failed delivery made to look delivered (hash recomputed would still fail the HMAC)
    failed = next(i for i, e in enumerate(events) if e["fields"].get("status") == "failed")
    edited = dict(events[failed], fields={**events[failed]["fields"], "status": "sent"})
    assert (f"line {failed + 1} (seq {failed + 1}): content does not match its hash: "
            "the entry was edited") in tampered(
        [*lines[:failed], json.dumps(edited) + "\n", *lines[failed + 1:]])
    assert "line 3 (seq 4): expected seq 3: seq 3 deleted or moved" in tampered(
        [*lines[:2], *lines[3:]])
    assert "line 4 (seq 5): expected seq 4: seq 4 deleted or moved" in tampered(
        [*lines[:3], lines[4], lines[3], *lines[5:]])
    assert "line 3 (seq 2): seq 2 comes after seq 2: entries were reordered or inserted" in (
        tampered([*lines[:2], lines[1], *lines[2:]]))
    assert ("the log ends at seq 6 but the chain head records seq 7: seq 7 removed from the end "
            "(truncated tail)") in tampered(lines[:-1])
    assert audit_verify(s).returncode == 0


def test_cli_approvals_gate_the_send_and_refusals_are_audited(tmp_path: Path) -> None:
    with sendable(tmp_path, n=3, approve=False) as s:
        key = tmp_path / "legal.key"
        line = run_campaign("keygen", "--out", str(key)).stdout.strip()
        (s.root / "policy" / "approvers.yaml").write_text(yaml.safe_dump(
            {"approvers": [{"name": "Privacy Officer", "role": "legal", "public_key": line}]}))

        r = send(s)
        assert r.returncode == 1 and s.received == []
        assert "role 'legal' has no valid approval" in r.stderr

        r = run_campaign("approve", CAMPAIGN, "--role", "legal", "--key", str(key), root=s.root,
                         env=s.env)
        assert r.returncode == 0, r.stderr
        tpl = s.root / "templates" / f"{CAMPAIGN}.mjml"
        tpl.write_text(tpl.read_text().replace("To change it", "To move it"))
        r = send(s)
        assert r.returncode == 1 and s.received == []
        assert ("is stale: template templates/appointment-reminder.mjml changed since it was "
                "approved") in r.stderr

        tpl.write_text(tpl.read_text().replace("To move it", "To change it"))
        r = send(s)
        assert r.returncode == 0, r.stderr
        assert len(s.received) == 3

    events = entries(s.root)
    assert [e["event"] for e in events] == [
        "refusal", "approve", "refusal", "send-start", "recipient", "recipient", "recipient",
        "send-end"]
    stale = events[2]["fields"]["reasons"]
    assert any("template templates/appointment-reminder.mjml changed" in x for x in stale)
    assert events[1]["fields"]["approver"] == "Privacy Officer"
    assert events[3]["fields"]["digest"] == events[1]["fields"]["digest"]
    r = audit_verify(s)
    assert r.returncode == 0, r.stderr
    assert "8 entries, chain intact through seq 8" in r.stdout
