"""Send throughput: `campaign send` over implicit TLS to Postfix's smtp-sink behind stunnel4.

    /work/venv/bin/python bench/send_bench.py [--recipients 20000] [--connections 1,4,16]
        [--against DIR [--rounds 3]] [--no-references]

For each connection count: a fresh ledger, >= 20,000 recipients, ~20 KB messages
rendered per recipient (Jinja, MJML, inline CSS, text part), ledger and audit on.
In the same run, two references: smtp-source into the same smtp-sink without TLS
(the ceiling) and a naive baseline (render + email.message + smtplib over TLS, a new
connection per message). Figures go to bench/send.md by hand.

`--against DIR` compares with another checkout's code (e.g. `git worktree add
/tmp/send-before HEAD~1`): each connection count is sent alternately with that
code's `campaign send` and this one's, `--rounds` times each, in the same run, with
the load average beside each figure (the machine is shared: only alternating runs
compare). The repository, contacts, smtp-sink and stunnel are the same for both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.demo import approve_all  # noqa: E402

SCAFFOLD = ROOT / "toolkit" / "scaffold"
CAMPAIGN = "appointment-reminder"
PARAGRAPH = ("<mj-text>Dear {{ contact.first_name }}, this paragraph stands in for the body of a "
             "long patient newsletter: seasonal advice, clinic hours, how to reach the care team, "
             "directions and parking, what to bring to a visit, and how to prepare for it. "
             "It is repeated so that each message weighs about twenty kilobytes.</mj-text>\n")
ENV = {"AUDIT_KEY": "bench-audit-key-0123456789", "UNSUBSCRIBE_SECRET": "bench-unsub-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_repo(work: Path, *, tls_port: int, ca_file: Path, paragraphs: int) -> Path:
    root = work / "repo"
    shutil.copytree(SCAFFOLD, root)
    cfile = root / "campaigns" / CAMPAIGN / "campaign.yaml"
    doc = yaml.safe_load(cfile.read_text())
    doc.update(commercial=True, subject="Hello {{ contact.first_name }}, your visit")
    cfile.write_text(yaml.safe_dump(doc, sort_keys=False))
    tpl = root / "templates" / f"{CAMPAIGN}.mjml"
    tpl.write_text(tpl.read_text().replace(
        "<mj-text>To change it",
        '<mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>\n'
        + PARAGRAPH * paragraphs + "        <mj-text>To change it"))
    cfg = yaml.safe_load((root / "toolkit.yaml").read_text())
    cfg["relays"]["default"].update(host="127.0.0.1", port=tls_port, tls="implicit",
                                    ca_file=str(ca_file), username_env=None, password_env=None,
                                    rate_per_second=1_000_000)
    (root / "toolkit.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    approve_all(root, work / "keys")
    return root


def write_contacts(path: Path, n: int) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0).isoformat()
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"c-{i:06d}", "email": f"patient{i}@example.org",
                                "first_name": f"Pat{i}", "age": 40 + i % 40, "language": "en",
                                "care_status": "active", "next_appointment": soon,
                                "deceased": False}) + "\n")


def set_connections(root: Path, n: int) -> None:
    path = root / "toolkit.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["relays"]["default"]["max_connections"] = n
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    approve_all(root, root.parent / f"keys-{n}")  # toolkit.yaml is part of the digest


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of running processes (the relay side: stunnel, smtp-sink)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


# `python -m toolkit` that also writes the CPU of its own process and of its reaped
# workers (resource.getrusage) to the file named first, as it exits
_MEASURED = (
    "import atexit, resource, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "def dump():\n"
    "    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,"
    " resource.RUSAGE_CHILDREN))\n"
    "    with open(out, 'w') as f:\n"
    "        f.write(f'{own.ru_utime + own.ru_stime} {kids.ru_utime + kids.ru_stime}')\n"
    "atexit.register(dump)\n"
    "sys.argv[0] = 'campaign'\n"
    "runpy.run_module('toolkit', run_name='__main__', alter_sys=True)\n")


def run_send(root: Path, contacts: Path, env: dict[str, str], code: Path = ROOT,
             servers: list[int] | None = None) -> dict[str, float]:
    """`code`: the checkout whose toolkit runs the send (this one by default)."""
    shutil.rmtree(root / ".campaign", ignore_errors=True)
    env = {**env, "PYTHONPATH": str(code)}
    usage = root.parent / "send-rusage"
    usage.unlink(missing_ok=True)
    relay_before = cpu_seconds(servers or [])
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _MEASURED, str(usage), "--root", str(root), "send",
                        CAMPAIGN, "--contacts", str(contacts)], env=env, capture_output=True,
                       text=True, cwd=code)
    wall = time.perf_counter() - t0
    relay_cpu = cpu_seconds(servers or []) - relay_before
    if r.returncode != 0:
        raise SystemExit(f"send failed:\n{r.stdout}\n{r.stderr}")
    m = re.search(r"sent (\d+), failed (\d+), unconfirmed (\d+) in ([\d.]+) s", r.stdout)
    assert m, r.stdout
    sent, failed, _, secs = int(m[1]), int(m[2]), int(m[3]), float(m[4])
    own, workers = (float(x) for x in usage.read_text().split())
    return {"sent": sent, "failed": failed, "pipeline_s": secs, "wall_s": wall,
            "msg_per_s": sent / secs, "wall_msg_per_s": sent / wall,
            "cpu_ms": (own + workers) / sent * 1000, "send_cpu_ms": own / sent * 1000,
            "workers_cpu_ms": workers / sent * 1000, "relay_cpu_ms": relay_cpu / sent * 1000}


def line(n: int, r: dict[str, float]) -> str:
    return (f"campaign send, {n:>2} connection(s): {r['msg_per_s']:,.0f} msg/s "
            f"(pipeline {r['pipeline_s']:.1f} s; wall incl. plan and start-up "
            f"{r['wall_s']:.1f} s = {r['wall_msg_per_s']:,.0f} msg/s); "
            f"sent {r['sent']}, failed {r['failed']}; CPU of the send "
            f"and its workers {r['cpu_ms']:.2f} ms/msg (sending process "
            f"{r['send_cpu_ms']:.2f}, workers {r['workers_cpu_ms']:.2f}), of stunnel and "
            f"smtp-sink {r['relay_cpu_ms']:.2f}")


def smtp_source(port: int, n: int, size: int, sessions: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(n), "-l", str(size),
                    "-f", "care@clinic.example.org", "-t", "patient@example.org",
                    f"127.0.0.1:{port}"], check=True, capture_output=True)
    return n / (time.perf_counter() - t0)


def naive(root: Path, tls_port: int, ca_file: Path, n: int) -> float:
    """What a first script would do: render, email.message, smtplib, one TLS connection each."""
    from toolkit.loader import load_repo
    from toolkit.message import build_message
    from toolkit.pseudonym import pseudonym
    from toolkit.render import render_campaign
    from toolkit.tokens import make_token

    repo, _ = load_repo(root)
    campaign = repo.campaigns[CAMPAIGN]
    ctx = ssl.create_default_context(cafile=str(ca_file))
    now = dt.datetime.now(dt.UTC)
    contact = {"email": "x@example.org", "first_name": "Pat", "age": 40, "language": "en",
               "care_status": "active", "next_appointment": now, "deceased": False}
    t0 = time.perf_counter()
    for i in range(n):
        c = {**contact, "email": f"patient{i}@example.org", "first_name": f"Pat{i}"}
        token = make_token(b"k", pseudonym=pseudonym(c["email"], b"k"), campaign=CAMPAIGN,
                           kind="commercial")
        rendered = render_campaign(repo, campaign, c, now=now,
                                   unsubscribe_url=f"https://clinic.example.org/u/{token}")
        msg = build_message(repo, campaign, c, rendered, digest="sha256:0", token=token, now=now)
        with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=ctx) as smtp:
            smtp.send_message(msg)
    return n / (time.perf_counter() - t0)


def costs(root: Path, n: int = 300) -> None:
    """Per-message CPU of each step, in this process (ms), for orientation."""
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from toolkit import plaintext
    from toolkit.digest import campaign_digest
    from toolkit.loader import load_repo
    from toolkit.plaintext import html_to_text
    from toolkit.render import render_campaign
    from toolkit.send.dkim import DkimSigner
    from toolkit.send.wire import WireBuilder

    os.environ.update(ENV)
    repo, _ = load_repo(root)
    campaign = repo.campaigns[CAMPAIGN]
    now = dt.datetime.now(dt.UTC)
    contacts = [{"email": f"patient{i}@example.org", "first_name": f"Pat{i}", "age": 40,
                 "language": "en", "care_status": "active", "next_appointment": now,
                 "deceased": False} for i in range(n)]
    builder = WireBuilder(repo, campaign, digest=campaign_digest(repo, CAMPAIGN), now=now)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = DkimSigner("clinic.example.org", "s1", key)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())

    def per_message(fn, items) -> float:
        t0 = time.process_time()
        out = [fn(x) for x in items]
        per_message.last = out
        return (time.process_time() - t0) / len(items) * 1000

    no_text = per_message(lambda c: render_campaign(repo, campaign, c, now=now, text=False),
                          contacts)
    rendered = per_message.last
    text = per_message(lambda r: html_to_text(r.html), rendered)

    def text_cold(r):  # no cell text kept from earlier messages: the worst case
        plaintext._cells.clear()
        return html_to_text(r.html)

    cold = per_message(text_cold, rendered)
    old = per_message(lambda r: plaintext.whole_text(r.html), rendered[:100])  # as before
    wire = per_message(lambda r: builder.build(address="p@example.org", rendered=r,
                                               token="t").as_bytes(), rendered)
    data = per_message.last
    sign = per_message(signer.sign, data)
    slow = per_message(lambda d: dkim.sign(d, b"s1", b"clinic.example.org", pem), data[:30])
    print(f"per message (ms CPU): Jinja+MJML+CSS {no_text:.2f}, text part {text:.2f} "
          f"(no cell kept {cold:.2f}, whole document as before {old:.2f}), "
          f"bytes {wire:.2f}, DKIM RSA-2048 via cryptography {sign:.2f} (dkimpy {slow:.2f}; "
          "the sends below do not sign: the repository has no dkim block, its relay signs)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=20_000)
    ap.add_argument("--connections", default="1,4,16")
    ap.add_argument("--paragraphs", type=int, default=16)
    ap.add_argument("--naive", type=int, default=1_000, help="messages for the naive baseline")
    ap.add_argument("--against", type=Path, help="another checkout to compare with, alternately")
    ap.add_argument("--rounds", type=int, default=3, help="alternations with --against")
    ap.add_argument("--no-references", action="store_true",
                    help="skip the per-step costs, the ceiling and the naive baseline")
    args = ap.parse_args()
    if args.against is not None and not (args.against / "toolkit" / "__init__.py").is_file():
        raise SystemExit(f"--against {args.against}: no toolkit package there")
    work = Path(tempfile.mkdtemp(prefix="send-bench-"))
    sink_port, tls_port = free_port(), free_port()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file = work / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    pem = work / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    (work / "stunnel.conf").write_text(
        f"foreground = yes\npid =\nsyslog = no\noutput = {work}/stunnel.log\n"
        f"[smtps]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{sink_port}\n"
        f"cert = {pem}\nsslVersionMin = TLSv1.2\ndebug = 3\n")
    procs = [subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}",
                               "1024"]),
             subprocess.Popen(["stunnel4", str(work / "stunnel.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for port in (sink_port, tls_port):
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        root = make_repo(work, tls_port=tls_port, ca_file=ca_file, paragraphs=args.paragraphs)
        contacts = work / "contacts.jsonl"
        write_contacts(contacts, args.recipients)
        env = {**os.environ, **ENV}
        sample = subprocess.run([sys.executable, "-m", "toolkit", "--root", str(root), "send",
                                 CAMPAIGN, "--contacts", str(contacts), "--dry-run", "--out",
                                 str(work / "eml")], env={**env, "CAMPAIGN_SEND_WORKERS": "0"},
                                capture_output=True, text=True)
        size = 0
        files = sorted((work / "eml").glob("*.eml"))
        if files:
            size = sum(f.stat().st_size for f in files[:100]) // min(100, len(files))
        shutil.rmtree(work / "eml", ignore_errors=True)
        print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"recipients {args.recipients}, message size ~{size} bytes, cpus {os.cpu_count()}"
              + ("" if sample.returncode == 0 else f"\n{sample.stderr}"))
        if not args.no_references:
            costs(root)
        results = {}
        servers = [p.pid for p in procs]
        for n in (int(x) for x in args.connections.split(",")):
            set_connections(root, n)
            if args.against is None:
                results[n] = run_send(root, contacts, env, servers=servers)
                print(line(n, results[n]))
                continue
            for _ in range(args.rounds):
                for label, code in (("this code", ROOT), ("--against", args.against)):
                    r = run_send(root, contacts, env, code, servers)
                    if code == ROOT:
                        results[n] = max(r, results.get(n, r), key=lambda x: x["msg_per_s"])
                    print(f"{label:>9}: {line(n, r)}; load "
                          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
        if args.no_references:
            return
        ceiling = smtp_source(sink_port, args.recipients, size or 20_000, 16)
        print(f"ceiling: smtp-source -s 16 into smtp-sink, no TLS: {ceiling:,.0f} msg/s")
        base = naive(root, tls_port, ca_file, args.naive)
        print(f"naive baseline: render + email.message + smtplib, new TLS connection per "
              f"message: {base:,.0f} msg/s")
        best = max(results.values(), key=lambda r: r["msg_per_s"])["msg_per_s"]
        print(f"best campaign send: {best / base:.1f}x the naive baseline, "
              f"{best / ceiling:.0%} of the ceiling")
        print("load average at the end " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
