"""Real receivers of notifications for tests: an SMTP server, an HTTP server, a syslog listener.

Each listens on 127.0.0.1 on a port the system picks, so tests exercise real sockets, TLS and
authentication rather than fakes of the client libraries.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.tlsbroker import Authority

SmtpMode = Literal["plain", "starttls", "smtps"]


@dataclass
class Mailbox:
    """What the SMTP server received."""

    mails: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the mail."""
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(raw)))
        return "250 OK"


class _Controller(Controller):
    # aiosmtpd connects to its own port to check it started; with port 0 it must learn it first.
    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        # Named, not super(): mypy exempts aiosmtpd's unannotated methods only when called by name.
        Controller._trigger_server(self)


@dataclass(frozen=True)
class Tls:
    """A CA file clients trust and the server's context."""

    ca_file: Path
    server: ssl.SSLContext


def make_tls(folder: Path) -> Tls:
    """A throwaway CA and a ``localhost``/127.0.0.1 server certificate it signed."""
    authority = Authority.create("hubsight notify test CA")
    cert, key = folder / "smtp.pem", folder / "smtp.key"
    authority.issue_localhost(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return Tls(authority.write_ca(folder / "ca.pem"), context)


@contextmanager
def smtp_server(
    mode: SmtpMode = "plain",
    *,
    tls: Tls | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[tuple[int, Mailbox]]:
    """An SMTP server; with ``users`` it requires AUTH (only over TLS, as servers do)."""
    box = Mailbox()

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and users is not None
            and users.get(data.login.decode()) == data.password.decode()
        )
        if ok:
            box.logins.append(data.login.decode())
        # handled=False: aiosmtpd answers 235 or 535 itself.
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, Any] = {}
    if users is not None:
        kwargs |= {"authenticator": authenticate, "auth_required": True}
    if mode == "starttls":
        assert tls is not None
        kwargs |= {"tls_context": tls.server, "require_starttls": True}
    if mode == "smtps":
        assert tls is not None
        # aiosmtpd counts only STARTTLS as TLS: on an implicit-TLS port it must be told that AUTH
        # is fine (and then warns if AUTH is also required; the tests check the login instead).
        kwargs |= {"ssl_context": tls.server, "auth_require_tls": False, "auth_required": False}
    controller = _Controller(box, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    try:
        yield controller.port, box
    finally:
        controller.stop()


@dataclass
class Received:
    """Requests an HTTP receiver answered: headers and JSON body."""

    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    # Status codes to answer, in order; the last one repeats.
    statuses: list[int] = field(default_factory=lambda: [204])
    # A holding receiver's requests as they arrive (bodies), each held until ``release`` is set.
    arrived: list[Any] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def http_receiver(*statuses: int, hold: bool = False) -> Iterator[tuple[str, Received]]:
    """An HTTP server on 127.0.0.1 that records POSTs; its base URL and what it received.

    With ``hold``, it answers no request until ``Received.release`` is set (a slow receiver).
    """
    received = Received(statuses=list(statuses) or [204])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hold:
                received.arrived.append(json.loads(body))
                received.release.wait(60)
            received.requests.append(
                ({k.lower(): v for k, v in self.headers.items()}, json.loads(body))
            )
            status = (
                received.statuses.pop(0) if len(received.statuses) > 1 else received.statuses[0]
            )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        received.release.set()
        server.shutdown()
        server.server_close()


@contextmanager
def tcp_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP listener that keeps what each connection sent until it closed."""
    got: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                got.append(b"".join(chunks))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], got
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
