"""URLs a user gives (`--endpoint`, a download mirror, a federated cluster): checked once, never printed with
credentials.

A URL that carries `user:password@` would end up in shell history, logs and error messages, so it is refused
with a hint on where credentials go instead; anything printing a URL that came from elsewhere masks them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from oscar_deploy.support.errors import UserInputError, shown

SCHEMES = ("http", "https")
USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")
MASK = "****@"
# Where a download mirror's login goes instead of its URL: the downloader reads it (support.download.netrc_auth).
NETRC_HINT = "put them in ~/.netrc for the mirror's host instead"


def mask_url(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ****."""
    return USERINFO.sub(MASK, text)


def url_problem(text: str, example: str = "https://oscar.example.org") -> str | None:
    """What is wrong with `text` as an http(s) URL without credentials, or None when it is one."""
    if not text:
        return f"is empty; give an http(s) URL such as {example}"
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in text):
        return "must be one URL without spaces or control characters"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in SCHEMES:
        return f"must be an http(s) URL such as {example}"
    if "@" in parts.netloc:
        return "carries credentials, which do not belong in a URL"
    if not host:
        return f"names no host; give an http(s) URL such as {example}"
    return None


def http_url(text: str, where: str, credentials_hint: str = "") -> str:
    """`text` once it is an http(s) URL without credentials, trailing `/` removed; a one-line error otherwise.

    The message names `where` (a flag, a file and key) and shows the URL with credentials masked.
    """
    problem = url_problem(text)
    if problem is not None:
        hint = f"; {credentials_hint}" if credentials_hint and "credentials" in problem else ""
        raise UserInputError(f"{where} {shown(mask_url(text), 80)}: {problem}{hint}")
    return text.rstrip("/")
