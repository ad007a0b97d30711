"""Is an agency's host name gone, or is our own DNS down?"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit


class ResolverProbe:
    """Tells "this agency's host name is gone" from "our own DNS is down".

    An offline machine and a deleted DNS record give the same resolver error, and reporting
    every watched page as disappeared because the newsroom's network failed would be the
    worst kind of false alarm. So on the first DNS failure of a run, a few of the other
    watched host names are resolved: if none of them resolves either, the fault is ours.
    With no other named host to ask, the failure is taken at its word.
    """

    SAMPLE = 5
    TIMEOUT = 5.0

    def __init__(self, urls: Iterable[str]) -> None:
        names = {urlsplit(u).hostname or "" for u in urls}
        self.names = sorted(n for n in names if _needs_dns(n))
        self._down: asyncio.Future[bool] | None = None

    async def network_down(self, failed_url: str) -> bool:
        failed = urlsplit(failed_url).hostname or ""
        others = [n for n in self.names if n != failed][: self.SAMPLE]
        if not others:
            return False
        if self._down is None:
            self._down = asyncio.ensure_future(self._none_resolve(others))
        return await self._down

    async def _none_resolve(self, names: list[str]) -> bool:
        loop = asyncio.get_running_loop()

        async def resolves(name: str) -> bool:
            try:
                await asyncio.wait_for(loop.getaddrinfo(name, 443), self.TIMEOUT)
            except (OSError, TimeoutError):
                return False
            return True

        return not any(await asyncio.gather(*(resolves(n) for n in names)))


def _needs_dns(host: str) -> bool:
    """IP literals and localhost resolve without DNS, so they prove nothing either way."""
    if not host or host == "localhost":
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False
