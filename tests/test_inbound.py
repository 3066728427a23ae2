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

import pytest

from toolkit.errors import UserError
from toolkit.inbound import ReportCounts, RequestCounts, scan_reports, scan_requests
from toolkit.pseudonym import pseudonym
from toolkit.tokens import make_token

SECRET = b"inbound-test-secret"
AUDIT = b"inbound-test-audit-key"


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
        request(f"unsubscribe {a}"),                               # a second request: still fine
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
