"""Lint benchmark: a repository of N campaigns, lint time against bare YAML parse time.

    /work/venv/bin/python bench/lint_bench.py [--campaigns 1000] [--repeat 3] [--profile]

The repository is the bundled example (templates, partials, segments, policy, personas)
with N campaigns generated from its eleven, each with its own title, subject and id.
"Parse" is yaml.load with the C loader over every YAML file of that repository, the
least any linter must do; "lint" is load_repo + run_lint in-process (all rules, renders
included: each campaign for the personas its segment matches, as `campaign build` shows),
as `campaign lint` runs them. Results go to stdout; see bench/lint.md.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_repo(dest: Path, n: int) -> Path:
    root = dest / "repo"
    for part in ("toolkit.yaml", "templates", "segments", "policy", "fixtures"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, root / part)
        else:
            root.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / part)
    examples = sorted((ROOT / "campaigns").glob("*/campaign.yaml"))
    for i in range(n):
        src = examples[i % len(examples)]
        text = src.read_text()
        text = text.replace("title: ", f"title: Wave {i} of ", 1)
        folder = root / "campaigns" / f"{src.parent.name}-{i:04d}"
        folder.mkdir(parents=True)
        (folder / "campaign.yaml").write_text(text)
    return root


def yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))


def time_parse(root: Path) -> float:
    files = yaml_files(root)
    t = time.perf_counter()
    for p in files:
        yaml.load(p.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return time.perf_counter() - t


def time_lint(root: Path) -> tuple[float, float, int, int]:
    """(lint, load_repo, findings, renders): renders are the campaign x persona previews
    lint made (the personas each campaign's segment matches, else the first)."""
    from toolkit.lint import run_lint
    from toolkit.loader import load_repo
    from toolkit.render import repo_cache

    t = time.perf_counter()
    repo, load_findings = load_repo(root)
    t_load = time.perf_counter() - t
    result = run_lint(repo, load_findings)
    elapsed = time.perf_counter() - t
    return elapsed, t_load, len(result.findings), len(repo_cache(repo).previews)


def time_lint_cached(root: Path) -> tuple[float, int, int]:
    """(seconds, hits, misses) of `campaign lint` with its cache (toolkit.lint_cache): load,
    key every campaign, reuse what is unchanged, lint the rest, write the cache. The
    toolkit's digest is recomputed, as in a fresh `campaign lint` process."""
    from toolkit.lint import run_lint
    from toolkit.lint_cache import LintCache, toolkit_digest
    from toolkit.loader import load_repo

    toolkit_digest.cache_clear()
    t = time.perf_counter()
    repo, load_findings = load_repo(root)
    cache = LintCache.for_repo(repo)
    run_lint(repo, load_findings, cache=cache)
    return time.perf_counter() - t, cache.hits, cache.misses


def cache_file(root: Path) -> Path:
    from toolkit.lint_cache import CACHE_FILE

    return root / ".campaign" / CACHE_FILE


def change_one_campaign(root: Path, n: int) -> None:
    """Edit one campaign's title (a different one each call), as a pull request would."""
    folder = sorted((root / "campaigns").iterdir())[n % 7]
    path = folder / "campaign.yaml"
    path.write_text(path.read_text().replace("title: ", f"title: Edit {n} ", 1))


def time_lint_static(root: Path) -> float:
    """Lint with every rendered-body check skipped (renders empty): the static part alone."""
    from functools import cached_property

    from toolkit import lint

    original = lint.CampaignContext.__dict__["renders"]
    no_renders = cached_property(lambda self: [])
    no_renders.__set_name__(lint.CampaignContext, "renders")
    lint.CampaignContext.renders = no_renders
    try:
        return time_lint(root)[0]
    finally:
        lint.CampaignContext.renders = original


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaigns", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one lint")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp), args.campaigns)
        n_files = len(yaml_files(root))
        # each lint runs in a fresh process state as far as the repository goes: caches are
        # keyed by repository objects, which each load creates anew
        parse = min(time_parse(root) for _ in range(args.repeat))
        runs = [time_lint(root) for _ in range(args.repeat)]
        lint, load, findings, renders = min(runs)
        static = min(time_lint_static(root) for _ in range(args.repeat))
        cold_cached = []
        for _ in range(args.repeat):
            cache_file(root).unlink(missing_ok=True)
            cold_cached.append(time_lint_cached(root)[0])
        warm = [time_lint_cached(root) for _ in range(args.repeat)]
        one = []
        for i in range(args.repeat):
            change_one_campaign(root, i)
            one.append(time_lint_cached(root))
        personas = yaml.safe_load((root / "fixtures" / "personas.yaml").read_text())
        print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"campaigns: {args.campaigns}, YAML files: {n_files}, findings: {findings}")
        print(f"parse (yaml CSafeLoader): {parse * 1000:8.1f} ms")
        print(f"load_repo:                {load * 1000:8.1f} ms")
        print(f"lint without renders:     {static * 1000:8.1f} ms   = {static / parse:.2f}x parse")
        print(f"lint (load + all rules):  {lint * 1000:8.1f} ms   = {lint / parse:.2f}x parse")
        print(f"  of which renders:       {(lint - static) * 1000:8.1f} ms   for {renders} "
              f"campaign x persona renders (of {args.campaigns * len(personas)} with every "
              f"persona) = {(lint - static) / max(renders, 1) * 1000:.2f} ms each")
        print("campaign lint with its cache (toolkit.lint_cache):")
        best_cold = min(cold_cached)
        print(f"  cold (no cache file):   {best_cold * 1000:8.1f} ms   = "
              f"{best_cold / parse:.2f}x parse")
        for label, got in (("warm, nothing changed:", warm), ("warm, one campaign edited:", one)):
            secs, hits, misses = min(got)
            print(f"  {label:26}{secs * 1000:6.1f} ms   = {secs / parse:.2f}x parse "
                  f"({hits} cached, {misses} linted)")
        if args.profile:
            from toolkit.lint import run_lint
            from toolkit.loader import load_repo

            prof = cProfile.Profile()
            prof.enable()
            repo, lf = load_repo(root)
            run_lint(repo, lf)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
