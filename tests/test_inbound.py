"""Mail that comes back: mailto unsubscribe requests, DSN bounces and ARF complaints.

Every sample is built here with the email package, written to a real mbox file or
Maildir folder, and read back through the same code the command uses.
"""

from __future__ import annotations

import mailbox
from email.message import EmailMessage, Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import run_campaign
from unsubscribe_helpers import scaffold_repo, store_of

from toolkit.errors import UserError
from toolkit.inbound import ReportCounts, RequestCounts, scan_reports, scan_requests
from toolkit.pseudonym import pseudonym
from toolkit.tokens import make_token

SECRET = b"inbound-test-secret"
AUDIT = b"inbound-test-audit-key"
ENV = {"UNSUBSCRIBE_SECRET": SECRET.decode()}


def tok(addr: str, kind: str = "commercial", campaign: str = "spring-checkup") -> str:
    return make_token(SECRET, pseudonym=pseudonym(addr, AUDIT), campaign=campaign, kind=kind)


def request(subject: str, body: str = "", sender: str = "pat.doe@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "unsubscribe@clinic.example.org"
    msg["Subject"] = subject
    msg.set_content(body or "Sent from my phone")
    return msg


def original(to: str, token: str | None = None) -> EmailMessage:
    """The message we sent, as it comes back inside a report."""
    msg = EmailMessage()
    msg["From"] = "Example Clinic <care@clinic.example.org>"
    msg["To"] = to
    msg["Subject"] = "Your spring check-up"
    if token:
        msg["List-Unsubscribe"] = (f"<https://clinic.example.org/unsubscribe/{token}>, "
                                   f"<mailto:unsubscribe@clinic.example.org?subject=unsubscribe%20{token}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Hello")
    return msg


def dsn(*recipients: tuple[str, str, str], returned: EmailMessage | None = None,
        original_recipient: bool = False) -> MIMEMultipart:
    """RFC 3464: multipart/report; report-type=delivery-status.

    recipients: (address, action, status) for each per-recipient block."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.example.net"
    report["To"] = "bounces@clinic.example.org"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("This is the mail system at host mx.example.net.\n"))
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; mx.example.net"
    blocks = [per_message]
    for addr, action, status in recipients:
        block = Message()
        if original_recipient:
            block["Original-Recipient"] = f"rfc822;{addr}"
            block["Final-Recipient"] = "rfc822; forwarded-elsewhere@example.net"
        else:
            block["Final-Recipient"] = f"rfc822; {addr}"
        block["Action"] = action
        block["Status"] = status
        blocks.append(block)
    status_part = Message()
    status_part["Content-Type"] = "message/delivery-status"
    status_part.set_payload(blocks)
    report.attach(status_part)
    if returned is not None:
        report.attach(MIMEMessage(returned))
    return report


def arf(feedback_type: str = "abuse", rcpt: str | None = None,
        returned: EmailMessage | None = None) -> MIMEMultipart:
    """RFC 5965: multipart/report; report-type=feedback-report."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "feedback@mailbox-provider.example.net"
    report["To"] = "abuse@clinic.example.org"
    report["Subject"] = "Complaint about message"
    report.attach(MIMEText("This is an email abuse report.\n"))
    fields = Message()
    fields["Feedback-Type"] = feedback_type
    fields["User-Agent"] = "ExampleFBL/1.0"
    fields["Version"] = "1"
    if rcpt:
        fields["Original-Rcpt-To"] = rcpt
    report.attach(MIMEMessage(fields, "feedback-report"))
    if returned is not None:
        report.attach(MIMEMessage(returned))
    return report


def write_mbox(path: Path, *messages: Message) -> Path:
    box = mailbox.mbox(path)
    for msg in messages:
        box.add(msg)
    box.close()
    return path


def write_maildir(path: Path, *messages: Message) -> Path:
    box = mailbox.Maildir(path, create=True)
    for msg in messages:
        box.add(msg)
    box.close()
    return path


# --- mailto requests -------------------------------------------------------------------


def test_requests_match_tokens_in_subject_or_body(tmp_path: Path) -> None:
    a, b = tok("a@example.org"), tok("b@example.org", kind="fundraising", campaign="gala.2026")
    forged = make_token(b"wrong", pseudonym=pseudonym("c@example.org", AUDIT), campaign="x",
                        kind="all")
    box = write_mbox(
        tmp_path / "requests.mbox",
        request(f"unsubscribe {a}"),                               # the mailto's subject
        request("Re: Your gala invitation",
                f"> Unsubscribe: https://clinic.example.org/unsubscribe/{b}\n"),
        request(f"unsubscribe {forged}"),
        request("unsubscribe me please"),
        request(f"unsubscribe%20{a}"),                             # the subject left encoded
    )
    counts, tokens = scan_requests(box, [SECRET])
    assert counts == RequestCounts(messages=5, accepted=3, invalid_token=1, no_token=1)
    assert [(t.pseudonym, t.kind, t.campaign) for t in tokens] == [
        (pseudonym("a@example.org", AUDIT), "commercial", "spring-checkup"),
        (pseudonym("b@example.org", AUDIT), "fundraising", "gala.2026"),
        (pseudonym("a@example.org", AUDIT), "commercial", "spring-checkup"),
    ]


def test_altered_token_in_request_is_invalid(tmp_path: Path) -> None:
    good = tok("a@example.org")
    altered = good.replace(".commercial.", ".all.")
    box = write_maildir(tmp_path / "md", request(f"unsubscribe {altered}"))
    counts, tokens = scan_requests(box, [SECRET])
    assert counts == RequestCounts(messages=1, accepted=0, invalid_token=1, no_token=0)
    assert tokens == []


def test_requests_from_maildir_and_rotated_secret(tmp_path: Path) -> None:
    old = make_token(b"previous", pseudonym=pseudonym("a@example.org", AUDIT), campaign="c",
                     kind="all")
    box = write_maildir(tmp_path / "md", request(f"unsubscribe {old}"),
                        request(f"unsubscribe {tok('b@example.org')}"))
    counts, _ = scan_requests(box, [SECRET, b"previous"])
    assert counts == RequestCounts(messages=2, accepted=2)


# --- bounces ---------------------------------------------------------------------------


def test_only_hard_bounces_are_suppressed(tmp_path: Path) -> None:
    box = write_mbox(
        tmp_path / "bounces.mbox",
        dsn(("Gone@Example.org", "failed", "5.1.1")),
        dsn(("full@example.org", "delayed", "4.2.2")),
        dsn(("greylisted@example.org", "failed", "4.7.1")),
        dsn(("ok@example.org", "delivered", "2.0.0")),
        dsn(("two@example.org", "failed", "5.2.1"), ("three@example.org", "delayed", "4.4.1")),
        request("out of office"),
    )
    counts, found = scan_reports(box)
    assert counts == ReportCounts(messages=6, hard_bounces=2, soft_bounces=3, not_reports=1)
    assert found.addresses == {"gone@example.org": "dsn", "two@example.org": "dsn"}
    assert found.tokens == []


def test_bounce_prefers_original_recipient(tmp_path: Path) -> None:
    box = write_maildir(tmp_path / "md",
                        dsn(("alias@example.org", "failed", "5.1.1"), original_recipient=True))
    _, found = scan_reports(box)
    assert found.addresses == {"alias@example.org": "dsn"}


def test_bounce_without_recipient_falls_back_to_the_returned_token(tmp_path: Path) -> None:
    t = tok("hidden@example.org")
    bounce = dsn(("not an address", "failed", "5.1.1"), returned=original("hidden@example.org", t))
    counts, found = scan_reports(write_mbox(tmp_path / "b.mbox", bounce), [SECRET])
    assert counts.hard_bounces == 1 and counts.unmatched == 0
    assert [(tk.pseudonym, src) for tk, src in found.tokens] == [
        (pseudonym("hidden@example.org", AUDIT), "dsn")]
    counts, found = scan_reports(write_mbox(tmp_path / "c.mbox", bounce))  # no secret: unmatched
    assert counts.unmatched == 1 and not found.tokens and not found.addresses


# --- complaints -------------------------------------------------------------------------


def test_abuse_complaints_are_suppressed_other_feedback_ignored(tmp_path: Path) -> None:
    box = write_mbox(
        tmp_path / "arf.mbox",
        arf(rcpt="angry@example.org"),
        arf(returned=original("Quiet <Quiet@Example.org>")),   # recipient only in the enclosed To
        arf(feedback_type="not-spam", rcpt="happy@example.org"),
        arf(),                                                 # redacted, nothing returned
    )
    counts, found = scan_reports(box)
    assert counts == ReportCounts(messages=4, complaints=3, other_feedback=1, unmatched=1)
    assert found.addresses == {"angry@example.org": "arf", "quiet@example.org": "arf"}


def test_redacted_complaint_matches_by_token(tmp_path: Path) -> None:
    t = tok("redacted@example.org")
    box = write_maildir(tmp_path / "md", arf(returned=original("xxxxxxxx@redacted.invalid", t)))
    counts, found = scan_reports(box, [SECRET])
    assert counts.complaints == 1 and counts.unmatched == 0
    assert [(tk.pseudonym, src) for tk, src in found.tokens] == [
        (pseudonym("redacted@example.org", AUDIT), "arf")]


# --- mailbox errors ---------------------------------------------------------------------


def test_not_a_mailbox_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(UserError, match="file is not an mbox"):
        scan_reports(tmp_path / "notes.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match="folder is not a Maildir"):
        scan_reports(tmp_path / "folder")
    with pytest.raises(UserError, match="no such file or folder"):
        scan_requests(tmp_path / "missing.mbox", [SECRET])


def test_empty_mbox_reads_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.mbox").write_bytes(b"")
    assert scan_reports(tmp_path / "empty.mbox")[0] == ReportCounts()


# --- the commands -----------------------------------------------------------------------


def _repo(tmp_path: Path) -> Path:
    return scaffold_repo(tmp_path / "repo")


def _mailto_subject(root: Path, token: str) -> str:
    """The subject a mail client fills in from the List-Unsubscribe mailto the sender wrote."""
    from toolkit.loader import load_repo
    from toolkit.message import list_unsubscribe

    value, _ = list_unsubscribe(load_repo(root)[0], token)
    mailto = next(u.strip("<> ") for u in value.split(",") if u.strip().startswith("<mailto:"))
    return parse_qs(urlsplit(mailto).query)["subject"][0]


def test_import_mbox_command(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    a, b = tok("a@example.org"), tok("b@example.org", kind="fundraising")
    box = write_mbox(tmp_path / "in.mbox", request(_mailto_subject(root, a)),
                     request(_mailto_subject(root, b)), request(_mailto_subject(root, a)),
                     request("unsubscribe v1.r_abc.c.all.AAAAAAAAAAAAAAAAAAAAAA"),
                     request("please stop", sender="someone@example.org"))
    r = run_campaign("suppress", "import-mbox", str(box), root=root, env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        f"read 5 messages from {box}\n"
        "  unsubscribed: 3 (2 new suppressions)\n"
        "  invalid token: 1\n"
        "  no token: 1\n"
        "  requests without a valid token were not acted on: read them in the mailbox and use "
        "`campaign suppress add` where needed\n")
    assert "example.org" not in r.stdout + r.stderr
    with store_of(root) as store:
        assert sorted((e.pseudonym, e.kind, e.source) for e in store.list()) == sorted([
            (pseudonym("a@example.org", AUDIT), "commercial", "unsubscribe-mailto:spring-checkup"),
            (pseudonym("b@example.org", AUDIT), "fundraising", "unsubscribe-mailto:spring-checkup"),
        ])


def test_import_mbox_needs_the_secret(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    box = write_mbox(tmp_path / "in.mbox", request("unsubscribe"))
    env = {"UNSUBSCRIBE_SECRET": ""}
    r = run_campaign("suppress", "import-mbox", str(box), root=root, env=env)
    assert r.returncode == 2
    assert "environment variable UNSUBSCRIBE_SECRET is not set" in r.stderr


def test_import_dsn_command(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    box = write_maildir(
        tmp_path / "reports",
        dsn(("gone@example.org", "failed", "5.1.1"), ("later@example.org", "delayed", "4.4.7")),
        arf(rcpt="angry@example.org"),
        arf(returned=original("xxxx@redacted.invalid", tok("hidden@example.org"))),
        arf(feedback_type="not-spam", rcpt="fine@example.org"),
        request("out of office"),
    )
    r = run_campaign("suppress", "import-dsn", str(box), root=root, env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        f"read 5 messages from {box}\n"
        "  hard bounces: 1\n"
        "  complaints: 2\n"
        "  suppressed (kind all): 2 addresses and 1 by token (3 new suppressions)\n"
        "  ignored: 1 delays or temporary failures, 1 other feedback, 1 not a report\n")
    with store_of(root) as store:
        got = sorted((e.address or "", e.pseudonym or "", e.kind, e.source) for e in store.list())
        assert got == sorted([
            ("gone@example.org", "", "all", "dsn"),
            ("angry@example.org", "", "all", "arf"),
            ("", pseudonym("hidden@example.org", AUDIT), "all", "arf:spring-checkup"),
        ])
        assert store.is_suppressed("Gone@Example.org", None, ["all"])
        assert not store.is_suppressed("later@example.org", None, ["all", "commercial"])
    # importing again changes nothing
    again = run_campaign("suppress", "import-dsn", str(box), root=root, env=ENV)
    assert "(0 new suppressions)" in again.stdout


def test_import_dsn_without_secret_reports_unmatched(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    returned = original("undisclosed-recipients:;", tok("h@example.org"))
    box = write_mbox(tmp_path / "r.mbox", arf(returned=returned))
    r = run_campaign("suppress", "import-dsn", str(box), root=root, env={"UNSUBSCRIBE_SECRET": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"read 1 message from {box}\n")
    assert r.stdout.endswith("  unmatched: 1 reports named no recipient "
                             "(set UNSUBSCRIBE_SECRET to match them by their unsubscribe token)\n")


def test_import_dsn_bad_mailbox_is_exit_2(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (tmp_path / "x.txt").write_text("not mail\n")
    r = run_campaign("suppress", "import-dsn", str(tmp_path / "x.txt"), root=root)
    assert r.returncode == 2
    assert r.stderr == (f"Error: {tmp_path / 'x.txt'}: file is not an mbox (it does not start "
                        "with a 'From ' line)\n  fix: give an mbox file or a Maildir folder\n")


def test_global_dsn_blocks_are_all_read(tmp_path: Path) -> None:
    """RFC 6533 message/global-delivery-status: the email package does not split it."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["Subject"] = "Undeliverable"
    report.attach(MIMEText("Delivery failed.\n"))
    status = Message()
    status["Content-Type"] = "message/global-delivery-status"
    status.set_payload("Reporting-MTA: dns; mx.example.net\n\n"
                       "Final-Recipient: rfc822; first@example.org\n"
                       "Action: failed\nStatus: 5.1.1\n\n"
                       "Final-Recipient: rfc822; second@example.org\n"
                       "Action: failed\nStatus: 5.1.2\n")
    report.attach(status)
    counts, found = scan_reports(write_mbox(tmp_path / "g.mbox", report))
    assert counts.hard_bounces == 2
    assert found.addresses == {"first@example.org": "dsn", "second@example.org": "dsn"}
