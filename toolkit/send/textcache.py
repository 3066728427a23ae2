"""The text part, shared between messages that differ only by their unsubscribe token.

The plain-text alternative (toolkit.plaintext.html_to_text) is the costliest step of
a message, and in a campaign with little personalization most messages' HTML
differs only by the recipient's token. The token is swapped for a placeholder of
the same length made of one letter that html_to_text treats like any other word
character (it neither wraps lines nor interprets word characters), the text of
that HTML is computed once, and the token swapped back. When the swap could be
ambiguous (the placeholder letter next to a token, or already in the HTML) the
text is computed directly. tests/test_send.py checks the result against the
renderer's own text part.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from toolkit.plaintext import html_to_text

SIZE = 512  # distinct texts kept per process
# After TRIAL lookups, a cache that found fewer than one in HIT_RATE stops looking: when
# every message's HTML is its own (a name in the greeting), hashing 20 KB per message
# finds nothing. The placeholder swap stays: it lets html_to_text share the link's cell.
TRIAL = 256
HIT_RATE = 16


class TextCache:
    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._texts: OrderedDict[bytes, str] = OrderedDict()
        self.looking = True

    def text(self, html: str, token: str, values: tuple[str, ...] = ()) -> str:
        """`values`: the recipient's, from toolkit.plaintext.swap_values (same text)."""
        ph = "x" * len(token)
        n = html.count(token) if token else 0
        if not n or "x" + token in html or token + "x" in html or ph in html:
            self.misses += 1
            return html_to_text(html, values)
        key_html = html.replace(token, ph)
        key = (hashlib.blake2b(key_html.encode("utf-8"), digest_size=16).digest()
               if self.looking else b"")
        text = self._texts.get(key) if self.looking else None
        if text is None:
            self.misses += 1
            text = html_to_text(key_html, values)
            if text.count(ph) != n or ph + "x" in text or "x" + ph in text:
                return html_to_text(html, values)  # the layout touched the placeholder: no shortcut
            if self.looking:
                self._texts[key] = text
                if len(self._texts) > self.size:
                    self._texts.popitem(last=False)
                if self.hits + self.misses >= TRIAL and self.hits * HIT_RATE < self.misses:
                    self.looking = False
                    self._texts.clear()
        else:
            self.hits += 1
            self._texts.move_to_end(key)
        return text.replace(ph, token)
