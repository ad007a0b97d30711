"""Is the page itself gone, or only unreadable? Verdicts on one fetch. Pure.

A disappearance is news; an unreadable page is an error. The line between them is drawn
here, from the status, the redirect chain and what the page says about itself, so that a
firewall's 403 or a flaky 503 is never reported as a page that vanished.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from watcher.errors import FetchError
from watcher.models import Page

# --- heuristics, each tied to a real page behaviour ---------------------------------------
# 404 and 410 say the page is gone. Anything else that fails (5xx, a firewall's 403, a
# timeout) says only that we could not read it: ICE and DOJ sit behind Akamai, which answers
# 403 "Access Denied" to perfectly alive pages.
GONE_STATUSES = (404, 410)
# A redirect that lands on the site's home page is how Drupal sites retire a page (a soft
# 404); "/", "/index.html", "/home" and "/homepage" all count.
HOME_PATH = re.compile(r"^/*(?:index\.[a-z]+|home[a-z-]*(?:\.[a-z]+)?)?/*$", re.IGNORECASE)
# A redirect is "related" (the page moved, it did not vanish) when the new path shares its
# first segment with the old one, or its last one: justice.gov moved /eoir/volume-28 within
# /eoir/, and ICE renames sections while keeping the page's own slug.
RELATED_SEGMENTS = ("first", "last")
# A 200 that says of itself "Page Not Found", "has been removed" or "no longer available"
# (ice.gov's Drupal answers missing nodes that way) is gone too: extract sets
# Page.looks_missing from its title and, on near-empty pages, its main text.
# A page we have never read cannot disappear: a 404 on the first check is a wrong URL in
# targets.yaml, reported as an error.


@dataclass(frozen=True)
class Verdict:
    """The page is gone (``gone``) or could not be read (not ``gone``), and why."""

    gone: bool
    reason: str  # "404", "410", "dns", "redirect_home", "redirect_away", "says_missing", or
    # the FetchError kind for errors
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


def failure_verdict(error: FetchError, *, ever_read: bool, network_down: bool = False) -> Verdict:
    """A failed fetch: gone for 404, 410 and a name that no longer resolves, else an error.

    A page we have never read cannot disappear: a 404 on the first check is a typo in the
    config, reported as an error that names the status.
    """
    data = {"class": error.kind, "status": error.status, "redirects": error.redirects}
    if error.kind == "http" and error.status in GONE_STATUSES:
        words = "Gone" if error.status == 410 else "Not Found"
        summary = f"The page answers {error.status} ({words})"
        if not ever_read:
            return Verdict(False, "http", summary + "; it has never been read", data)
        return Verdict(True, str(error.status), summary, data)
    if error.kind == "dns":
        host = urlsplit(error.url).hostname or "the host"
        if network_down:
            summary = (
                f"{host} does not resolve, and neither do the other watched hosts: "
                "this machine's DNS or network is down, not the agency's site"
            )
            return Verdict(False, "network", summary, data)
        summary = f"{host} no longer resolves (DNS)"
        return Verdict(ever_read, "dns", summary, data)
    return Verdict(False, error.kind, str(error), data)


def page_verdict(target_url: str, final_url: str, page: Page | None) -> Verdict | None:
    """A page that answered 200 but is not the page: a soft 404. None if it is the page."""
    where = redirect_verdict(target_url, final_url)
    if where is not None:
        reason, text = where
        return Verdict(
            True, reason, f"The page redirects to {text} ({final_url})", {"final_url": final_url}
        )
    if page is not None and page.looks_missing and not page.is_document:
        return Verdict(
            True, "says_missing", f"The page says it is gone: '{page.title}'", {"title": page.title}
        )
    return None


def redirect_verdict(original: str, final: str) -> tuple[str, str] | None:
    """Where a redirect went, if that means the page is gone: to the site's home page or to
    an unrelated path. http→https, www., case and trailing-slash redirects are the same page."""
    if final == original:
        return None
    o, f = urlsplit(original), urlsplit(final)
    o_path, f_path = o.path.rstrip("/").lower(), f.path.rstrip("/").lower()
    same_host = _host(o.hostname) == _host(f.hostname)
    if same_host and o_path == f_path:
        return None
    if HOME_PATH.match(o.path):
        return None  # the target is a home page itself
    if HOME_PATH.match(f.path):
        return "redirect_home", "the site's home page"
    o_parts = [p for p in o_path.split("/") if p]
    f_parts = [p for p in f_path.split("/") if p]
    shared = {"first": 0, "last": -1}
    if (
        o_parts
        and f_parts
        and any(o_parts[shared[p]] == f_parts[shared[p]] for p in RELATED_SEGMENTS)
    ):
        return None
    return "redirect_away", "an unrelated page"


def _host(name: str | None) -> str:
    return (name or "").lower().removeprefix("www.")
