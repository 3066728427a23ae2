"""Campaign rules in forked worker processes (toolkit/lint_workers.py): the same findings
in the same order as one process; a child that fails or sends garbage is linted again
by the parent, which then raises what the child met."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rule_helpers import ROOT, make_repo

from toolkit import lint_workers
from toolkit.lint import run_lint
from toolkit.loader import load_repo


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example repository (11 campaigns) with findings: the promotional footer loses
    its unsubscribe link."""
    root = tmp_path / "repo"
    for part in ("toolkit.yaml", "templates", "segments", "policy", "fixtures", "campaigns"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, root / part)
        else:
            root.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / part)
    footer = root / "templates" / "partials" / "footer-promotional.mjml"
    text = footer.read_text(encoding="utf-8")
    assert "{{ unsubscribe_url }}" in text
    footer.write_text(text.replace("{{ unsubscribe_url }}", "https://example.org/x"),
                      encoding="utf-8")
    return root


def count_forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids lint_workers forks from now on (the list fills as it forks)."""
    forks: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        forks.append(pid)
        return pid

    monkeypatch.setattr(lint_workers.os, "fork", counting_fork)
    return forks


def lint(root: Path, workers: int) -> tuple[object, ...]:
    repo, load_findings = load_repo(root)
    return run_lint(repo, load_findings, workers=workers).findings


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_workers_give_the_findings_of_one_process(example: Path, workers: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    one = lint(example, 1)
    assert one, "the fixture should have findings"
    monkeypatch.setattr(lint_workers, "MIN_PER_WORKER", 1)
    forks = count_forks(monkeypatch)
    assert lint(example, workers) == one
    assert len(forks) == workers - 1


def test_too_few_campaigns_stay_in_one_process(example: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked")

    monkeypatch.setattr(lint_workers.os, "fork", no_fork)
    assert lint(example, 4) == lint(example, 1)  # 11 campaigns < 2 x MIN_PER_WORKER


def test_a_garbled_answer_is_linted_again_here(example: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    one = lint(example, 1)
    monkeypatch.setattr(lint_workers, "MIN_PER_WORKER", 1)
    monkeypatch.setattr(lint_workers.orjson, "dumps", lambda rows: b'[["not a finding"]]')
    assert lint(example, 2) == one


def test_a_rule_that_fails_in_a_child_fails_the_lint(example: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.lint

    real = toolkit.lint.campaign_findings
    repo, load_findings = load_repo(example)
    last = sorted(repo.campaigns)[-1]  # in the last share: a child lints it first

    def failing(repo_: object, camp: object) -> object:
        if getattr(camp, "id", None) == last:
            raise RuntimeError("a rule failed")
        return real(repo_, camp)  # type: ignore[arg-type]

    monkeypatch.setattr(lint_workers, "MIN_PER_WORKER", 1)
    monkeypatch.setattr(toolkit.lint, "campaign_findings", failing)
    with pytest.raises(RuntimeError, match="a rule failed"):
        run_lint(repo, load_findings, workers=2)


def test_the_cli_lint_of_many_campaigns_matches_one_process(example: Path) -> None:
    import json

    from conftest import run_campaign

    # enough campaigns for `campaign lint` to fork where it may run on two CPUs or more
    sources = sorted((example / "campaigns").glob("*/campaign.yaml"))
    for i in range(2 * lint_workers.MIN_PER_WORKER):
        src = sources[i % len(sources)]
        dest = example / "campaigns" / f"{src.parent.name}-{i:03d}" / "campaign.yaml"
        dest.parent.mkdir()
        dest.write_text(src.read_text(encoding="utf-8").replace("title: ", f"title: {i} ", 1),
                        encoding="utf-8")
    got = run_campaign("lint", "--no-cache", "--format", "json", root=example)
    assert got.returncode == 1, got.stderr
    cli = [(f["rule"], f["file"], f["line"], f["column"], f["campaign"], f["message"])
           for f in json.loads(got.stdout)["findings"]]
    here = [(f.rule, f.file, f.line, f.column, f.campaign, f.message) for f in lint(example, 1)]
    assert cli == here


def test_scaffold_findings_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_repo(tmp_path, replace={"toolkit.yaml": [("guarantees_encryption: true",
                                                          "guarantees_encryption: false")]})
    monkeypatch.setattr(lint_workers, "MIN_PER_WORKER", 1)
    assert lint(root, 2) == lint(root, 1)


# --- workers forked before loading (a cold `campaign lint`) -------------------------------

def lint_as_the_command(root: Path, workers: int, monkeypatch: pytest.MonkeyPatch,
                        no_cache: bool = True) -> tuple[tuple[object, ...], list[int]]:
    """(findings, the pids forked) of `campaign lint`'s own path (lint_repository) with
    `workers` processes and shares of any size."""
    from toolkit.commands.lint import lint_repository

    monkeypatch.setattr(lint_workers, "MIN_PER_WORKER", 1)
    monkeypatch.setattr(lint_workers, "available_workers", lambda: workers)
    forks = count_forks(monkeypatch)
    _, result = lint_repository(root, no_cache=no_cache)
    monkeypatch.undo()
    return result.findings, forks


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_forked_before_loading_give_the_findings_of_one_process(
        example: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    one = lint(example, 1)
    got, forks = lint_as_the_command(example, workers, monkeypatch)
    assert got == one
    assert len(forks) == workers - 1


def test_a_child_forked_before_loading_that_fails_is_linted_again_here(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = lint(example, 1)

    def failing(root: Path, share: list[str]) -> object:
        raise RuntimeError("the child failed")

    monkeypatch.setattr(lint_workers, "_lint_share", failing)
    got, forks = lint_as_the_command(example, 2, monkeypatch)
    assert got == one and len(forks) == 1


def test_a_garbled_answer_from_before_loading_is_linted_again_here(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = lint(example, 1)
    monkeypatch.setattr(lint_workers, "_lint_share",
                        lambda root, share: {"not-a-campaign": [["x"]]})
    got, _ = lint_as_the_command(example, 2, monkeypatch)
    assert got == one


def test_with_a_lint_cache_nothing_forks_before_loading(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, forks = lint_as_the_command(example, 2, monkeypatch, no_cache=False)
    assert forks  # no cache yet: forked before loading, and the cache written
    assert list((example / ".campaign").rglob("findings.json"))
    again, forks = lint_as_the_command(example, 2, monkeypatch, no_cache=False)
    assert again == first
    assert forks == []  # every campaign from the cache: no worker at all


def test_workers_forked_before_a_load_that_fails_are_stopped_and_reaped(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.commands.lint import lint_repository

    monkeypatch.setattr(lint_workers, "MIN_PER_WORKER", 1)
    monkeypatch.setattr(lint_workers, "available_workers", lambda: 3)
    forks = count_forks(monkeypatch)

    def failing_load() -> object:
        raise RuntimeError("the load failed")

    with pytest.raises(RuntimeError, match="the load failed"):
        lint_repository(example, no_cache=True, load=failing_load)  # type: ignore[arg-type]
    assert len(forks) == 2
    for pid in forks:  # killed and reaped: nothing left to wait for
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
