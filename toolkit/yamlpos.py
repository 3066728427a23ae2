"""YAML loading that remembers where every value came from.

PyYAML's composer (the C one when available) gives nodes with marks; we turn the
node tree into plain Python values and keep the tree beside them in a SourceMap.
Schemas then validate plain values, and any error's key path maps back to a line.

Positions are looked up only when asked (a finding needs one): the SourceMap follows a
key path down the node tree and the values in step. Recording every position while
converting cost as much as parsing the file (bench/lint.md).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from toolkit.findings import Pos
from toolkit.limits import MAX_YAML_DEPTH, MAX_YAML_VALUES

try:
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Base = yaml.SafeLoader

PathKey = tuple[Any, ...]

_STR = "tag:yaml.org,2002:str"
_MAPPING, _SEQUENCE = yaml.MappingNode, yaml.SequenceNode
_MERGE = "tag:yaml.org,2002:merge"

# plain scalar -> its implicit tag; short values only (keys, booleans, numbers, dates)
_RESOLVED: dict[str, str] = {}


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, with the resolver calls libyaml's composer makes for every node
    cut short (a quarter of composing, bench/lint.md). Same tags: without path resolvers
    (the safe loader has none) a node's tag depends only on its kind and, for a plain
    scalar, on its text."""

    # Only path resolvers use the path, and libyaml's composer calls these two for every
    # node: builtins that take the same arguments and keep nothing are a tenth of
    # composing cheaper than Python methods (bench/lint.md). Neither binds to the loader.
    descend_resolver = slice  # (current_node, current_index): a slice nobody keeps
    ascend_resolver = tuple  # (): the empty tuple

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR  # quoted, or tagged "!": a string
            got = _RESOLVED.get(value)
            if got is None:
                got = _Base.resolve(self, kind, value, implicit)
                if len(value) <= 64 and len(_RESOLVED) < 8192:
                    _RESOLVED[value] = got
            return got
        return _Base.resolve(self, kind, value, implicit)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SourceMap:
    """Positions of values (and of mapping keys) in one file, by key path.

    `root` is the document's node tree and `data` the values converted from it (mappings
    in key order, no duplicate keys): the i-th key of a dict is the i-th pair of its node.
    """

    file: str
    root: yaml.Node | None = None
    data: Any = None

    def _find(self, path: PathKey) -> tuple[yaml.Node | None, yaml.Node | None]:
        """(deepest value node on path, key node of the last step if it was reached)."""
        node, data = self.root, self.data
        knode = None
        for k in path:
            knode = None
            if isinstance(node, _MAPPING) and isinstance(data, dict):
                try:
                    if k not in data:
                        break
                except TypeError:  # an unhashable path element names no key
                    break
                # the first key that is k or equals it: list.index compares as `is or ==`
                knode, node = node.value[list(data).index(k)]
                data = data[k]
            elif (isinstance(node, _SEQUENCE) and isinstance(data, list)
                  and type(k) is int and 0 <= k < len(data)):
                node, data = node.value[k], data[k]
            else:
                return node, None
        return node, knode

    def _pos(self, node: yaml.Node | None) -> Pos:
        return _pos(self.file, node.start_mark if node is not None else None)

    def at(self, *path: Any) -> Pos:
        """Position of the value at path, or of its nearest ancestor."""
        return self._pos(self._find(tuple(path))[0])

    def key_at(self, *path: Any) -> Pos:
        """Position of the key that introduces path (falls back to the value)."""
        node, knode = self._find(tuple(path))
        return self._pos(knode if knode is not None else node)

    def sub(self, *prefix: Any) -> Located:
        return Located(self, tuple(prefix))


@dataclass(frozen=True)
class Located:
    """A SourceMap viewed from a sub-path: `loc.at("subject")`."""

    smap: SourceMap
    prefix: PathKey = ()

    # SourceMap.at and key_at with the prefix joined once (rules ask per campaign)
    def at(self, *path: Any) -> Pos:
        smap = self.smap
        return smap._pos(smap._find(self.prefix + path)[0])

    def key_at(self, *path: Any) -> Pos:
        node, knode = self.smap._find(self.prefix + path)
        return self.smap._pos(knode if knode is not None else node)

    def sub(self, *path: Any) -> Located:
        return Located(self.smap, self.prefix + tuple(path))

    @property
    def pos(self) -> Pos:
        smap = self.smap
        return smap._pos(smap._find(self.prefix)[0])


class YamlError(Exception):
    def __init__(self, message: str, pos: Pos):
        super().__init__(message)
        self.message = message
        self.pos = pos


def _pos(file: str, mark: yaml.Mark | None) -> Pos:
    if mark is None:
        return Pos(file, 1, 1)
    return Pos(file, mark.line + 1, mark.column + 1)


class _MayExceed(Exception):
    """Converting met more values or deeper nesting than the limits allow: _check_shape
    decides, and raises its own error (toolkit/limits.py)."""


def _convert(node: yaml.Node, file: str, ctor: yaml.constructor.SafeConstructor,
             budget: list[int], depth: int) -> Any:
    """Plain values of a node tree. `budget` counts down the values (nodes, aliases
    expanded) still allowed, `depth` is the node's nesting level (negative: unlimited,
    once _check_shape has passed the document): converting counts what
    _check_shape counts, so that a document within the limits is walked once, not twice
    (bench/lint.md); one that may exceed them raises _MayExceed before it grows further."""
    # str scalars (most of a repository) are their node's value: what construct_yaml_str
    # returns, without its bookkeeping
    if isinstance(node, yaml.MappingNode):
        pairs = node.value
        budget[0] -= 2 * len(pairs)
        if budget[0] < 0 or depth > MAX_YAML_DEPTH:
            raise _MayExceed
        out: dict[Any, Any] = {}
        for knode, vnode in pairs:
            ktag = knode.tag
            if ktag == _STR and type(knode) is yaml.ScalarNode:
                key = knode.value
            else:
                if ktag == _MERGE:
                    raise YamlError(
                        "YAML merge keys (<<) are not supported", _pos(file, knode.start_mark)
                    )
                if type(knode) is not yaml.ScalarNode and depth > 0:
                    raise _MayExceed  # a collection as a key: its values count too
                key = ctor.construct_object(knode, deep=True)
                if isinstance(key, (list, dict)):
                    raise YamlError(
                        "a mapping key must be a plain value", _pos(file, knode.start_mark)
                    )
            if key in out:
                raise YamlError(f"duplicate key '{key}'", _pos(file, knode.start_mark))
            if vnode.tag == _STR and type(vnode) is yaml.ScalarNode:
                out[key] = vnode.value
            else:
                out[key] = _convert(vnode, file, ctor, budget, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = node.value
        budget[0] -= len(items)
        if budget[0] < 0 or depth > MAX_YAML_DEPTH:
            raise _MayExceed
        return [
            item.value
            if item.tag == _STR and type(item) is yaml.ScalarNode
            else _convert(item, file, ctor, budget, depth + 1)
            for item in items
        ]
    if node.tag == _STR and type(node) is yaml.ScalarNode:
        return node.value
    return ctor.construct_object(node, deep=True)


def _convert_checked(node: yaml.Node, file: str, ctor: yaml.constructor.SafeConstructor) -> Any:
    """_convert within the limits, with _check_shape's errors first as when it ran alone."""
    try:
        return _convert(node, file, ctor, [MAX_YAML_VALUES - 1], 1)
    except _MayExceed:
        _check_shape(node, file)  # raises the limit's error, naming where
        # within the limits after all (a collection as a key): no limit, no depth
        return _convert(node, file, ctor, [sys.maxsize], -sys.maxsize)
    except YamlError:
        _check_shape(node, file)  # a limit error comes before a duplicate key
        raise


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document. Raises YamlError with the position of a syntax error."""
    try:
        if len(text) > _SHALLOW_TEXT:
            _check_depth_events(text, file)  # before libyaml's composer recurses in C
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, SourceMap(file)
            data = _convert_checked(node, file, loader)
            return data, SourceMap(file, node, data)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if "maximum nesting depth" in problem:
            # libyaml 0.2.6 (PyYAML 6.0.3 on) stops at 1,000 levels, often before our own
            # check sees level 65 (its scanner looks ahead): say where our limit was passed
            with contextlib.suppress(yaml.YAMLError):
                _check_depth_events(text, file, yaml.SafeLoader)
        raise YamlError(f"YAML syntax: {problem}", _pos(file, mark)) from None
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raise YamlError(f"YAML syntax: {exc}", Pos(file, 1, 1)) from None


# Hostile documents (toolkit/limits.py). libyaml's composer recurses in C without a
# limit and crashed the process at about 50,000 levels of nesting; a text of up to 8 KiB
# cannot nest 8,000 levels (two bytes a level, one for an unclosed flow list), which it
# survived, so only longer texts are checked from the parser's events first.
_SHALLOW_TEXT = 8 * 1024


def _too_deep(file: str, mark: yaml.Mark | None) -> YamlError:
    return YamlError(f"nested more than {MAX_YAML_DEPTH} levels deep (the limit, "
                     "docs/format.md \"Limits\"); flatten the structure", _pos(file, mark))


def _check_depth_events(text: str, file: str, loader_class: type = _Loader) -> None:
    """Raises _too_deep at the first collection nested past the limit (`loader_class`:
    PyYAML's pure-Python loader where libyaml gives up first)."""
    loader = loader_class(text)
    try:
        depth = 0
        while (event := loader.get_event()) is not None:
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise _too_deep(file, event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _check_shape(root: yaml.Node, file: str) -> None:
    """Depth and number of values with aliases expanded, without recursion: an alias bomb
    ("billion laughs") is refused after MAX_YAML_VALUES steps, at the line of the top-level
    entry that expands it, instead of being converted into billions of values."""
    count = 0
    stack: list[tuple[yaml.Node, int, yaml.Node]] = [(root, 1, root)]
    while stack:
        node, depth, top = stack.pop()
        count += 1
        if count > MAX_YAML_VALUES:
            raise YamlError(f"more than {MAX_YAML_VALUES:,} values once aliases (*name) are "
                            "expanded (the limit, docs/format.md \"Limits\"); write the "
                            "values out or use fewer aliases", _pos(file, top.start_mark))
        if depth > MAX_YAML_DEPTH and not isinstance(node, yaml.ScalarNode):
            raise _too_deep(file, node.start_mark)  # as the events count: collections
        if isinstance(node, yaml.MappingNode):
            for knode, vnode in node.value:
                inner = vnode if depth == 1 else top
                stack.append((knode, depth + 1, inner))
                stack.append((vnode, depth + 1, inner))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1, item if depth == 1 else top) for item in node.value)


def iter_paths(data: Any, path: PathKey = ()) -> Iterable[tuple[PathKey, Any]]:
    """Every (path, scalar) in a loaded document, depth first."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from iter_paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from iter_paths(v, (*path, i))
    else:
        yield path, data
