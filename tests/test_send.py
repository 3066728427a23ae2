"""`campaign send` end to end: the CLI in a subprocess, a real TLS relay on loopback."""

from __future__ import annotations

import email
import json
import sqlite3
from email import policy
from pathlib import Path

import dkim
import pytest
from conftest import run_campaign
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from send_helpers import CAMPAIGN, contact, sendable, write_contacts

from toolkit.ledger import SendLock
from toolkit.pseudonym import pseudonym
from toolkit.tokens import verify_token


def send(s, *args: str, env: dict[str, str] | None = None):
    return run_campaign("send", CAMPAIGN, "--contacts", str(s.contacts), *args, root=s.root,
                        env={**s.env, **(env or {})})


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def ledger_rows(root: Path) -> list[tuple]:
    db = sqlite3.connect(root / ".campaign" / "ledger.sqlite")
    return sorted(db.execute("SELECT recipient, state, code FROM deliveries"))


def audit_events(root: Path) -> list[dict]:
    lines = (root / ".campaign" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_delivers_each_recipient_once_with_every_header(tmp_path: Path) -> None:
    with sendable(tmp_path, n=5) as s:
        r = send(s)
        assert r.returncode == 0, r.stderr
        got = list(s.received)
    assert r.stdout.splitlines()[0].startswith(f"{CAMPAIGN} (sha256:")
    assert "sent 5, failed 0, unconfirmed 0" in r.stdout
    assert sorted(m.rcpt_tos[0] for m in got) == [f"patient{i}@example.org" for i in range(5)]
    key = s.env["AUDIT_KEY"].encode()
    for m in got:
        msg = parsed(m.data)
        to = m.rcpt_tos[0]
        i = int(to.removeprefix("patient").split("@")[0])
        assert m.mail_from == "care@clinic.example.org"
        assert msg["From"] == "Example Clinic <care@clinic.example.org>"
        assert msg["To"] == to
        assert msg["Reply-To"] == "frontdesk@clinic.example.org"
        assert msg["Subject"] == f"Hello Pat{i}, your visit"
        assert msg["Date"]
        assert msg["Message-ID"].endswith("@clinic.example.org>")
        assert msg["MIME-Version"] == "1.0"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = msg["List-Unsubscribe"].split(", ")
        assert https.startswith("<https://clinic.example.org/unsubscribe/v1.")
        assert mailto.startswith("<mailto:unsubscribe@clinic.example.org?subject=unsubscribe%20v1.")
        token = verify_token(s.env["UNSUBSCRIBE_SECRET"].encode(), https[1:-1].rsplit("/", 1)[1])
        assert (token.pseudonym, token.campaign) == (pseudonym(to, key), CAMPAIGN)
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        html = msg.get_body(("html",)).get_content()
        assert f"Hello Pat{i}," in html
        assert "https://clinic.example.org/unsubscribe/v1." in html
        assert f"Hello Pat{i}," in msg.get_body(("plain",)).get_content()
    assert len({parsed(m.data)["Message-ID"] for m in got}) == 5
    # the ledger and the audit log know recipients only by pseudonym
    assert [row[1:] for row in ledger_rows(s.root)] == [("sent", 250)] * 5
    ledger_bytes = (s.root / ".campaign" / "ledger.sqlite").read_bytes()
    events = audit_events(s.root)
    assert [e["event"] for e in events].count("recipient") == 5
    assert events[-1]["event"] == "send-end" and events[-1]["fields"]["sent"] == 5
    log = (s.root / ".campaign" / "audit.jsonl").read_text()
    verified = run_campaign("audit", "verify", root=s.root, env=s.env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for i in range(5):
        assert f"patient{i}@example.org".encode() not in ledger_bytes
        assert f"patient{i}@example.org" not in log
        assert pseudonym(f"patient{i}@example.org", key) in log


def test_second_send_resumes_and_sends_only_new_recipients(tmp_path: Path) -> None:
    with sendable(tmp_path, n=4) as s:
        assert send(s).returncode == 0
        again = send(s)
        assert again.returncode == 0, again.stderr
        assert "sent 0, failed 0, unconfirmed 0" in again.stdout
        assert "already-sent 4" in again.stdout
        write_contacts(s.contacts, [contact(i) for i in range(6)])
        third = send(s)
        assert "sent 2, failed 0" in third.stdout
        got = sorted(m.rcpt_tos[0] for m in s.received)
    assert got == [f"patient{i}@example.org" for i in range(6)]


def test_header_injection_is_harmless(tmp_path: Path) -> None:
    evil = contact(0, first_name="Eve\r\nBcc: victim@example.org\r\n\r\n<script>x</script>")
    with sendable(tmp_path, records=[evil, contact(1)]) as s:
        r = send(s)
        assert r.returncode == 0, r.stderr
        got = {m.rcpt_tos: m for m in s.received}
    assert set(got) == {("patient0@example.org",), ("patient1@example.org",)}
    raw = got[("patient0@example.org",)].data
    msg = parsed(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hello Eve Bcc: victim@example.org <script>x</script>, your visit"
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    assert "<script>" not in msg.get_body(("html",)).get_content()


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_dkim_signature_verifies_with_dkimpy(tmp_path: Path, kind: str) -> None:
    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
           else ed25519.Ed25519PrivateKey.generate())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    with sendable(tmp_path, n=2) as s:
        cfg = s.root / "toolkit.yaml"
        cfg.write_text(cfg.read_text() + "dkim: {domain: clinic.example.org, selector: s2026, "
                       "private_key_env: TEST_DKIM_KEY}\n")
        from toolkit.demo import approve_all

        approve_all(s.root, tmp_path / "keys2")  # toolkit.yaml is part of the digest
        r = send(s, env={"TEST_DKIM_KEY": pem})
        assert r.returncode == 0, r.stderr
        got = list(s.received)
    from toolkit.send.dkim import DkimSigner

    record = DkimSigner("clinic.example.org", "s2026", key).dns_record()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s2026._domainkey.clinic.example.org."
        return record

    for m in got:
        assert dkim.verify(m.data, dnsfunc=dnsfunc)
        sig = parsed(m.data)["DKIM-Signature"]
        signed = dict(t.strip().split("=", 1) for t in sig.split(";"))["h"].split(":")
        assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed)
        tampered = m.data.replace(b"List-Unsubscribe: <https://", b"List-Unsubscribe: <http://")
        assert not dkim.verify(tampered, dnsfunc=dnsfunc)


def test_dry_run_writes_eml_and_sends_nothing(tmp_path: Path) -> None:
    with sendable(tmp_path, n=3) as s:
        out = tmp_path / "eml"
        r = send(s, "--dry-run", "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert s.received == []
        assert s.relay.auth_attempts == []  # never connected
    assert "3 message(s) built, not sent" in r.stdout
    files = sorted(out.glob("*.eml"))
    assert len(files) == 3
    assert all(f.name.startswith("r_") for f in files)  # named by pseudonym, not address
    assert parsed(files[0].read_bytes())["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not (s.root / ".campaign" / "ledger.sqlite").exists()


def test_second_send_of_a_campaign_is_locked_out(tmp_path: Path) -> None:
    with sendable(tmp_path, n=2) as s:
        state = s.root / ".campaign"
        state.mkdir(exist_ok=True)
        with SendLock(state, CAMPAIGN):
            r = send(s)
        assert s.received == []
    import os

    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"Error: campaign {CAMPAIGN} is already being sent by another process (pid {os.getpid()}; "
        f"lock {state.resolve() / f'send-{CAMPAIGN}.lock'}); wait for it to finish, then run "
        "send again to resume")


def test_unapproved_campaign_is_refused_with_nothing_sent(tmp_path: Path) -> None:
    with sendable(tmp_path, n=2, approve=False) as s:
        r = send(s)
        assert s.received == []
    assert r.returncode == 1
    assert r.stderr.startswith(f"Error: refusing to send {CAMPAIGN}; nothing was sent:\n"
                               "  approvals: not valid for the current digest sha256:")
    assert "role 'legal' has no valid approval for sha256:" in r.stderr
    assert audit_events(s.root)[-1]["event"] == "refusal"


def test_stale_approval_is_refused(tmp_path: Path) -> None:
    with sendable(tmp_path, n=2) as s:
        cfile = s.root / "campaigns" / CAMPAIGN / "campaign.yaml"
        cfile.write_text(cfile.read_text().replace("your visit", "your next visit"))
        r = send(s)
        assert s.received == []
    assert r.returncode == 1
    assert "is stale" in r.stderr


def test_lint_errors_refuse_the_send(tmp_path: Path) -> None:
    with sendable(tmp_path, n=2, unsubscribe_link=False) as s:
        r = send(s)
        assert s.received == []
    assert r.returncode == 1
    assert "  lint: 1 error(s); fix them (run `campaign lint appointment-reminder`):" in r.stderr
    assert "error CANSPAM-005" in r.stderr


def _link_view_online(root: Path, url: str | None) -> None:
    tpl = root / "templates" / f"{CAMPAIGN}.mjml"
    tpl.write_text(tpl.read_text().replace(
        "<mj-text>To change it",
        '<mj-text><a href="{{ view_online_url }}">View online</a></mj-text>\n'
        "        <mj-text>To change it"))
    if url is not None:
        import yaml

        cfg = root / "toolkit.yaml"
        doc = yaml.safe_load(cfg.read_text())
        doc["organization"]["view_online_url"] = url
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_view_online_link_without_a_configured_url_refuses_the_send(tmp_path: Path) -> None:
    from toolkit.demo import approve_all

    with sendable(tmp_path, n=2) as s:
        _link_view_online(s.root, None)
        approve_all(s.root, tmp_path / "keys2")  # approved, so only lint can refuse it
        r = send(s)
        assert s.received == []
    assert r.returncode == 1
    assert "  lint: 1 error(s); fix them (run `campaign lint appointment-reminder`):" in r.stderr
    assert ("error CFG-002 view_online_url does not resolve: toolkit.yaml has no "
            "organization.view_online_url") in r.stderr


def test_view_online_link_carries_the_configured_url(tmp_path: Path) -> None:
    from toolkit.demo import approve_all

    with sendable(tmp_path, n=2) as s:
        _link_view_online(s.root, "https://clinic.example.org/messages/{campaign}")
        approve_all(s.root, tmp_path / "keys2")  # toolkit.yaml's organization is signed
        r = send(s)
        assert r.returncode == 0, r.stderr
        got = [parsed(m.data) for m in s.received]
    assert len(got) == 2
    for msg in got:
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        want = f"https://clinic.example.org/messages/{CAMPAIGN}"
        assert f'href="{want}"' in html and want in text
        assert "view.invalid" not in html + text


def test_future_schedule_refuses_the_send(tmp_path: Path) -> None:
    with sendable(tmp_path, n=2, schedule="2999-01-01T09:00:00+00:00") as s:
        r = send(s)
        assert s.received == []
    assert r.returncode == 1
    assert "  schedule: campaigns/appointment-reminder/campaign.yaml:" in r.stderr
    assert "not before 2999-01-01T09:00:00+00:00; it is now " in r.stderr


def test_relay_without_starttls_is_refused_before_any_data(tmp_path: Path) -> None:
    with sendable(tmp_path, n=2, tls="none") as s:
        r = send(s)
        assert s.received == []
    assert r.returncode == 1
    assert "does not offer STARTTLS; refusing to send without TLS; nothing was sent" in r.stderr


def test_missing_relay_credentials_is_a_usage_error(tmp_path: Path) -> None:
    with sendable(tmp_path, n=1) as s:
        r = send(s, env={"RELAY_PASSWORD": ""})
        assert s.received == []
    assert r.returncode == 2
    assert "RELAY_PASSWORD (relays.default.password_env) is not set" in r.stderr


def _smime_identity(address: str) -> tuple[str, object, object]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Synthetic Patient")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), cert, key


def test_smime_messages_decrypt_with_the_recipient_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs7

    pem, cert, key = _smime_identity("patient0@example.org")
    records = [contact(0, smime_certificate=pem), contact(1)]
    with sendable(tmp_path, records=records,
                  delivery={"relay": "default", "encryption": "smime-preferred"}) as s:
        r = send(s)
        assert r.returncode == 0, r.stderr
        got = {m.rcpt_tos[0]: m.data for m in s.received}
    enc = parsed(got["patient0@example.org"])
    assert enc.get_content_type() == "application/pkcs7-mime"
    assert enc.get_param("smime-type") == "enveloped-data"
    assert enc["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # outer headers readable
    assert b"Hello Pat0" not in got["patient0@example.org"].split(b"\r\n\r\n", 1)[1]
    inner = pkcs7.pkcs7_decrypt_der(enc.get_payload(decode=True), cert, key, [])
    inner_msg = parsed(inner)
    assert inner_msg.get_content_type() == "multipart/alternative"
    assert "Hello Pat0," in inner_msg.get_body(("html",)).get_content()
    plain = parsed(got["patient1@example.org"])  # no certificate: TLS only (smime-preferred)
    assert plain.get_content_type() == "multipart/alternative"
    events = [e for e in audit_events(s.root) if e["event"] == "recipient"]
    assert sorted(e["fields"]["smime"] for e in events) == [False, True]


def test_fast_builder_matches_the_reference_builder(example_root: Path) -> None:
    """Headers byte-identical to toolkit.message.build_message; parts decode the same."""
    import datetime as dt

    from toolkit.loader import load_repo
    from toolkit.message import build_message, preview_token
    from toolkit.render import render_campaign
    from toolkit.send.wire import WireBuilder

    repo, _ = load_repo(example_root)
    now = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    odd = {"first_name": "Zoë\r\nBcc: x@example.org", "email": "Zoë.Sample+tag@example.org"}
    checked = 0
    for cid, campaign in sorted(repo.campaigns.items()):
        for persona in repo.personas.values():
            for extra in ({}, odd, {"first_name": "A" * 90}):
                c = {**persona.contact, **extra}
                try:
                    rendered = render_campaign(repo, campaign, c, now=now)
                except Exception:
                    continue
                token = preview_token(repo, campaign, c)
                ref = build_message(repo, campaign, c, rendered, digest="sha256:ab", token=token,
                                    now=now).as_bytes()
                fast = WireBuilder(repo, campaign, digest="sha256:ab", now=now).build(
                    address=c["email"], rendered=rendered, token=token).as_bytes()
                assert fast.split(b"\r\n\r\n")[0] == ref.split(b"\r\n\r\n")[0], cid
                a, b = parsed(ref), parsed(fast)
                assert [(p.get_content_type(), p["Content-Transfer-Encoding"], p.get_content())
                        for p in a.iter_parts()] == [
                    (p.get_content_type(), p["Content-Transfer-Encoding"], p.get_content())
                    for p in b.iter_parts()], cid
                assert max(len(line) for line in fast.split(b"\r\n")) <= 998
                checked += 1
    assert checked >= 20


def test_progress_bar_on_a_terminal_and_plain_lines_otherwise(monkeypatch) -> None:
    import io

    from toolkit.send import progress

    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    monkeypatch.setattr(progress, "TTY_EVERY", 0.0)
    plain = io.StringIO()
    p = progress.Progress(4, stream=plain, tty=False)
    for status in ("sent", "sent", "failed", "sent"):
        p.add(status)
    p.close()
    lines = plain.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("sent 2 of 4 (") and lines[1].endswith(")")
    assert "msg/s, ETA " in lines[1]
    bar = io.StringIO()
    t = progress.Progress(4, stream=bar, tty=True)
    t.add("sent")
    t.add("sent")
    t.close()
    frames = bar.getvalue().split("\r")[1:]
    assert frames[1].startswith("[###############...............] 2/4 ")
    assert " msg/s ETA " in frames[1]
    assert bar.getvalue().endswith("\n")


def test_smime_required_sends_only_to_recipients_with_a_certificate(tmp_path: Path) -> None:
    pem, _cert, _key = _smime_identity("patient0@example.org")
    records = [contact(0, smime_certificate=pem), contact(1)]
    with sendable(tmp_path, records=records,
                  delivery={"relay": "default", "encryption": "smime-required"}) as s:
        r = send(s)
        assert r.returncode == 0, r.stderr
        got = {m.rcpt_tos[0]: m.data for m in s.received}
    assert list(got) == ["patient0@example.org"]
    assert parsed(got["patient0@example.org"]).get_content_type() == "application/pkcs7-mime"
    assert "no-smime-certificate 1" in r.stdout


def test_worker_processes_prepare_the_same_messages(tmp_path: Path) -> None:
    with sendable(tmp_path, n=6) as s:
        r = send(s, env={"CAMPAIGN_SEND_WORKERS": "2"})
        assert r.returncode == 0, r.stderr
        got = list(s.received)
    assert "sent 6, failed 0, unconfirmed 0" in r.stdout
    for m in got:
        msg = parsed(m.data)
        i = int(m.rcpt_tos[0].removeprefix("patient").split("@")[0])
        assert msg["Subject"] == f"Hello Pat{i}, your visit"
        assert f"Hello Pat{i}," in msg.get_body(("html",)).get_content()


def test_text_cache_gives_the_renderers_text_part(example_root: Path) -> None:
    import datetime as dt

    from toolkit.loader import load_repo
    from toolkit.render import render_campaign
    from toolkit.send.textcache import TextCache

    repo, _ = load_repo(example_root)
    now = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    cache = TextCache()
    tokens = ["v1.r_" + c * 32 + ".camp.commercial.AbC-dEf_GhI" for c in "ab"]
    for campaign in repo.campaigns.values():
        for persona in list(repo.personas.values())[:2]:
            for token in tokens:
                url = f"https://valleyhealth.example.org/unsubscribe/{token}"
                try:
                    full = render_campaign(repo, campaign, persona.contact, now=now,
                                           unsubscribe_url=url)
                except Exception:  # personas a template cannot serve are lint's business
                    continue
                html = render_campaign(repo, campaign, persona.contact, now=now,
                                       unsubscribe_url=url, text=False).html
                assert cache.text(html, token) == full.text, campaign.id
    assert cache.hits >= 10  # the second token of each render came from the cache


def test_text_cache_never_guesses_when_the_placeholder_is_ambiguous() -> None:
    from toolkit.plaintext import html_to_text
    from toolkit.send.textcache import TextCache

    cache = TextCache()
    token = "v1.r_abc.camp.all.Zz9"
    tricky = [f"<p>xx{token}</p>", f"<p>{token}x</p>", f"<p>{'x' * len(token)} {token}</p>",
              "<p>no token here</p>"]
    for html in tricky:
        assert cache.text(html, token) == html_to_text(html)
    assert cache.hits == 0


def test_a_recipient_that_cannot_render_fails_alone_and_is_retried(tmp_path: Path) -> None:
    broken = contact(0)
    del broken["first_name"]
    with sendable(tmp_path, records=[broken, contact(1)]) as s:
        r = send(s)
        assert r.returncode == 0, r.stderr
        assert [m.rcpt_tos[0] for m in s.received] == ["patient1@example.org"]
        again = send(s)
    assert "sent 1, failed 1, unconfirmed 0" in r.stdout
    assert ("  failed 1: render failed: campaigns/appointment-reminder/campaign.yaml:4: "
            "subject: contact.first_name is unknown (null or absent) for this recipient; guard "
            "it with {% if contact.first_name is defined %} or "
            "{{ contact.first_name | default(...) }}") in r.stdout
    assert "Pat0" not in r.stdout + r.stderr
    assert "sent 0, failed 1, unconfirmed 0" in again.stdout  # not final: tried again
    assert [row[1:] for row in ledger_rows(s.root)].count(("failed", None)) == 1
