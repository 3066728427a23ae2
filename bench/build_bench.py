"""Benchmark `campaign build` on a generated 200-campaign repository against the
reference mjml (Node) compiling the same 200 Jinja-rendered templates:
(a) the mjml CLI once per file, (b) mjml in-process in one Node loop.

Usage (see bench/build.md):
    (cd bench/mjml-node && npm install)        # once; node_modules is not committed
    /work/venv/bin/python bench/build_bench.py [--campaigns 200] [--cli-files N]

Not a test: it prints figures. The work folder is bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODE_DIR = HERE / "mjml-node"
COPY = ("toolkit.yaml", "policy", "segments", "fixtures", "templates")


def make_repo(dest: Path, n: int) -> list[str]:
    """dest: a repository with n campaigns, each with its own template (a variant of an
    example template), cycling through the example campaigns."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in COPY:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    examples = sorted(p for p in (ROOT / "campaigns").iterdir() if (p / "campaign.yaml").is_file())
    ids = []
    for i in range(n):
        ex = examples[i % len(examples)]
        text = (ex / "campaign.yaml").read_text(encoding="utf-8")
        base = yaml.safe_load(text)["template"]
        source = (ROOT / "templates" / f"{base}.mjml").read_text(encoding="utf-8")
        # a distinct template per campaign: same structure, its own text
        variant = source.replace("</mj-body>", f"""  <mj-section><mj-column>
      <mj-text font-size="12px" color="#5f6b7a">Edition {i + 1} of the benchmark.</mj-text>
    </mj-column></mj-section>
  </mj-body>""", 1)
        tname = f"bench-{i:03d}"
        (dest / "templates" / f"{tname}.mjml").write_text(variant, encoding="utf-8")
        cid = f"{ex.name}-{i:03d}"
        folder = dest / "campaigns" / cid
        folder.mkdir(parents=True)
        data = yaml.safe_load(text)
        data["template"] = tname
        data["title"] = f"{data['title']} (bench {i + 1})"
        (folder / "campaign.yaml").write_text(yaml.safe_dump(data, sort_keys=False),
                                              encoding="utf-8")
        ids.append(cid)
    return ids


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_build(repo: Path, out: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one `campaign build` process."""
    cmd = [sys.executable, "-m", "toolkit", "--root", str(repo), "build", "--out", str(out)]
    cpu, start = _child_cpu(), time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    elapsed, cpu = time.perf_counter() - start, _child_cpu() - cpu
    if res.returncode not in (0, 1):
        sys.exit(f"campaign build failed ({res.returncode}):\n{res.stderr}")
    return elapsed, cpu, res.returncode


def rendered_mjml(repo_root: Path, folder: Path) -> list[Path]:
    """The Jinja-rendered MJML of every campaign (first matching persona), one file each:
    exactly what mjml-python compiles inside the build."""
    sys.path.insert(0, str(ROOT))
    from toolkit.loader import load_repo
    from toolkit.render import preview_now, render_preview
    from toolkit.site.collect import choose_personas

    repo, _ = load_repo(repo_root)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for cid in sorted(repo.campaigns):
        camp = repo.campaigns[cid]
        names, _ = choose_personas(repo, camp, preview_now(camp))
        msg = render_preview(repo, camp, names[0])
        path = folder / f"{cid}.mjml"
        path.write_text(msg.mjml, encoding="utf-8")
        files.append(path)
    return files


def time_cli(files: list[Path], out: Path) -> tuple[list[float], float]:
    """Wall seconds per file, and the CPU seconds of all the CLI processes."""
    cli = NODE_DIR / "node_modules" / ".bin" / "mjml"
    out.mkdir(parents=True, exist_ok=True)
    times = []
    cpu = _child_cpu()
    for f in files:
        start = time.perf_counter()
        subprocess.run([str(cli), str(f), "-o", str(out / f"{f.stem}.html"),
                        "--config.validationLevel", "soft"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times, _child_cpu() - cpu


def time_node(files: list[Path]) -> dict:
    res = subprocess.run(["node", str(NODE_DIR / "compile.js"), *map(str, files)],
                         capture_output=True, text=True, check=True, cwd=NODE_DIR)
    return json.loads(res.stdout)


def time_mjml_python(files: list[Path]) -> float:
    from toolkit.render import compile_mjml

    sources = [f.read_text(encoding="utf-8") for f in files]
    compile_mjml(sources[0], fonts={})
    start = time.perf_counter()
    for s in sources:
        compile_mjml(s, fonts={})
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--campaigns", type=int, default=200)
    ap.add_argument("--cli-files", type=int, default=None,
                    help="run the mjml CLI on only this many files and scale up (default: all)")
    args = ap.parse_args()
    if not (NODE_DIR / "node_modules" / "mjml").is_dir():
        sys.exit("run `npm install` in bench/mjml-node first")

    work = HERE / "out" / "build"
    repo = work / "repo"
    ids = make_repo(repo, args.campaigns)
    print(f"generated {len(ids)} campaigns with {len(ids)} templates in {repo}")

    runs = [time_build(repo, work / "site") for _ in range(3)]
    build_s = statistics.median(r[0] for r in runs)
    build_cpu = statistics.median(r[1] for r in runs)
    pages = sum(1 for _ in (work / "site").rglob("*.html"))
    print(f"campaign build: {build_s:.2f} s wall, {build_cpu:.2f} s CPU, median of 3 "
          f"(wall {', '.join(f'{r[0]:.2f}' for r in runs)}; exit {runs[-1][2]}), {pages} pages")

    files = rendered_mjml(repo, work / "mjml")
    py_s = time_mjml_python(files)
    print(f"mjml-python + fixes, in-process: {py_s * 1000:.1f} ms for {len(files)} templates "
          f"({py_s * 1000 / len(files):.2f} ms each)")

    node = time_node(files)
    print(f"mjml {node_version()} in Node, in-process: {node['ms']:.1f} ms for {node['files']} "
          f"templates ({node['ms'] / node['files']:.2f} ms each)")

    sample = files if args.cli_files is None else files[: args.cli_files]
    times, cli_cpu = time_cli(sample, work / "cli-html")
    scale = len(files) / len(sample)
    cli_total, cli_cpu = sum(times) * scale, cli_cpu * scale
    scaled = "" if len(sample) == len(files) else f" (scaled from {len(sample)} files)"
    print(f"mjml CLI, one process per file: {cli_total:.1f} s wall, {cli_cpu:.1f} s CPU "
          f"for {len(files)} templates{scaled}; median {statistics.median(times) * 1000:.0f} ms "
          "per file")

    print()
    print(f"campaign build vs mjml CLI:        {cli_total / build_s:.1f}x faster in wall time, "
          f"{cli_cpu / build_cpu:.1f}x in CPU time "
          "(whole build incl. lint, render, site vs compile only)")
    print(f"campaign build vs mjml in Node:    {node['ms'] / 1000 / build_s:.2f}x")
    print(f"mjml-python vs mjml in Node (compile only): {node['ms'] / 1000 / py_s:.1f}x faster")
    print(f"(machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")


def node_version() -> str:
    pkg = NODE_DIR / "node_modules" / "mjml" / "package.json"
    return json.loads(pkg.read_text(encoding="utf-8"))["version"]


if __name__ == "__main__":
    main()
