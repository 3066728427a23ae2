"""`campaign demo`: the whole job on embedded defaults, with nothing to install.

On a copy of the example repository (the repository's own files are never
touched): start a local TLS relay (aiosmtpd, a trustme certificate made on the
fly, STARTTLS, AUTH, mail stored in a Maildir), point the copy's relays at it,
sign approvals with a throwaway key, send every campaign that passes the gate to
the bundled synthetic contacts, build the preview site and verify the audit log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.errors import CheckFailed, UserError

MARKER = ".campaign-demo"
# the repository format: everything a campaign repository holds (no code, no state)
REPO_PARTS = ("toolkit.yaml", "campaigns", "templates", "segments", "policy", "fixtures")
CONTACTS = "fixtures/contacts.jsonl"
SCAFFOLD = Path(__file__).resolve().parent / "scaffold"
SYNTHETIC = 40  # contacts made from the personas when the repository bundles none
DEMO_ENV = ("AUDIT_KEY", "UNSUBSCRIBE_SECRET", "RELAY_USERNAME", "RELAY_PASSWORD")


@dataclass
class DemoResult:
    work: Path
    mailbox: Path
    site: Path | None
    sent: dict[str, str] = field(default_factory=dict)  # campaign -> summary line
    refused: dict[str, str] = field(default_factory=dict)  # campaign -> first reason
    messages: int = 0
    audit_entries: int = 0


def copy_repository(src: Path, work: Path) -> Path:
    """A fresh copy of the repository format parts of src in work/repo."""
    if work.exists() and any(work.iterdir()):
        if not (work / MARKER).is_file():
            raise UserError(f"{work} exists and was not made by `campaign demo`; refusing to "
                            "overwrite it", fix="pass another --out directory, or remove it")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("made by `campaign demo`; safe to delete\n", encoding="utf-8")
    repo = work / "repo"
    repo.mkdir()
    if not (src / "toolkit.yaml").is_file():
        src = SCAFFOLD  # no repository here: the built-in one `campaign init` writes
    for part in REPO_PARTS:
        p = src / part
        if p.is_dir():
            shutil.copytree(p, repo / part, ignore=shutil.ignore_patterns(".*"))
        elif p.is_file():
            shutil.copy2(p, repo / part)
    return repo


def point_relays(repo: Path, *, port: int, ca_file: Path, max_connections: int = 4,
                 tls: str = "starttls") -> None:
    """Every relay of the copy's toolkit.yaml goes to the local relay, trusting its CA."""
    path = repo / "toolkit.yaml"
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    for relay in (cfg.get("relays") or {}).values():
        relay.update(host="127.0.0.1", port=port, tls=tls,
                     ca_file=os.path.relpath(ca_file, repo), username_env="RELAY_USERNAME",
                     password_env="RELAY_PASSWORD", max_connections=max_connections,
                     rate_per_second=10_000)
    cfg.pop("dkim", None)  # the demo has no DNS to publish a DKIM key in
    path.write_text("# campaign demo: relays point at the local TLS relay\n"
                    + yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")


def approve_all(repo_root: Path, keydir: Path) -> None:
    """A throwaway approver key, listed for every required role in the copy, signs the
    current digest of every campaign."""
    from toolkit import approvals, keys
    from toolkit.loader import load_repo

    repo, _ = load_repo(repo_root)
    roles = list(repo.config.approvals.required_roles) if repo.config else []
    keydir.mkdir(parents=True, exist_ok=True)
    key_path = keydir / "demo-approver.key"
    line = keys.write_keypair(key_path)
    approvers_file = repo_root / "policy" / "approvers.yaml"
    data = (yaml.safe_load(approvers_file.read_text(encoding="utf-8"))
            if approvers_file.is_file() else None) or {}
    data.setdefault("approvers", [])
    for role in roles:
        data["approvers"].append({"name": f"Demo {role} approver (throwaway key)", "role": role,
                                  "public_key": line})
    approvers_file.parent.mkdir(parents=True, exist_ok=True)
    approvers_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    repo, _ = load_repo(repo_root)
    key = keys.load_private_key(key_path)
    for cid in sorted(repo.campaigns):
        for role in roles:
            approvals.approve(repo, cid, role=role, key=key)


@contextlib.contextmanager
def demo_environment() -> Iterator[None]:
    """Demo secrets, set for the demo only and restored afterwards."""
    saved = {k: os.environ.get(k) for k in DEMO_ENV}
    os.environ.update({"AUDIT_KEY": secrets.token_urlsafe(32),
                       "UNSUBSCRIBE_SECRET": secrets.token_urlsafe(32),
                       "RELAY_USERNAME": "demo", "RELAY_PASSWORD": secrets.token_urlsafe(16)})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_demo(src: Path, work: Path, *, echo: Callable[[str], None],
             build_site: Callable[[Path, Path], None] | None = None) -> DemoResult:
    from toolkit.relay.local import LocalRelay, StoringHandler

    work = work.resolve()
    repo_root = copy_repository(src.resolve(), work)
    mailbox = work / "mailbox"
    with demo_environment():
        handler = StoringHandler(mailbox)
        creds = (os.environ["RELAY_USERNAME"], os.environ["RELAY_PASSWORD"])
        with LocalRelay(handler=handler, tls="starttls", credentials=creds,
                        workdir=repo_root / "relay") as relay:
            echo(f"local TLS relay on 127.0.0.1:{relay.port} (STARTTLS required, AUTH, "
                 f"certificate from a throwaway CA), storing mail in {mailbox}")
            point_relays(repo_root, port=relay.port, ca_file=relay.ca_file)
            approve_all(repo_root, work / "keys")
            result = DemoResult(work, mailbox, None)
            _send_all(repo_root, result, echo)
            result.messages = len(handler.received)
        if build_site is not None:
            site = work / "site"
            build_site(repo_root, site)
            result.site = site
        result.audit_entries = _verify_audit(repo_root)
    return result


def _send_all(repo_root: Path, result: DemoResult, echo: Callable[[str], None]) -> None:
    import io

    from toolkit.loader import load_repo
    from toolkit.send.run import SendOptions, send_campaign

    repo, findings = load_repo(repo_root)
    now = dt.datetime.now(dt.UTC)
    if not (repo_root / CONTACTS).is_file():
        synthetic_contacts(repo, repo_root / CONTACTS, now=now)
    contacts = str(repo_root / CONTACTS)
    for cid in sorted(repo.campaigns):
        try:
            report = send_campaign(repo, findings, cid, contacts,
                                   SendOptions(progress=io.StringIO(), tty=False), now=now)
        except CheckFailed as exc:
            reasons = [ln.strip() for ln in exc.message.splitlines()[1:] if ln.strip()]
            result.refused[cid] = reasons[0] if reasons else exc.message
            echo(f"  {cid}: refused by the gate: {result.refused[cid]}")
            continue
        c = report.counts
        result.sent[cid] = (f"sent {c['sent']}, failed {c['failed']}, unconfirmed "
                            f"{c['unconfirmed']}; excluded by the gates "
                            f"{sum(report.planned.excluded.values())}")
        echo(f"  {cid}: {result.sent[cid]}")
        for reply, n in report.codes.most_common(3):
            echo(f"    failed {n}: {reply}")


def synthetic_contacts(repo: Any, path: Path, *, now: dt.datetime) -> None:
    """Contacts made from the personas (synthetic by rule), with example.org addresses;
    dates the personas set in the future move to two days from now, so that segments
    about upcoming events match whenever the demo runs."""
    soon = now + dt.timedelta(days=2)
    personas = [p.contact for p in repo.personas.values()]
    lines = []
    for i in range(SYNTHETIC if personas else 0):
        record = {}
        for key, value in personas[i % len(personas)].items():
            if isinstance(value, dt.datetime):
                value = (soon if value > now else value).isoformat()
            elif isinstance(value, dt.date):
                value = (soon.date() if value > now.date() else value).isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            record[key] = value
        record.update(id=f"demo-{i:04d}", email=f"demo.patient{i}@example.org")
        lines.append(json.dumps(record, default=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _verify_audit(repo_root: Path) -> int:
    from toolkit.audit import head_path, key_env, log_path
    from toolkit.audit_check import verify_log
    from toolkit.loader import load_repo

    repo, _ = load_repo(repo_root)
    report = verify_log(log_path(repo), head_path(repo), os.environ[key_env(repo)].encode())
    if not report.ok:
        raise CheckFailed("the demo's audit log does not verify:\n  "
                          + "\n  ".join(report.problems))
    return report.entries
