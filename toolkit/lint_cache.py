"""The lint cache: each campaign's findings, keyed by a digest of every input that can
change them, as ruff, mypy and eslint keep theirs (docs/lint.md, "Cache").

Only `campaign lint` reads it. The send gate, `campaign build` and every other caller
of `run_lint` lint without it: a stale or poisoned cache file must never let a campaign
through a gate. What is cached is the output of the campaign-scope rules for one
campaign (renders included); loading, repository-wide rules, waivers and `--strict` run
fresh every time.

A campaign's key covers:

- the toolkit: its version, the bytes of every file of the `toolkit` package (a code
  change voids every entry), the Python version, the installed distributions (names
  and versions) where the libraries whose output rules read come from (PyYAML,
  pydantic, Jinja2, MarkupSafe, mjml-python, css-inline), and the preview moment;
- the repository files every campaign depends on: toolkit.yaml, every policy file,
  fixtures/personas.yaml (every YAML file that is neither a campaign nor a segment);
- the campaign: its id and campaign.yaml, and its segment's file (or its absence);
- its templates: the source of every template name the template analysis looked up
  for it (its template, every partial, macro file and parent it reaches, and the names
  it found missing), recorded with the entry and compared when it is read. When the
  analysis reported a problem (a computed template name it cannot follow, a syntax
  error, a missing partial), every file under templates/ counts instead.

The file is JSON (never pickle: reading it must not run code), written whole to a
temporary file and renamed. Anything unreadable in it is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from toolkit.findings import Finding, Pos, Severity
from toolkit.models import Campaign, Repo

# under the state folder: a folder of its own, which ignores itself in git (as ruff's,
# mypy's and pytest's caches do), so that linting a fresh repository leaves nothing to
# commit by mistake
CACHE_FILE = "lint-cache/findings.json"
_GITIGNORE = "# written by `campaign lint` (docs/lint.md, Cache)\n*\n"
FORMAT = 1

# the libraries whose behaviour decides findings: the YAML parser, the schemas, Jinja and
# its escaping, the MJML compiler and the CSS inliner whose output the body rules read
LIBRARIES = ("yaml", "pydantic", "pydantic_core", "jinja2", "markupsafe", "mjml", "css_inline")


def _feed(h: Any, *parts: str | bytes | None) -> None:
    """Length-prefixed parts: no two different sequences of parts hash alike."""
    out = []
    for part in parts:
        if part is None:
            out.append(b"-\0")
            continue
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        out.append(b"%d:" % len(data))
        out.append(data)
    h.update(b"".join(out))


@lru_cache(maxsize=1)
def toolkit_digest() -> str:
    """The toolkit's own code and the libraries lint depends on: a change to either voids
    every entry. Read once per process (about 1 MB)."""
    import toolkit

    h = hashlib.sha256()
    _feed(h, f"format {FORMAT}", toolkit.__version__, sys.version)
    # The installed distributions beside those libraries, by folder name (name and
    # version, e.g. mjml_python-1.4.2.dist-info): any upgrade in that environment voids
    # the cache. One directory listing instead of importlib.metadata's search per library.
    folders: set[str] = set()
    for name in LIBRARIES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            _feed(h, name, None)
            continue
        where = Path(module.__file__ or ".").resolve().parent.parent
        folders.add(str(where))
    for folder in sorted(folders):
        try:
            found = sorted(e for e in os.listdir(folder) if e.endswith((".dist-info",
                                                                         ".egg-info")))
        except OSError:
            found = []
        _feed(h, folder, *found)
    _feed(h, source_digest(Path(toolkit.__file__).resolve().parent))
    return h.hexdigest()


def source_digest(package: Path) -> str:
    """Every file of a package folder (names and bytes), compiled bytecode aside."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        _feed(h, path.relative_to(package).as_posix(), path.read_bytes())
    return h.hexdigest()


def _templates_digest(root: Path) -> str:
    """Every file under templates/ (the analysis reads non-.mjml partials from disk too).
    A file over the template size limit is refused by the loader, so its first bytes past
    the limit and its size stand for it: a hostile 10 GB file is not read."""
    from toolkit.limits import MAX_TEMPLATE_BYTES

    h = hashlib.sha256()
    tdir = root / "templates"
    if tdir.is_dir():
        for path in sorted(tdir.rglob("*")):
            if path.is_file():
                try:
                    with path.open("rb") as fh:
                        data: bytes | None = fh.read(MAX_TEMPLATE_BYTES + 1)
                        size = os.fstat(fh.fileno()).st_size
                except OSError:
                    data, size = None, -1
                _feed(h, path.relative_to(tdir).as_posix(), str(size), data)
    return h.hexdigest()


def _is_campaign_or_segment(rel: str) -> bool:
    return rel.startswith(("campaigns/", "segments/"))


def _encode(f: Finding) -> list[Any]:
    return [f.rule, f.message, f.pos.file, f.pos.line, f.pos.column,
            f.severity.value if f.severity is not None else None, f.campaign, f.waived,
            f.waiver_reason]


def _decode(row: Any) -> Finding:
    rule, message, file, line, column, severity, campaign, waived, reason = row
    if not (isinstance(rule, str) and isinstance(message, str) and isinstance(file, str)
            and type(line) is int and type(column) is int and isinstance(waived, bool)
            and (campaign is None or isinstance(campaign, str))
            and (reason is None or isinstance(reason, str))):
        raise ValueError("malformed finding")
    return Finding(rule=rule, message=message, pos=Pos(file, line, column),
                   severity=Severity(severity) if severity is not None else None,
                   campaign=campaign, waived=waived, waiver_reason=reason)


class LintCache:
    """Entries of one repository's cache file: campaign id -> (key, findings)."""

    def __init__(self, repo: Repo, path: Path):
        self.repo = repo
        self.path = path
        self.entries: dict[str, Any] = self._read()
        self.changed = False
        self.hits = 0
        self.misses = 0
        from toolkit.render import PREVIEW_NOW

        self._sources: dict[str, str | None] = {}
        self._names: dict[tuple[str, ...], str] = {}
        self._tree: str | None = None
        h = hashlib.sha256()
        _feed(h, toolkit_digest(), PREVIEW_NOW.isoformat())
        for rel in sorted(repo.texts):
            if not _is_campaign_or_segment(rel):
                _feed(h, rel, repo.texts[rel])
        # a shared file that did not read (not UTF-8, too large) is absent from texts: its
        # name still counts, so that it appearing or disappearing changes every key
        for rel in ("toolkit.yaml", "fixtures/personas.yaml"):
            _feed(h, rel, "present" if (repo.root / rel).exists() else "absent")
        policy = repo.root / "policy"
        if policy.is_dir():
            for path in sorted(policy.rglob("*")):
                _feed(h, path.relative_to(repo.root).as_posix())
        self.base = h.hexdigest()
        self._keyed = hashlib.sha256()  # each key continues from the base
        _feed(self._keyed, self.base)

    @classmethod
    def for_repo(cls, repo: Repo) -> LintCache:
        from toolkit.state import state_dir

        return cls(repo, state_dir(repo, create=False) / CACHE_FILE)

    def _read(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, ValueError):  # orjson.JSONDecodeError is a ValueError
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def key(self, campaign: Campaign) -> str:
        h = self._keyed.copy()
        texts = self.repo.texts
        seg = campaign.segment
        _feed(h, campaign.id, texts.get(campaign.file),
              seg, texts.get(f"segments/{seg}.yaml"), texts.get(f"segments/{seg}.yml"))
        return h.hexdigest()

    def _source_digest(self, name: str) -> str | None:
        """A template's source as the analysis reads it now (hashed), None when absent."""
        if name not in self._sources:
            from toolkit.analysis import _source

            src = _source(self.repo, name)
            self._sources[name] = (hashlib.sha256(src.encode("utf-8", "surrogatepass"))
                                   .hexdigest() if src is not None else None)
        return self._sources[name]

    def _tree_digest(self) -> str:
        if self._tree is None:
            self._tree = _templates_digest(self.repo.root)
        return self._tree

    def _names_digest(self, names: tuple[str, ...]) -> str:
        """The sources of these template names now; campaigns sharing a template share it."""
        got = self._names.get(names)
        if got is None:
            h = hashlib.sha256()
            for name in names:
                _feed(h, name, self._source_digest(name))
            got = self._names[names] = h.hexdigest()
        return got

    def _deps(self, campaign: Campaign) -> dict[str, Any]:
        from toolkit.analysis import analyze_campaign

        analysis = analyze_campaign(self.repo, campaign)
        if analysis.problems:  # perhaps a name it could not follow: every template counts
            return {"tree": self._tree_digest()}
        names = [name for name, _ in analysis.template_reads]
        template = self.repo.template_for(campaign)
        main = template.name if template is not None else campaign.template
        # the campaign's own template, even when missing: creating it must void the entry
        for name in (main, campaign.template, f"{campaign.template}.mjml"):
            if name not in names:
                names.append(name)
        return {"templates": names, "digest": self._names_digest(tuple(names))}

    def _deps_unchanged(self, deps: Any) -> bool:
        if not isinstance(deps, dict):
            return False
        if "tree" in deps:
            return bool(deps["tree"] == self._tree_digest())
        names = deps.get("templates")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return False
        return bool(deps.get("digest") == self._names_digest(tuple(names)))

    def get(self, campaign: Campaign) -> list[Finding] | None:
        """The cached findings of a campaign whose inputs are unchanged, else None."""
        entry = self.entries.get(campaign.id)
        try:
            if (isinstance(entry, dict) and entry.get("key") == self.key(campaign)
                    and isinstance(entry.get("findings"), list)
                    and self._deps_unchanged(entry.get("deps"))):
                found = [_decode(row) for row in entry["findings"]]
                self.hits += 1
                return found
        except (TypeError, ValueError):
            pass
        self.misses += 1
        return None

    def put(self, campaign: Campaign, findings: list[Finding]) -> None:
        self.entries[campaign.id] = {"key": self.key(campaign), "deps": self._deps(campaign),
                                     "findings": [_encode(f) for f in findings]}
        self.changed = True

    def save(self) -> None:
        """Write the entries of the repository's campaigns (dropping removed ones), when
        something changed. A cache that cannot be written is skipped silently: linting
        must not fail for it."""
        current = {cid: e for cid, e in self.entries.items() if cid in self.repo.campaigns}
        if not self.changed and len(current) == len(self.entries):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ignore = self.path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text(_GITIGNORE, encoding="utf-8")
            fd, tmp = tempfile.mkstemp(prefix=".lint-cache-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(orjson.dumps({"format": FORMAT, "entries": current}))
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return
