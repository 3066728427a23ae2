"""`campaign demo` runs the whole job on a copy of the example repository."""

from __future__ import annotations

import hashlib
import mailbox
from pathlib import Path

from conftest import run_campaign


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for part in ("toolkit.yaml", "campaigns", "policy", "templates", "segments", "fixtures"):
        p = root / part
        for f in sorted([p] if p.is_file() else p.rglob("*")):
            if f.is_file():
                h.update(str(f.relative_to(root)).encode() + f.read_bytes())
    return h.hexdigest()


def test_demo_sends_to_the_local_relay_and_builds_the_site(example_root: Path,
                                                            tmp_path: Path) -> None:
    before = _tree_hash(example_root)
    had_approvals = (example_root / "approvals").exists()
    out = tmp_path / "demo-out"
    r = run_campaign("demo", "--out", str(out), root=example_root,
                     env={"AUDIT_KEY": "", "RELAY_PASSWORD": ""})
    assert r.returncode == 0, r.stderr + r.stdout
    lines = r.stdout.splitlines()
    assert lines[0] == f"campaign demo: working on a copy of {example_root} in {out}/"
    summary = next(line for line in lines if line.startswith("sent "))
    messages = int(summary.split(", ")[1].split()[0])
    assert messages > 100
    # every campaign renders for every bundled contact it reaches (unknown fields guarded)
    per_campaign = [line for line in lines if ": sent " in line]
    assert per_campaign and all(", failed 0, " in line for line in per_campaign), per_campaign
    box = mailbox.Maildir(out / "mailbox", create=False)
    assert len(box) == messages
    first = next(iter(box))
    assert first["List-Unsubscribe"] is None or "unsubscribe" in first["List-Unsubscribe"]
    assert (out / "site" / "index.html").is_file()
    assert f"preview site: {out / 'site' / 'index.html'}" in r.stdout
    assert any(line.startswith("audit log:    verified, ") for line in lines)
    # the repository itself is untouched: approvals and state went into the copy
    assert _tree_hash(example_root) == before
    assert (example_root / "approvals").exists() == had_approvals
    assert list((out / "repo" / "approvals").iterdir())


def test_demo_never_overwrites_a_directory_it_did_not_make(example_root: Path,
                                                           tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    r = run_campaign("demo", "--out", str(tmp_path), root=example_root)
    assert r.returncode == 2
    assert r.stderr == (f"Error: {tmp_path} exists and was not made by `campaign demo`; "
                        "refusing to overwrite it\n  fix: pass another --out directory, or "
                        "remove it\n")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_without_a_repository_uses_the_built_in_example(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    r = run_campaign("demo", "--out", str(out), root=empty)
    assert r.returncode == 0, r.stderr + r.stdout
    assert r.stdout.splitlines()[0] == (
        f"campaign demo: no campaign repository in {empty}; working on the built-in example "
        f"(what `campaign init` writes) in {out}/")
    assert len(mailbox.Maildir(out / "mailbox", create=False)) == 40
    assert list(empty.iterdir()) == []
