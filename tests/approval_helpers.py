"""Helpers for approval, audit and GitHub tests: a scaffold copy with approvers and keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from toolkit import keys
from toolkit.loader import load_repo
from toolkit.models import Repo

SCAFFOLD = Path(__file__).resolve().parent.parent / "toolkit" / "scaffold"
CAMPAIGN = "appointment-reminder"


def make_repo(root: Path) -> Path:
    """The scaffold, plus an authorization form the campaign requires (so it is a digest input)."""
    shutil.copytree(SCAFFOLD, root)
    (root / "policy" / "authorizations").mkdir(parents=True, exist_ok=True)
    (root / "policy" / "authorizations" / "reminders.yaml").write_text(
        "title: Reminder authorization\n"
        "information: appointment dates\n"
        "recipients_of_information: Example Clinic\n"
        "purposes: [appointment reminders]\n"
        "expiration: one year after signing\n"
        "revocation: in writing to the privacy office\n"
        "conditioning: treatment does not depend on signing\n"
        "redisclosure: information may be redisclosed by the recipient\n",
        encoding="utf-8",
    )
    camp = root / "campaigns" / CAMPAIGN / "campaign.yaml"
    camp.write_text(camp.read_text(encoding="utf-8") + "authorization: {scope: reminders}\n",
                    encoding="utf-8")
    return root


def new_key(path: Path) -> tuple[Path, str]:
    return path, keys.write_keypair(path)


def set_approvers(root: Path, entries: list[dict[str, str]], roles: list[str] | None = None,
                  ) -> None:
    (root / "policy" / "approvers.yaml").write_text(yaml.safe_dump({"approvers": entries}),
                                                    encoding="utf-8")
    if roles is not None:
        cfg = root / "toolkit.yaml"
        data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
        data["approvals"] = {"required_roles": roles}
        cfg.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def load(root: Path) -> Repo:
    repo, _ = load_repo(root)
    return repo


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
