"""The reference MIME builder: headers, one-click unsubscribe, stable ids, injection safety."""

from __future__ import annotations

import datetime as dt
import shutil
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_campaign

from toolkit.digest import campaign_digest
from toolkit.loader import load_repo
from toolkit.message import PREVIEW_SECRET, build_message, message_id, preview_token
from toolkit.models import Repo
from toolkit.render import render_campaign
from toolkit.tokens import make_token, verify_token

NOW = dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC)
SECRET = b"test-unsubscribe-secret"
TOKEN = make_token(SECRET, pseudonym="r_testpseudonym", campaign="c", kind="commercial")


@pytest.fixture(scope="module")
def example() -> Repo:
    return load_repo(ROOT)[0]


def build(repo: Repo, cid: str, contact: dict, *, digest: str = "sha256:00") -> EmailMessage:
    camp = repo.campaigns[cid]
    rendered = render_campaign(repo, camp, contact, now=NOW)
    return build_message(repo, camp, contact, rendered, digest=digest, token=TOKEN, now=NOW)


def parse(msg: EmailMessage) -> EmailMessage:
    return message_from_bytes(msg.as_bytes(), policy=default)  # type: ignore[return-value]


def persona(repo: Repo, name: str) -> dict:
    return dict(repo.personas[name].contact)


def test_headers_and_parts(example: Repo) -> None:
    contact = persona(example, "alex-appointment")
    msg = parse(build(example, "appointment-reminder", contact))
    assert msg["From"] == "Valley Health <care@valleyhealth.example.org>"
    assert msg["To"] == "alex.sample@example.org"
    assert msg["Reply-To"] == "frontdesk@valleyhealth.example.org"
    assert msg["Subject"] == "Your upcoming visit at Valley Health"
    assert msg["Date"] == "Wed, 25 Nov 2026 14:30:00 +0000"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    for part in (text, html):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    body = text.get_content().replace("\r\n", "\n")
    assert body.startswith(
        "https://valleyhealth.example.org/\n\nYour upcoming visit\n\nHello Alex,\n\n")
    assert "<!doctype html>" in html.get_content()
    assert msg["Message-ID"].endswith("@valleyhealth.example.org>")


def test_lines_are_crlf_and_short(example: Repo) -> None:
    raw = build(example, "spring-newsletter", persona(example, "bianca-newsletter")).as_bytes()
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize(("cid", "name", "wanted"), [
    ("spring-newsletter", "bianca-newsletter", True),   # commercial
    ("annual-appeal", "chen-donor", True),               # fundraising
    ("diabetes-education", "dana-diabetes", True),       # health-education: commercial
    ("appointment-reminder", "alex-appointment", False), # transactional
    ("lab-results-notice", "alex-appointment", False),
])
def test_list_unsubscribe_on_commercial_and_fundraising_only(
        example: Repo, cid: str, name: str, wanted: bool) -> None:
    raw = build(example, cid, persona(example, name)).as_bytes()
    msg = parse(build(example, cid, persona(example, name)))
    if not wanted:
        assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
        return
    value = (f"<https://valleyhealth.example.org/unsubscribe/{TOKEN}>, "
             f"<mailto:unsubscribe@valleyhealth.example.org?subject=unsubscribe%20{TOKEN}>")
    # written unfolded and unencoded: an RFC 2047-encoded URL would break one-click
    assert f"List-Unsubscribe: {value}\r\n".encode() in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw


def test_one_click_needs_an_https_url(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "toolkit" / "scaffold", root)
    cfg = yaml.safe_load((root / "toolkit.yaml").read_text(encoding="utf-8"))
    cfg["unsubscribe"]["url"] = None
    (root / "toolkit.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    camp = root / "campaigns" / "appointment-reminder" / "campaign.yaml"
    camp.write_text(camp.read_text(encoding="utf-8") + "commercial: true\n", encoding="utf-8")
    repo, _ = load_repo(root)
    msg = parse(build(repo, "appointment-reminder", dict(repo.personas["alex"].contact)))
    assert msg["List-Unsubscribe"] == (
        f"<mailto:unsubscribe@clinic.example.org?subject=unsubscribe%20{TOKEN}>")
    assert msg["List-Unsubscribe-Post"] is None


def test_message_id_and_bytes_are_stable(example: Repo) -> None:
    contact = persona(example, "alex-appointment")
    digest = campaign_digest(example, "appointment-reminder")
    a = build(example, "appointment-reminder", contact, digest=digest)
    b = build(example, "appointment-reminder", contact, digest=digest)
    assert a.as_bytes() == b.as_bytes()
    assert a["Message-ID"] == message_id(digest, "ALEX.Sample@example.org ",
                                         "valleyhealth.example.org")
    other = build(example, "appointment-reminder", {**contact, "email": "someone@example.org"},
                  digest=digest)
    assert other["Message-ID"] != a["Message-ID"]
    edited = build(example, "appointment-reminder", contact, digest="sha256:11")
    assert edited["Message-ID"] != a["Message-ID"]


def test_non_ascii_headers_are_encoded(example: Repo) -> None:
    contact = {**persona(example, "bianca-newsletter"), "first_name": "Zoë"}
    camp = example.campaigns["spring-newsletter"]
    rendered = render_campaign(example, camp, contact, now=NOW)
    rendered = type(rendered)(**{**rendered.__dict__, "subject": "Grüße, Zoë — news"})
    raw = build_message(example, camp, contact, rendered, digest="sha256:00", token=TOKEN,
                        now=NOW).as_bytes()
    assert raw.isascii()
    assert parse_bytes(raw)["Subject"] == "Grüße, Zoë — news"


def parse_bytes(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=default)  # type: ignore[return-value]


ATTACKS = [
    "Alex\r\nBcc: victim@example.org",
    "Alex\nBcc: victim@example.org",
    "Alex\rBcc: victim@example.org",
    "Alex\u2028Bcc: victim@example.org",
    "Alex\x00\x0bBcc: victim@example.org",
    "Alex\r\n\r\n<html>injected body</html>",
]


@pytest.mark.parametrize("name", ATTACKS, ids=range(len(ATTACKS)))
def test_contact_data_cannot_add_a_header(tmp_path: Path, name: str) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "toolkit" / "scaffold", root)
    camp = root / "campaigns" / "appointment-reminder" / "campaign.yaml"
    data = yaml.safe_load(camp.read_text(encoding="utf-8"))
    data["subject"] = "Hello {{ contact.first_name }}, your visit"
    camp.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = yaml.safe_load((root / "toolkit.yaml").read_text(encoding="utf-8"))
    cfg["senders"]["clinic"]["from_name"] = "Example\r\nX-Evil: 1"
    (root / "toolkit.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    repo, _ = load_repo(root)
    contact = {**repo.personas["alex"].contact, "first_name": name}
    raw = build(repo, "appointment-reminder", contact).as_bytes()
    msg = parse_bytes(raw)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["Subject"].startswith("Hello Alex")
    assert msg["Subject"].endswith(", your visit")
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["From"] == '"Example X-Evil: 1" <care@clinic.example.org>'
    assert sorted(msg.keys()) == ["Content-Type", "Date", "From", "MIME-Version", "Message-ID",
                                  "Reply-To", "Subject", "To"]


@pytest.mark.parametrize("address", ["alex@example.org\r\nBcc: victim@example.org",
                                     "alex@example.org, victim@example.org", ""])
def test_a_bad_recipient_address_is_refused(example: Repo, address: str) -> None:
    contact = {**persona(example, "alex-appointment"), "email": address}
    with pytest.raises(ValueError, match="not a usable email address"):
        build(example, "appointment-reminder", contact)


def test_preview_token_is_well_formed_and_never_real(example: Repo) -> None:
    camp = example.campaigns["spring-newsletter"]
    token = preview_token(example, camp, persona(example, "bianca-newsletter"))
    parsed = verify_token(PREVIEW_SECRET, token)
    assert (parsed.campaign, parsed.kind) == ("spring-newsletter", "commercial")
    with pytest.raises(ValueError):
        verify_token(SECRET, token)


def test_cli_render_eml_is_the_complete_message(tmp_path: Path) -> None:
    res = run_campaign("render", "spring-newsletter", "--persona", "bianca-newsletter",
                       "--format", "eml", root=ROOT)
    assert res.returncode == 0, res.stderr
    msg = parse_bytes(res.stdout.encode("ascii"))
    assert msg["Subject"] == "Valley Health News: a new clinic in Eastside"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    again = run_campaign("render", "spring-newsletter", "--persona", "bianca-newsletter",
                         "--format", "eml", root=ROOT)
    assert again.stdout == res.stdout
