"""YAML loading that remembers where every value came from.

PyYAML's composer (the C one when available) gives nodes with marks; we turn the
node tree into plain Python values plus a SourceMap from key paths to positions.
Schemas then validate plain values, and any error's path maps back to a line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from toolkit.findings import Pos

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

PathKey = tuple[Any, ...]


@dataclass(frozen=True)
class SourceMap:
    """Positions of values (and of mapping keys) in one file, by key path."""

    file: str
    values: dict[PathKey, Pos] = field(default_factory=dict)
    keys: dict[PathKey, Pos] = field(default_factory=dict)

    def at(self, *path: Any) -> Pos:
        """Position of the value at path, or of its nearest ancestor."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), Pos(self.file, 1, 1))

    def key_at(self, *path: Any) -> Pos:
        """Position of the key that introduces path (falls back to the value)."""
        p = tuple(path)
        return self.keys.get(p) or self.at(*p)

    def sub(self, *prefix: Any) -> Located:
        return Located(self, tuple(prefix))


@dataclass(frozen=True)
class Located:
    """A SourceMap viewed from a sub-path: `loc.at("subject")`."""

    smap: SourceMap
    prefix: PathKey = ()

    def at(self, *path: Any) -> Pos:
        return self.smap.at(*self.prefix, *path)

    def key_at(self, *path: Any) -> Pos:
        return self.smap.key_at(*self.prefix, *path)

    def sub(self, *path: Any) -> Located:
        return Located(self.smap, self.prefix + tuple(path))

    @property
    def pos(self) -> Pos:
        return self.smap.at(*self.prefix)


class YamlError(Exception):
    def __init__(self, message: str, pos: Pos):
        super().__init__(message)
        self.message = message
        self.pos = pos


def _pos(file: str, mark: yaml.Mark | None) -> Pos:
    if mark is None:
        return Pos(file, 1, 1)
    return Pos(file, mark.line + 1, mark.column + 1)


def _convert(
    node: yaml.Node, path: PathKey, smap: SourceMap, ctor: yaml.constructor.SafeConstructor
) -> Any:
    smap.values[path] = _pos(smap.file, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if knode.tag == "tag:yaml.org,2002:merge":
                raise YamlError(
                    "YAML merge keys (<<) are not supported", _pos(smap.file, knode.start_mark)
                )
            key = ctor.construct_object(knode, deep=True)
            if isinstance(key, (list, dict)):
                raise YamlError(
                    "a mapping key must be a plain value", _pos(smap.file, knode.start_mark)
                )
            if key in out:
                raise YamlError(f"duplicate key '{key}'", _pos(smap.file, knode.start_mark))
            smap.keys[(*path, key)] = _pos(smap.file, knode.start_mark)
            out[key] = _convert(vnode, (*path, key), smap, ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), smap, ctor) for i, item in enumerate(node.value)]
    return ctor.construct_object(node, deep=True)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document. Raises YamlError with the position of a syntax error."""
    smap = SourceMap(file)
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, smap
            return _convert(node, (), smap, loader), smap
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        raise YamlError(f"YAML syntax: {problem}", _pos(file, mark)) from None
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raise YamlError(f"YAML syntax: {exc}", Pos(file, 1, 1)) from None


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
