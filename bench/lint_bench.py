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
import gc
import json
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class Timer:
    """Wall time and CPU time of a block: this process's and its worker processes' (reaped
    within the block). On a machine shared with other jobs the CPU time is the steadier
    figure: other processes lengthen the wall time of whatever runs while they do, not
    the CPU time it takes. With workers, CPU time is the sum over the processes."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = self._cpu() - self.cpu

    @staticmethod
    def _cpu() -> float:
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + kids.ru_utime + kids.ru_stime

    @property
    def both(self) -> tuple[float, float]:
        return self.wall, self.cpu


def time_parse(root: Path) -> tuple[float, float]:
    files = yaml_files(root)
    with Timer() as t:
        for p in files:
            yaml.load(p.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return t.both


def forget_process_caches() -> None:
    """Empty what a `campaign lint` process would start without: the module-level caches
    (template parses, analyses, compiled subjects, URL scans, the toolkit's digest), so
    that a repeated run in this process costs what a fresh one does, imports aside."""
    from toolkit import analysis, jinja_env, message, render
    from toolkit.rules import body, canspam, tracking

    # (getattr: the script also measures older versions of the toolkit, for comparison)
    for cache in (analysis._CACHE, getattr(analysis, "_CHECKED", {}), tracking._STATIC,
                  getattr(analysis, "_BY_CAMPAIGN", {})):
        cache.clear()
    getattr(analysis, "_CHECKED_FOR", []).clear()
    for fn in (analysis._parse, analysis._parse_string, jinja_env.make_env,
               render._string_template, render._inliner,
               getattr(body, "_scan_cached", body._scan), getattr(render, "_string_names", None),
               getattr(tracking, "_remote", None), getattr(tracking, "tracker", None),
               getattr(tracking, "_judge", None), getattr(tracking, "_allowed", None),
               getattr(canspam, "_subject_problem", None),
               getattr(message, "_preview_pseudonym", None)):
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()
    try:  # the shapes' value memos (the shapes themselves go with the repository)
        from toolkit import render_shapes
    except ImportError:
        pass
    else:
        render_shapes._string_names.cache_clear()
        render_shapes._clear_kept.cache_clear()
    try:
        from toolkit.lint_cache import toolkit_digest
    except ImportError:
        return
    toolkit_digest.cache_clear()


class AsTheCommand:
    """What `campaign lint` does around load and lint (toolkit/commands/lint.py): after
    loading, gc.freeze() takes everything alive out of the collector's passes. Undone
    after the measurement, so that the repeats start alike."""

    def __enter__(self) -> AsTheCommand:
        gc.collect()
        return self

    # an older toolkit's command did not (the script measures those too, for comparison)
    FREEZES = "gc.freeze()" in (ROOT / "toolkit" / "commands" / "lint.py").read_text()
    # worker processes as the command forks them (toolkit/lint_workers.py), or --workers
    WORKERS = 1

    def loaded(self) -> None:
        if self.FREEZES:
            gc.freeze()

    def __exit__(self, *exc: object) -> None:
        gc.unfreeze()


def time_load(root: Path) -> tuple[float, float]:
    from toolkit.loader import load_repo

    forget_process_caches()
    gc.collect()
    with Timer() as t:
        load_repo(root)
    return t.both


def time_lint(root: Path) -> tuple[tuple[float, float], int, int]:
    """((wall, cpu), findings, renders): renders are the campaign x persona previews lint
    made (the personas each campaign's segment matches, else the first)."""
    from toolkit.lint import run_lint
    from toolkit.loader import load_repo
    from toolkit.render import preview_personas

    forget_process_caches()
    with AsTheCommand() as command, Timer() as t:
        repo, load_findings = load_repo(root)
        command.loaded()
        kwargs = {"workers": AsTheCommand.WORKERS} if AsTheCommand.WORKERS > 1 else {}
        result = run_lint(repo, load_findings, **kwargs)
    return t.both, len(result.findings), sum(len(preview_personas(repo, camp))
                                            for camp in repo.campaigns.values())


def time_lint_cached(root: Path) -> tuple[tuple[float, float], int, int]:
    """((wall, cpu), hits, misses) of `campaign lint` with its cache (toolkit.lint_cache),
    through the command's own function (lint_repository: workers forked before loading
    when there is no cache file, load, key every campaign, reuse what is unchanged, lint
    the rest, write the cache), in a fresh process."""
    from toolkit.lint_cache import LintCache

    try:
        from toolkit.commands.lint import lint_repository
    except ImportError:  # an older toolkit: the same steps, spelled out
        lint_repository = None
    hits = misses = 0
    real_get = LintCache.get

    def counting_get(self: LintCache, camp: object) -> object:
        nonlocal hits, misses
        got = real_get(self, camp)  # type: ignore[arg-type]
        hits, misses = hits + (got is not None), misses + (got is None)
        return got

    LintCache.get = counting_get  # type: ignore[method-assign]
    try:
        with AsTheCommand() as command, Timer() as t:
            if lint_repository is not None:
                lint_repository(root)
            else:
                from toolkit.lint import run_lint
                from toolkit.loader import load_repo

                repo, load_findings = load_repo(root)
                command.loaded()
                run_lint(repo, load_findings, cache=LintCache.for_repo(repo),
                         workers=AsTheCommand.WORKERS)
    finally:
        LintCache.get = real_get  # type: ignore[method-assign]
    return t.both, hits, misses


def cache_file(root: Path) -> Path:
    from toolkit.lint_cache import CACHE_FILE

    return root / ".campaign" / CACHE_FILE


def change_one_campaign(root: Path, n: int) -> None:
    """Edit one campaign's title (a different one each call), as a pull request would."""
    folder = sorted((root / "campaigns").iterdir())[n % 7]
    path = folder / "campaign.yaml"
    path.write_text(path.read_text().replace("title: ", f"title: Edit {n} ", 1))


def time_lint_static(root: Path) -> tuple[float, float]:
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


def import_everything() -> None:
    """Import every module of the toolkit (and so what they import), in this process that
    never loads or lints: the children `fresh` forks then start with every module
    imported and every cache empty."""
    import importlib
    import pkgutil

    import toolkit

    for info in pkgutil.walk_packages(toolkit.__path__, "toolkit."):
        if not info.name.endswith("__main__"):  # (that one runs the command)
            importlib.import_module(info.name)
    import jinja2.meta  # noqa: F401  (imported by a function on first use)


def fresh(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a child forked from this process, which has imported the toolkit but
    never loaded or linted a repository: every module-level cache starts empty, as in a
    new `campaign lint` process, imports aside. The result comes back as JSON."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        status = 1
        try:
            with os.fdopen(write_fd, "wb") as out:
                out.write(json.dumps(fn(*args)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit(f"the measurement {fn.__name__} failed in its process")
    return _tuples(json.loads(data))


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def best(times: list[tuple[float, float]]) -> tuple[float, float]:
    """The least wall time and the least CPU time over the repeats."""
    return min(w for w, _ in times), min(c for _, c in times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaigns", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one lint")
    ap.add_argument("--workers", type=int, default=None,
                    help="processes for the campaign rules (default: as `campaign lint`)")
    args = ap.parse_args()
    if args.workers is not None:
        AsTheCommand.WORKERS = args.workers
        if (ROOT / "toolkit" / "lint_workers.py").is_file():  # the command asks this
            from toolkit import lint_workers

            lint_workers.available_workers = lambda: args.workers
    elif (ROOT / "toolkit" / "lint_workers.py").is_file():
        from toolkit.lint_workers import available_workers

        AsTheCommand.WORKERS = available_workers()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp), args.campaigns)
        n_files = len(yaml_files(root))
        # Each lint starts from empty process caches (forget_process_caches) and a new
        # Repo. Every round measures everything once, parse first and last, so that parse
        # and lint see the same load of a shared machine.
        parses, loads, runs, statics = [], [], [], []
        cold, warm, one = [], [], []
        hits: dict[str, tuple[int, int]] = {}
        findings = renders = 0
        has_cache = (ROOT / "toolkit" / "lint_cache.py").is_file()  # older toolkits lack it
        import_everything()
        for i in range(args.repeat):
            parses.append(fresh(time_parse, root))
            loads.append(fresh(time_load, root))
            got, findings, renders = fresh(time_lint, root)
            runs.append(got)
            statics.append(fresh(time_lint_static, root))
            if has_cache:
                cache_file(root).unlink(missing_ok=True)
                cold.append(fresh(time_lint_cached, root)[0])
                got, *counts = fresh(time_lint_cached, root)
                warm.append(got)
                hits["warm"] = (counts[0], counts[1])
                change_one_campaign(root, i)
                got, *counts = fresh(time_lint_cached, root)
                one.append(got)
                hits["one"] = (counts[0], counts[1])
            parses.append(fresh(time_parse, root))
        parse = best(parses)
        personas = yaml.safe_load((root / "fixtures" / "personas.yaml").read_text())

        def row(label: str, t: tuple[float, float], extra: str = "") -> None:
            print(f"{label:28}{t[0] * 1000:8.1f} ms wall {t[1] * 1000:8.1f} ms CPU   = "
                  f"{t[0] / parse[0]:5.2f}x / {t[1] / parse[1]:5.2f}x parse{extra}")

        print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"campaigns: {args.campaigns}, YAML files: {n_files}, findings: {findings}, "
              f"best of {args.repeat} (wall and CPU each), up to {AsTheCommand.WORKERS} "
              "process(es) for the campaign rules (CPU time: summed over the processes)")
        print(f"{'parse (yaml CSafeLoader):':28}{parse[0] * 1000:8.1f} ms wall "
              f"{parse[1] * 1000:8.1f} ms CPU")
        row("load_repo:", best(loads))
        static, lint = best(statics), best(runs)
        row("lint without renders:", static)
        row("lint (load + all rules):", lint)
        if AsTheCommand.WORKERS == 1:
            print(f"  of which renders: {(lint[1] - static[1]) * 1000:.1f} ms CPU for "
                  f"{renders} campaign x persona renders (of {args.campaigns * len(personas)} "
                  f"with every persona) = "
                  f"{(lint[1] - static[1]) / max(renders, 1) * 1000:.2f} ms each")
        else:
            print("  (the renders' share: run with --workers 1 for it)")
        if has_cache:
            print("campaign lint with its cache (toolkit.lint_cache):")
            row("  cold (no cache file):", best(cold))
            row("  warm, nothing changed:", best(warm),
                f" ({hits['warm'][0]} cached, {hits['warm'][1]} linted)")
            row("  warm, one campaign edited:", best(one),
                f" ({hits['one'][0]} cached, {hits['one'][1]} linted)")
        if args.profile:
            from toolkit.lint import run_lint
            from toolkit.loader import load_repo

            forget_process_caches()
            prof = cProfile.Profile()
            prof.enable()
            repo, lf = load_repo(root)
            run_lint(repo, lf)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
