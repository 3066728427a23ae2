"""Load a campaign repository into frozen models, collecting every problem.

Problems are findings (CFG-001 schema, CFG-002 references) with positions; the
loader never stops at the first one. What cannot be loaded is left out of the
Repo, and rules simply see less of it.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from toolkit.contact import normalize_contact
from toolkit.errors import UserError
from toolkit.findings import Finding, Pos
from toolkit.limits import (
    MAX_TEMPLATE_BYTES,
    MAX_YAML_BYTES,
    BadFile,
    check_template,
    read_text,
)
from toolkit.models import (
    OPERATORS,
    PURPOSES,
    AllOf,
    AnyOf,
    ApproversFile,
    AuthorizationForm,
    Campaign,
    Condition,
    FieldsFile,
    Leaf,
    Not,
    Persona,
    PurposesFile,
    Repo,
    Segment,
    SegmentFile,
    Template,
    ToolkitConfig,
    attach,
)
from toolkit.yamlpos import Located, SourceMap, YamlError, load_yaml

M = TypeVar("M", bound=BaseModel)

CFG_SCHEMA = "CFG-001"
CFG_REF = "CFG-002"


class Loader:
    def __init__(self, root: Path):
        self.root = root
        self._prefix = str(root).rstrip(os.sep) + os.sep
        self.findings: list[Finding] = []
        self.documents: dict[str, Any] = {}
        self.texts: dict[str, str] = {}

    def rel(self, path: Path) -> str:
        # string slicing: pathlib's relative_to cost more than parsing a small file
        full = str(path)
        if full.startswith(self._prefix):
            return full[len(self._prefix):].replace(os.sep, "/")
        return path.relative_to(self.root).as_posix()

    def problem(self, rule: str, message: str, pos: Pos, campaign: str | None = None) -> None:
        self.findings.append(Finding(rule=rule, message=message, pos=pos, campaign=campaign))

    def read_yaml(self, path: str | Path, rel: str | None = None
                  ) -> tuple[Any, SourceMap] | None:
        rel = rel if rel is not None else self.rel(Path(path))
        try:
            text = read_text(path, MAX_YAML_BYTES, "YAML file", inside=self.root)
        except BadFile as exc:
            self.problem(CFG_SCHEMA, exc.message, Pos(rel, exc.line))
            return None
        self.texts[rel] = text
        try:
            data, smap = load_yaml(text, rel)
        except YamlError as exc:
            fix = "; fix the YAML syntax" if exc.message.startswith("YAML syntax") else ""
            self.problem(CFG_SCHEMA, exc.message + fix, exc.pos)
            return None
        self.documents[rel] = data
        return data, smap

    def validate(
        self, schema: type[M], data: Any, loc: Located, campaign: str | None = None
    ) -> M | None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem(
                CFG_SCHEMA,
                f"expected a mapping of keys to values, found {type(data).__name__}",
                loc.pos,
            )
            return None
        try:
            model = schema.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                self._schema_error(err, loc, schema, campaign)
            return None
        attach(model, loc)
        return model

    def _schema_error(
        self, err: Any, loc: Located, schema: type[BaseModel], campaign: str | None
    ) -> None:
        path = tuple(
            p
            for p in err["loc"]
            if not (isinstance(p, str) and p.startswith(("function-", "tagged-union")))
        )
        kind = err["type"]
        dotted = ".".join(str(p) for p in path) or "(top level)"
        if kind == "extra_forbidden":
            msg = f"unknown key '{path[-1]}'; remove it or check its spelling"
            pos = loc.key_at(*path)
        elif kind == "missing":
            msg = f"missing required key '{dotted}'; add it"
            pos = loc.at(*path[:-1])
        else:
            detail = err["msg"]
            detail = detail.replace("Input should be", "expected")
            msg = f"'{dotted}': {detail}"
            pos = loc.at(*path)
        self.problem(CFG_SCHEMA, msg, pos, campaign)

    def load_one(self, path: str | Path, schema: type[M], campaign: str | None = None,
                 rel: str | None = None) -> M | None:
        got = self.read_yaml(path, rel)
        if got is None:
            return None
        data, smap = got
        return self.validate(schema, data, Located(smap), campaign)

    # --- segments -------------------------------------------------------------

    def condition(self, data: Any, loc: Located) -> Condition | None:
        pos = loc.pos
        if not isinstance(data, dict) or (len(data) != 1 and "field" not in data):
            self.problem(
                CFG_SCHEMA,
                "a condition is {field, op, value}, or all: [...], any: [...], not: {...}",
                pos,
            )
            return None
        if "field" in data:
            extra = set(data) - {"field", "op", "value"}
            if extra:
                key = sorted(map(str, extra))[0]
                self.problem(
                    CFG_SCHEMA,
                    f"unknown key '{key}' in a condition; use field, op, value",
                    loc.key_at(key),
                )
                return None
            if not isinstance(data.get("field"), str) or not isinstance(data.get("op"), str):
                self.problem(CFG_SCHEMA, "a condition needs 'field' and 'op' as strings", pos)
                return None
            return Leaf(
                field=data["field"], op=data["op"], value=data.get("value"), pos=pos, loc=loc
            )
        ((key, value),) = data.items()
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.problem(
                    CFG_SCHEMA, f"'{key}' takes a non-empty list of conditions", loc.at(key)
                )
                return None
            items = [self.condition(v, loc.sub(key, i)) for i, v in enumerate(value)]
            if any(i is None for i in items):
                return None
            return (AllOf if key == "all" else AnyOf)(tuple(items), pos)  # type: ignore[arg-type]
        if key == "not":
            item = self.condition(value, loc.sub(key))
            return Not(item, pos) if item is not None else None
        self.problem(
            CFG_SCHEMA,
            f"unknown key '{key}' in a condition; use all, any, not or field/op/value",
            loc.key_at(key),
        )
        return None

    def segment(self, path: Path) -> Segment | None:
        got = self.read_yaml(path)
        if got is None:
            return None
        data, smap = got
        loc = Located(smap)
        head = self.validate(SegmentFile, data, loc)
        if head is None:
            return None
        where = None
        if head.where is not None:
            where = self.condition(head.where, loc.sub("where"))
            if where is None:
                return None
        return Segment(
            id=path.stem, file=self.rel(path), description=head.description, where=where, loc=loc
        )


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_repo(root: Path, *, campaigns: Collection[str] | None = None
              ) -> tuple[Repo, list[Finding]]:
    """Load everything under root. Raises UserError only when root is not a repository.
    `campaigns`: load only these campaign folders (a lint worker's share, toolkit.lint_workers:
    campaign-scope rules read their own campaign and the shared files, never another's)."""
    root = root.resolve()
    if not (root / "toolkit.yaml").is_file():
        raise UserError(
            f"{root}: not a campaign repository (no toolkit.yaml)",
            fix="pass --root DIR, or create one with `campaign init DIR`",
        )
    # Loading allocates many small containers that all stay alive (nodes, values,
    # models), which is what makes the cyclic garbage collector run again and again for
    # nothing: a quarter of the load time at 1,000 campaigns (bench/lint.md). The size
    # limits (toolkit.limits) bound what one load can allocate.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load_repo(root, campaigns)
    finally:
        if collecting:
            gc.enable()


def _load_repo(root: Path, only: Collection[str] | None = None) -> tuple[Repo, list[Finding]]:
    ld = Loader(root)

    config = ld.load_one(root / "toolkit.yaml", ToolkitConfig)

    fields_file = root / "policy" / "fields.yaml"
    fields_model = ld.load_one(fields_file, FieldsFile) if fields_file.is_file() else None
    if not fields_file.is_file():
        ld.problem(
            CFG_SCHEMA,
            "policy/fields.yaml is missing; declare the contact schema there",
            Pos("policy/fields.yaml"),
        )
    fields = dict(fields_model.fields) if fields_model else {}

    purposes_path = root / "policy" / "purposes.yaml"
    purposes_model = ld.load_one(purposes_path, PurposesFile) if purposes_path.is_file() else None
    purposes = dict(purposes_model.purposes) if purposes_model else {}

    approvers_path = root / "policy" / "approvers.yaml"
    approvers_model = (
        ld.load_one(approvers_path, ApproversFile) if approvers_path.is_file() else None
    )
    approvers = approvers_model.approvers if approvers_model else ()

    authorizations: dict[str, AuthorizationForm] = {}
    for path in _yaml_files(root / "policy" / "authorizations"):
        form = ld.load_one(path, AuthorizationForm)
        if form is not None:
            form._scope = path.stem
            authorizations[path.stem] = form

    segments: dict[str, Segment] = {}
    for path in _yaml_files(root / "segments"):
        seg = ld.segment(path)
        if seg is not None:
            segments[seg.id] = seg

    templates: dict[str, Template] = {}
    tdir = root / "templates"
    if tdir.is_dir():
        for path in sorted(tdir.rglob("*.mjml")):
            name = path.relative_to(tdir).as_posix()
            try:
                source = read_text(path, MAX_TEMPLATE_BYTES, "template", inside=root)
                check_template(source)
                templates[name] = Template(name=name, file=ld.rel(path), source=source)
            except BadFile as exc:
                ld.problem(CFG_SCHEMA, exc.message, Pos(ld.rel(path), exc.line))

    campaigns: dict[str, Campaign] = {}
    cdir = root / "campaigns"
    if cdir.is_dir():
        # scandir and plain strings: a thousand campaigns made pathlib's sorting and
        # stat calls a tenth of the load (bench/lint.md); the order is the folder names'
        with os.scandir(cdir) as entries:
            names = sorted(e.name for e in entries if e.is_dir())
        if only is not None:
            names = [name for name in names if name in only]
        prefix = os.path.join(cdir, "")
        for name in names:
            path = os.path.join(prefix + name, "campaign.yaml")
            rel = f"campaigns/{name}/campaign.yaml"
            if not os.path.isfile(path):
                ld.problem(
                    CFG_SCHEMA,
                    f"campaigns/{name}/ has no campaign.yaml; add one or remove the folder",
                    Pos(rel),
                )
                continue
            camp = ld.load_one(path, Campaign, campaign=name, rel=rel)
            if camp is not None and _strings_nest_too_deep(ld, camp, name):
                camp = None
            if camp is not None:
                private = camp.__pydantic_private__
                assert private is not None
                private["_id"] = name
                private["_file"] = rel
                campaigns[name] = camp

    personas: dict[str, Persona] = {}
    ppath = root / "fixtures" / "personas.yaml"
    if ppath.is_file():
        got = ld.read_yaml(ppath)
        if got is not None:
            data, smap = got
            loc = Located(smap)
            if not isinstance(data, dict):
                ld.problem(
                    CFG_SCHEMA, "personas.yaml maps persona names to synthetic contacts", loc.pos
                )
            else:
                for name, record in data.items():
                    if not isinstance(record, dict):
                        ld.problem(
                            CFG_SCHEMA,
                            f"persona '{name}' must be a mapping of contact keys",
                            loc.at(name),
                        )
                        continue
                    contact, problems = (
                        normalize_contact(record, fields) if fields else (dict(record), [])
                    )
                    for key, msg in problems:
                        ld.problem(
                            CFG_SCHEMA,
                            f"persona '{name}', key '{key}': {msg}",
                            loc.key_at(name, key),
                        )
                    personas[str(name)] = Persona(
                        name=str(name), contact=contact, loc=loc.sub(name)
                    )

    repo = Repo(
        root=root,
        config=config,
        campaigns=campaigns,
        segments=segments,
        templates=templates,
        fields=fields,
        purposes=purposes,
        approvers=approvers,
        authorizations=authorizations,
        personas=personas,
        documents=ld.documents,
        texts=ld.texts,
    )
    _check_references(repo, ld.problem)
    return repo, ld.findings


def _strings_nest_too_deep(ld: Loader, camp: Campaign, cid: str) -> bool:
    """Subject and preheader are Jinja too: held to the template nesting limits."""
    bad = False
    for key in ("subject", "preheader"):
        try:
            check_template(getattr(camp, key) or "")
        except BadFile as exc:
            ld.problem(CFG_SCHEMA, f"{key}: {exc.message}", camp.pos(key), cid)
            bad = True
    return bad


def _check_references(repo: Repo, problem: Callable[..., None]) -> None:
    cfg = repo.config
    for cid, c in repo.campaigns.items():
        base = repo.base_purpose(c.purpose)
        if c.commercial is False and base is not None and PURPOSES[base][1]:
            problem(
                CFG_SCHEMA,
                f"'commercial: false' cannot make a '{c.purpose}' message transactional (only "
                "'commercial: true' on a transactional purpose is allowed); remove it",
                c.pos("commercial"),
                cid,
            )
        if repo.template_for(c) is None:
            problem(
                CFG_REF,
                f"template '{c.template}' not found under templates/; create it or fix the name",
                c.pos("template"),
                cid,
            )
        if c.segment not in repo.segments:
            problem(
                CFG_REF,
                f"segment '{c.segment}' not found under segments/; create it or fix the name",
                c.pos("segment"),
                cid,
            )
        if cfg is not None and c.sender not in cfg.senders:
            known = ", ".join(sorted(cfg.senders)) or "none defined"
            problem(
                CFG_REF,
                f"sender '{c.sender}' is not a sender in toolkit.yaml (known: {known})",
                c.pos("sender"),
                cid,
            )
        if cfg is not None and c.delivery.relay not in cfg.relays:
            known = ", ".join(sorted(cfg.relays)) or "none defined"
            problem(
                CFG_REF,
                f"relay '{c.delivery.relay}' is not a relay in toolkit.yaml (known: {known})",
                c.pos("delivery", "relay"),
                cid,
            )
        if c.authorization is not None and c.authorization.scope not in repo.authorizations:
            problem(
                CFG_REF,
                f"authorization scope '{c.authorization.scope}' has no form policy/"
                f"authorizations/{c.authorization.scope}.yaml; add the form or fix the scope",
                c.pos("authorization", "scope"),
                cid,
            )
        for i, f in enumerate(c.phi_fields):
            if f not in repo.fields:
                problem(
                    CFG_REF,
                    f"phi_fields: '{f}' is not a field in policy/fields.yaml",
                    c.pos("phi_fields", i),
                    cid,
                )
    if repo.fields:
        for seg in repo.segments.values():
            for leaf in seg.leaves():
                if leaf.field not in repo.fields and leaf.field not in (
                    "unencrypted_email_ok",
                    "no_email",
                    "email",
                    "id",
                ):
                    problem(
                        CFG_REF,
                        f"segment field '{leaf.field}' is not a field in policy/fields.yaml",
                        leaf.loc.at("field"),
                    )


__all__ = ["OPERATORS", "load_repo"]
