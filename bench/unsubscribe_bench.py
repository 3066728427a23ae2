"""Requests per second of the one-click unsubscribe POST, against uvicorn on loopback.

Runs the real command (`campaign unsubscribe-server --port 0`) on a scaffold
repository in a temporary folder, with the SQLite suppression store, and drives it
with Debian's `wrk` (apt-get install wrk) when present, else with an asyncio httpx
load generator. Every request carries a distinct valid token, so every request is a
new suppression written to SQLite (the expensive case). uvicorn uses httptools and
uvloop when they are installed (`pip install .[server]`), h11 and asyncio otherwise.

    /work/venv/bin/python bench/unsubscribe_bench.py [--seconds 10] [--connections 32]
        [--tokens 50000] [--generator wrk|httpx] [--wal]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.pseudonym import pseudonym  # noqa: E402
from toolkit.suppression import FILE_NAME  # noqa: E402
from toolkit.tokens import make_token  # noqa: E402

SECRET = "bench-unsubscribe-secret"
LUA = r"""
local paths = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do paths[#paths + 1] = line end
local counter = 0
local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end
function init(args) counter = offset * 7919 end
function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  return wrk.format("POST", path,
    {["Content-Type"] = "application/x-www-form-urlencoded"}, "List-Unsubscribe=One-Click")
end
"""


def start_server(repo: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "UNSUBSCRIBE_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "--root", str(repo),
                             "unsubscribe-server", "--port", "0"],
                            env=env, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # type: ignore[union-attr]
    m = re.match(r"unsubscribe endpoint: (http://[^/]+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, m.group(1)


def run_wrk(base: str, paths_file: Path, seconds: int, connections: int) -> dict[str, float]:
    script = paths_file.with_suffix(".lua")
    script.write_text(LUA)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-s", str(script), base],
                         env={**os.environ, "TOKENS_FILE": str(paths_file)},
                         capture_output=True, text=True, check=True).stdout
    print(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps}


async def _httpx(base: str, paths: list[str], seconds: int, connections: int) -> dict[str, float]:
    import httpx

    done = errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def worker(i: int) -> None:
            nonlocal done, errors
            n = i
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await client.post(paths[n % len(paths)],
                                      content=b"List-Unsubscribe=One-Click",
                                      headers={"content-type": "application/x-www-form-urlencoded"})
                latencies.append(time.perf_counter() - t0)
                n += connections
                done += 1
                errors += r.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"rps": done / elapsed, "errors": errors,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]}


def commit_latency_ms(folder: Path, n: int = 50) -> float:
    """Mean time of a one-row transaction in the store, on the same disk: the floor
    under which a write cannot go, and what varies most between machines."""
    from toolkit.suppression import SuppressionStore

    with SuppressionStore(folder / "probe.sqlite3") as store:
        t0 = time.perf_counter()
        for i in range(n):
            store.add(pseudonym=f"r_probe{i}", kind="commercial", source="probe")
        return 1000 * (time.perf_counter() - t0) / n


def server_stack() -> str:
    """What uvicorn will pick (http="auto", loop="auto") in the server process."""
    import importlib.util

    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m)]
    return "+".join(fast) if fast else "h11+asyncio"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=50_000)
    ap.add_argument("--wal", action="store_true",
                    help="put the store in WAL journal mode first (the store itself does not)")
    ap.add_argument("--generator", choices=("wrk", "httpx"),
                    default="wrk" if shutil.which("wrk") else "httpx")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(ROOT / "toolkit" / "scaffold", repo)
        paths = [f"/unsubscribe/{make_token(SECRET.encode(), pseudonym=pseudonym(f'p{i}@example.org', b'k'), campaign='bench', kind='commercial')}"  # noqa: E501
                 for i in range(args.tokens)]
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        probe = commit_latency_ms(Path(tmp))
        if args.wal:
            from toolkit.suppression import SuppressionStore

            (repo / ".campaign").mkdir()
            SuppressionStore(repo / ".campaign" / FILE_NAME).close()
            con = sqlite3.connect(repo / ".campaign" / FILE_NAME)
            con.execute("PRAGMA journal_mode=WAL")  # persists in the file
            con.close()
        proc, base = start_server(repo)
        try:
            print(f"server={server_stack()} generator={args.generator} wal={args.wal} "
                  f"connections={args.connections} "
                  f"seconds={args.seconds} distinct tokens={args.tokens} cpus={os.cpu_count()}")
            if args.generator == "wrk":
                result = run_wrk(base, paths_file, args.seconds, args.connections)
            else:
                result = asyncio.run(_httpx(base, paths, args.seconds, args.connections))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        con = sqlite3.connect(repo / ".campaign" / FILE_NAME)
        rows = con.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0]
        con.close()
    figures = [f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()]
    print(" ".join(figures), f"suppressions_stored={rows} commit_ms={probe:.1f}")


if __name__ == "__main__":
    main()
