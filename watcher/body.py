"""Reading a response body within the size cap, decoding gzip/deflate ourselves.

Split out of ``fetch.py`` (one module per stage, ~400 lines each): decompression is bounded
by hand so a small bomb cannot grow past the cap, and each way a body can go wrong is named
as a ``_Failure``, the attempt failure that ``fetch`` settles into a ``FetchError``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from watcher.models import Redirect

_GZIP = 16 + zlib.MAX_WBITS
_STEP = 64 * 1024  # most decoded bytes produced by one zlib call


@dataclass(eq=False)
class _Failure(Exception):
    """One attempt's failure, kept until retries are settled and it becomes a FetchError."""

    kind: str
    message: str
    status: int | None = None
    transient: bool = False
    retry_after: float | None = None
    budget_cut: bool = False  # our own deadline, not the server, ended the attempt
    redirects: list[Redirect] = field(default_factory=list)


def _size(n: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


class _Inflater:
    """gzip/deflate inflated with `max_length`, so a small bomb cannot grow past the cap."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._d = zlib.decompressobj(_GZIP) if encoding != "deflate" else None
        self._head = b""  # deflate: held until we can tell zlib-wrapped from raw
        self._fed = False

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        """Yield decoded pieces; stops once more than `room` bytes came out (over the cap)."""
        self._fed = self._fed or bool(data)
        if self._d is None:
            self._head += data
            if len(self._head) < 2:
                return
            # "deflate" means zlib-wrapped, but some servers send raw deflate: check the header.
            cmf, flg = self._head[0], self._head[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        while data and room >= 0:
            # Small steps: zlib builds each piece from blocks and joins them, so one big
            # step would briefly hold twice its size.
            piece = self._d.decompress(data, min(room + 1, _STEP))
            room -= len(piece)
            yield piece
            data = self._d.unconsumed_tail
            more = self._d.unused_data.strip(b"\0\r\n\t ")  # padding is not a member
            if self._d.eof and more and self.encoding != "deflate":
                data = self._d.unused_data + data  # a further gzip member
                self._d = zlib.decompressobj(_GZIP)

    def finish(self) -> bytes:
        if not self._fed:
            return b""
        tail = self._d.flush() if self._d else b""
        if self._d is None or not self._d.eof:
            raise _Failure("http", f"{self.encoding} body is truncated")
        return tail


async def _read_body(response: httpx.Response, limit: int, *, peek: bool) -> bytes:
    """Stream the raw body and decode it ourselves, counting decoded bytes against `limit`.

    With `peek`, stop quietly at the limit: error pages are read only to spot block pages,
    and a garbled one is simply not recognised.
    """
    status = response.status_code
    encoding = response.headers.get("content-encoding", "").strip().lower()
    known = encoding in ("gzip", "x-gzip", "deflate")
    length = response.headers.get("content-length", "").strip()
    if not peek and encoding not in ("", "identity") and not known:
        raise _Failure("http", f"unsupported Content-Encoding {encoding!r}", status=status)
    if not peek and length.isdigit() and int(length) > limit:
        msg = f"body exceeds {_size(limit)} limit (Content-Length {length})"
        raise _Failure("too_large", msg, status=status)
    inflater = _Inflater(encoding) if known else None
    chunks: list[bytes] = []
    total = 0
    try:
        async for raw in response.aiter_raw():
            for piece in inflater.feed(raw, limit - total) if inflater else (raw,):
                chunks.append(piece)
                total += len(piece)
            if total > limit:
                break
        else:
            if inflater:
                chunks.append(inflater.finish())
                total += len(chunks[-1])
    except (_Failure, zlib.error) as exc:
        if not peek and isinstance(exc, _Failure):
            exc.status = status
            raise
        if not peek:
            raise _Failure("http", f"corrupt {encoding} body ({exc})", status=status) from exc
    if total > limit and not peek:
        raise _Failure("too_large", f"body exceeds {_size(limit)} limit", status=status)
    return b"".join(chunks)[:limit]
