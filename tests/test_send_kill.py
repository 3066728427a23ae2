"""A send killed (SIGKILL) mid-campaign, then resumed: every recipient receives exactly
one message, except the ones in flight at the kill (at most one per connection), which
are reported unconfirmed and sent again only with --retry-unconfirmed.

Deterministic without sleeps: the relay stores LIMIT messages, then holds every further
DATA unanswered; once all CONNECTIONS are held, it signals the test, which kills.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from conftest import run_campaign
from relay_helpers import BlockingHandler
from send_helpers import CAMPAIGN, kill_when_blocked, ledger_states, sendable

N, LIMIT, CONNECTIONS = 40, 10, 3


def test_killed_send_resumes_exactly_once(tmp_path: Path) -> None:
    handler = BlockingHandler(None, limit=LIMIT, block_count=CONNECTIONS)
    with sendable(tmp_path, n=N, handler=handler, max_connections=CONNECTIONS) as s:
        args = ["send", CAMPAIGN, "--contacts", str(s.contacts)]
        at_kill = kill_when_blocked(s, handler, args)
        assert at_kill["sent"] == LIMIT
        assert at_kill["sending"] == CONNECTIONS  # one in flight per connection, no more
        s.relay.call(handler.release)

        resumed = run_campaign(*args, root=s.root, env=s.env)
        assert resumed.returncode == 0, resumed.stderr
        assert f"sent {N - LIMIT - CONNECTIONS}, failed 0, unconfirmed 0" in resumed.stdout
        assert (f"  {CONNECTIONS} message(s) in flight when the last send stopped are "
                "unconfirmed; `send --retry-unconfirmed` sends them again") in resumed.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
        assert set(per_recipient.values()) == {1}  # nobody twice
        assert len(per_recipient) == N - CONNECTIONS  # the unconfirmed ones were held, not sent
        assert ledger_states(s.root) == {"sent": N - CONNECTIONS, "unconfirmed": CONNECTIONS}

        again = run_campaign(*args, root=s.root, env=s.env)
        assert "sent 0, failed 0, unconfirmed 0" in again.stdout  # unconfirmed are not resent

        retried = run_campaign(*args, "--retry-unconfirmed", root=s.root, env=s.env)
        assert retried.returncode == 0, retried.stderr
        assert f"sent {CONNECTIONS}, failed 0" in retried.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
    assert len(per_recipient) == N and set(per_recipient.values()) == {1}
    assert ledger_states(s.root) == {"sent": N}
