"""A real SMTP server on loopback (aiosmtpd's Controller, in a thread of the test process) that
keeps every message it receives, for the invitation tests:

    with SmtpServer() as mail:
        site = {"smtp": mail.site_settings()}
        ...
        message = mail.wait_for("zoe@acme.fr")
"""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage

from tests.conftest import need
from tests.services import free_port
from tests.services.hub import wait_until


class _Collect:
    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(message)
        return "250 OK"


class SmtpServer:
    def __init__(self, host: str = "127.0.0.1"):
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            need(False, "aiosmtpd is not installed (make test-deps): no SMTP server to receive invitations")

        self.host, self.port = host, free_port(host)
        self.handler = _Collect()
        self.controller = Controller(self.handler, hostname=host, port=self.port)

    def __enter__(self) -> SmtpServer:
        try:
            self.controller.start()  # returns once the server answers
        except (OSError, RuntimeError, TimeoutError) as err:
            need(False, f"the SMTP server did not start on {self.host}:{self.port}: {err}")
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def site_settings(self, sender: str = "ailys-hub@test.example") -> dict:
        """The site file's smtp section for this server (a relay on loopback: no TLS, no login)."""
        return {"host": self.host, "port": self.port, "security": "none", "sender": sender}

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10) -> EmailMessage:
        """The latest message to ``address`` once ``count`` have arrived."""
        return wait_until(
            lambda: len(self.to(address)) >= count and self.to(address)[-1], timeout, f"mail to {address}"
        )
