"""The rule registry: an explicit dict from id to Rule (RULES.md is the catalogue)."""

from __future__ import annotations

from toolkit.rules.base import Rule

RULES: dict[str, Rule] = {}


def _register(*rules: Rule) -> None:
    for r in rules:
        assert r.id not in RULES, f"duplicate rule {r.id}"
        RULES[r.id] = r


# Each family module exposes a tuple RULES of its Rule objects, in catalogue order.
from toolkit.rules import config as _config  # noqa: E402

_register(*_config.RULES)

for _name in ("hipaa", "phi", "canspam", "mailbox", "tracking", "content"):
    try:
        _mod = __import__(f"toolkit.rules.{_name}", fromlist=["RULES"])
    except ModuleNotFoundError as _exc:  # family not written yet
        if _exc.name != f"toolkit.rules.{_name}":
            raise
        continue
    _register(*_mod.RULES)
