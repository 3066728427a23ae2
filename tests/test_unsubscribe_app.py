"""The unsubscribe endpoint over real HTTP (uvicorn on loopback) into the real store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from unsubscribe_helpers import AUDIT_KEY, SECRET, scaffold_repo, serve, store_of

from toolkit.errors import UserError
from toolkit.pseudonym import pseudonym
from toolkit.tokens import make_token
from toolkit.unsubscribe import create_app, route_path

PSEUDO = pseudonym("pat.doe@example.org", AUDIT_KEY)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def token(kind: str = "commercial", campaign: str = "spring-checkup",
          secret: bytes = SECRET) -> str:
    return make_token(secret, pseudonym=PSEUDO, campaign=campaign, kind=kind)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return scaffold_repo(tmp_path / "repo")


@pytest.fixture
def base(repo: Path) -> Iterator[str]:
    with serve(create_app(repo, secrets=[SECRET])) as url:
        yield url


def entries(repo: Path) -> list[tuple[str | None, str | None, str, str]]:
    with store_of(repo) as store:
        return [(e.address, e.pseudonym, e.kind, e.source) for e in store.list()]


# --- one-click ---------------------------------------------------------------------------


def test_one_click_post_suppresses_at_once(base: str, repo: Path) -> None:
    r = httpx.post(f"{base}/unsubscribe/{token()}", data=ONE_CLICK)
    assert (r.status_code, r.text) == (200, "Unsubscribed.\n")
    assert r.headers["content-type"].startswith("text/plain")
    assert "set-cookie" not in r.headers and "location" not in r.headers
    assert entries(repo) == [(None, PSEUDO, "commercial", "unsubscribe-one-click:spring-checkup")]
    with store_of(repo) as store:
        assert store.is_suppressed(None, PSEUDO, ["all", "commercial"])
        assert not store.is_suppressed(None, PSEUDO, ["all"])  # transactional mail still flows


def test_one_click_as_multipart_and_idempotent(base: str, repo: Path) -> None:
    url = f"{base}/unsubscribe/{token('fundraising')}"
    for _ in range(3):
        r = httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")})
        assert (r.status_code, r.text) == (200, "Unsubscribed.\n")
    assert entries(repo) == [(None, PSEUDO, "fundraising", "unsubscribe-one-click:spring-checkup")]


@pytest.mark.parametrize("body,ctype", [
    (b"", "application/x-www-form-urlencoded"),
    (b"List-Unsubscribe=Yes", "application/x-www-form-urlencoded"),
    (b"List-Unsubscribe=One-Click", "text/plain"),
    (b"choice=everything", "application/x-www-form-urlencoded"),
    (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
])
def test_post_that_says_nothing_is_400_and_changes_nothing(base: str, repo: Path, body: bytes,
                                                          ctype: str) -> None:
    r = httpx.post(f"{base}/unsubscribe/{token()}", content=body, headers={"content-type": ctype})
    assert r.status_code == 400
    assert "The request did not say what to unsubscribe from. Nothing was changed." in r.text
    assert entries(repo) == []


def test_oversized_body_is_refused(base: str, repo: Path) -> None:
    body = b"List-Unsubscribe=One-Click&" + b"x" * 9000
    r = httpx.post(f"{base}/unsubscribe/{token()}", content=body,
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert entries(repo) == []


# --- bad tokens -------------------------------------------------------------------------------


def _altered() -> str:
    parts = token().split(".")
    parts[3] = "all"
    return ".".join(parts)


@pytest.mark.parametrize("bad,reason", [
    (_altered(), "The link is incomplete or has been changed."),
    (token(secret=b"forger"), "The link is incomplete or has been changed."),
    (token()[:-3], "The link is incomplete or has been changed."),
    ("hello", "The link is incomplete or has been changed."),
    ("v9" + token()[2:], "This link is from an older email and is no longer accepted."),
])
def test_bad_token_is_400_page_and_changes_nothing(base: str, repo: Path, bad: str,
                                                   reason: str) -> None:
    for r in (httpx.get(f"{base}/unsubscribe/{bad}"),
              httpx.post(f"{base}/unsubscribe/{bad}", data=ONE_CLICK),
              httpx.post(f"{base}/unsubscribe/{bad}", data={"choice": "all"})):
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("text/html")
        assert "<h1>This unsubscribe link is not valid</h1>" in r.text
        assert f"{reason} Nothing was changed." in r.text
        assert "unsubscribe@clinic.example.org" in r.text
    assert entries(repo) == []


# --- the page ---------------------------------------------------------------------------------


def test_get_shows_an_accessible_page_and_changes_nothing(base: str, repo: Path) -> None:
    r = httpx.get(f"{base}/unsubscribe/{token()}")
    assert r.status_code == 200
    html = r.text
    assert html.startswith("<!doctype html>\n<html lang=\"en\">")
    assert "<h1>Unsubscribe from Example Clinic email</h1>" in html
    assert '<form method="post">' in html
    assert html.count("<button") == 1 and '<button type="submit">Unsubscribe</button>' in html
    for id_, text in (("choice-kind", "Stop promotional email from Example Clinic"),
                      ("choice-all", "Stop all email from Example Clinic")):
        assert f'id="{id_}"' in html and f'<label for="{id_}">{text}</label>' in html
    assert "<script" not in html.lower() and "http" not in html  # nothing fetched, nothing linked
    assert entries(repo) == []  # link scanners GET every URL: a GET must never unsubscribe


def test_page_for_an_all_token_has_no_choice(base: str) -> None:
    html = httpx.get(f"{base}/unsubscribe/{token('all')}").text
    assert '<input type="hidden" name="choice" value="all">' in html
    assert 'type="radio"' not in html


@pytest.mark.parametrize("choice,kind,sentence", [
    ("kind", "commercial", "Example Clinic will send you no more promotional email."),
    ("all", "all", "Example Clinic will send you no more email."),
])
def test_page_form_post_confirms(base: str, repo: Path, choice: str, kind: str,
                                 sentence: str) -> None:
    r = httpx.post(f"{base}/unsubscribe/{token()}", data={"choice": choice})
    assert r.status_code == 200
    assert '<h1>You are unsubscribed</h1>' in r.text and sentence in r.text
    assert entries(repo) == [(None, PSEUDO, kind, "unsubscribe-page:spring-checkup")]


def test_security_headers_on_every_response(base: str) -> None:
    for r in (httpx.get(f"{base}/unsubscribe/{token()}"), httpx.get(f"{base}/unsubscribe/bad"),
              httpx.post(f"{base}/unsubscribe/{token()}", data=ONE_CLICK),
              httpx.put(f"{base}/unsubscribe/{token()}"), httpx.get(f"{base}/nowhere")):
        csp = r.headers["content-security-policy"]
        assert csp.startswith("default-src 'none'; style-src 'sha256-")
        assert "script-src" not in csp and "form-action 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert "server" not in r.headers  # say nothing about the software


def test_style_hash_matches_the_inline_style(base: str) -> None:
    import base64
    import hashlib

    r = httpx.get(f"{base}/unsubscribe/{token()}")
    style = re.search(r"<style>(.*?)</style>", r.text, re.S).group(1)  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in r.headers["content-security-policy"]


# --- health, paths, mounting ----------------------------------------------------------------------


def test_healthz_checks_the_store(base: str, repo: Path, tmp_path: Path) -> None:
    r = httpx.get(f"{base}/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    (tmp_path / "a-file").write_text("")
    broken = create_app(repo, secrets=[SECRET], store_path=tmp_path / "a-file" / "s.sqlite3")
    with serve(broken) as url:
        r = httpx.get(f"{url}/healthz")
        assert (r.status_code, r.json()) == (503, {"status": "error",
                                                   "detail": "suppression store not writable"})
        r = httpx.post(f"{url}/unsubscribe/{token()}", data=ONE_CLICK)
        assert (r.status_code, r.headers["retry-after"]) == (503, "60")
        assert r.text == "The unsubscribe could not be recorded just now; please try again.\n"


def test_path_follows_unsubscribe_url(repo: Path) -> None:
    cfg = repo / "toolkit.yaml"
    cfg.write_text(cfg.read_text().replace("https://clinic.example.org/unsubscribe/{token}",
                                           "https://clinic.example.org/email/u/{token}"))
    with serve(create_app(repo, secrets=[SECRET])) as url:
        assert httpx.post(f"{url}/email/u/{token()}", data=ONE_CLICK).status_code == 200
        assert httpx.post(f"{url}/unsubscribe/{token()}", data=ONE_CLICK).status_code == 404


@pytest.mark.parametrize("url", ["https://x.example.org/unsubscribe", "https://x.example.org/u?t={token}",
                                 "https://x.example.org/{token}/x", "https://x.example.org/{id}/{token}"])
def test_url_without_a_token_segment_is_a_config_error(url: str) -> None:
    with pytest.raises(UserError, match=r"^toolkit\.yaml: unsubscribe\.url"):
        route_path(url)


def test_mounts_inside_another_asgi_app(repo: Path) -> None:
    outer = Starlette(routes=[Mount("/mail", app=create_app(repo, secrets=[SECRET]))])
    with serve(outer) as url:
        assert httpx.post(f"{url}/mail/unsubscribe/{token()}", data=ONE_CLICK).status_code == 200
    assert entries(repo) == [(None, PSEUDO, "commercial", "unsubscribe-one-click:spring-checkup")]


def test_command_serves_until_stopped(repo: Path) -> None:
    env = {**os.environ, "UNSUBSCRIBE_SECRET": SECRET.decode()}
    cmd = [sys.executable, "-m", "toolkit", "--root", str(repo),
           "unsubscribe-server", "--port", "0"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        pattern = r"unsubscribe endpoint: (http://127\.0\.0\.1:\d+)/unsubscribe/\{token\}\n"
        m = re.fullmatch(pattern, line)
        assert m, line
        r = httpx.post(f"{m.group(1)}/unsubscribe/{token()}", data=ONE_CLICK, timeout=30)
        assert r.status_code == 200
        assert httpx.get(f"{m.group(1)}/healthz", timeout=30).json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert entries(repo) == [(None, PSEUDO, "commercial", "unsubscribe-one-click:spring-checkup")]


def test_command_without_secret_is_a_clear_error(repo: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "UNSUBSCRIBE_SECRET"}
    r = subprocess.run([sys.executable, "-m", "toolkit", "--root", str(repo), "unsubscribe-server"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "environment variable UNSUBSCRIBE_SECRET is not set" in r.stderr
    assert "Traceback" not in r.stderr


def test_command_with_a_url_it_cannot_serve_names_the_line(repo: Path) -> None:
    cfg = repo / "toolkit.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace("/unsubscribe/{token}", "/unsubscribe?t={token}"))
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.strip().startswith("url:"))
    env = {**os.environ, "UNSUBSCRIBE_SECRET": SECRET.decode()}
    r = subprocess.run([sys.executable, "-m", "toolkit", "--root", str(repo), "unsubscribe-server"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == (f"Error: toolkit.yaml:{line}:8: unsubscribe.url must put {{token}} as the "
                        "last segment of the path\n  fix: unsubscribe:\n"
                        '    url: "https://your.domain/unsubscribe/{token}"\n')


def test_concurrent_one_clicks_are_all_committed(base: str, repo: Path) -> None:
    import asyncio

    people = [pseudonym(f"p{i}@example.org", AUDIT_KEY) for i in range(40)]
    paths = [f"/unsubscribe/{make_token(SECRET, pseudonym=p, campaign='c', kind='commercial')}"
             for p in people]

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            answers = await asyncio.gather(*(client.post(p, data=ONE_CLICK) for p in paths))
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [200] * 40
    with store_of(repo) as store:
        assert sorted(e.pseudonym for e in store.list()) == sorted(people)
