"""Campaign-scope rules in worker processes, for `campaign lint` only (bench/lint.md,
docs/lint.md "Worker processes").

Two ways, both putting every campaign's findings back in campaign order, so the result is
the one a single process produces:

- forked *before* loading, for a cold lint (`fork_before_load`, EarlyWorkers): each child
  loads the shared files and only its own share of the campaign folders, lints them and
  sends {campaign id: findings} back, while this process loads everything, runs the
  repository-wide rules and lints the rest;
- forked *after* loading, for the campaigns a lint cache misses (`start_workers`): the
  loaded repository is shared copy-on-write and each child lints a contiguous share.

A child that fails or sends something unreadable is not trusted: this process lints its
share itself (and so raises what the child met). Only `fork` on Linux is used, nothing is
pickled; elsewhere, and for fewer than MIN_PER_WORKER campaigns a process, it is one
process. The forks happen before any campaign is rendered, so no library has started a
thread that a child could inherit half-way. The send gate and `campaign build` never use
workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from toolkit.lint_cache import _decode, _encode

if TYPE_CHECKING:
    from toolkit.findings import Finding
    from toolkit.models import Campaign, Repo

# a fork and its pipe cost a few milliseconds; one campaign's rules about one
MIN_PER_WORKER = 100
MAX_WORKERS = 4


def available_workers() -> int:
    """The processes worth forking: the CPUs this process may run on, at most MAX_WORKERS.
    Linux only: elsewhere (macOS) forking a process that has loaded system libraries is
    not safe, and Python itself no longer forks there by default."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def start_workers(repo: Repo, camps: list[Campaign], workers: int, *, head_start: int = 0
                  ) -> tuple[list[Campaign], Callable[[list[list[Finding]]], list[list[Finding]]]]:
    """Fork the children for all but the first share of `camps`, and return that share
    (this process's to lint) and `collect`, which takes this process's findings for it
    and returns every campaign's, in order (waiting for the children). `head_start`:
    campaigns' worth of other work this process does meanwhile (the repository-wide
    rules), taken off its share."""
    from toolkit.lint import campaign_findings

    workers = min(workers, len(camps) // MIN_PER_WORKER)
    if workers < 2 or not hasattr(os, "fork"):
        return camps, lambda mine: mine
    size = -(-len(camps) // workers)
    first = max(1, size - head_start)
    rest = camps[first:]
    other = -(-len(rest) // (workers - 1))
    shares = [camps[:first]] + [rest[i:i + other] for i in range(0, len(rest), other)]
    children: list[tuple[int, int, list[Campaign]]] = []
    try:
        for share in shares[1:]:
            pid, read_fd = _fork(lambda share=share: [  # type: ignore[misc]
                [_encode(f) for f in campaign_findings(repo, c)] for c in share])
            children.append((pid, read_fd, share))
    except BaseException:
        for pid, read_fd, _ in children:
            _close_and_reap(pid, read_fd)
        raise

    def collect(mine: list[list[Finding]]) -> list[list[Finding]]:
        results = list(mine)
        try:
            for pid, read_fd, share in children:
                results.extend(_collect(repo, pid, read_fd, share))
        finally:
            for pid, read_fd, _ in children:
                _close_and_reap(pid, read_fd)
        return results

    return shares[0], collect


# --- forked before loading (a cold `campaign lint`) -----------------------------------

# This process also loads every file and runs the repository-wide rules while the children
# load only the shared files and their own campaigns, so it takes a smaller share: by a
# sixteenth of all campaigns, which finished both processes together on the benchmark's
# repository on a quiet two-core machine (an eighth left the child 15-30 ms behind;
# bench/lint.md).
PARENT_HEAD = 0.06


class EarlyWorkers:
    """Children forked before this process loads the repository. Each loads the shared
    files and its own share of the campaign folders (loader.load_repo(campaigns=...)),
    runs the campaign-scope rules on them, and sends {campaign id: findings} back as
    JSON. This process loads everything, runs the repository-wide rules and lints the
    campaigns no child has; a child that fails or sends something unreadable is not
    trusted, and this process lints its share itself."""

    def __init__(self, children: list[tuple[int, int, list[str]]]):
        self.children = children
        self.theirs = frozenset(name for _, _, share in children for name in share)

    def collect(self) -> dict[str, list[Finding]]:
        """Each child's findings by campaign id, waiting for every child; a child that
        failed or sent something unreadable contributes nothing."""
        got: dict[str, list[Finding]] = {}
        try:
            while self.children:
                pid, read_fd, share = self.children[0]
                rows = _answer(pid, read_fd)
                self.children.pop(0)  # reaped: its pid is no longer ours to signal
                os.close(read_fd)
                with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                    if isinstance(rows, dict) and set(rows) <= set(share):
                        got.update({cid: [_decode(row) for row in found]
                                    for cid, found in rows.items()})
        finally:
            self.close()
        return got

    def close(self) -> None:
        """Stop and reap the children not collected (an error cut the lint short)."""
        for pid, read_fd, _ in self.children:
            with contextlib.suppress(OSError):
                os.close(read_fd)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children = []


def fork_before_load(root: Path, workers: int) -> EarlyWorkers | None:
    """Fork the children of EarlyWorkers for the campaign folders under root, or None when
    there are too few campaigns (MIN_PER_WORKER a process) or no fork."""
    if workers < 2 or not hasattr(os, "fork") or not (root / "toolkit.yaml").is_file():
        return None
    try:
        with os.scandir(root / "campaigns") as entries:
            names = sorted(e.name for e in entries if e.is_dir())
    except OSError:
        return None
    workers = min(workers, len(names) // MIN_PER_WORKER)
    if workers < 2:
        return None
    mine = max(0, round(len(names) * (1 / workers - PARENT_HEAD)))
    rest = names[mine:]
    size = -(-len(rest) // (workers - 1))
    children: list[tuple[int, int, list[str]]] = []
    try:
        for i in range(0, len(rest), size):
            share = rest[i:i + size]
            pid, read_fd = _fork(lambda share=share: _lint_share(root, share))
            children.append((pid, read_fd, share))
    except BaseException:
        EarlyWorkers(children).close()
        raise
    return EarlyWorkers(children)


def _lint_share(root: Path, share: list[str]) -> dict[str, list[list[Any]]]:
    import gc

    from toolkit.lint import campaign_findings
    from toolkit.loader import load_repo

    repo, _ = load_repo(root, campaigns=frozenset(share))
    gc.freeze()  # as the lint command: the loaded repository stays alive to the end
    return {cid: [_encode(f) for f in campaign_findings(repo, repo.campaigns[cid])]
            for cid in sorted(repo.campaigns)}


def _fork(work: Callable[[], object]) -> tuple[int, int]:
    """(pid, read end of its pipe) of a child that runs `work`, writes the result as JSON
    to the pipe and leaves without cleanup (exit status 1 if `work` raised)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        status = 1
        try:
            data = orjson.dumps(work())
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _answer(pid: int, read_fd: int) -> Any:
    """What a child of _fork wrote, once it has exited (it is reaped then), or None if it
    failed or wrote something that is not JSON."""
    chunks = []
    while chunk := os.read(read_fd, 1 << 20):
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    try:
        return orjson.loads(b"".join(chunks))
    except ValueError:  # orjson.JSONDecodeError
        return None


def _collect(repo: Repo, pid: int, read_fd: int, share: list[Campaign]) -> list[list[Finding]]:
    from toolkit.lint import campaign_findings

    rows = _answer(pid, read_fd)
    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
        if isinstance(rows, list) and len(rows) == len(share):
            return [[_decode(row) for row in found] for found in rows]
    return [campaign_findings(repo, c) for c in share]  # not trusted: lint it here


def _close_and_reap(pid: int, read_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(read_fd)
    with contextlib.suppress(ChildProcessError):  # reaped already by _collect
        os.waitpid(pid, 0)
