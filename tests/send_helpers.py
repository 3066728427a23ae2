"""A sendable campaign repository in tmp_path: the scaffold made commercial, a local
TLS relay it points at, approvals from a throwaway key, and synthetic contacts."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from toolkit.demo import approve_all, point_relays
from toolkit.relay.local import LocalRelay, StoringHandler

SCAFFOLD = Path(__file__).resolve().parent.parent / "toolkit" / "scaffold"
CAMPAIGN = "appointment-reminder"
ENV = {"AUDIT_KEY": "test-audit-key-0123456789", "UNSUBSCRIBE_SECRET": "test-unsub-secret-0123",
       "RELAY_USERNAME": "relay-user", "RELAY_PASSWORD": "relay-pass"}


@dataclass
class Sendable:
    root: Path
    relay: LocalRelay
    contacts: Path
    env: dict[str, str]

    @property
    def received(self) -> list:
        return self.relay.handler.received


def make_repo(root: Path, *, unsubscribe_link: bool = True, **campaign: Any) -> Path:
    shutil.copytree(SCAFFOLD, root)
    cfile = root / "campaigns" / CAMPAIGN / "campaign.yaml"
    doc = yaml.safe_load(cfile.read_text())
    doc.update({"commercial": True, "subject": "Hello {{ contact.first_name }}, your visit"})
    doc.update(campaign)
    cfile.write_text(yaml.safe_dump(doc, sort_keys=False))
    if unsubscribe_link:
        tpl = root / "templates" / f"{CAMPAIGN}.mjml"
        tpl.write_text(tpl.read_text().replace(
            "<mj-text>To change it",
            '<mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>\n'
            "        <mj-text>To change it"))
    return root


def contact(i: int, **extra: Any) -> dict[str, Any]:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    return {"id": f"c-{i:04d}", "email": f"patient{i}@example.org", "first_name": f"Pat{i}",
            "age": 40 + i % 30, "language": "en", "care_status": "active",
            "next_appointment": soon.replace(microsecond=0).isoformat(), "deceased": False,
            **extra}


def write_contacts(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@contextmanager
def sendable(tmp_path: Path, *, n: int = 5, handler: Any = None, tls: str = "starttls",
             approve: bool = True, records: list[dict[str, Any]] | None = None,
             max_connections: int = 2, **repo_opts: Any) -> Iterator[Sendable]:
    root = make_repo(tmp_path / "repo", **repo_opts)
    handler = handler if handler is not None else StoringHandler()
    with LocalRelay(handler=handler, tls=tls, credentials=(ENV["RELAY_USERNAME"],
                    ENV["RELAY_PASSWORD"]) if tls != "none" else None,
                    workdir=tmp_path / "relay") as relay:
        point_relays(root, port=relay.port, ca_file=relay.ca_file,
                     max_connections=max_connections)
        if approve:
            approve_all(root, tmp_path / "keys")
        contacts = write_contacts(tmp_path / "contacts.jsonl",
                                  records if records is not None else
                                  [contact(i) for i in range(n)])
        yield Sendable(root, relay, contacts, dict(ENV))


def ledger_states(root: Path) -> Counter[str]:
    """How many ledger rows are in each state."""
    db = sqlite3.connect(root / ".campaign" / "ledger.sqlite")
    try:
        return Counter(state for (state,) in db.execute("SELECT state FROM deliveries"))
    finally:
        db.close()


def kill_when_blocked(s: Sendable, handler: Any, args: list[str]) -> Counter[str]:
    """Start `campaign ARGS` in a subprocess, SIGKILL it once the relay's `handler` holds a
    message on every connection (`handler.blocked`), and return the ledger's states then."""
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "--root", str(s.root), *args],
                            env={**os.environ, **s.env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert handler.blocked.wait(60), "the send never filled every connection"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return ledger_states(s.root)
