"""Walk a template's Jinja AST in output order, following contact data.

Taint is the set of contact fields (and built-in names) a value may carry. It flows
through `{% set %}`, `{% with %}`, loop variables, macro arguments, filters and any
expression built from tainted parts. What the walker cannot follow is a CNT-003
problem, never a silent pass (see docs/analysis.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

from toolkit.analysis.html import HtmlState, TagUse, UrlUse
from toolkit.analysis.scope import (
    BUILTINS,
    CANNOT_FOLLOW,
    CLEAN,
    FIELD_PROBLEM,
    JINJA_NAMES,
    MISSING,
    SYNTAX,
    Caller,
    FieldUse,
    Macro,
    Module,
    Parsed,
    Resolver,
    Taint,
)
from toolkit.findings import Finding, Pos
from toolkit.models import RESERVED_KEYS


@dataclass
class Walker:
    resolve: Resolver
    fields: frozenset[str]
    part: str = "template"
    uses: list[FieldUse] = field(default_factory=list)
    urls: list[UrlUse] = field(default_factory=list)
    tags: list[TagUse] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    builtins: set[str] = field(default_factory=set)
    files: dict[str, None] = field(default_factory=dict)
    html: HtmlState = field(init=False)
    file: str = ""
    lines: list[str] = field(default_factory=list)
    line_offset: int = 0
    default_column: int = 1
    sinks: list[list[Taint]] = field(default_factory=list)
    macros: list[Macro] = field(default_factory=list)
    called: set[int] = field(default_factory=set)
    active: list[int] = field(default_factory=list)
    modules: dict[str, Module] = field(default_factory=dict)
    blocks: dict[str, list[tuple[list[nodes.Node], str]]] = field(default_factory=dict)
    supers: list[list[tuple[list[nodes.Node], str]]] = field(default_factory=list)
    including: list[str] = field(default_factory=list)  # templates being walked: cycle guard

    def __post_init__(self) -> None:
        self.html = HtmlState(self.urls, self.tags)

    # --- reporting ---------------------------------------------------------------------

    def pos(self, lineno: int, column: int = 1) -> Pos:
        return Pos(self.file, lineno + self.line_offset, column)

    def problem(self, rule: str, message: str, lineno: int, near: str | None = None) -> None:
        column = self.column(lineno, rf"\b{re.escape(near)}\b") if near else self.default_column
        self.problems.append(Finding(rule=rule, message=message, pos=self.pos(lineno, column)))

    def column(self, lineno: int, pattern: str) -> int:
        """The column of the first match of pattern on a template line (Jinja gives lines)."""
        if 0 < lineno <= len(self.lines):
            m = re.search(pattern, self.lines[lineno - 1])
            if m:
                return m.start() + 1
        return self.default_column

    def use(self, name: str, lineno: int) -> Taint:
        n = re.escape(name)
        column = self.column(lineno, rf"\bcontact\s*(?:\.\s*{n}\b|\[\s*['\"]{n}['\"])")
        # with no fields.yaml at all (a CFG-001 already), every name would be "unknown"
        if self.fields and name not in self.fields and name not in RESERVED_KEYS:
            self.problems.append(Finding(
                rule=FIELD_PROBLEM, pos=self.pos(lineno, column),
                message=f"'{name}' is not a field in policy/fields.yaml; declare it there or "
                "fix the name"))
            return Taint(frozenset({name}))
        # <mj-preview> text is the preheader, whatever file it is written in
        part = "preheader" if self.html.in_preview else self.part
        self.uses.append(FieldUse(name, self.pos(lineno, column), part))
        return Taint(frozenset({name}))

    def emit(self, taint: Taint, lineno: int) -> None:
        for sink in self.sinks:
            sink.append(taint)
        self.html.feed_expr(taint.fields, taint.builtins, self.pos(lineno))

    # --- templates -----------------------------------------------------------------------

    def template(self, parsed: Parsed, scope: dict[str, Any]) -> None:
        """Walk a whole template (the campaign's, or an included one) into the output."""
        assert parsed.ast is not None
        saved = self.file, self.lines
        self.file, self.lines = parsed.file, parsed.lines
        self.files[parsed.file] = None
        self.including.append(parsed.file)
        try:
            body = parsed.ast.body
            parent = next((n for n in body if isinstance(n, nodes.Extends)), None)
            if parent is None:
                self.body(body, scope)
                return
            # a child template: its blocks fill the parent's; its other output is dropped
            for block in parsed.ast.find_all(nodes.Block):
                self.blocks.setdefault(block.name, []).append((block.body, parsed.file))
            for node in body:
                if isinstance(node, (nodes.Assign, nodes.Macro, nodes.Import, nodes.FromImport)):
                    self.stmt(node, scope)
            target = self.load(parent.template, parent.lineno)
            if target is not None and target.file in self.including:
                self.problem(MISSING, f"'{target.file}' extends itself; break the cycle",
                             parent.lineno)
            elif target is not None:
                self.template(target, scope)
        finally:
            self.including.pop()
            self.file, self.lines = saved

    def load(self, expr: nodes.Expr, lineno: int, *, ignore_missing: bool = False) -> Parsed | None:
        """The template an include/import/extends names, or None (after a problem)."""
        names: list[str] = []
        if isinstance(expr, nodes.Const) and isinstance(expr.value, str):
            names = [expr.value]
        elif isinstance(expr, (nodes.List, nodes.Tuple)) and all(
                isinstance(i, nodes.Const) and isinstance(i.value, str) for i in expr.items):
            names = [i.value for i in expr.items]  # type: ignore[attr-defined]
        else:
            self.problem(FIELD_PROBLEM, "cannot follow a computed template name; "
                         "name the partial with a constant string", lineno)
            return None
        for name in names:
            parsed = self.resolve(name)
            if parsed is None:
                continue
            if parsed.error is not None:
                message, line = parsed.error
                self.problems.append(Finding(
                    rule=SYNTAX, pos=Pos(parsed.file, line),
                    message=f"template syntax: {message}; fix the Jinja syntax"))
                return None
            return parsed
        if not ignore_missing:
            self.problem(MISSING, f"partial '{names[0]}' not found under templates/; "
                         "create it or fix the name", lineno)
        return None

    def module(self, parsed: Parsed) -> Module:
        if parsed.file in self.modules:
            return self.modules[parsed.file]
        module = self.modules[parsed.file] = Module({})
        saved = self.html, self.file, self.lines
        self.html = HtmlState(self.urls, self.tags)  # a module's own output is discarded
        self.file, self.lines = parsed.file, parsed.lines
        self.files[parsed.file] = None
        try:
            assert parsed.ast is not None
            self.body(parsed.ast.body, module.scope)
        finally:
            self.html, self.file, self.lines = saved
        return module

    # --- statements ----------------------------------------------------------------------

    def body(self, stmts: Iterable[nodes.Node], scope: dict[str, Any]) -> None:
        for node in stmts:
            self.stmt(node, scope)

    def stmt(self, node: nodes.Node, scope: dict[str, Any]) -> None:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    self.html.feed_text(child.data, self.file, child.lineno + self.line_offset)
                else:
                    self.output(child, scope)
        elif isinstance(node, nodes.If):
            self.expr(node.test, scope)
            start = self.html.copy()
            self.body(node.body, scope)
            after_body = self.html
            for branch in [*node.elif_, node.else_]:
                self.html = start.copy()
                if isinstance(branch, nodes.If):
                    self.stmt(branch, scope)
                else:
                    self.body(branch, scope)
                after_body.absorb(self.html)
            self.html = after_body
        elif isinstance(node, nodes.For):
            taint = self.expr(node.iter, scope)
            inner = dict(scope)
            self.bind(node.target, taint, inner)
            inner["loop"] = CLEAN
            if node.test is not None:
                self.expr(node.test, inner)
            self.body(node.body, inner)
            self.body(node.else_, dict(scope))
        elif isinstance(node, nodes.Assign):
            value = self.callable(node.node, scope)
            if value is not None and isinstance(node.target, nodes.Name):
                scope[node.target.name] = value
            else:
                self.bind(node.target, self.expr(node.node, scope), scope)
        elif isinstance(node, nodes.AssignBlock):
            taint = self.capture(node.body, scope)
            if node.filter is not None:
                taint |= self.expr(node.filter, scope)
            self.bind(node.target, taint, scope)
        elif isinstance(node, nodes.With):
            inner = dict(scope)
            for target, value in zip(node.targets, node.values, strict=False):
                self.bind(target, self.expr(value, scope), inner)
            self.body(node.body, inner)
        elif isinstance(node, nodes.Macro):
            macro = Macro(node, self.file, scope)
            scope[node.name] = macro
            self.macros.append(macro)
        elif isinstance(node, nodes.CallBlock):
            caller = Caller(node, self.file, scope)
            target = self.callable(node.call.node, scope)
            if isinstance(target, Macro):
                self.call_macro(target, node.call, scope, caller=caller)
            else:
                self.emit(self.expr(node.call, scope), node.lineno)
                self.body(node.body, dict(scope))
        elif isinstance(node, nodes.FilterBlock):
            self.expr(node.filter, scope)
            self.body(node.body, scope)
        elif isinstance(node, nodes.Include):
            parsed = self.load(node.template, node.lineno, ignore_missing=node.ignore_missing)
            if parsed is not None and parsed.file in self.including:
                self.problem(MISSING, f"'{parsed.file}' includes itself (through "
                             f"{' -> '.join(self.including)}); break the cycle", node.lineno)
            elif parsed is not None:
                self.template(parsed, dict(scope) if node.with_context else {})
        elif isinstance(node, nodes.Import):
            parsed = self.load(node.template, node.lineno)
            scope[node.target] = self.module(parsed) if parsed is not None else CLEAN
        elif isinstance(node, nodes.FromImport):
            parsed = self.load(node.template, node.lineno)
            module = self.module(parsed) if parsed is not None else None
            for item in node.names:
                name, alias = item if isinstance(item, tuple) else (item, item)
                if module is not None and name not in module.scope:
                    self.problem(MISSING, f"'{parsed.file}' defines no '{name}'; "  # type: ignore[union-attr]
                                 "fix the name or add the macro", node.lineno)
                scope[alias] = module.scope.get(name, CLEAN) if module is not None else CLEAN
        elif isinstance(node, nodes.Block):
            chain = [*self.blocks.get(node.name, []), (node.body, self.file)]
            self.block(chain, dict(scope))
        elif isinstance(node, nodes.ExprStmt):
            self.expr(node.node, scope)
        elif isinstance(node, (nodes.Scope, nodes.ScopedEvalContextModifier,
                               nodes.EvalContextModifier)):
            self.body(node.body, scope)
        elif isinstance(node, nodes.Extends):
            self.expr(node.template, scope)
        # Break, Continue: no data flow

    def block(self, chain: list[tuple[list[nodes.Node], str]], scope: dict[str, Any]) -> None:
        body, file = chain[0]
        saved = self.file, self.lines
        if file != self.file:
            parsed = self.resolve_file(file)
            self.file, self.lines = file, parsed.lines if parsed else []
        self.supers.append(chain[1:])
        try:
            self.body(body, scope)
        finally:
            self.supers.pop()
            self.file, self.lines = saved

    def resolve_file(self, file: str) -> Parsed | None:
        name = file.removeprefix("templates/")
        return self.resolve(name)

    def bind(self, target: nodes.Node, taint: Taint, scope: dict[str, Any]) -> None:
        if isinstance(target, nodes.Name):
            old = scope.get(target.name)
            # conservative: a re-assigned name keeps what it carried before
            scope[target.name] = taint | old if isinstance(old, Taint) else taint
        elif isinstance(target, nodes.NSRef):
            old = scope.get(target.name)
            scope[target.name] = taint | old if isinstance(old, Taint) else taint
        elif isinstance(target, (nodes.Tuple, nodes.List)):
            for item in target.items:
                self.bind(item, taint, scope)

    # --- output and capture ------------------------------------------------------------------

    def output(self, expr: nodes.Expr, scope: dict[str, Any]) -> None:
        inner = expr
        filters: list[nodes.Filter] = []
        while isinstance(inner, nodes.Filter) and inner.node is not None:
            filters.append(inner)
            inner = inner.node
        if isinstance(inner, nodes.Call):
            target = self.callable(inner.node, scope)
            if isinstance(target, (Macro, Caller)) or self.is_super(inner.node, scope):
                for f in filters:
                    self.filter_args(f, scope)
                self.call(inner, scope, output=True)
                return
        self.emit(self.expr(expr, scope), expr.lineno)

    def capture(self, stmts: list[nodes.Node], scope: dict[str, Any],
                walk: Callable[[], None] | None = None) -> Taint:
        """Walk output that becomes a value, not part of the message (set blocks, macro
        calls in expressions): its HTML context starts fresh."""
        saved = self.html
        self.html = HtmlState(self.urls, self.tags)
        self.sinks.append([])
        try:
            if walk is not None:
                walk()
            else:
                self.body(stmts, scope)
        finally:
            got = self.sinks.pop()
            self.html = saved
        taint = CLEAN
        for t in got:
            taint |= t
        return taint

    # --- calls ------------------------------------------------------------------------------

    def callable(self, expr: nodes.Expr,
                 scope: Mapping[str, Any]) -> Macro | Module | Caller | None:
        """The macro, module or caller an expression names, if it names one."""
        if isinstance(expr, nodes.Name):
            value = scope.get(expr.name)
        elif isinstance(expr, nodes.Getattr):
            base = self.callable(expr.node, scope)
            value = base.scope.get(expr.attr) if isinstance(base, Module) else None
        else:
            return None
        return value if isinstance(value, (Macro, Module, Caller)) else None

    def is_super(self, expr: nodes.Expr, scope: Mapping[str, Any]) -> bool:
        return isinstance(expr, nodes.Name) and expr.name == "super" and "super" not in scope

    def call(self, node: nodes.Call, scope: dict[str, Any], *, output: bool) -> Taint:
        target = self.callable(node.node, scope)
        if isinstance(target, Macro):
            if output:
                return self.call_macro(target, node, scope)
            return self.capture([], scope, lambda: self.call_macro(target, node, scope))
        if isinstance(target, Caller):
            args = self.args(node, scope)
            inner = dict(target.scope)
            for i, param in enumerate(target.node.args):
                inner[param.name] = args[i] if i < len(args) else CLEAN
            walk = lambda: self.in_file(target.file, lambda: self.body(target.node.body, inner))  # noqa: E731
            if output:
                walk()
                return CLEAN
            return self.capture([], scope, walk)
        if self.is_super(node.node, scope):
            chain = self.supers[-1] if self.supers else []
            if not chain:
                return CLEAN
            walk = lambda: self.block(chain, dict(scope))  # noqa: E731
            if output:
                walk()
                return CLEAN
            return self.capture([], scope, walk)
        raise AssertionError("not a macro call")  # pragma: no cover

    def in_file(self, file: str, walk: Callable[[], None]) -> None:
        saved = self.file, self.lines
        if file != self.file:
            parsed = self.resolve_file(file)
            self.file, self.lines = file, parsed.lines if parsed else []
        try:
            walk()
        finally:
            self.file, self.lines = saved

    def args(self, node: nodes.Call, scope: dict[str, Any]) -> list[Taint]:
        out = [self.expr(a, scope) for a in node.args]
        for extra in (node.dyn_args, node.dyn_kwargs):
            if extra is not None:
                out.append(self.expr(extra, scope))
        return out

    def call_macro(self, macro: Macro, node: nodes.Call, scope: dict[str, Any],
                   caller: Caller | None = None) -> Taint:
        args = self.args(node, scope)
        kwargs = {kw.key: self.expr(kw.value, scope) for kw in node.kwargs}
        key = id(macro.node)
        self.called.add(key)
        if self.active.count(key) >= 2:  # recursion: one more level adds nothing new
            return CLEAN
        inner: dict[str, Any] = dict(macro.scope)
        params = macro.node.args
        defaults = macro.node.defaults
        spread = CLEAN
        for t in args[len(params):]:
            spread |= t
        for t in kwargs.values():
            spread |= t
        for i, param in enumerate(params):
            if i < len(args):
                inner[param.name] = args[i]
            elif param.name in kwargs:
                inner[param.name] = kwargs[param.name]
            else:
                d = i - (len(params) - len(defaults))
                inner[param.name] = (self.in_file_expr(macro.file, defaults[d], inner)
                                     if d >= 0 else CLEAN)
        inner["varargs"] = inner["kwargs"] = spread
        if caller is not None:
            inner["caller"] = caller
        self.active.append(key)
        try:
            self.in_file(macro.file, lambda: self.body(macro.node.body, inner))
        finally:
            self.active.pop()
        return CLEAN

    def in_file_expr(self, file: str, expr: nodes.Expr, scope: dict[str, Any]) -> Taint:
        got: list[Taint] = []
        self.in_file(file, lambda: got.append(self.expr(expr, scope)))
        return got[0]

    def uncalled_macros(self) -> None:
        """Macros nothing called still hold content: walk them once, with clean arguments."""
        for macro in list(self.macros):
            if id(macro.node) in self.called:
                continue
            self.called.add(id(macro.node))
            inner: dict[str, Any] = dict(macro.scope)
            for param in macro.node.args:
                inner[param.name] = CLEAN
            inner["varargs"] = inner["kwargs"] = inner["caller"] = CLEAN
            def walk(m: Macro = macro, s: dict[str, Any] = inner) -> None:
                self.in_file(m.file, lambda: self.body(m.node.body, s))

            self.capture([], inner, walk)

    # --- expressions ----------------------------------------------------------------------

    def filter_args(self, node: nodes.Filter | nodes.Test, scope: dict[str, Any]) -> Taint:
        taint = CLEAN
        for a in [*node.args, *(kw.value for kw in node.kwargs), node.dyn_args, node.dyn_kwargs]:
            if a is not None:
                taint |= self.expr(a, scope)
        return taint

    def expr(self, node: nodes.Node, scope: dict[str, Any]) -> Taint:
        if isinstance(node, (nodes.Const, nodes.TemplateData)):
            return CLEAN
        if isinstance(node, nodes.Name):
            return self.name(node, scope)
        if isinstance(node, nodes.Getattr):
            if self.is_contact(node.node, scope):
                return self.use(node.attr, node.lineno)
            if isinstance(self.callable(node.node, scope), Module):
                return CLEAN
            return self.expr(node.node, scope)
        if isinstance(node, nodes.Getitem):
            if self.is_contact(node.node, scope):
                if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                    return self.use(node.arg.value, node.lineno)
                self.expr(node.arg, scope)
                self.problem(FIELD_PROBLEM, CANNOT_FOLLOW, node.lineno, near="contact")
                return CLEAN
            return self.expr(node.node, scope) | self.expr(node.arg, scope)
        if isinstance(node, nodes.Call):
            fn = node.node
            if isinstance(fn, nodes.Getattr) and self.is_contact(fn.node, scope):
                self.args(node, scope)
                self.problem(FIELD_PROBLEM, CANNOT_FOLLOW, node.lineno, near="contact")
                return CLEAN
            if isinstance(self.callable(fn, scope), (Macro, Caller)) or self.is_super(fn, scope):
                return self.call(node, scope, output=False)
            taint = self.expr(fn, scope)
            for t in self.args(node, scope):
                taint |= t
            for kw in node.kwargs:
                taint |= self.expr(kw.value, scope)
            return taint
        if isinstance(node, (nodes.Filter, nodes.Test)):
            taint = self.expr(node.node, scope) if node.node is not None else CLEAN
            return taint | self.filter_args(node, scope)
        taint = CLEAN
        for child in node.iter_child_nodes():
            taint |= self.expr(child, scope)
        return taint

    @staticmethod
    def is_contact(node: nodes.Node, scope: Mapping[str, Any]) -> bool:
        return isinstance(node, nodes.Name) and node.name == "contact" and "contact" not in scope

    def name(self, node: nodes.Name, scope: dict[str, Any]) -> Taint:
        name = node.name
        if name in scope:
            value = scope[name]
            return value if isinstance(value, Taint) else CLEAN
        if name == "contact":
            self.problem(FIELD_PROBLEM, CANNOT_FOLLOW, node.lineno, near="contact")
            return CLEAN
        if name in BUILTINS:
            self.builtins.add(name)
            return Taint(builtins=frozenset({name}))
        if name in JINJA_NAMES:
            return CLEAN
        self.problem(FIELD_PROBLEM, f"unknown name '{name}': templates reach contact data as "
                     "contact.<field>; other names are " + ", ".join(BUILTINS), node.lineno,
                     near=name)
        return CLEAN
