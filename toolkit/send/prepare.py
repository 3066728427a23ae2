"""Per recipient: render (Jinja then MJML), build the bytes, encrypt (S/MIME) and
sign (DKIM). Runs in worker processes for large sends, in-process for small ones.

Nothing here raises for one recipient's problem: a `Prepared` with `problem` says
why no message was made, in words that never quote contact data.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import multiprocessing.connection
import os
import threading
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from toolkit.addresses import wire_address
from toolkit.errors import UserError
from toolkit.loader import load_repo
from toolkit.plaintext import swap_values
from toolkit.pseudonym import pseudonym
from toolkit.relay.connection import dot_stuff
from toolkit.render import RenderError, configured_view_online_url, render_campaign
from toolkit.secrets import secret
from toolkit.send.dkim import DkimSigner
from toolkit.send.smime import CertificateError, envelope, load_certificate
from toolkit.send.textcache import TextCache
from toolkit.send.wire import WireBuilder
from toolkit.smime_check import usable_certificate
from toolkit.tokens import make_token, suppression_kind


@dataclass(frozen=True)
class Prepared:
    pseudonym: str
    address: str
    data: bytes | None  # None when no message could be made: see problem
    encrypted: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class PrepareSpec:
    """Everything a worker needs, picklable: it loads the repository itself."""

    root: Path
    campaign: str
    digest: str
    now: dt.datetime
    wire: bool = False  # data as the DATA payload (dot-stuffed), for the relay; else the message


def dkim_signer(repo: Any) -> DkimSigner | None:
    cfg = repo.config.dkim if repo.config else None
    if cfg is None:
        return None
    pem = os.environ.get(cfg.private_key_env)
    if not pem:
        raise UserError(f"environment variable {cfg.private_key_env} is not set; it holds the "
                        "DKIM private key (toolkit.yaml dkim.private_key_env)",
                        fix=f"export {cfg.private_key_env}=\"$(cat dkim-private.pem)\", "
                        "or remove the dkim: block to let the relay sign")
    return DkimSigner.from_pem(pem.encode("ascii"), domain=cfg.domain, selector=cfg.selector,
                               where="toolkit.yaml dkim")


class Preparer:
    def __init__(self, spec: PrepareSpec) -> None:
        repo, _ = load_repo(spec.root)
        cfg = repo.config
        assert cfg is not None
        self.repo = repo
        self.campaign = repo.campaigns[spec.campaign]
        self.now = spec.now
        self.audit_key = secret(cfg.audit.key_env, purpose="audit key (keys recipient pseudonyms)")
        self.unsub_secret = secret(cfg.unsubscribe.secret_env, purpose="unsubscribe token HMAC key")
        self.kind = suppression_kind(base_purpose=repo.base_purpose(self.campaign.purpose),
                                     commercial=repo.is_commercial(self.campaign))
        self.builder = WireBuilder(repo, self.campaign, digest=spec.digest, now=spec.now)
        self.signer = dkim_signer(repo)
        self.encryption = self.campaign.delivery.encryption
        self.url = cfg.unsubscribe.url
        # unset: lint (CFG-002) refuses a campaign whose content links to it, so "" is unused
        self.view_online = configured_view_online_url(repo, self.campaign) or ""
        self.wire = spec.wire
        self.texts = TextCache()

    def prepare(self, contact: dict[str, Any]) -> Prepared:
        prepared = self._prepare(contact)
        # RCPT TO names the address as the To header does: an IDN domain in ASCII
        return replace(prepared, address=wire_address(prepared.address))

    def _prepare(self, contact: dict[str, Any]) -> Prepared:
        address = str(contact["email"])
        pseudo = pseudonym(address, self.audit_key)
        try:
            token = make_token(self.unsub_secret, pseudonym=pseudo, campaign=self.campaign.id,
                               kind=self.kind)
            url = (self.url.replace("{token}", urllib.parse.quote(token, safe=""))
                   if self.url else "")
            rendered = render_campaign(self.repo, self.campaign, contact, unsubscribe_url=url,
                                       view_online_url=self.view_online, now=self.now,
                                       text=False)
            text = self.texts.text(rendered.html, token, swap_values(contact.values()))
            rendered = replace(rendered, text=text)
            entity = self.builder.build(address=address, rendered=rendered, token=token)
        except RenderError as exc:
            # RenderError's message names keys and template lines, never contact values
            return Prepared(pseudo, address, None,
                            problem=f"render failed: {exc.file}:{exc.line}: {exc.message}")
        except Exception as exc:  # one recipient's problem must not stop the send
            return Prepared(pseudo, address, None, problem=f"message failed ({type(exc).__name__})")
        cert = contact.get("smime_certificate")
        if self.wire and self.signer is None and not cert and self.encryption != "smime-required":
            # the common case, as below with no encryption and no signature: the DATA
            # payload straight from the parts (Entity.payload, one copy of the message)
            return Prepared(pseudo, address, entity.payload())
        data, encrypted = entity.as_bytes(), False
        if (self.encryption != "tls-required" and cert
                and usable_certificate(cert, address, self.now)):
            try:
                head, body = envelope(entity.entity_headers + b"\r\n" + entity.entity_body,
                                      load_certificate(cert))
            except (CertificateError, ValueError):
                return Prepared(pseudo, address, None, problem="S/MIME encryption failed")
            data, encrypted = entity.headers + head + b"\r\n" + body, True
        elif self.encryption == "smime-required":
            # the gates exclude these; this is the last line of defence
            return Prepared(pseudo, address, None, problem="no usable S/MIME certificate")
        if self.signer is not None:
            data = self.signer.sign(data, now=int(self.now.timestamp()))
        return Prepared(pseudo, address, dot_stuff(data) if self.wire else data, encrypted)


# --- worker processes: one Preparer each, made once ----------------------------------------

_WORKER: Preparer | None = None


def init_worker(spec: PrepareSpec) -> None:
    global _WORKER
    _exit_with_parent()
    _WORKER = Preparer(spec)


def _exit_with_parent() -> None:
    """A sender killed with SIGKILL cannot shut its pool down, and an idle worker holds
    both ends of its task pipe, so it would wait for work forever (an orphan holding the
    sender's stdout and stderr open): leave as soon as the parent is gone."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not a spawned worker (a test calling this directly)
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable when the parent dies
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def prepare_batch(contacts: list[dict[str, Any]]) -> list[Prepared]:
    assert _WORKER is not None, "init_worker first"
    return [_WORKER.prepare(c) for c in contacts]
