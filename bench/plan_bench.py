"""Plan throughput and peak memory over generated contacts (bench/plan.md has the figures).

    /work/venv/bin/python bench/plan_bench.py                 # 100,000 and 1,000,000
    /work/venv/bin/python bench/plan_bench.py --counts 100000 --campaign partner-fitness-offer

Each plan runs as the real CLI (`python -m toolkit plan ... --format json`) in its own
process; peak RSS is that process's ru_maxrss (os.wait4), and contacts per second is
contacts read divided by the process's wall time, start-up included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANCHOR = "2026-12-01T12:00:00+00:00"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_contacts", ROOT / "scripts" / "make_contacts.py"
    )
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def make(path: Path, count: int) -> None:
    gen = _generator()
    anchor = dt.datetime.fromisoformat(ANCHOR)
    with open(path, "w", encoding="utf-8") as f:
        for line in gen.generate(count, seed=7, anchor=anchor):
            f.write(line + "\n")


def run_plan(
    campaign: str, source: Path, extra_env: dict[str, str]
) -> tuple[dict, float, float, float]:
    """(plan JSON, wall seconds, CPU seconds, peak RSS in MB) of one CLI run."""
    cmd = [
        sys.executable,
        "-m",
        "toolkit",
        "--root",
        str(ROOT),
        "plan",
        campaign,
        "--contacts",
        str(source),
        "--at",
        ANCHOR,
        "--format",
        "json",
    ]
    t0 = time.perf_counter()
    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **extra_env}
    )
    out = p.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"plan failed with exit {os.waitstatus_to_exitcode(status)}")
    return json.loads(out), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100000,1000000")
    ap.add_argument("--campaign", default="flu-vaccination-2026")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    env = {"AUDIT_KEY": "bench-audit-key"}
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for count in (int(c) for c in args.counts.split(",")):
            src = Path(tmp) / f"contacts-{count}.jsonl"
            t0 = time.perf_counter()
            make(src, count)
            gen_s = time.perf_counter() - t0
            best = None
            for _ in range(args.repeat):
                got = run_plan(args.campaign, src, env)
                best = got if best is None or got[1] < best[1] else best
            plan, wall, cpu, rss = best  # type: ignore[misc]
            n = plan["contacts_read"]
            rows.append((count, plan["matched"], plan["recipients"], wall, cpu, rss))
            print(
                f"{count:>9} contacts (generated in {gen_s:.1f}s): matched {plan['matched']}, "
                f"recipients {plan['recipients']}, wall {wall:.2f}s ({n / wall:,.0f}/s), "
                f"CPU {cpu:.2f}s ({n / cpu:,.0f}/s), peak RSS {rss:.1f} MB",
                flush=True,
            )
        if len(rows) > 1:
            base, top = rows[0][5], rows[-1][5]
            print(
                f"peak RSS growth {rows[0][0]} -> {rows[-1][0]}: {100 * (top - base) / base:+.1f}%"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
