"""Peak memory and time of `campaign lint` on the worst hostile repository files.

    python bench/hostile_files.py [CODE_DIR]

Builds each case from the scaffold (the same inputs as tests/test_hostile_files.py),
runs `python -m toolkit --root CASE lint` from CODE_DIR (default: this checkout; pass an
unpacked older `toolkit/` to compare) under a 4 GB address-space limit, and prints exit
code, peak RSS (read with wait4 by a parent of its own) and wall time. Figures:
bench/hostile-files.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "tests"))

import test_hostile_files as cases  # noqa: E402  (the tests' inputs and helpers)

ADDRESS_SPACE_MB = 4000
TIMEOUT = 120


def build(name: str) -> Path:
    root = cases.scaffold(Path(tempfile.mkdtemp()))
    template = root / "templates" / f"{cases.TEMPLATE}.mjml"

    def snippet(text: str) -> None:
        template.write_text(template.read_text().replace(
            cases.HELLO, cases.HELLO[:-len("</mj-text>")] + text + "</mj-text>"))

    if name in cases.BOMBS:
        snippet(cases.BOMBS[name][0])
    elif name == "multiply_1e8":
        snippet("{{ 'x' * 10**8 }}")
    elif name == "billion_laughs":
        personas = root / "fixtures" / "personas.yaml"
        personas.write_text(personas.read_text() + cases.billion_laughs())
    elif name == "deep_yaml":
        (root / "segments" / "deep.yaml").write_text(
            "description: d\nwhere: " + "[" * 100_000 + "]" * 100_000 + "\n")
    elif name == "deep_template":
        snippet("{{ " + "(" * 300 + "1" + ")" * 300 + " }}")
    elif name == "yaml_200mb":
        (root / "segments" / "huge.yaml").write_text("description: " + "x" * (200 << 20) + "\n")
    return root


def run(code: Path, root: Path) -> tuple[object, float, float]:
    shell = (f"ulimit -v {ADDRESS_SPACE_MB * 1024}; cd {code} && "
             f"exec {sys.executable} -m toolkit --root {root} lint")
    cmd = [sys.executable, "-c", cases._MEASURE, "/bin/sh", "-c", shell]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"timeout ({TIMEOUT} s)", 0.0, TIMEOUT
    rss_kb = int(proc.stderr.rpartition("\nmaxrss_kb=")[2])
    code_ = proc.returncode if proc.returncode >= 0 else f"signal {-proc.returncode}"
    return code_, rss_kb / 1024, time.monotonic() - start


CASES = ["clean", "multiply_1e8", "multiply", "percent", "render_50mb", "macro_50mb", "fan_out",
         "nested_loops", "doubling", "work", "billion_laughs", "deep_yaml", "deep_template",
         "yaml_200mb"]

if __name__ == "__main__":
    code = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE
    print(f"code: {code}")
    for name in CASES:
        root = build(name)
        rc, rss, seconds = run(code, root)
        print(f"{name:15} exit {rc!s:9} peak RSS {rss:6.0f} MB  {seconds:6.2f} s")
        shutil.rmtree(root.parent, ignore_errors=True)
