"""The Jinja sandbox with budgets: what one render of a hostile template may cost.

Jinja's SandboxedEnvironment refuses internals (attributes starting with `_`, such as
`''.__class__` or `cycler.__init__.__globals__`, also through `str.format`) and caps
`range()` at 100,000 items. It does not bound what a template can make the process
allocate or compute: `'x' * 10**9`, `'%099999999d' % 1`, `10 ** 10 ** 10`, `|center(10**9)`,
doubling a string with `~` in a loop, nested loops or a macro calling itself twice per
level. Here each of those is refused with a TemplateLimitError (a SecurityError, so the
render reports it with the template's file and line), against the limits of
toolkit/limits.py:

- every value a template prints, and all the literal text it emits, is charged to the
  render's output budget as it is produced (also inside macros and `{% set %}` blocks,
  whose captured text would otherwise grow unseen);
- operators that make big values from small ones (`*`, `**`, `%`, `+`, `~`), filters,
  and method calls are checked before they run, from the sizes of their operands;
- loop iterations and calls are charged to the render's step budget;
- `range()` is capped at MAX_RANGE; mutating methods (`list.append`) are refused, as in
  Jinja's ImmutableSandboxedEnvironment, so that sizes checked once stay true.

Budgets are per top-level render (`Template.render`), kept in a context variable.
"""

from __future__ import annotations

import contextvars
import copy
import re
import string
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from toolkit.limits import (
    MAX_INT_BITS,
    MAX_RANGE,
    MAX_RENDER_CHARS,
    MAX_RENDER_STEPS,
    MAX_RENDER_WORK,
)

LIMITS_DOC = 'docs/format.md, "Limits"'


class TemplateLimitError(SecurityError):
    """A render went past a limit. The message names the limit, never a value."""


class _Budget:
    __slots__ = ("chars", "steps", "work")

    def __init__(self) -> None:
        self.chars = 0
        self.steps = 0
        self.work = 0


def _charge_work(size: int) -> None:
    """Characters and items read or written by a filter, method or operator."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.work += size
        if budget.work > MAX_RENDER_WORK:
            raise TemplateLimitError(
                f"more than {MAX_RENDER_WORK:,} characters and items processed by filters, "
                f"methods and operators in one render, the limit ({LIMITS_DOC}); a template "
                "formats a few short values")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("render_budget",
                                                                         default=None)


def _too_big(what: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would exceed {MAX_RENDER_CHARS:,} characters or items, the limit for one "
        f"render ({LIMITS_DOC}); a message cannot be that long")


def deep_size(value: Any, limit: int = MAX_RENDER_CHARS) -> int:
    """Characters and items in value, nested containers included, counted until `limit`
    is passed (a list holding one long string a thousand times prints a thousand times)."""
    if isinstance(value, str):  # the common case: one len()
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, (str, bytes)):
            total += len(v)
        elif isinstance(v, (list, tuple, set, frozenset)):
            total += len(v)
            stack.extend(v)
        elif isinstance(v, dict):
            total += len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        else:
            total += 1
    return total


def check_size(value: Any, what: str = "a value") -> Any:
    if deep_size(value) > MAX_RENDER_CHARS:
        raise _too_big(what)
    return value


def _sized(values: Iterable[Any], what: str) -> int:
    """The total size of values, each checked against the limit."""
    total = 0
    for v in values:
        size = deep_size(v)
        if size > MAX_RENDER_CHARS:
            raise _too_big(what)
        total += size
    return total


# --- format strings ------------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")
_WIDTH = re.compile(r"\d+")


def check_percent_format(fmt: str) -> None:
    """`'%099999999d' % 1` allocates 100 MB: refuse widths over the limit, and widths
    taken from the arguments (`%*d`)."""
    for m in _PERCENT_SPEC.finditer(fmt):
        for part in m.groups():
            if part == "*":
                raise TemplateLimitError("a '%*' width taken from the arguments is not allowed "
                                         "in templates; write the width in the format")
            if part and (len(part) > 7 or int(part) > MAX_RENDER_CHARS):
                raise _too_big("a % format width")


def check_brace_format(fmt: str) -> None:
    """The same for `'{:>999999999}'.format(x)`, and widths from arguments (`{:{w}}`)."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error, with its own message
    for _text, _name, spec, _conv in parsed:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("a nested '{...}' format spec is not allowed in templates; "
                                     "write the width in the format")
        for digits in _WIDTH.findall(spec):
            if len(digits) > 7 or int(digits) > MAX_RENDER_CHARS:
                raise _too_big("a format width")


# --- operators, calls, filters -------------------------------------------------------------


def _check_repeat(seq: Any, times: Any) -> None:
    if isinstance(times, int) and isinstance(seq, (str, list, tuple)) and times > 0 and (
            times > MAX_RENDER_CHARS or deep_size(seq) * times > MAX_RENDER_CHARS):
        raise _too_big("repeating a value with '*'")


def check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
    elif operator == "**":
        if (isinstance(left, int) and isinstance(right, int) and right > 0
                and abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS):
            raise TemplateLimitError(f"the result of '**' would have more than {MAX_INT_BITS:,} "
                                     f"bits, the limit for one render ({LIMITS_DOC})")
    elif operator == "%":
        if isinstance(left, str):
            check_percent_format(left)
            if deep_size(left) + deep_size(right) > MAX_RENDER_CHARS:
                raise _too_big("formatting with '%'")
    elif operator == "+" and (isinstance(left, (str, list, tuple))
                              and deep_size(left) + deep_size(right) > MAX_RENDER_CHARS):
        raise _too_big("joining values with '+'")


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and value > MAX_RENDER_CHARS:
        raise _too_big(what)
    if isinstance(value, str):
        check_size(value, what)


def _estimate_replace(s: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        n = s.count(old) if old else len(s) + 1
        if isinstance(count, int) and count >= 0:
            n = min(n, count)
        if len(s) + n * (len(new) - len(old)) > MAX_RENDER_CHARS:
            raise _too_big("replace()")


def _estimate_join(sep: Any, items: list[Any]) -> None:
    if deep_size(items) + len(items) * deep_size(sep) > MAX_RENDER_CHARS:
        raise _too_big("join()")


def check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Pre-checks for the str methods that can grow a string; returns the (possibly
    materialised) arguments."""
    s, name = method.__self__, method.__name__
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _width(args[0], f"{name}()")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and len(s) + s.count("\t") * size > MAX_RENDER_CHARS:
            raise _too_big("expandtabs()")
    elif name == "replace" and len(args) >= 2:
        _estimate_replace(s, *args[:3])
    elif name == "join" and args:
        items = list(_steps(args[0]))
        _estimate_join(s, items)
        args = (items, *args[1:])
    elif name in ("format", "format_map"):
        check_brace_format(s)
    return args


def _filter_checks(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Arguments of the built-in filters that make output larger than their input."""
    def arg(i: int, key: str, default: Any = None) -> Any:
        return args[i] if len(args) > i else kwargs.get(key, default)

    if name == "center":
        _width(arg(1, "width"), "center()")
    elif name == "indent":
        width, s = arg(1, "width", 4), arg(0, "s", "")
        per_line = len(width) if isinstance(width, str) else width
        if isinstance(per_line, int) and isinstance(s, str) and (
                len(s) + (s.count("\n") + 1) * per_line > MAX_RENDER_CHARS):
            raise _too_big("indent()")
    elif name == "replace":
        _estimate_replace(arg(0, "s"), arg(1, "old"), arg(2, "new"), arg(3, "count", -1))
    elif name == "wordwrap":
        s, wrapstring = arg(0, "s", ""), arg(3, "wrapstring", "\n")
        if isinstance(s, str) and isinstance(wrapstring, str) and (
                len(s) * (1 + len(wrapstring)) > MAX_RENDER_CHARS):
            raise _too_big("wordwrap()")
    elif name == "format" and isinstance(arg(0, "value"), str):
        check_percent_format(arg(0, "value"))
    elif name in ("batch", "slice"):
        _width(arg(1, "linecount" if name == "batch" else "slices"), f"{name}()")


def _sized_result(rv: Any, what: str) -> Any:
    if isinstance(rv, (str, list, tuple, dict, set, bytes)):
        _charge_work(_sized((rv,), what))
    return rv


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)  # keeps jinja_pass_arg (pass_context, pass_environment, ...)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        real = args[1:] if getattr(func, "jinja_pass_arg", None) is not None else args
        _charge_work(_sized((*real, *kwargs.values()), f"the input of |{name}"))
        _filter_checks(name, real, kwargs)
        if name == "join" and real:  # materialise once: the size check and the join share it
            items = list(_steps(real[0]))
            _estimate_join(real[1] if len(real) > 1 else kwargs.get("d", ""), items)
            args = (*args[:len(args) - len(real)], items, *real[1:])
        return _sized_result(func(*args, **kwargs), f"|{name}")

    return bounded


def _steps(iterable: Iterable[Any]) -> Iterator[Any]:
    """Charge each item of a loop (or of a join) to the render's step budget."""
    budget = _BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget.steps += 1
            if budget.steps > MAX_RENDER_STEPS:
                raise _too_many_steps()
        yield item


def _too_many_steps() -> TemplateLimitError:
    return TemplateLimitError(
        f"more than {MAX_RENDER_STEPS:,} loop iterations and calls in one render, the limit "
        f"({LIMITS_DOC}); a template loops over a few items, never thousands")


def safe_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimitError(f"range() of {len(rng):,} items; the limit is {MAX_RANGE:,} "
                                 f"({LIMITS_DOC})")
    return rng


def safe_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if n * max > MAX_RENDER_CHARS // 10:  # words, about ten characters each with spacing
        raise _too_big("lipsum()")
    return generate_lorem_ipsum(n, html, min, max)


# --- compiled templates --------------------------------------------------------------------


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles templates with the budget hooks: output charged as it is produced, `~`
    checked, loops counted. Everything else is Jinja's own code generation."""

    # Output a template yields is counted by BoundedTemplate.render as it arrives; output
    # captured in a buffer (macros, call and filter blocks, `{% set %}` blocks) is charged
    # here, as each piece is appended. Values are checked before str() and escape() copy
    # them; a plain string at the top level needs no call (the render counts it).
    _buffered = False

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        self._buffered = frame.buffer is not None
        super().visit_Output(node, frame)

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        text = super()._output_const_repr(group)
        return f"environment.produce({text})" if self._buffered else text

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_pre(node, frame, finalize)
        if self._buffered:
            self.write("environment.printable(")
        else:
            self.write("(_hv if isinstance(_hv := ")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write(")" if self._buffered else ", str) else environment.printable(_hv))")
        super()._output_child_post(node, frame, finalize)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # Jinja's own, with the operands' sizes checked before str() and the join copy them
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.concat_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node = copy.copy(node)
        node.iter = nodes.Call(nodes.EnvironmentAttribute("loop_steps"), [node.iter], [], None,
                               None, lineno=node.lineno)
        super().visit_For(node, frame)


class BoundedTemplate(Template):
    """A template whose every render gets fresh budgets."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        # Template.render, counting what the template yields: past the limit, the error is
        # thrown into the template where it stands, so that it names that file and line
        ctx = self.new_context(dict(*args, **kwargs))
        budget = _Budget()
        token = _BUDGET.set(budget)
        try:
            parts = []
            gen = self.root_render_func(ctx)
            for chunk in gen:
                budget.chars += len(chunk)
                if budget.chars > MAX_RENDER_CHARS:
                    gen.throw(_too_big("the rendered template"))
                parts.append(chunk)
            return self.environment.concat(parts)  # type: ignore[attr-defined]
        except Exception:
            self.environment.handle_exception()
        finally:
            _BUDGET.reset(token)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    template_class = BoundedTemplate
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.globals["range"] = safe_range
        self.globals["lipsum"] = safe_lipsum

    # called from compiled templates (see _BoundedCodeGenerator)

    def produce(self, text: str) -> str:
        budget = _BUDGET.get()
        if budget is not None:
            budget.chars += len(text)
            if budget.chars > MAX_RENDER_CHARS:
                raise _too_big("the rendered template")
        return text

    def printable(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.produce(value)
        self.produce_size(deep_size(value))  # a list prints at least one character an item
        return value

    def produce_size(self, size: int) -> None:
        budget = _BUDGET.get()
        if budget is not None:
            budget.chars += size
            if budget.chars > MAX_RENDER_CHARS:
                raise _too_big("the rendered template")
        elif size > MAX_RENDER_CHARS:
            raise _too_big("a printed value")

    def concat_parts(self, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        size = sum(deep_size(p) for p in parts)
        if size > MAX_RENDER_CHARS:
            raise _too_big("joining values with '~'")
        _charge_work(size)
        return parts

    def loop_steps(self, iterable: Iterable[Any]) -> Iterator[Any]:
        return _steps(iterable)

    # the sandbox's hooks

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # `'...'.format` reaches templates only through here, as a wrapper that hides the
        # format string from `call`: check its widths now
        if isinstance(getattr(value, "__self__", None), str):
            check_brace_format(value.__self__)
        return super().wrap_str_format(value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return _sized_result(super().call_binop(context, operator, left, right),
                             f"the result of '{operator}'")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.steps += 1
            if budget.steps > MAX_RENDER_STEPS:
                raise _too_many_steps()
        bound = getattr(__obj, "__self__", None)
        if isinstance(bound, str):
            args = check_str_method(__obj, args, kwargs)
            _charge_work(len(bound))
        _charge_work(_sized((*args, *kwargs.values()), "an argument"))
        rv = super().call(__context, __obj, *args, **kwargs)
        return _sized_result(rv, "a call's result")
