"""The send: gate, plan, then a pipeline from the contact source to the relay.

    contacts -> gates (toolkit.plan.iter_decisions) -> batches -> workers (render, bytes,
    S/MIME, DKIM) -> queue -> max_connections senders: ledger `sending` (durable) ->
    relay -> ledger `sent`/`failed` (durable) -> audit `recipient` -> progress

A sender sends its next message's data only after the last one's outcome is on disk,
so a kill leaves at most one `sending` row per connection: those become `unconfirmed`.
(The next message's envelope may already be out, behind the last one's data: without
its data the relay holds nothing of it.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import re
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from toolkit.audit import AuditLog
from toolkit.errors import CheckFailed, UserError
from toolkit.findings import Finding
from toolkit.ledger import Change, Ledger, SendLock
from toolkit.models import Campaign, Repo
from toolkit.plan import PlanResult, find_campaign, gate_config, iter_decisions, plan
from toolkit.relay import (
    Lane,
    RelayPool,
    RelaySettings,
    RelaySetupError,
    RelayUnavailableError,
    RetryPolicy,
    settings_for,
)
from toolkit.relay.config import retry_for
from toolkit.secrets import secret
from toolkit.send.gate import check_gate
from toolkit.send.ledger_writer import LedgerWriter
from toolkit.send.prepare import (
    Prepared,
    Preparer,
    PrepareSpec,
    dkim_signer,
    init_worker,
    prepare_batch,
)
from toolkit.send.progress import Progress
from toolkit.state import state_dir

BATCH = 32  # recipients per worker task: amortizes pickling without starving the senders
WORKERS_FROM = 1000  # fewer recipients than this render in-process (no worker start-up)
_EMAIL = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+")


def scrub(text: str | None, address: str = "") -> str | None:
    """Relay replies may quote the recipient's address, or name the mailbox by its local
    part alone ("mailbox jane.doe is full"): never store or log either."""
    if not text:
        return text
    text = _EMAIL.sub("<address>", text)
    local = address.rpartition("@")[0]
    # as a whole word only: a short local part must not mangle the reply. The pattern is
    # compiled per address (40 us, most of this function), so only when it can match:
    # in ASCII, IGNORECASE matches exactly what lower() finds; otherwise always
    if local and (local.lower() in text.lower() if text.isascii() and local.isascii()
                  else True):
        text = re.sub(rf"(?<![\w+-]){re.escape(local)}(?![\w+-])", "<address>", text,
                      flags=re.IGNORECASE)
    return text[:200]


@dataclass(frozen=True)
class SendOptions:
    dry_run: bool = False
    out: Path | None = None
    retry_unconfirmed: bool = False
    workers: int | None = None  # None: automatic (CAMPAIGN_SEND_WORKERS overrides)
    retry: RetryPolicy | None = None
    progress: TextIO | None = None
    tty: bool | None = None


@dataclass
class SendReport:
    campaign: str
    digest: str
    planned: PlanResult
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # "550 5.1.1 ..." -> n, failures only
    recovered: int = 0
    elapsed: float = 0.0
    stopped: str | None = None  # why the send stopped early


@dataclass
class _Ctx:
    repo: Repo
    campaign: Campaign
    digest: str
    source: str
    now: dt.datetime
    options: SendOptions
    audit: AuditLog
    gates: Any
    report: SendReport
    executor: Executor | None = None
    preparer: Preparer | None = None
    writer: LedgerWriter | None = None
    progress: Progress | None = None


def _workers(options: SendOptions, recipients: int) -> int:
    if options.workers is not None:
        return options.workers
    env = os.environ.get("CAMPAIGN_SEND_WORKERS")
    if env is not None and env.isdigit():
        return int(env)
    return (os.cpu_count() or 1) if recipients >= WORKERS_FROM else 0


def send_campaign(repo: Repo, load_findings: list[Finding], campaign_id: str, source: str,
                  options: SendOptions, *, now: dt.datetime | None = None) -> SendReport:
    campaign = find_campaign(repo, campaign_id)
    cfg = repo.config
    assert cfg is not None
    now = now or dt.datetime.now(dt.UTC)
    relay_name = campaign.delivery.relay
    relay_cfg = cfg.relays.get(relay_name)
    if relay_cfg is None:
        raise UserError(f"relay '{relay_name}' is not defined in toolkit.yaml relays",
                        where=str(campaign.pos("delivery")), fix="add it, or name a defined relay")
    # configuration errors (exit 2) before the gate: a missing DKIM key or relay credential
    # is reported now, not per message or after the first connection
    dkim_signer(repo)
    secret(cfg.unsubscribe.secret_env, purpose="unsubscribe token HMAC key")
    settings = None if options.dry_run else settings_for(relay_cfg, root=repo.root,
                                                         name=relay_name)
    with AuditLog.open(repo) as audit:
        gate = check_gate(repo, load_findings, campaign, now=now)
        if not gate.open:
            if not options.dry_run:
                audit.append("refusal", campaign=campaign.id, digest=gate.digest,
                             reasons=list(gate.reasons))
            raise CheckFailed(f"refusing to send {campaign.id}; nothing was sent:\n"
                              + "\n".join(f"  {r}" for r in gate.reasons))
        if options.dry_run:
            return _dry_run(repo, campaign, gate.digest, source, now, options, audit)
        state = state_dir(repo)
        with SendLock(state, campaign.id):
            ledger = Ledger(state)
            try:
                return _send(repo, campaign, gate, source, now, options, audit, ledger, settings,
                             relay_cfg)
            finally:
                ledger.close()


def _plan(repo: Repo, campaign: Campaign, source: str, now: dt.datetime, audit: AuditLog,
          skip: Callable[[str], bool] | None) -> tuple[Any, PlanResult]:
    gates = gate_config(repo, campaign, at=now, already_sent=skip, pseudonym_key=audit.key)
    return gates, plan(repo, campaign.id, source, at=now, config=gates)


def _send(repo: Repo, campaign: Campaign, gate: Any, source: str, now: dt.datetime,
          options: SendOptions, audit: AuditLog, ledger: Ledger, settings: RelaySettings | None,
          relay_cfg: Any) -> SendReport:
    recovered = ledger.recover(campaign.id)
    # lookups on a connection of their own: the writer thread owns `ledger`'s
    reader = Ledger(ledger.path.parent)
    retry = options.retry_unconfirmed

    def skip(recipient: str) -> bool:
        return reader.already_sent(campaign.id, recipient, retry_unconfirmed=retry)

    try:
        return _send_planned(repo, campaign, gate, source, now, options, audit, ledger, settings,
                             relay_cfg, skip, recovered)
    finally:
        reader.close()


def _send_planned(repo: Repo, campaign: Campaign, gate: Any, source: str, now: dt.datetime,
                  options: SendOptions, audit: AuditLog, ledger: Ledger,
                  settings: RelaySettings | None, relay_cfg: Any, skip: Callable[[str], bool],
                  recovered: int) -> SendReport:
    gates, planned = _plan(repo, campaign, source, now, audit, skip)
    report = SendReport(campaign.id, gate.digest, planned, False, recovered=recovered)
    assert settings is not None
    audit.append("send-start", campaign=campaign.id, digest=gate.digest,
                 relay=f"{settings.host}:{settings.port}", tls=settings.tls,
                 recipients=planned.recipients, excluded=dict(planned.excluded),
                 unconfirmed_found=recovered, retry_unconfirmed=options.retry_unconfirmed,
                 approvals=[f"{role}: {who}" for role, who, _ in gate.approvals.approvals])
    ctx = _Ctx(repo, campaign, gate.digest, source, now, options, audit, gates, report)
    try:
        if planned.recipients:  # nothing to send: no reason to contact the relay
            try:
                asyncio.run(_run(ctx, ledger, settings, relay_cfg))
            finally:
                # a send that stops early cancels its senders mid-message: rows still
                # `sending` are unconfirmed now, and reported by this send
                report.counts["unconfirmed"] += ledger.recover(campaign.id)
    except sqlite3.Error as exc:
        report.stopped = f"the ledger cannot be written ({type(exc).__name__}: {exc})"
        raise CheckFailed(f"{campaign.id}: {report.stopped}; the send stopped; fix the state "
                          f"folder, then run send again to resume") from None
    except RelaySetupError as exc:
        report.stopped = exc.message
        audit.append("refusal", campaign=campaign.id, digest=gate.digest, reasons=[exc.message])
        sent, unconfirmed = report.counts["sent"], report.counts["unconfirmed"]
        done = f"{sent} sent" + (f", {unconfirmed} unconfirmed" if unconfirmed else "")
        raise CheckFailed(f"refusing to send {campaign.id}: {exc.message}; " + (
            f"stopped after {done}; run send again to resume once the relay is fixed"
            if sent or unconfirmed else "nothing was sent")) from None
    except RelayUnavailableError as exc:
        report.stopped = exc.message
    finally:
        audit.append("send-end", campaign=campaign.id, digest=gate.digest,
                     **{k: report.counts[k] for k in ("sent", "failed", "unconfirmed")},
                     stopped=report.stopped)
    return report


def _dry_run(repo: Repo, campaign: Campaign, digest: str, source: str, now: dt.datetime,
             options: SendOptions, audit: AuditLog) -> SendReport:
    state = state_dir(repo, create=False)
    reader = Ledger(state) if (state / Ledger.FILE).is_file() else None
    retry = options.retry_unconfirmed

    def skip(recipient: str) -> bool:
        assert reader is not None
        return reader.already_sent(campaign.id, recipient, retry_unconfirmed=retry)

    try:
        gates, planned = _plan(repo, campaign, source, now, audit,
                               skip if reader is not None else None)
        report = SendReport(campaign.id, digest, planned, True)
        ctx = _Ctx(repo, campaign, digest, source, now, options, audit, gates, report)
        if options.out is not None:
            options.out.mkdir(parents=True, exist_ok=True)
        asyncio.run(_run(ctx, None, None, None))
        return report
    finally:
        if reader is not None:
            reader.close()


# --- the pipeline --------------------------------------------------------------------------


async def _prepared(ctx: _Ctx) -> AsyncIterator[Prepared]:
    """Admitted recipients, rendered, in source order; workers run ahead by a few batches."""
    loop = asyncio.get_running_loop()
    inflight: asyncio.Queue[asyncio.Future[list[Prepared]] | None] = asyncio.Queue(
        maxsize=4 * max(1, getattr(ctx.executor, "_max_workers", 1)))

    def submit(batch: list[dict[str, Any]]) -> asyncio.Future[list[Prepared]]:
        if ctx.executor is not None:
            return asyncio.wrap_future(ctx.executor.submit(prepare_batch, batch), loop=loop)
        fut: asyncio.Future[list[Prepared]] = loop.create_future()
        assert ctx.preparer is not None
        fut.set_result([ctx.preparer.prepare(c) for c in batch])
        return fut

    async def feed() -> None:
        batch: list[dict[str, Any]] = []
        try:
            for decision in iter_decisions(ctx.repo, ctx.campaign.id, ctx.source, at=ctx.now,
                                           config=ctx.gates):
                if decision.reason is not None or decision.record is None:
                    continue
                batch.append(decision.record)
                if len(batch) >= BATCH:
                    await inflight.put(submit(batch))
                    await asyncio.sleep(0)
                    batch = []
            if batch:
                await inflight.put(submit(batch))
        except Exception as exc:  # hand it to the consumer, which would otherwise wait forever
            failed: asyncio.Future[list[Prepared]] = loop.create_future()
            failed.set_exception(exc)
            await inflight.put(failed)
            return
        await inflight.put(None)

    feeder = asyncio.create_task(feed())
    try:
        while (fut := await inflight.get()) is not None:
            items = await fut
            _pending(ctx, items)
            for item in items:
                yield item
        await feeder
    finally:
        feeder.cancel()


def _pending(ctx: _Ctx, items: list[Prepared]) -> None:
    """Prepared recipients enter the ledger as pending (not awaited: FIFO order with the
    writer guarantees the row exists before its `sending`), under the pseudonym the
    worker computed: the sending process does not compute it again."""
    if ctx.writer is not None:
        ctx.writer.submit([Change(ctx.campaign.id, p.pseudonym, "pending", ctx.digest)
                           for p in items])


async def _run(ctx: _Ctx, ledger: Ledger | None, settings: RelaySettings | None,
               relay_cfg: Any) -> None:
    loop = asyncio.get_running_loop()
    opts = ctx.options
    workers = _workers(opts, ctx.report.planned.recipients)
    spec = PrepareSpec(ctx.repo.root, ctx.campaign.id, ctx.digest, ctx.now, wire=ledger is not None)
    if workers > 0:
        # spawn: workers inherit neither the send lock nor the ledger, and die with us
        ctx.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=init_worker, initargs=(spec,))
    else:
        ctx.preparer = Preparer(spec)
    ctx.progress = Progress(ctx.report.planned.recipients, stream=opts.progress, tty=opts.tty,
                            label="built" if opts.dry_run else "sent")
    started = loop.time()
    try:
        if ledger is None:
            await _build_only(ctx)
        else:
            ctx.writer = LedgerWriter(ledger, loop, ctx.audit)
            try:
                assert settings is not None
                await _deliver(ctx, settings, relay_cfg)
            finally:
                ctx.writer.close()
    finally:
        ctx.report.elapsed = loop.time() - started
        ctx.progress.close()
        if ctx.executor is not None:
            ctx.executor.shutdown(cancel_futures=True)


async def _build_only(ctx: _Ctx) -> None:
    out = ctx.options.out
    async for p in _prepared(ctx):
        if p.data is None:
            _count(ctx, "failed", p.problem)
            continue
        if out is not None:  # a message holds PHI: its owner's to read, as decrypted contacts
            fd = os.open(out / f"{p.pseudonym}.eml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # a file left by an earlier dry run keeps its mode otherwise
            with os.fdopen(fd, "wb") as f:
                f.write(p.data)
        _count(ctx, "built", None)


def _count(ctx: _Ctx, status: str, reply: str | None) -> None:
    ctx.report.counts[status] += 1
    if status == "failed" and reply:
        ctx.report.codes[reply] += 1
    assert ctx.progress is not None
    ctx.progress.add(status)


async def _deliver(ctx: _Ctx, settings: RelaySettings, relay_cfg: Any) -> None:
    cid, digest, writer = ctx.campaign.id, ctx.digest, ctx.writer
    assert writer is not None and ctx.repo.config is not None
    envelope_from = ctx.repo.config.senders[ctx.campaign.sender].from_address or ""
    ready: asyncio.Queue[Prepared | None] = asyncio.Queue(maxsize=relay_cfg.max_connections * 4)

    def entry(p: Prepared, status: str, code: int | None, attempts: int) -> list[dict[str, Any]]:
        # the writer thread appends it to the audit log before it commits the outcome
        return [{"campaign": cid, "recipient": p.pseudonym, "status": status, "code": code,
                 "attempts": attempts, "smime": p.encrypted}]

    async def sender(pool: RelayPool) -> None:
        async with pool.lane() as lane:  # one connection for this sender's messages
            await send_all(lane)

    async def send_all(lane: Lane) -> None:
        p = await ready.get()
        sending = False  # whether p's `sending` is already committed
        while p is not None:
            if p.data is None:
                await writer.submit([Change(cid, p.pseudonym, "failed", digest, None, p.problem)],
                                    entry(p, "failed", None, 0))
                _count(ctx, "failed", p.problem)
                p, sending = await ready.get(), False
                continue
            if not sending:
                await writer.submit([Change(cid, p.pseudonym, "sending", digest)])
            # the next message, when at hand: its envelope (not its data) rides behind p's
            # data in one write; its data leaves only after its `sending` is durable below
            nxt: Prepared | None = None
            took = not ready.empty()
            if took:
                nxt = ready.get_nowait()
            follow = (envelope_from, nxt.address) if nxt is not None and nxt.data else None
            try:
                outcome = await lane.send(sender=envelope_from, recipient=p.address, data=p.data,
                                          stuffed=True, then=follow)
            except (RelayUnavailableError, RelaySetupError) as exc:
                # never connected for this one: not delivered, sent again on resume (nxt
                # stays `pending`: sent again too)
                await writer.submit([Change(cid, p.pseudonym, "failed", digest, None,
                                            scrub(exc.message))])
                _count(ctx, "failed", scrub(exc.message))  # the summary agrees with the ledger
                raise
            reply = scrub(outcome.text, p.address)
            changes = [Change(cid, p.pseudonym, outcome.status, digest, outcome.code, reply)]
            # the next message's `sending` shares this commit: p's outcome and the next
            # one's `sending` become durable together, before the next data leaves, and
            # this connection still has one `sending` row at most
            sending = follow is not None
            if sending:
                assert nxt is not None
                changes.append(Change(cid, nxt.pseudonym, "sending", digest))
            # audit first (the writer writes the entry, then commits): a kill between the
            # two leaves the row `sending` (so unconfirmed, never resent by default) and
            # the audit log complete; the other order could leave an accepted message
            # missing from the audit log
            committed = writer.submit(changes, entry(p, outcome.status, outcome.code,
                                                     outcome.attempts))
            # counted before the wait: a sender cancelled in it (another one's failure
            # stops the send) still has its change committed by the writer thread
            _count(ctx, outcome.status, f"{outcome.code} {reply}" if outcome.code else reply)
            await committed
            p = nxt if took else await ready.get()

    async def produce(n: int) -> None:
        async for p in _prepared(ctx):
            await ready.put(p)
        for _ in range(n):
            await ready.put(None)

    n = relay_cfg.max_connections
    async with RelayPool(settings, max_connections=n, rate_per_second=relay_cfg.rate_per_second,
                         retry=ctx.options.retry or retry_for(relay_cfg)) as pool:
        tasks = [asyncio.create_task(produce(n))] + [
            asyncio.create_task(sender(pool)) for _ in range(n)]
        try:
            await _all_or_nothing(tasks)
        finally:
            for t in tasks:
                t.cancel()


async def _all_or_nothing(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for all; the first failure cancels the rest and is raised."""
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for t in done:
        if t.exception() is not None:
            for p in pending:
                p.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise t.exception()  # type: ignore[misc]


def summary_lines(report: SendReport) -> list[str]:
    p = report.planned
    rate = report.counts.total() / report.elapsed if report.elapsed > 0 else 0.0
    c = report.counts
    lines = []
    if report.dry_run:
        lines.append(f"dry run of {report.campaign} ({report.digest}): {c['built']} message(s) "
                     f"built, not sent; failed {c['failed']}")
    else:
        lines.append(f"{report.campaign} ({report.digest}): sent {c['sent']}, failed "
                     f"{c['failed']}, unconfirmed {c['unconfirmed']} in {report.elapsed:.1f} s "
                     f"({rate:,.0f} msg/s)")
    excluded = {k: v for k, v in p.excluded.items() if v}
    lines.append(f"  plan: {p.contacts_read} read, {p.invalid_records} invalid, {p.matched} "
                 f"matched, {p.recipients} to send" + (
                     "; excluded " + ", ".join(f"{k} {v}" for k, v in excluded.items())
                     if excluded else ""))
    for reply, n in report.codes.most_common(10):
        lines.append(f"  failed {n}: {reply}")
    if report.recovered:
        lines.append(f"  {report.recovered} message(s) in flight when the last send stopped are "
                     "unconfirmed; `send --retry-unconfirmed` sends them again")
    if report.stopped:
        lines.append(f"  stopped early: {report.stopped}; run send again to resume")
    return lines


