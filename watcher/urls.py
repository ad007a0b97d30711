"""URL identity for publications: one document, one key, however the page spells its link.

Item keys are compared between captures taken weeks apart, so two spellings of the same URL
must give the same key (or a document would look removed and re-added), and two different
documents must never share one. Everything here is pure string work: no network, no clock.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

# Query parameters that only say how a reader arrived, never which document they get.
# Mail campaigns (GovDelivery, Mailchimp) and social shares add these to links to
# agency pages; keeping them would make one file look like several.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
    }
)
TRACKING_PREFIXES = ("utm_",)

DEFAULT_PORTS = {"http": 80, "https": 443}

# File extensions that name a publication, mapped to the type reported on an Item.
DOCUMENT_EXTENSIONS = {
    "pdf": "pdf",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "xls": "xls",
    "csv": "csv",
    "zip": "zip",
    "doc": "doc",
    "docx": "docx",
    "txt": "txt",
    "json": "json",
    "ppt": "ppt",
    "pptx": "pptx",
    "rtf": "rtf",
}
HTML_EXTENSIONS = frozenset({"htm", "html", "shtml", "xhtml", "asp", "aspx", "php", "jsp", "cfm"})

# Content types (without parameters) for the same publication types.
CONTENT_TYPES = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel": "xls",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/plain": "txt",
    "application/json": "json",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/rtf": "rtf",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/octet-stream": "file",
    "binary/octet-stream": "file",
    "application/download": "file",
    "application/force-download": "file",
}

# Types that make a link a publication in default extraction. "file" is a download whose
# format the URL does not say (justice.gov's /media/NNN/dl links).
DOCUMENT_TYPES = frozenset(DOCUMENT_EXTENSIONS.values()) | {"file"}

# justice.gov serves EOIR decisions from extension-less download paths:
# /eoir/page/file/1454401/download (2021), /media/1208956/dl?inline and /file/1468491/dl
# (2023 redesign). They are documents even though nothing in the URL says which format.
_DOWNLOAD_PATH = re.compile(r"/(?:media|file)/\d+/(?:dl|download)/?$", re.IGNORECASE)

# Query parameters that carry a file name on download scripts.
_FILE_PARAMS = frozenset({"file", "filename", "f", "name", "path", "doc", "document", "attachment"})

# Browsers drop ASCII tabs and newlines anywhere in a URL; editors leave them in hrefs.
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/%:@!$&'()*+,;=-._~?"


def _upper_escapes(s: str) -> str:
    return _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), s)


def _is_tracking(name: str) -> bool:
    n = unquote(name).lower()
    return n in TRACKING_PARAMS or n.startswith(TRACKING_PREFIXES)


def normalise_url(url: str, base: str | None = None) -> str:
    """The key that identifies a URL between captures.

    Absolute (resolved against ``base``), scheme and host lower-cased, default port,
    fragment and tracking parameters dropped, remaining query parameters sorted. Path case
    is kept: ice.gov's /doclib/ paths are case-sensitive (``ddrKesleyVial_opr.pdf``).
    Query pairs keep their original spelling, so ``?inline`` stays ``?inline``.
    Non-web URLs (mailto:, javascript:) come back stripped but otherwise unchanged.
    """
    raw = _TAB_NEWLINE.sub("", url).strip()
    if base:
        with contextlib.suppress(ValueError):
            raw = urljoin(base, raw)
    try:
        parts = urlsplit(raw)
    except ValueError:
        return raw
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", ""):
        return raw
    netloc = parts.netloc
    if netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        host, port_sep, port = hostport.partition(":")
        if hostport.startswith("["):  # IPv6 literal
            host, _, rest = hostport.partition("]")
            host += "]"
            port_sep, port = (":", rest[1:]) if rest.startswith(":") else ("", "")
        host = host.lower().rstrip(".")
        if port_sep and (not port or (port.isdigit() and int(port) == DEFAULT_PORTS.get(scheme))):
            port_sep, port = "", ""
        netloc = (userinfo + "@" if userinfo else "") + host + port_sep + port
    path = _upper_escapes(quote(parts.path, safe=_PATH_SAFE))
    if netloc and not path:
        path = "/"
    pairs = [p for p in parts.query.split("&") if p and not _is_tracking(p.partition("=")[0])]
    query = "&".join(sorted(_upper_escapes(quote(p, safe=_QUERY_SAFE)) for p in pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def strip_fragment(url: str) -> str:
    """``url`` without its ``#fragment``, otherwise exactly as given."""
    return url.partition("#")[0]


def file_name(url: str) -> str:
    """The last path segment, percent-decoded; "" when the path ends in "/" or is empty."""
    try:
        path = urlsplit(_TAB_NEWLINE.sub("", url).strip()).path
    except ValueError:
        return ""
    return unquote(path.rsplit("/", 1)[-1])


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def doc_type(url: str, content_type: str | None = None) -> str:
    """What kind of publication ``url`` is: "pdf", "xlsx", ..., "file" or "html".

    The URL's own extension wins (servers often send PDFs as application/octet-stream);
    then the content type; then a file name passed in a file-ish query parameter
    (``download.aspx?file=x.pdf``); then the extension-less download paths justice.gov
    uses ("file"). An unknown short extension is reported as itself ("jpg"); anything
    else is "html".
    """
    try:
        parts = urlsplit(_TAB_NEWLINE.sub("", url).strip())
    except ValueError:
        return "html"
    ext = _extension(unquote(parts.path.rsplit("/", 1)[-1]))
    if ext in DOCUMENT_EXTENSIONS:
        return DOCUMENT_EXTENSIONS[ext]
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in CONTENT_TYPES:
        return CONTENT_TYPES[mime]
    for pair in parts.query.split("&") if parts.query else ():
        name, _, value = pair.partition("=")
        value_ext = _extension(unquote(value).rsplit("/", 1)[-1])
        if unquote(name).lower() in _FILE_PARAMS and value_ext in DOCUMENT_EXTENSIONS:
            return DOCUMENT_EXTENSIONS[value_ext]
    if ext in HTML_EXTENSIONS:
        return "html"
    if _DOWNLOAD_PATH.search(parts.path):
        return "file"
    if ext and len(ext) <= 5 and ext.isalnum() and ext[0].isalpha():
        return ext
    return "html"
    try:
        parts = urlsplit(_TAB_NEWLINE.sub("", url).strip())
    except ValueError:
        return "html"
    if _DOWNLOAD_PATH.search(parts.path):
        return "file"
    for pair in parts.query.split("&"):
        value_ext = _extension(unquote(pair.partition("=")[2]).rsplit("/", 1)[-1])
        if value_ext in DOCUMENT_EXTENSIONS:
            return DOCUMENT_EXTENSIONS[value_ext]
    if ext and len(ext) <= 5 and ext.isalnum() and not ext.isdigit():
        return ext
    return "html"


# File signatures: a capture that starts with one of these is a file, whatever its headers.
_MAGIC = {b"%PDF": "pdf", b"PK\x03\x04": "zip", b"\xd0\xcf\x11\xe0": "file", b"\x1f\x8b": "file"}
_HTML_SNIFF = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<main", b"<div")


def looks_like_html(body: bytes) -> bool:
    """True if the first KB of ``body`` is plainly an HTML document."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and any(tag in head for tag in _HTML_SNIFF)


def sniff_document(body: bytes, url: str, content_type: str | None) -> str | None:
    """The document type if a capture is a file rather than a web page, else None.

    A file signature decides first (a PDF is a PDF whatever the headers say). A body that
    is plainly HTML is a page even at a .pdf URL or with a PDF content type: an error or
    "Access Denied" page served where the file used to be must be seen as such, not
    recorded as the file. Otherwise the content type, then the URL, decide.
    """
    for magic, kind in _MAGIC.items():
        if body.startswith(magic):
            named = doc_type(url, content_type)
            return named if named in DOCUMENT_TYPES else kind
    if looks_like_html(body):
        return None
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if CONTENT_TYPES.get(mime) in DOCUMENT_TYPES:
        return doc_type(url, content_type)
    named = doc_type(url)
    return named if named in DOCUMENT_TYPES else None


_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:", "sms:", "about:", "file:")


def absolute_url(href: str, base: str) -> str | None:
    """The absolute URL a link leads to, fragment dropped, otherwise as written on the page;
    None for links to no resource (empty, "#top", mailto:, javascript:, unparsable)."""
    href = _TAB_NEWLINE.sub("", href).strip()
    if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
        return None
    try:
        return strip_fragment(urljoin(base, href))
    except ValueError:  # "http://[::1" and other unparsable hrefs
        return None
