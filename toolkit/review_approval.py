"""Approval records made from an approving pull-request review (docs/approvals.md).

The reviewer never touches a key: a CI step, run when a review is submitted,
checks that the reviewer's GitHub login holds a role in policy/approvers.yaml
and that the review approved exactly the commit whose content is checked out,
then signs a record with the CI key. The record names the reviewer, the review
and the commit, and `verify` accepts it only while the login still holds the
role and the digest is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from toolkit import keys
from toolkit.approvals import (
    CI_ROLE,
    ReviewRef,
    approval_status,
    approver_for_key,
    make_record,
    write_record,
)
from toolkit.errors import CheckFailed, UserError
from toolkit.github import PullRequest, Review
from toolkit.models import Approver, Repo


@dataclass(frozen=True)
class Recorded:
    campaign: str
    role: str
    path: Path
    digest: str


def ci_key(env_name: str) -> Ed25519PrivateKey:
    import os

    text = os.environ.get(env_name)
    if not text:
        raise UserError(
            f"environment variable {env_name} is not set; it holds the CI approval key",
            fix=f"store the key from `campaign keygen` as the repository secret {env_name}")
    try:
        return keys.private_key_from_text(text)
    except keys.KeyFormatError as exc:
        raise UserError(f"{env_name}: {exc}") from None


def with_approvers(repo: Repo, path: Path) -> Repo:
    """The repository as loaded, but with the approvers listed in `path` (a trusted copy)."""
    import dataclasses

    from toolkit.loader import Loader
    from toolkit.models import ApproversFile

    if not path.is_file():
        raise UserError(f"{path}: no such approvers file")
    ld = Loader(path.parent)
    model = ld.load_one(path, ApproversFile)
    if model is None:
        where = f"{path}:{ld.findings[0].pos.line}" if ld.findings else str(path)
        detail = ld.findings[0].message if ld.findings else "empty or not a mapping"
        raise UserError(f"cannot read the approvers: {detail}", where=where)
    return dataclasses.replace(repo, approvers=model.approvers)


def reviewer_entries(repo: Repo, login: str) -> list[Approver]:
    return [a for a in repo.approvers
            if a.github and a.github.lower() == login.lower() and a.role != CI_ROLE]


def record_review(repo: Repo, *, repo_name: str, pr: PullRequest, review: Review,
                  key: Ed25519PrivateKey, commit: str, campaign_ids: list[str]) -> list[Recorded]:
    """Sign one record per (campaign, role the reviewer holds). [] when there is nothing to do."""
    if review.state != "APPROVED":
        return []
    if review.commit_id != pr.head_sha:
        raise CheckFailed(
            f"review {review.id} by {review.login} approved commit {review.commit_id[:12]}, "
            f"but the pull request's head is now {pr.head_sha[:12]}: "
            "the content changed after the review; ask for a new review")
    if commit != review.commit_id:
        raise UserError(
            f"the working tree is at {commit[:12]}, "
            f"not the reviewed commit {review.commit_id[:12]}",
            fix="check out the pull request head (actions/checkout with "
                "ref: ${{ github.event.pull_request.head.sha }})")
    line = keys.public_line(key)
    if approver_for_key(repo, line, CI_ROLE) is None:
        raise UserError(f"the CI approval key {line} is not listed in policy/approvers.yaml "
                        f"with role '{CI_ROLE}'",
                        fix=f"add an entry {{name: CI review key, role: {CI_ROLE}, "
                            f"public_key: {line}}}")
    holders = reviewer_entries(repo, review.login)
    ref = ReviewRef(reviewer=review.login, review_id=review.id, url=review.html_url,
                    pull_request=pr.number, commit=review.commit_id)
    out: list[Recorded] = []
    for entry in holders:
        targets = campaign_ids or [cid for cid in sorted(repo.campaigns)
                                   if entry.role not in approval_status(repo, cid).approved_roles]
        for cid in targets:
            record = make_record(repo, cid, role=entry.role, approver=entry.name, key=key,
                                 review=ref)
            out.append(Recorded(cid, entry.role, write_record(repo, record, ref), record["digest"]))
    return out


def withdraw_review(repo: Repo, login: str) -> list[Path]:
    """Remove the records made from this reviewer's reviews (their verdict is no longer
    an approval: changes requested, or the review was dismissed)."""
    import json

    removed: list[Path] = []
    for path in sorted((repo.root / "approvals").glob("*/*.json")):
        try:
            review = json.loads(path.read_text(encoding="utf-8")).get("review")
        except (OSError, ValueError, AttributeError, RecursionError):  # a hostile record
            continue
        if isinstance(review, dict) and str(review.get("reviewer", "")).lower() == login.lower():
            path.unlink()
            removed.append(path)
    return removed
