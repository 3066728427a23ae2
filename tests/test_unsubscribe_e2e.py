"""The whole loop: send through the TLS relay, take the List-Unsubscribe URL from a
received message, POST the RFC 8058 one-click to the running endpoint over real HTTP,
then the next plan and send leave that person out of commercial mail while a
transactional campaign still reaches them."""

from __future__ import annotations

import email
import json
import shutil
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from conftest import run_campaign
from send_helpers import CAMPAIGN, Sendable, sendable
from unsubscribe_helpers import serve, store_of

from toolkit.demo import approve_all
from toolkit.pseudonym import pseudonym
from toolkit.unsubscribe import create_app

OFFER = "spring-offer"          # another commercial campaign
CARE = "visit-reminder"         # transactional: not commercial, no List-Unsubscribe


def _copy_campaign(root: Path, new_id: str, **changes: object) -> None:
    src = root / "campaigns" / CAMPAIGN
    shutil.copytree(src, root / "campaigns" / new_id)
    cfile = root / "campaigns" / new_id / "campaign.yaml"
    doc = yaml.safe_load(cfile.read_text())
    doc.update(changes)
    doc = {k: v for k, v in doc.items() if v is not None}
    cfile.write_text(yaml.safe_dump(doc, sort_keys=False))


def _plan(s: Sendable, campaign: str) -> dict:
    r = run_campaign("plan", campaign, "--contacts", str(s.contacts), "--format", "json",
                     root=s.root, env=s.env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _send(s: Sendable, campaign: str) -> None:
    r = run_campaign("send", campaign, "--contacts", str(s.contacts), root=s.root, env=s.env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_one_click_from_a_sent_message_suppresses_commercial_mail_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with sendable(tmp_path, n=4, approve=False) as s:
        _copy_campaign(s.root, OFFER, title="Spring offer")
        _copy_campaign(s.root, CARE, title="Visit reminder", commercial=None)
        approve_all(s.root, tmp_path / "keys")

        _send(s, CAMPAIGN)
        sent = {m.rcpt_tos[0]: email.message_from_bytes(m.data, policy=policy.default)
                for m in s.received}
        assert len(sent) == 4
        who = "patient1@example.org"
        https = next(u.strip(" <>") for u in sent[who]["List-Unsubscribe"].split(",")
                     if u.strip().startswith("<https://"))
        assert sent[who]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "@" not in https and "patient1" not in https

        # the endpoint, configured only by the repository and UNSUBSCRIBE_SECRET
        monkeypatch.setenv("UNSUBSCRIBE_SECRET", s.env["UNSUBSCRIBE_SECRET"])
        with serve(create_app(s.root)) as base:
            r = httpx.post(base + urlsplit(https).path, data={"List-Unsubscribe": "One-Click"})
        assert (r.status_code, r.text) == (200, "Unsubscribed.\n")

        # the next plan of the same campaign: suppressed comes before already-sent
        same = _plan(s, CAMPAIGN)
        assert same["excluded"]["suppressed"] == 1
        assert same["excluded"]["already-sent"] == 3
        # another commercial campaign leaves them out, in the plan and in the send
        offer = _plan(s, OFFER)
        assert (offer["recipients"], offer["excluded"]["suppressed"]) == (3, 1)
        before = len(s.received)
        _send(s, OFFER)
        offer_to = sorted(m.rcpt_tos[0] for m in s.received[before:])
        assert offer_to == ["patient0@example.org", "patient2@example.org", "patient3@example.org"]
        # a transactional campaign still reaches them
        care = _plan(s, CARE)
        assert (care["recipients"], care["excluded"]["suppressed"]) == (4, 0)
        before = len(s.received)
        _send(s, CARE)
        assert who in [m.rcpt_tos[0] for m in s.received[before:]]

    # the store holds the pseudonym, never the address
    with store_of(s.root) as store:
        entries = [(e.address, e.pseudonym, e.kind, e.source) for e in store.list()]
    assert entries == [(None, pseudonym(who, s.env["AUDIT_KEY"].encode()), "commercial",
                        f"unsubscribe-one-click:{CAMPAIGN}")]
