"""The GitHub adapter and `approve-review`, against recorded API answers served on loopback.

GitHub cannot be reached here, so a local HTTP server replays recorded answers
(tests/data/github/) and the real adapter talks to it through GITHUB_API_URL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from approval_helpers import CAMPAIGN, edit, load, make_repo, new_key, set_approvers
from conftest import run_campaign

from toolkit.approvals import approval_status
from toolkit.github import GitHub, GitHubError, latest_by_reviewer, read_event

DATA = Path(__file__).parent / "data" / "github"
TOKEN = "ghs_testtoken0000000000000000000000000"
REPO = "valley-health/campaigns"
HEAD = "3f786850e387550fdab836ed7e6dc881de23001b"
Setup = tuple[Path, dict[str, str]]  # (repository root, environment for the CLI)


class FakeGitHub:
    """Serves routes.json; anything else is GitHub's 404; a wrong token is GitHub's 401."""

    def __init__(self) -> None:
        self.routes = json.loads((DATA / "routes.json").read_text())
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Authorization")))
                route = outer.routes.get(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, body, headers = 401, (DATA / "error_401.json").read_bytes(), {}
                elif route is None:
                    status, body, headers = 404, (DATA / "error_404.json").read_bytes(), {}
                else:
                    status, body = 200, (DATA / route["file"]).read_bytes()
                    headers = {k: v.replace("{base}", outer.url)
                               for k, v in route.get("headers", {}).items()}
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeGitHub:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


# --- the adapter ---------------------------------------------------------------------------


def test_reviews_follow_pagination_with_the_token(api: FakeGitHub) -> None:
    gh = GitHub(TOKEN, api_url=api.url)
    reviews = gh.reviews(REPO, 42)
    assert [(r.id, r.login, r.state) for r in reviews] == [
        (2001, "dana-counsel", "COMMENTED"),
        (2002, "dana-counsel", "CHANGES_REQUESTED"),
        (2003, "sam-marketing", "APPROVED"),
        (2004, "dana-counsel", "APPROVED"),
        (2005, "lee-privacy", "APPROVED"),
    ]
    assert [p for p, _ in api.requests] == [
        f"/repos/{REPO}/pulls/42/reviews?per_page=100",
        "/repositories/700000001/pulls/42/reviews?per_page=100&page=2",
    ]
    assert all(auth == f"Bearer {TOKEN}" for _, auth in api.requests)


def test_pull_request_and_single_review(api: FakeGitHub) -> None:
    gh = GitHub(TOKEN, api_url=api.url)
    pr = gh.pull_request(REPO, 42)
    assert (pr.number, pr.head_sha, pr.head_repo, pr.base_ref) == (42, HEAD, REPO, "main")
    review = gh.review(REPO, 42, 2004)
    assert review.commit_id == HEAD and review.login == "dana-counsel"
    assert review.html_url == f"https://github.com/{REPO}/pull/42#pullrequestreview-2004"


def test_latest_verdict_per_reviewer(api: FakeGitHub) -> None:
    latest = latest_by_reviewer(GitHub(TOKEN, api_url=api.url).reviews(REPO, 42))
    assert {k: (v.id, v.state) for k, v in latest.items()} == {
        "dana-counsel": (2004, "APPROVED"),
        "sam-marketing": (2003, "APPROVED"),
        "lee-privacy": (2005, "APPROVED"),
    }


def test_api_errors_are_clear(api: FakeGitHub) -> None:
    with pytest.raises(GitHubError) as err:
        GitHub("wrong-token", api_url=api.url).pull_request(REPO, 42)
    assert err.value.message == f"GitHub API GET /repos/{REPO}/pulls/42: 401 Bad credentials"
    with pytest.raises(GitHubError) as err:
        GitHub(TOKEN, api_url=api.url).pull_request(REPO, 44)
    assert err.value.message == f"GitHub API GET /repos/{REPO}/pulls/44: 404 Not Found"


def test_unreachable_api_is_clear() -> None:
    with FakeGitHub() as fake:
        url = fake.url
    with pytest.raises(GitHubError) as err:
        GitHub(TOKEN, api_url=url, timeout=5).pull_request(REPO, 42)
    assert err.value.message.startswith(f"GitHub API unreachable at {url}:")


def test_read_event_payload() -> None:
    event = read_event(DATA / "event_review_approved.json")
    assert (event.repo, event.action) == (REPO, "submitted")
    review = event.review
    assert (review.id, review.state, review.login) == (2004, "APPROVED", "dana-counsel")
    assert event.pull_request.head_sha == HEAD
    with pytest.raises(GitHubError) as err:
        read_event(DATA / "pull_42.json")
    assert "not a pull_request_review event payload" in err.value.message


# --- approve-review through the command line -----------------------------------------------


@pytest.fixture
def setup(tmp_path: Path, api: FakeGitHub) -> tuple[Path, dict[str, str]]:
    root = make_repo(tmp_path / "repo")
    ci_file, ci_line = new_key(tmp_path / "ci.key")
    _, own_line = new_key(tmp_path / "counsel.key")
    set_approvers(root, [
        {"name": "Dana Counsel", "role": "legal", "public_key": own_line, "github": "Dana-Counsel"},
        {"name": "Lee Privacy", "role": "legal", "public_key": "", "github": "lee-privacy"},
        {"name": "CI review key", "role": "github-review", "public_key": ci_line},
    ])
    env = {"GITHUB_API_URL": api.url, "GITHUB_TOKEN": TOKEN,
           "CAMPAIGN_CI_APPROVAL_KEY": ci_file.read_text(), "AUDIT_KEY": "k",
           "GITHUB_EVENT_PATH": str(DATA / "event_review_approved.json")}
    return root, env


def test_approve_review_records_a_verifiable_approval(setup: Setup) -> None:
    root, env = setup
    r = run_campaign("approve-review", "--commit", HEAD, root=root, env=env)
    assert r.returncode == 0, r.stderr
    rel = f"approvals/{CAMPAIGN}/legal-github-dana-counsel.json"
    assert r.stdout.endswith(f"as legal (review 2004 by dana-counsel); wrote {rel}\n")
    record = json.loads((root / rel).read_text())
    assert record["approver"] == "Dana Counsel"
    assert record["review"] == {
        "reviewer": "dana-counsel", "review_id": 2004, "pull_request": 42, "commit": HEAD,
        "url": f"https://github.com/{REPO}/pull/42#pullrequestreview-2004"}
    status = approval_status(load(root), CAMPAIGN)
    assert status.valid, status.reasons
    assert run_campaign("verify", CAMPAIGN, root=root, env=env).returncode == 0

    # content edited after the review: stale, and verify says what changed
    edit(root / "templates" / "appointment-reminder.mjml", "To change it", "To move it")
    r = run_campaign("verify", CAMPAIGN, root=root, env=env)
    assert r.returncode == 1
    assert "template templates/appointment-reminder.mjml changed since it was approved" in r.stderr


def test_review_record_needs_the_login_to_hold_the_role(setup: Setup,
                                                       tmp_path: Path) -> None:
    root, env = setup
    assert run_campaign("approve-review", "--commit", HEAD, root=root, env=env).returncode == 0
    approvers = (root / "policy" / "approvers.yaml").read_text()
    approvers = approvers.replace("github: Dana-Counsel", "github: someone")
    (root / "policy" / "approvers.yaml").write_text(approvers)
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.reasons[1] == (
        f"  approvals/{CAMPAIGN}/legal-github-dana-counsel.json: "
        "GitHub reviewer 'dana-counsel' is not listed with role 'legal' (github: login) "
        "in policy/approvers.yaml")


def test_review_record_cannot_be_moved_to_another_reviewer(setup: Setup) -> None:
    root, env = setup
    assert run_campaign("approve-review", "--commit", HEAD, root=root, env=env).returncode == 0
    path = root / "approvals" / CAMPAIGN / "legal-github-dana-counsel.json"
    record = json.loads(path.read_text())
    record["review"]["reviewer"] = "lee-privacy"
    path.write_text(json.dumps(record))
    status = approval_status(load(root), CAMPAIGN)
    assert not status.valid
    assert status.reasons[1].endswith(
        "signature does not verify: the record was edited or forged after signing")


def test_a_personal_key_cannot_sign_review_records(setup: Setup,
                                                   tmp_path: Path) -> None:
    root, env = setup
    other, _ = new_key(tmp_path / "other.key")
    env = {**env, "CAMPAIGN_CI_APPROVAL_KEY": other.read_text()}
    r = run_campaign("approve-review", "--commit", HEAD, root=root, env=env)
    assert r.returncode == 2
    assert "is not listed in policy/approvers.yaml with role 'github-review'" in r.stderr


def test_review_of_an_older_commit_is_refused(setup: Setup) -> None:
    root, env = setup
    env = {**env, "GITHUB_EVENT_PATH": str(DATA / "event_review_old_commit.json")}
    r = run_campaign("approve-review", "--commit", HEAD, root=root, env=env)
    assert r.returncode == 1
    assert ("review 2005 by lee-privacy approved commit 89e6c98d9288, but the pull request's "
            "head is now 3f786850e387: the content changed after the review; "
            "ask for a new review") in r.stderr
    assert not (root / "approvals").exists()


def test_working_tree_must_be_the_reviewed_commit(setup: Setup) -> None:
    root, env = setup
    r = run_campaign("approve-review", "--commit", "0" * 40, root=root, env=env)
    assert r.returncode == 2
    assert "the working tree is at 000000000000, not the reviewed commit 3f786850e387" in r.stderr


def test_review_dismissed_since_the_event_records_nothing(setup: Setup) -> None:
    root, env = setup
    env = {**env, "GITHUB_EVENT_PATH": str(DATA / "event_review_later_dismissed.json")}
    r = run_campaign("approve-review", "--commit", HEAD, root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("review 2006 by dana-counsel is dismissed, not an approval; "
                        "nothing recorded\n")
    assert not (root / "approvals").exists()


def test_pull_request_mode_uses_current_approvals_only(setup: Setup) -> None:
    root, env = setup
    r = run_campaign("approve-review", "--repo", REPO, "--pr", "42", "--commit", HEAD,
                     root=root, env=env)
    assert r.returncode == 0, r.stderr
    # dana-counsel approved the head; sam-marketing holds no role; lee-privacy approved
    # an older commit
    assert "sam-marketing holds no approval role in policy/approvers.yaml" in r.stdout
    assert ("review 2005 by lee-privacy approved 89e6c98d9288, not the head 3f786850e387; "
            "nothing recorded") in r.stdout
    assert sorted(p.name for p in (root / "approvals" / CAMPAIGN).iterdir()) == [
        "legal-github-dana-counsel.json"]


def test_approve_review_without_token_is_a_usage_error(setup: Setup) -> None:
    root, env = setup
    env = {**env, "GITHUB_TOKEN": ""}
    r = run_campaign("approve-review", "--commit", HEAD, root=root, env=env)
    assert r.returncode == 2
    assert "GITHUB_TOKEN is not set" in r.stderr


def test_trusted_approvers_file_decides_who_holds_a_role(setup: Setup, tmp_path: Path) -> None:
    root, env = setup
    # the pull request grants dana-counsel the role, but the base branch's approvers.yaml does not
    base = tmp_path / "base-approvers.yaml"
    base.write_text((root / "policy" / "approvers.yaml").read_text().replace(
        "github: Dana-Counsel", "github: someone-else"))
    r = run_campaign("approve-review", "--commit", HEAD, "--approvers", str(base),
                     root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("dana-counsel holds no approval role in policy/approvers.yaml "
                        "(github: login); nothing recorded\n")
    assert not (root / "approvals").exists()
    r = run_campaign("approve-review", "--commit", HEAD, "--approvers", str(tmp_path / "no.yaml"),
                     root=root, env=env)
    assert r.returncode == 2
    assert "no.yaml: no such approvers file" in r.stderr


def test_changes_requested_after_an_approval_withdraws_its_records(setup: Setup) -> None:
    root, env = setup
    r = run_campaign("approve-review", "--repo", REPO, "--pr", "42", "--commit", HEAD,
                     root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert approval_status(load(root), CAMPAIGN).valid
    # on pull request 43 the same reviewer approved, then requested changes
    r = run_campaign("approve-review", "--repo", REPO, "--pr", "43", "--commit", HEAD,
                     root=root, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("dana-counsel's latest review is changes requested: removed "
                        f"approvals/{CAMPAIGN}/legal-github-dana-counsel.json\n")
    assert not approval_status(load(root), CAMPAIGN).valid
