"""The audit log: a hash chain with HMACs and a chain head; every kind of tampering is named."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from approval_helpers import make_repo
from conftest import run_campaign

from toolkit.audit import AuditError, AuditLog, entry_hash
from toolkit.audit_check import verify_log

KEY = b"test-audit-key"
ADDRESSES = ["pat.one@example.org", "pat.two@example.org", "pat.three@example.org"]


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "audit.jsonl", tmp_path / "state" / "audit-head.json"


def write_log(paths: tuple[Path, Path]) -> list[dict]:
    """Six entries, shaped like a real send's: start, three recipients, a refusal, end."""
    with AuditLog.at(*paths, KEY) as log:
        log.append("send-start", campaign="flu", digest="sha256:" + "a" * 64, recipients=3)
        for i, addr in enumerate(ADDRESSES):
            log.append("recipient", campaign="flu", recipient=log.pseudonym(addr),
                       status="sent" if i else "failed", code=250 if i else 550)
        log.append("send-end", campaign="flu", sent=2, failed=1)
    return [json.loads(x) for x in paths[0].read_text().splitlines()]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def problems(paths: tuple[Path, Path]) -> list[str]:
    return verify_log(*paths, KEY).problems


def test_a_clean_log_verifies(paths: tuple[Path, Path]) -> None:
    entries = write_log(paths)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    report = verify_log(*paths, KEY)
    assert report.ok and report.entries == 5 and report.last_seq == 5
    assert report.notes == []
    head = json.loads(paths[1].read_text())
    assert (head["seq"], head["hash"]) == (5, entries[-1]["hash"])


def test_no_phi_recipients_only_as_pseudonyms(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    text = paths[0].read_text()
    assert "@" not in text and "example.org" not in text and "pat." not in text
    recipients = [json.loads(x)["fields"]["recipient"] for x in text.splitlines()[1:4]]
    assert all(r.startswith("r_") for r in recipients) and len(set(recipients)) == 3
    with AuditLog.at(*paths, KEY) as log, pytest.raises(AuditError) as err:
        log.append("recipient", campaign="flu", recipient="Pat.One@example.org", status="sent")
    assert err.value.message.startswith(
        "refusing to write a recipient that is not a pseudonym into the audit log")
    assert verify_log(*paths, KEY).entries == 5  # nothing was written


def test_addresses_in_free_text_are_removed_unless_the_organizations(tmp_path: Path) -> None:
    paths = (tmp_path / "a.jsonl", tmp_path / "head.json")
    with AuditLog.at(*paths, KEY, allowed_domains=("Clinic.example.org",)) as log:
        entry = log.append("refusal", campaign="flu", reasons=[
            "templates/x.mjml:3:1: error PHI-002 hard-coded address pat.one@example.org",
            "toolkit.yaml:9:5: From care@clinic.example.org is not verified",
        ], reply="550 5.1.1 <pat.two@example.net>: user unknown")
    assert entry["fields"]["reasons"] == [
        "templates/x.mjml:3:1: error PHI-002 hard-coded address [address removed]",
        "toolkit.yaml:9:5: From care@clinic.example.org is not verified",
    ]
    assert entry["fields"]["reply"] == "550 5.1.1 <[address removed]>: user unknown"
    assert "pat." not in paths[0].read_text()
    assert verify_log(*paths, KEY).ok


def test_edited_entry_is_named(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    ls = lines(paths[0])
    entry = json.loads(ls[2])
    entry["fields"]["status"] = "failed"
    ls[2] = json.dumps(entry) + "\n"
    paths[0].write_text("".join(ls))
    assert problems(paths) == [
        "line 3 (seq 3): content does not match its hash: the entry was edited"]


def test_edited_entry_with_recomputed_hash_fails_its_hmac(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    ls = lines(paths[0])
    entry = json.loads(ls[1])
    entry["fields"]["status"] = "sent"  # the failed recipient, made to look delivered
    entry["hash"] = entry_hash(entry)
    ls[1] = json.dumps(entry) + "\n"
    paths[0].write_text("".join(ls))
    got = problems(paths)
    assert got[0] == ("line 2 (seq 2): HMAC does not verify: the entry was forged or rewritten "
                      "without the audit key")
    # and the next entry no longer links to it
    assert got[1].startswith("line 3 (seq 3): 'prev' does not match the hash of the entry before")


def test_deleted_entry_is_named(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    ls = lines(paths[0])
    del ls[2]
    paths[0].write_text("".join(ls))
    assert problems(paths) == ["line 3 (seq 4): expected seq 3: seq 3 deleted or moved"]


def test_inserted_entry_is_named(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    ls = lines(paths[0])
    forged = json.loads(ls[1])
    forged["seq"] = 3
    forged["prev"] = forged["hash"]
    forged["fields"]["recipient"] = "r_forged"
    forged["hash"] = entry_hash(forged)
    ls.insert(2, json.dumps(forged) + "\n")
    paths[0].write_text("".join(ls))
    assert problems(paths) == [
        "line 3 (seq 3): HMAC does not verify: the entry was forged or rewritten "
        "without the audit key",
        "line 4 (seq 3): seq 3 comes after seq 3: entries were reordered or inserted",
        "line 5 (seq 4): 'prev' does not match the hash of the entry before it (line 3): "
        "an entry was removed, inserted or edited",
    ]


def test_reordered_entries_are_named(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    ls = lines(paths[0])
    ls[2], ls[3] = ls[3], ls[2]
    paths[0].write_text("".join(ls))
    assert problems(paths) == [
        "line 3 (seq 4): expected seq 3: seq 3 deleted or moved",
        "line 4 (seq 3): seq 3 comes after seq 4: entries were reordered or inserted",
    ]


def test_truncated_tail_is_detected_by_the_head(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    paths[0].write_text("".join(lines(paths[0])[:3]))
    assert problems(paths) == [
        "the log ends at seq 3 but the chain head records seq 5: seq 4..5 removed from the end "
        "(truncated tail)"
    ]


def test_cut_mid_entry_is_detected(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    text = paths[0].read_text()
    paths[0].write_text(text[: len(text) - 20])
    assert problems(paths)[0] == "line 5: incomplete last entry (cut off mid-write or truncated)"


def test_missing_head_or_log_fails(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    head = paths[1].read_text()
    paths[1].unlink()
    assert problems(paths) == [
        f"chain head {paths[1]} is missing: a truncated tail cannot be ruled out "
        "(restore the state folder, or investigate)"
    ]
    paths[1].write_text(head)
    paths[0].unlink()
    assert problems(paths) == [f"{paths[0]} is missing but the chain head records seq 5: "
                               "the whole log was removed"]


def test_edited_head_fails(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    head = json.loads(paths[1].read_text())
    head["seq"] = 3
    paths[1].write_text(json.dumps(head))
    assert problems(paths) == [f"chain head {paths[1]}: HMAC does not verify: the head was edited"]


def test_wrong_key_fails_every_entry(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    report = verify_log(*paths, b"another key")
    assert len(report.problems) == 6  # the head and five entries


def test_batched_recipient_entries_after_the_head_are_noted(paths: tuple[Path, Path]) -> None:
    log = AuditLog.at(*paths, KEY)
    log.append("send-start", campaign="flu")  # synced: the head is at seq 1
    log.append("recipient", campaign="flu", recipient="r_" + "a" * 32, status="sent", code=250)
    report = verify_log(*paths, KEY)  # as after a crash before the batch was synced
    assert report.ok
    assert report.notes == ["1 entries after seq 1 were written after the last chain-head update "
                            "(a crash can leave these); their removal could not be detected"]
    log.close()
    assert verify_log(*paths, KEY).notes == []


def test_two_writers_share_one_chain(paths: tuple[Path, Path]) -> None:
    a, b = AuditLog.at(*paths, KEY), AuditLog.at(*paths, KEY)
    for i in range(10):
        (a if i % 2 else b).append("lint", errors=i)
    a.close()
    b.close()
    report = verify_log(*paths, KEY)
    assert report.ok and report.entries == 10


def test_appending_to_a_damaged_log_refuses(paths: tuple[Path, Path]) -> None:
    write_log(paths)
    ls = lines(paths[0])
    entry = json.loads(ls[-1])
    entry["fields"]["sent"] = 3
    ls[-1] = json.dumps(entry) + "\n"
    paths[0].write_text("".join(ls))
    with AuditLog.at(*paths, KEY) as log, pytest.raises(AuditError) as err:
        log.append("send-start", campaign="flu")
    assert "the last entry (seq 5) does not verify" in err.value.message


def test_a_failed_write_raises(tmp_path: Path) -> None:
    log = AuditLog.at(Path("/dev/full"), tmp_path / "head.json", KEY)
    with pytest.raises(AuditError) as err:
        log.append("send-start", campaign="flu")
    assert "audit write failed" in err.value.message
    assert "nothing more is sent without an audit trail" in err.value.message


def test_unknown_event_is_refused(paths: tuple[Path, Path]) -> None:
    with AuditLog.at(*paths, KEY) as log, pytest.raises(AuditError):
        log.append("sent-everything", campaign="flu")


# --- through the command line ---------------------------------------------------------


def test_cli_audit_verify(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    env = {"AUDIT_KEY": KEY.decode()}
    state = root / ".campaign"
    paths = (state / "audit.jsonl", state / "audit-head.json")
    r = run_campaign("audit", "verify", root=root, env=env)
    assert r.returncode == 0 and "no audit log yet" in r.stderr
    write_log(paths)
    r = run_campaign("audit", "verify", root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (".campaign/audit.jsonl: 5 entries, chain intact through seq 5 "
                        "(recipient 3, send-end 1, send-start 1)\n")
    ls = lines(paths[0])
    del ls[1]
    paths[0].write_text("".join(ls))
    r = run_campaign("audit", "verify", root=root, env=env)
    assert r.returncode == 1
    assert r.stderr == (".campaign/audit.jsonl: audit log FAILED verification\n"
                        "  line 2 (seq 3): expected seq 2: seq 2 deleted or moved\n")
    r = run_campaign("audit", "verify", root=root, env={"AUDIT_KEY": ""})
    assert r.returncode == 2
    assert "environment variable AUDIT_KEY is not set" in r.stderr


def test_commands_without_the_key_still_work(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    r = run_campaign("verify", "appointment-reminder", root=root, env={"AUDIT_KEY": ""})
    assert r.returncode == 1  # not approved, but it ran
    assert "note: AUDIT_KEY is not set; this verify is not recorded in the audit log" in r.stderr
    assert not (root / ".campaign" / "audit.jsonl").exists()


def test_lint_and_build_are_recorded_best_effort(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    env = {"AUDIT_KEY": KEY.decode()}
    lint = run_campaign("lint", "--format", "json", root=root, env=env)
    json.loads(lint.stdout)  # the report on stdout stays clean
    build = run_campaign("build", "--out", str(tmp_path / "site"), root=root, env=env)
    assert build.returncode in (0, 1), build.stderr
    events = [json.loads(x) for x in (root / ".campaign" / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["lint", "build"]
    assert events[0]["fields"]["campaigns"] == ["appointment-reminder"]
    assert set(events[1]["fields"]) == {"campaigns", "pages", "errors", "warnings"}
    # without the key: silent, and nothing written
    quiet = run_campaign("lint", root=root, env={"AUDIT_KEY": ""})
    assert "AUDIT_KEY" not in quiet.stderr
    # a damaged log warns, and lint still reports its own result
    log = root / ".campaign" / "audit.jsonl"
    log.write_text(log.read_text().replace('"build"', '"BUILD"'))
    again = run_campaign("lint", root=root, env=env)
    assert again.returncode == lint.returncode
    assert "warning: " in again.stderr and "does not verify" in again.stderr


def test_a_write_cut_short_leaves_no_partial_entry(paths: tuple[Path, Path]) -> None:
    """Disk full mid-entry (RLIMIT_FSIZE stands in for it): the entry is refused whole."""
    import subprocess
    import sys
    import textwrap

    write_log(paths)
    before = paths[0].read_bytes()
    code = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from toolkit.audit import AuditLog, AuditError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        log = AuditLog.at(Path({str(paths[0])!r}), Path({str(paths[1])!r}), {KEY!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 100}, resource.RLIM_INFINITY))
        try:
            log.append("send-end", campaign="flu", sent=2, failed=1, note="x" * 300)
        except AuditError as exc:
            print(exc.message)
            sys.exit(7)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7, r.stderr
    assert "audit write failed" in r.stdout
    assert paths[0].read_bytes() == before
    assert verify_log(*paths, KEY).ok
    with AuditLog.at(*paths, KEY) as log:  # and the chain goes on once there is space
        log.append("send-end", campaign="flu", sent=2, failed=1)
    assert verify_log(*paths, KEY).entries == 6
