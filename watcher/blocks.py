"""Recognising a firewall's block page, so a bot block is never taken for the page itself.

Split out of ``fetch.py`` (one module per stage, ~400 lines each): the markers are long,
vendor-specific and change on their own schedule, apart from the request machinery.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

_PEEK = 64 * 1024  # enough of an error page to recognise a block page

_AKAMAI_REF = re.compile(r"reference\s*#\s*([0-9a-f]+(?:\.[0-9a-f]+){2,})", re.I)
_PERMISSION = re.compile(r"you don.t have permission to access", re.I)
_TITLE = re.compile(r"<title[^>]*>\s*(.*?)\s*</title>", re.I | re.S)
_CAPTCHA = ("g-recaptcha", "h-captcha", "hcaptcha", "px-captcha", "are you a robot",
            "verify you are human", "incapsula incident", "_incapsula_resource")  # fmt: skip


def classify_block(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """Name the firewall when a response is a bot block rather than the page.

    Federal sites sit behind Akamai, whose blocks come back as 403 "Access Denied" or as a
    redirect landing on one; neither means the page is gone. On a 200 only markers no real
    page carries count: ICE pages may embed a form captcha, and Cloudflare injects its
    /cdn-cgi/challenge-platform/ script into ordinary pages.
    """
    if status not in (200, 403, 429, 503):
        return None
    hdr = {k.lower(): v for k, v in headers.items()}
    # Akamai entity-encodes its page ("Reference&#32;&#35;18&#46;..."), so unescape first.
    text = html.unescape(body[:_PEEK].decode("latin-1"))
    low = text.lower()
    m = _TITLE.search(text)
    title = m.group(1).lower() if m else ""
    denied = "access denied" in title or "<h1>access denied</h1>" in low
    cf_chl = "cf-chl" in low or "_cf_chl_opt" in low
    moment = title.startswith("just a moment")
    # Only a denial page is searched for its reference: the case-insensitive search costs
    # ~0.4 ms on a 64 KB page, most of the time this function takes on every ordinary 200.
    ref = _AKAMAI_REF.search(text) if denied else None
    if denied and _PERMISSION.search(text) and (ref or status != 200):
        return 'Akamai "Access Denied"' + (f" (reference #{ref.group(1)})" if ref else "")
    if (cf_chl and moment) or (status != 200 and (cf_chl or moment)):
        return 'Cloudflare challenge ("Just a moment...")'
    if status == 200:
        return None
    if "attention required! | cloudflare" in title:
        return 'Cloudflare "Attention Required!" block'
    if denied and "akamai" in hdr.get("server", "").lower():
        return 'Akamai "Access Denied"'
    if "captcha" in title or any(marker in low for marker in _CAPTCHA):
        return "captcha page"
    if status == 403 and "cf-ray" in hdr:
        return f"Cloudflare 403 (cf-ray {hdr['cf-ray']})"
    return None
