"""The endpoint's HTML pages: plain, semantic, accessible, and script-free.

Every page shares one inline style block; the Content-Security-Policy allows
exactly that block by its hash, and nothing else (no scripts, no images, no
third-party anything). All dynamic text goes through html.escape.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;line-height:1.5;"
    "color:#1a1a1a;background:#fff;margin:0;padding:2rem 1rem}"
    "main{max-width:34rem;margin:0 auto}"
    "h1{font-size:1.5rem;margin:0 0 1rem}"
    "fieldset{border:1px solid #767676;border-radius:.25rem;padding:1rem;margin:0 0 1.25rem}"
    "legend{font-weight:600;padding:0 .25rem}"
    ".choice{display:flex;gap:.5rem;align-items:flex-start;margin:.5rem 0}"
    ".choice input{margin-top:.35rem;width:1.1rem;height:1.1rem}"
    "button{font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:0;"
    "border-radius:.25rem;padding:.7rem 1.4rem;cursor:pointer}"
    "button:focus-visible,input:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}"
    "p.note{color:#4a4a4a;font-size:.95rem}"
)
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode()

# what a suppression kind means to the person reading the page
KIND_WORDS = {
    "commercial": "promotional email",
    "fundraising": "fundraising email",
    "all": "all email",
}


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def choose_page(*, organization: str, kind: str) -> str:
    """GET: nothing changes until the person presses the button (link scanners only GET)."""
    org = escape(organization)
    if kind == "all":
        choices = (
            '<input type="hidden" name="choice" value="all">\n'
            f"<p>You will no longer receive email from {org}.</p>\n"
        )
    else:
        words = KIND_WORDS[kind]
        choices = (
            "<fieldset>\n<legend>What would you like to stop?</legend>\n"
            '<div class="choice">'
            '<input type="radio" id="choice-kind" name="choice" value="kind" checked>'
            f'<label for="choice-kind">Stop {words} from {org}</label></div>\n'
            '<div class="choice">'
            '<input type="radio" id="choice-all" name="choice" value="all">'
            f'<label for="choice-all">Stop all email from {org}</label></div>\n'
            "</fieldset>\n"
        )
    body = (
        f"<h1>Unsubscribe from {org} email</h1>\n"
        '<form method="post">\n'
        f"{choices}"
        '<button type="submit">Unsubscribe</button>\n'
        "</form>\n"
    )
    return _page(f"Unsubscribe – {organization}", body)


def done_page(*, organization: str, kind: str) -> str:
    org = escape(organization)
    words = "email" if kind == "all" else KIND_WORDS[kind]
    body = (
        '<h1>You are unsubscribed</h1>\n'
        f"<p>{org} will send you no more {words}. This applies to every message we send "
        "from now on; there is nothing else you need to do.</p>\n"
    )
    if kind != "all":
        body += ('<p class="note">Messages about your care, such as appointment reminders, '
                 "may still be sent.</p>\n")
    return _page(f"Unsubscribed – {organization}", body)


def invalid_page(*, organization: str, mailto: str | None, reason: str) -> str:
    org = escape(organization)
    body = (
        "<h1>This unsubscribe link is not valid</h1>\n"
        f"<p>{escape(reason)} Nothing was changed.</p>\n"
        "<p>Open the unsubscribe link from the email again, and make sure the whole "
        "link was copied.</p>\n"
    )
    if mailto:
        addr = escape(mailto)
        body += (f'<p>You can also write to {org} at '
                 f'<a href="mailto:{addr}?subject=unsubscribe">{addr}</a> to ask to be '
                 "unsubscribed.</p>\n")
    return _page(f"Invalid unsubscribe link – {organization}", body)
