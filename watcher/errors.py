"""One exception tree. Subclasses carry data; only ``cli.py`` turns them into messages.

Every error has a one-line ``str()`` that is safe to show a user: no secrets, no tracebacks.
"""

from __future__ import annotations

from pathlib import Path


class WatcherError(Exception):
    """Base of every error watcher raises on purpose."""


class ConfigError(WatcherError):
    """targets.yaml cannot be used. ``path`` is the dotted path inside the file, if known."""

    def __init__(
        self, file: Path | str, message: str, *, line: int | None = None, path: str = ""
    ) -> None:
        self.file = str(file)
        self.line = line
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {what}"


class FetchError(WatcherError):
    """A page could not be read. ``kind`` is one of FAILURE_KINDS."""

    FAILURE_KINDS = ("dns", "connect", "timeout", "tls", "http", "blocked", "too_large")

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        url: str = "",
        status: int | None = None,
        redirects: list[str] | None = None,
    ) -> None:
        assert kind in self.FAILURE_KINDS, kind
        self.kind = kind
        self.message = message
        self.url = url
        self.status = status
        self.redirects = redirects or []
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class StoreError(WatcherError):
    """The snapshot store cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another watcher process holds the data dir for longer than we were willing to wait."""

    def __init__(self, data_dir: Path, waited: float) -> None:
        self.data_dir = data_dir
        self.waited = waited
        super().__init__(
            f"data dir {data_dir} is in use by another watcher process "
            f"(waited {waited:.0f}s); try again when it has finished"
        )


class UnknownTargetError(WatcherError):
    def __init__(self, target_id: str, known: list[str]) -> None:
        self.target_id = target_id
        self.known = known
        super().__init__(f"no target with id {target_id!r}")


class NotifyError(WatcherError):
    """A notification channel refused a message. ``permanent`` errors are not retried."""

    def __init__(self, channel: str, message: str, *, permanent: bool = False) -> None:
        self.channel = channel
        self.message = message
        self.permanent = permanent
        super().__init__(f"{channel}: {message}")
