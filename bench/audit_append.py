"""How fast the audit log appends and verifies (the send path writes one entry per recipient).

    /work/venv/bin/python bench/audit_append.py [N]

Prints appends/s for `recipient` entries (fsync batched), for entries fsynced one by one
(every other event), and entries/s for `audit verify`. Writes to a temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from toolkit.audit import AuditLog
from toolkit.audit_check import verify_log

KEY = b"bench-audit-key"


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log_path, head = Path(tmp) / "audit.jsonl", Path(tmp) / "audit-head.json"
        with AuditLog.at(log_path, head, KEY) as log:
            pseudonyms = [log.pseudonym(f"patient{i}@example.org") for i in range(n)]
            t0 = time.perf_counter()
            for p in pseudonyms:
                log.append("recipient", campaign="bench", recipient=p, status="sent", code=250,
                           attempts=1, smime=False)
            log.sync()
            batched = time.perf_counter() - t0
            m = max(n // 20, 50)
            t0 = time.perf_counter()
            for i in range(m):
                log.append("verify", campaign="bench", valid=True, n=i)
            synced = time.perf_counter() - t0
        size = log_path.stat().st_size
        t0 = time.perf_counter()
        report = verify_log(log_path, head, KEY)
        checked = time.perf_counter() - t0
        assert report.ok, report.problems
    print(f"recipient entries (fsync batched): {n / batched:,.0f}/s "
          f"({batched / n * 1e6:.1f} us each)")
    print(f"fsynced entries:                   {m / synced:,.0f}/s "
          f"({synced / m * 1e3:.2f} ms each)")
    print(f"audit verify:                      {report.entries / checked:,.0f} entries/s "
          f"({size / report.entries:.0f} bytes/entry)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
