"""Template analysis benchmark: the cost of analysing every campaign, and of the rules
built on it, against the time to merely parse the repository's YAML.

    /work/venv/bin/python bench/analysis_bench.py [--campaigns 1000] [--repeat 3]

The repository is bench/lint_bench.py's: the bundled example with N campaigns generated
from its eleven (each with its own title, so each subject is parsed on its own). Every
run starts with cold analysis caches (the template walk cache and the per-campaign memo),
as a fresh `campaign lint` process does. Rule times are measured with the renders
already computed (their cost belongs to rendering; see bench/lint.md). Figures in
bench/analysis.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lint_bench import make_repo, time_parse  # noqa: E402

PHI = ("HIPAA-MIN-001", "HIPAA-MIN-002", "HIPAA-FR-001", "HIPAA-SEC-001", "HIPAA-MKT-003",
       "HIPAA-MKT-004")
CONTENT = ("CNT-001", "CNT-004")
TRACKING = ("TRK-001", "TRK-002")
REPO_RULES = ("CNT-002", "CNT-003")


def cold() -> None:
    import toolkit.analysis as analysis
    from toolkit.rules import tracking

    analysis._CACHE.clear()
    analysis._BY_CAMPAIGN.clear()
    analysis._parse.cache_clear()
    analysis._parse_string.cache_clear()
    tracking._STATIC.clear()


def run(root: Path) -> dict[str, float]:
    from toolkit.lint import CampaignContext, RepoContext
    from toolkit.loader import load_repo
    from toolkit.rules import RULES

    cold()
    out: dict[str, float] = {}
    t = time.perf_counter()
    repo, load_findings = load_repo(root)
    out["load_repo"] = time.perf_counter() - t
    ctxs = [CampaignContext(repo, c) for c in repo.campaigns.values()]
    t = time.perf_counter()
    for ctx in ctxs:
        _ = ctx.analysis
    out["analysis (cold)"] = time.perf_counter() - t
    for ctx in ctxs:
        _ = ctx.renders
    for label, ids in (("PHI rules", PHI), ("CNT-001, CNT-004", CONTENT),
                       ("TRK-001, TRK-002", TRACKING)):
        t = time.perf_counter()
        for rid in ids:
            for ctx in ctxs:
                list(RULES[rid].check(ctx))
        out[label] = time.perf_counter() - t
    t = time.perf_counter()
    rctx = RepoContext(repo, load_findings)
    for rid in REPO_RULES:
        list(RULES[rid].check(rctx))
    out["CNT-002, CNT-003"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaigns", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp), args.campaigns)
        parse = min(time_parse(root) for _ in range(args.repeat))
        runs = [run(root) for _ in range(args.repeat)]
        best = {k: min(r[k] for r in runs) for k in runs[0]}
        print(f"campaigns: {args.campaigns}")
        print(f"{'parse (yaml CSafeLoader)':26} {parse * 1000:8.1f} ms")
        ours = 0.0
        for k, v in best.items():
            if k != "load_repo":
                ours += v
            print(f"{k:26} {v * 1000:8.1f} ms   = {v / parse:.2f}x parse")
        print(f"{'analysis + these rules':26} {ours * 1000:8.1f} ms   = {ours / parse:.2f}x parse")


if __name__ == "__main__":
    main()
