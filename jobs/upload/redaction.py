"""Redaction of secrets (access token, app secret, appsecret_proof) in every form they take on
the wire: raw, URL-encoded (``quote`` with and without ``/`` kept, ``quote_plus``, lower-case
hex), JSON-escaped (ASCII-only or not, ``/`` as ``\\/``), and those forms nested once (a
form-encoded token quoted inside a JSON error message, a JSON body inside a JSON string).

    redact = Redactor(["EAAB/x+y"])
    redact("bad token EAAB%2Fx%2By")  # 'bad token [redacted]'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"


def _url_forms(text: str) -> set[str]:
    forms = {quote(text), quote(text, safe=""), quote_plus(text), quote_plus(text, safe="/")}
    lower = {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return forms | lower


def _json_forms(text: str) -> set[str]:
    forms = {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    return forms | {f.replace("/", "\\/") for f in forms}


def wire_forms(secret: str) -> set[str]:
    """Every text the secret can appear as in a request body or an echo of it."""
    forms = {secret} | _url_forms(secret) | _json_forms(secret)
    for form in list(forms):
        forms |= _url_forms(form) | _json_forms(form)
    return {f for f in forms if f}


class Redactor:
    """Replaces every wire form of the given secrets by ``[redacted]``. Callable on text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= wire_forms(secret)
        # Longest first, so that a form containing another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = (re.compile("|".join(re.escape(f) for f in ordered))
                         if ordered else None)

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def value(self, node: Any) -> Any:
        """A parsed JSON value with every string (keys included) redacted."""
        if isinstance(node, str):
            return self(node)
        if isinstance(node, dict):
            return {self(str(k)): self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        return node

    def __repr__(self) -> str:
        return "Redactor(<hidden>)"

    def __reduce__(self) -> Any:
        raise TypeError("a Redactor holds secrets: build it where they are used")
