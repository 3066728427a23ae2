"""Limits on what a campaign repository's files may make the toolkit do.

Campaign files come from pull requests, so from anyone who can open one. Each limit
bounds the time and memory one hostile file can cost `lint`, `build`, `render` and
`send`, and sits far above anything a real campaign needs (the figures below are
measured on the example repository). Exceeding one is a finding or an error that names
the file and line (docs/format.md, "Limits"); none is configurable, so that a pull
request cannot raise them.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB

# One YAML file (toolkit.yaml, campaign.yaml, segments, policy, personas). The largest
# real one is personas.yaml, a few KB for dozens of personas; 1 MiB leaves 100x room and
# still parses and converts (with positions) in well under a second.
MAX_YAML_BYTES = 1 * MIB

# One template or partial. The example's largest is under 4 KB. Gmail clips a message's
# whole HTML at 102,000 bytes (MBX-SIZE-001), and MJML only grows when compiled, so a
# template source over 256 KiB can never make an unclipped message.
MAX_TEMPLATE_BYTES = 256 * KIB

# One approval record (approvals/<campaign>/*.json, written by `campaign approve`): a
# few hundred bytes of names, digest and signature. 64 KiB is a hundred times that.
MAX_RECORD_BYTES = 64 * KIB

# Nesting of mappings and lists in one YAML document. The deepest real structure is a
# segment's `where` (all/any/not, two YAML levels per condition level): 64 allows about
# thirty condition levels, and keeps the recursive conversion far from Python's
# recursion limit (1,000 frames).
MAX_YAML_DEPTH = 64

# Values (mappings, lists, scalars) in one YAML document once aliases are expanded. An
# alias bomb ("billion laughs") is a few hundred bytes that expand to billions of values;
# a 1 MiB file without aliases holds at most a few hundred thousand, a real one a few
# thousand. 200,000 converted values cost about 0.3 s and 100 MB with their positions.
MAX_YAML_VALUES = 200_000

# What one render of a template may produce, in characters: Jinja's output (the MJML),
# counted as it is produced, including text captured by a macro or `{% set %}` block
# (which counts again when printed). The example's renders print at most 2.5 KB; Gmail
# clips a whole message at 102,000 bytes. MJML grows up to fifteen times when compiled
# (6,000 sections of 120 characters became 10.7 MB of HTML, and `build` then took 8 s and
# 242 MB), so 256 KiB keeps the compiled message, its text part and the lint rules that
# read it near 4 MB. The same bound holds for any one value a template builds (a string,
# a list): it could not be printed anyway.
MAX_RENDER_CHARS = 256 * KIB

# Items in one `range()`. Jinja's sandbox allows 100,000; a template loops over a few
# dozen things at most (its own lists, never the contact base), so 10,000 is plenty.
MAX_RANGE = 10_000

# Steps of one render: loop iterations plus calls (macros, methods, `loop()` of a
# recursive loop). Bounds templates that loop or recurse without producing output, e.g.
# nested loops or a macro calling itself twice per level. The example's renders take at
# most 2 steps (and print at most 2.5 KB of MJML); 20,000 allows one loop over a whole
# MAX_RANGE, and costs well under a second.
MAX_RENDER_STEPS = 20_000

# Characters and items that filters, methods and operators may read and write in one
# render. Each value is at most MAX_RENDER_CHARS, but a loop can process the same long
# value again on every step: 10,000 `|replace` of a 1 MB string took 51 s. The example's
# renders process a few KB; 32 MiB takes a few hundred milliseconds at worst.
MAX_RENDER_WORK = 32 * MIB

# Bits of an integer a template computes with `**`: Python refuses to print an integer
# of more than 4,300 digits (about 14,300 bits) anyway, while 10 ** 10 ** 10 would run
# for hours before that.
MAX_INT_BITS = 16_384


class LimitExceeded(Exception):
    """A render went past one of the limits above. The message says which limit and what
    to do; it never quotes a value."""


# Nesting in a template. Jinja compiles a template to Python, whose compiler stops at 20
# nested loops ("too many statically nested blocks") and 100 indentation levels, and
# whose recursion limit (1,000 frames) stopped the parser at about 100 nested brackets;
# the template analysis walks the same tree recursively. Real templates nest blocks
# three or four deep. Checked on the source when it is read, so that no later stage
# meets a tree it cannot handle.
MAX_TEMPLATE_BLOCK_DEPTH = 16  # {% if %}, {% for %}, {% macro %}... open at once
MAX_TAG_BRACKET_DEPTH = 32  # ( [ { open at once inside one {{ }} or {% %}
MAX_TAG_OPERATORS = 64  # operators, filters, attribute dots in one {{ }} or {% %}


class BadFile(ValueError):
    """A repository file that cannot be read as text: `message` (which never quotes the
    file's content) and the 1-based `line` it concerns."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.message = message
        self.line = line


def read_text(path: str | Path, max_bytes: int, what: str, *,
              inside: Path | None = None) -> str:
    """A repository file as text, refusing what a hostile pull request could hide in it:
    a symbolic link that leads out of `inside` (a resolved folder: the repository), more
    than `max_bytes`, bytes that are not UTF-8, a NUL byte. A UTF-8 byte order mark is
    dropped (editors on Windows write one). Raises BadFile (or OSError)."""
    # os.open and os.read, not open(): the file object and its buffer cost twice the
    # system calls for a file read once, whole (a thousand campaign files: bench/lint.md)
    fd = os.open(path, _READ_FLAGS)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):  # the error open() raises
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if inside is not None and not _within(_real_path(fd, path), inside):
            # a file linked to /etc/passwd or to a CI secret would otherwise be read,
            # rendered into the previews and posted on the pull request
            raise BadFile(f"{what} is a symbolic link to a file outside the repository; "
                          "replace the link with the file itself")
        # one byte over the limit at most: a 10 GB file costs nothing; sized by fstat, as a
        # read of max_bytes allocates that much for every small file
        size = st.st_size
        data = _read_at_most(fd, min(size, max_bytes) + 1 if size else max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise BadFile(f"{what} is larger than {max_bytes // KIB} KiB, the limit for one {what} "
                      "(docs/format.md, \"Limits\"); split or shorten it")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadFile(f"{what} is not UTF-8 text; save it as UTF-8",
                      data.count(b"\n", 0, exc.start) + 1) from None
    nul = text.find("\0")
    if nul >= 0:
        raise BadFile(f"{what} contains a NUL byte, which is not text; remove it",
                      text.count("\n", 0, nul) + 1)
    return text


# (os.open's descriptors are not inherited, as open()'s; O_BINARY: no newline translation
# where the system has text mode)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)


def _read_at_most(fd: int, n: int) -> bytes:
    """n bytes, or fewer at the end of the file (what a buffered read(n) returns)."""
    chunks = []
    while n > 0:
        chunk = os.read(fd, n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _real_path(fd: int, path: str | Path) -> str:
    """Where an open file really is: one readlink of /proc/self/fd on Linux (a tenth of
    resolving every component of the path), the resolved path elsewhere."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _within(real: str, folder: Path) -> bool:
    return real.startswith(str(folder).rstrip(os.sep) + os.sep)


_TAG = re.compile(r"\{\{(.*?)\}\}|\{%-?\s*(\w*)(.*?)%\}|\{#.*?#\}", re.DOTALL)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPERATOR = re.compile(r"[|.~+\-*/%<>=!]|\b(?:not|and|or|if|else|is|in)\b")
_BLOCKS = frozenset({"if", "for", "macro", "call", "filter", "with", "block", "autoescape"})


def check_template(source: str) -> None:
    """Raise BadFile (with the line) when a template nests deeper than the limits above."""
    if "{" not in source:
        return
    depth = 0
    line, last = 1, 0
    for m in _TAG.finditer(source):
        line += source.count("\n", last, m.start())
        last = m.start()
        expr, keyword, rest = m.group(1), m.group(2), m.group(3)
        if keyword is not None:
            expr = rest
            if keyword in _BLOCKS or (keyword == "set" and "=" not in rest):
                depth += 1
                if depth > MAX_TEMPLATE_BLOCK_DEPTH:
                    raise BadFile(f"more than {MAX_TEMPLATE_BLOCK_DEPTH} blocks ({{% {keyword} %}} "
                                  "and the like) open at once, the limit (docs/format.md, "
                                  "\"Limits\"); move the inner part into a macro or partial",
                                  line)
            elif keyword.startswith("end"):
                depth = max(depth - 1, 0)
        if expr is None or len(expr) <= MAX_TAG_BRACKET_DEPTH:
            continue  # too short to exceed either limit (most tags)
        deepest = operators = 0
        if expr.count("(") + expr.count("[") + expr.count("{") > MAX_TAG_BRACKET_DEPTH:
            brackets = 0
            for ch in _STRING.sub("''", expr):
                if ch in "([{":
                    brackets += 1
                    deepest = max(deepest, brackets)
                elif ch in ")]}":
                    brackets -= 1
        if len(expr) > MAX_TAG_OPERATORS:
            operators = len(_OPERATOR.findall(_STRING.sub("''", expr)))
        if deepest > MAX_TAG_BRACKET_DEPTH or operators > MAX_TAG_OPERATORS:
            raise BadFile(f"an expression nested more than {MAX_TAG_BRACKET_DEPTH} brackets deep "
                          f"or with more than {MAX_TAG_OPERATORS} operators, the limit "
                          "(docs/format.md, \"Limits\"); split it with {% set %}", line)
