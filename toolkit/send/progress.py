"""Send progress: a bar on a terminal (count, rate, ETA), a plain line every few
seconds otherwise (CI logs), and the final summary by outcome."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

BAR_WIDTH = 30
TTY_EVERY = 0.1  # seconds between redraws
LOG_EVERY = 5.0  # seconds between plain lines


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, total: int, *, stream: TextIO | None = None, tty: bool | None = None,
                 label: str = "sent") -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.label = label
        self.counts: Counter[str] = Counter()
        self.start = time.monotonic()
        self._last = self.start

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def add(self, status: str) -> None:
        self.counts[status] += 1
        now = time.monotonic()
        if now - self._last >= (TTY_EVERY if self.tty else LOG_EVERY):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        done, rate = self.done, self.rate()
        eta = _clock((self.total - done) / rate) if rate > 0 and self.total >= done else "?"
        if self.tty:
            filled = int(BAR_WIDTH * done / self.total) if self.total else BAR_WIDTH
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} {rate:,.0f} msg/s ETA {eta} ")
        else:
            self.stream.write(f"{self.label} {done} of {self.total} ({rate:,.0f} msg/s, "
                              f"ETA {eta})\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.done:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
