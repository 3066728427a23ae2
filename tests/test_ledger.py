"""The ledger's states, resume policy and lock (toolkit/ledger.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.errors import CheckFailed
from toolkit.ledger import Change, Ledger, SendLock


def test_resume_policy_skips_accepted_and_permanent_failures(tmp_path: Path) -> None:
    led = Ledger(tmp_path)
    rows = {"r_sent": ("sent", 250), "r_550": ("failed", 550), "r_451": ("failed", 451),
            "r_drop": ("failed", None), "r_unconf": ("unconfirmed", None),
            "r_pending": ("pending", None)}
    led.apply(Change("c1", r, "pending", "sha256:1") for r in rows)
    led.apply(Change("c1", r, "sending", "sha256:1") for r, (s, _) in rows.items()
              if s != "pending")
    led.apply(Change("c1", r, s, "sha256:1", code) for r, (s, code) in rows.items()
              if s not in ("pending", "unconfirmed"))
    assert led.recover("c1") == 1  # r_unconf was left sending
    assert led.skip_set("c1") == {"r_sent", "r_550", "r_unconf"}
    assert led.skip_set("c1", retry_unconfirmed=True) == {"r_sent", "r_550"}
    assert led.counts("c1") == {"pending": 1, "sending": 0, "sent": 1, "failed": 3,
                                "unconfirmed": 1}
    assert led.skip_set("other-campaign") == set()
    led.close()


def test_sending_again_counts_attempts_and_clears_the_old_reply(tmp_path: Path) -> None:
    led = Ledger(tmp_path)
    led.apply([Change("c1", "r_a", "sending", "sha256:1")])
    led.apply([Change("c1", "r_a", "failed", "sha256:1", 451, "4.3.0 later")])
    led.apply([Change("c1", "r_a", "sending", "sha256:2")])
    assert led.rows("c1") == [("r_a", "sending", None, 2)]
    led.close()


def test_state_survives_a_killed_process(tmp_path: Path) -> None:
    code = ("import os, sys; from toolkit.ledger import Ledger, Change; "
            f"led = Ledger({str(tmp_path)!r}); "
            "led.apply([Change('c1', 'r_a', 'sending', 'd'), "
            "Change('c1', 'r_b', 'sending', 'd')]); "
            "led.apply([Change('c1', 'r_a', 'sent', 'd', 250, 'ok')]); os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code], check=False)
    led = Ledger(tmp_path)
    assert led.recover("c1") == 1
    assert led.rows("c1") == [("r_a", "sent", 250, 1), ("r_b", "unconfirmed", None, 1)]


def test_lock_refuses_a_second_holder_and_is_released(tmp_path: Path) -> None:
    with SendLock(tmp_path, "c1"):
        with pytest.raises(CheckFailed) as err:
            SendLock(tmp_path, "c1").__enter__()
        assert "campaign c1 is already being sent by another process" in err.value.message
        with SendLock(tmp_path, "c2"):  # another campaign is not blocked
            pass
    with SendLock(tmp_path, "c1"):
        pass
