"""`campaign approve-review`: record approvals from an approving pull-request review (CI step)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click

from toolkit.cli import App, pass_app
from toolkit.errors import UserError


def _head_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        raise UserError("cannot tell which commit is checked out (no git?)",
                        fix="pass --commit SHA") from None
    return out.stdout.strip()


@click.command("approve-review")
@click.argument("campaign_ids", metavar="[ID]...", nargs=-1)
@click.option("--event", "event_path", type=click.Path(dir_okay=False, path_type=Path),
              help="pull_request_review event payload [default: $GITHUB_EVENT_PATH].")
@click.option("--repo", "repo_name", metavar="OWNER/NAME",
              help="With --pr: read the pull request's reviews instead of an event payload.")
@click.option("--pr", "pr_number", type=int, help="Pull request number (with --repo).")
@click.option("--commit", help="The commit checked out here [default: git rev-parse HEAD].")
@click.option("--approvers", "approvers_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the role holders from this approvers.yaml (the base branch's copy, so "
                   "a pull request cannot grant its own reviewers a role).")
@click.option("--key-env", default="CAMPAIGN_CI_APPROVAL_KEY", show_default=True,
              help="Environment variable holding the CI approval key (PEM or base64 seed).")
@pass_app
def approve_review(app: App, campaign_ids: tuple[str, ...], event_path: Path | None,
                   repo_name: str | None, pr_number: int | None, commit: str | None,
                   approvers_file: Path | None, key_env: str) -> int:
    """Sign approvals for a reviewer whose GitHub login holds a role in policy/approvers.yaml.

    With no ID, covers every campaign not yet approved for the reviewer's role.
    The review must have approved the pull request's current head, which must
    be the commit checked out here.
    """
    from toolkit.audit import audit_event
    from toolkit.github import GitHub, latest_by_reviewer, read_event
    from toolkit.review_approval import (
        ci_key,
        record_review,
        reviewer_entries,
        with_approvers,
        withdraw_review,
    )

    repo, _ = app.load()
    if approvers_file is not None:
        repo = with_approvers(repo, approvers_file)
    key = ci_key(key_env)
    gh = GitHub.from_env()
    if repo_name or pr_number:
        if not (repo_name and pr_number):
            raise UserError("--repo and --pr go together")
        pr = gh.pull_request(repo_name, pr_number)
        reviews = []
        for r in latest_by_reviewer(gh.reviews(repo_name, pr_number)).values():
            if r.state != "APPROVED":
                for path in withdraw_review(repo, r.login):
                    click.echo(f"{r.login}'s latest review is {r.state.lower().replace('_', ' ')}: "
                               f"removed {path.relative_to(repo.root).as_posix()}")
                continue
            if r.commit_id != pr.head_sha:
                click.echo(f"review {r.id} by {r.login} approved {r.commit_id[:12]}, not the "
                           f"head {pr.head_sha[:12]}; nothing recorded")
                continue
            reviews.append(r)
    else:
        path = event_path or Path(os.environ.get("GITHUB_EVENT_PATH") or "")
        if not str(path):
            raise UserError("no event payload: GITHUB_EVENT_PATH is not set",
                            fix="run in a pull_request_review workflow, or pass --repo and --pr")
        event = read_event(path)
        repo_name = event.repo
        # the payload says what happened; the API says whether it still holds (not dismissed,
        # and which commit the pull request is at now)
        review = gh.review(repo_name, event.pull_request.number, event.review.id)
        pr = gh.pull_request(repo_name, event.pull_request.number)
        reviews = [review]
    commit = commit or _head_commit(repo.root)

    recorded = []
    for review in reviews:
        if review.state != "APPROVED":
            click.echo(f"review {review.id} by {review.login} is {review.state.lower()}, "
                       "not an approval; nothing recorded")
            continue
        if not reviewer_entries(repo, review.login):
            click.echo(f"{review.login} holds no approval role in policy/approvers.yaml "
                       "(github: login); nothing recorded")
            continue
        got = record_review(repo, repo_name=repo_name, pr=pr, review=review, key=key,
                            commit=commit, campaign_ids=list(campaign_ids))
        for r in got:
            rel = r.path.relative_to(repo.root).as_posix()
            click.echo(f"{r.campaign}: approved {r.digest} as {r.role} "
                       f"(review {review.id} by {review.login}); wrote {rel}")
            audit_event(repo, "approve", campaign=r.campaign, digest=r.digest, role=r.role,
                        reviewer=review.login, review_id=review.id, pull_request=pr.number,
                        commit=review.commit_id, record=rel)
        if not got:
            click.echo(f"{review.login}: every campaign is already approved for their role")
        recorded.extend(got)
    return 0
