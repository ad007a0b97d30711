"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), recording what it accepts."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class SmtpSink:
    """``with SmtpSink() as smtp: ... smtp.messages`` (parsed) and ``smtp.port``.

    With ``password`` set, the server offers AUTH (without TLS, for the test) and accepts only
    that password for user ``watcher``.
    """

    def __init__(self, *, password: str | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.received = threading.Event()
        self.port = free_port()
        self.password = password
        kwargs: dict[str, Any] = {}
        if password is not None:
            kwargs = {"authenticator": self._auth, "auth_require_tls": False}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = data.login == b"watcher" and data.password == (self.password or "").encode()
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.received.set()
        return "250 Message accepted for delivery"

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
