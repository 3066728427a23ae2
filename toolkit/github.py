"""A small adapter for GitHub's REST API: pull requests and their reviews (docs/github.md).

Only the standard library (urllib), so the CI step needs no extra dependency.
The base URL comes from GITHUB_API_URL (set by Actions, and pointing at a
GitHub Enterprise Server when there is one), the token from GITHUB_TOKEN.
Lists follow the `Link: <...>; rel="next"` header until the last page.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

DEFAULT_API = "https://api.github.com"
MAX_PAGES = 100  # 10,000 items: far more reviews than any pull request has
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class GitHubError(click.ClickException):
    """The API refused or failed, or an event payload is not what was expected (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Review:
    id: int
    login: str
    state: str  # upper case, as the REST API gives it: APPROVED, CHANGES_REQUESTED, COMMENTED, ...
    commit_id: str
    html_url: str
    submitted_at: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Review:
        try:
            return cls(
                id=int(data["id"]),
                login=str(data["user"]["login"]),
                state=str(data["state"]).upper(),
                commit_id=str(data["commit_id"]),
                html_url=str(data.get("html_url") or ""),
                submitted_at=data.get("submitted_at"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GitHubError(f"unexpected review object from GitHub (missing {exc})") from None


@dataclass(frozen=True)
class PullRequest:
    number: int
    head_sha: str
    head_repo: str  # owner/name the head branch lives in (differs from the base repo for forks)
    base_ref: str
    state: str
    html_url: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PullRequest:
        try:
            head = data["head"]
            return cls(
                number=int(data["number"]),
                head_sha=str(head["sha"]),
                head_repo=str((head.get("repo") or {}).get("full_name") or ""),
                base_ref=str(data["base"]["ref"]),
                state=str(data["state"]),
                html_url=str(data.get("html_url") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GitHubError(f"unexpected pull request from GitHub (missing {exc})") from None


@dataclass(frozen=True)
class ReviewEvent:
    """What a `pull_request_review` event payload says (GITHUB_EVENT_PATH)."""

    repo: str
    action: str
    review: Review
    pull_request: PullRequest


def read_event(path: Path) -> ReviewEvent:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GitHubError(f"{path}: no event payload (not a pull_request_review run?)") from None
    except (OSError, ValueError):
        raise GitHubError(f"{path}: the event payload is not JSON") from None
    if not isinstance(data, dict) or "review" not in data or "pull_request" not in data:
        raise GitHubError(f"{path}: not a pull_request_review event payload; run this step "
                          "`on: pull_request_review` or pass --repo and --pr")
    try:
        repo = str(data["repository"]["full_name"])
    except (KeyError, TypeError):
        raise GitHubError(f"{path}: the event payload names no repository") from None
    return ReviewEvent(repo=repo, action=str(data.get("action", "")),
                       review=Review.from_json(data["review"]),
                       pull_request=PullRequest.from_json(data["pull_request"]))


class GitHub:
    """GitHub's REST API with a token; `api_url` is overridable (Enterprise Server, tests)."""

    def __init__(self, token: str, *, api_url: str | None = None, timeout: float = 30):
        self.token = token
        self.api_url = (api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_env(cls) -> GitHub:
        token = os.environ.get("GITHUB_TOKEN")
        if not token:
            raise GitHubError("GITHUB_TOKEN is not set; in a workflow pass "
                              "`env: GITHUB_TOKEN: ${{ github.token }}` to this step")
        return cls(token)

    def _get(self, url: str) -> tuple[Any, str | None]:
        if not url.startswith(("http://", "https://")):
            url = self.api_url + url
        req = urllib.request.Request(url, headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "campaign-toolkit",
        })
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read()
                link = resp.headers.get("Link")
        except urllib.error.HTTPError as exc:
            detail = ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(exc.read()).get("message", "")
            path = urllib.parse.urlsplit(url).path
            raise GitHubError(f"GitHub API GET {path}: {exc.code} {detail or exc.reason}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(f"GitHub API unreachable at {self.api_url}: {reason}") from None
        try:
            return json.loads(body), link
        except ValueError:
            raise GitHubError(f"GitHub API GET {url}: the answer is not JSON") from None

    def _pages(self, path: str) -> Iterator[Any]:
        sep = "&" if "?" in path else "?"
        url: str | None = f"{path}{sep}per_page=100"
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise GitHubError(f"GitHub API GET {path}: pagination does not end")
            seen.add(url)
            data, link = self._get(url)
            if not isinstance(data, list):
                raise GitHubError(f"GitHub API GET {path}: expected a list")
            yield from data
            m = _NEXT.search(link or "")
            url = m.group(1) if m else None

    def pull_request(self, repo: str, number: int) -> PullRequest:
        data, _ = self._get(f"/repos/{repo}/pulls/{number}")
        return PullRequest.from_json(data)

    def reviews(self, repo: str, number: int) -> list[Review]:
        return [Review.from_json(r) for r in self._pages(f"/repos/{repo}/pulls/{number}/reviews")]

    def review(self, repo: str, number: int, review_id: int) -> Review:
        data, _ = self._get(f"/repos/{repo}/pulls/{number}/reviews/{review_id}")
        return Review.from_json(data)


def latest_by_reviewer(reviews: list[Review]) -> dict[str, Review]:
    """Each reviewer's review that counts now: the last one that approved or requested changes.

    Comments do not change a reviewer's verdict (as in GitHub's own UI); a later
    "changes requested" or a dismissal does.
    """
    out: dict[str, Review] = {}
    for r in reviews:
        if r.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            out[r.login.lower()] = r
    return out
