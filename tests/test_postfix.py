"""Send through Debian's Postfix, configured to require TLS from clients
(smtpd_tls_security_level=encrypt) and delivering to a Maildir the test reads.

The Postfix instance is private: its own config directory, queue and log, on
127.0.0.1 and a free port; the system instance is never touched.
"""

from __future__ import annotations

import mailbox
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import yaml
from conftest import run_campaign
from send_helpers import CAMPAIGN, ENV, contact, make_repo, write_contacts

from toolkit.demo import approve_all

pytestmark = pytest.mark.postfix
NOBODY = 65534  # virtual delivery runs as this uid (Postfix refuses root)
SERVICES = """\
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
smtp      unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
virtual   unix  - n n -     - virtual
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def _postfix(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["postfix", "-c", str(conf), *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def postfix() -> Iterator[tuple[int, Path, Path]]:
    if shutil.which("postfix") is None or os.geteuid() != 0:
        pytest.skip("needs Debian's postfix, run as root (as CI does)")
    # not tmp_path: virtual delivery runs as nobody, who must traverse the parent folders
    base = Path(tempfile.mkdtemp(prefix="campaign-postfix-"))
    base.chmod(0o755)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(base / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    (base / "key.pem").chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf, mail = base / "etc", base / "mail"
    for d in (conf, mail, base / "queue", base / "data"):
        d.mkdir()
    os.chown(mail, NOBODY, NOBODY)
    shutil.chown(base / "data", "postfix")
    (conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
myhostname = relay.localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = {base}/cert.pem
smtpd_tls_key_file = {base}/key.pem
smtpd_tls_protocols = >=TLSv1.2
virtual_mailbox_domains = example.org
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{NOBODY}
virtual_gid_maps = static:{NOBODY}
alias_maps =
alias_database =
smtputf8_enable = no
""")
    (conf / "master.cf").write_text(f"127.0.0.1:{port} inet n - n - - smtpd\n" + SERVICES)
    for step in (("set-permissions",), ("start",)):
        r = _postfix(conf, *step)
        assert r.returncode == 0, r.stdout + r.stderr + (base / "maillog").read_text()
    try:
        yield port, base / "ca.pem", mail / "inbox"
    finally:
        _postfix(conf, "stop")
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_messages(inbox: Path, n: int, timeout: float = 30) -> mailbox.Maildir:
    """Postfix delivers after it has answered 250; wait (bounded) until all have landed."""
    done = threading.Event()
    box = mailbox.Maildir(inbox, create=False) if inbox.exists() else None
    for _ in range(int(timeout / 0.05)):
        if box is None and inbox.exists():
            box = mailbox.Maildir(inbox, create=False)
        if box is not None and len(box) >= n:
            return box
        done.wait(0.05)
    raise AssertionError(f"Postfix delivered {len(box) if box else 0} of {n} messages")


def test_send_through_postfix_requiring_tls(tmp_path: Path, postfix) -> None:
    port, ca_file, inbox = postfix
    root = make_repo(tmp_path / "repo")
    cfg = yaml.safe_load((root / "toolkit.yaml").read_text())
    cfg["relays"]["default"].update(host="127.0.0.1", port=port, tls="starttls",
                                    ca_file=str(ca_file), username_env=None, password_env=None,
                                    max_connections=4, rate_per_second=10_000)
    (root / "toolkit.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    approve_all(root, tmp_path / "keys")
    n = 30
    contacts = write_contacts(tmp_path / "contacts.jsonl", [contact(i) for i in range(n)])
    r = run_campaign("send", CAMPAIGN, "--contacts", str(contacts), root=root, env=ENV)
    assert r.returncode == 0, r.stderr
    assert f"sent {n}, failed 0, unconfirmed 0" in r.stdout
    box = _wait_for_messages(inbox, n)
    got = Counter(m["To"] for m in box)
    assert got == Counter(f"patient{i}@example.org" for i in range(n))
    msg = next(iter(box))
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "with ESMTPS" in msg["Received"]  # Postfix records that the message came over TLS
