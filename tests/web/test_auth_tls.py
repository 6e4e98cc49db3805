"""The TCP listener of ``hubsight run`` with a configured certificate: HTTPS and Secure cookies."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hubsight.cli.run_cmd import TLS_CERT_ENV, TLS_KEY_ENV, _start_api, _tcp_config, _tcp_socket
from hubsight.detect.runtime import Detection
from hubsight.devbroker import free_port
from hubsight.errors import ConfigError
from hubsight.service import SOCKET_FILE, Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.store.users import UserStore

from tests.support import wait_until
from tests.tlsbroker import Authority

PASSWORD = "tls admin passphrase"


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A localhost certificate in the environment; the CA file that trusts it."""
    ca = Authority.create("console-test-ca")
    cert, key = tmp_path / "console.pem", tmp_path / "console.key"
    ca.issue_localhost(cert, key)
    monkeypatch.setenv(TLS_CERT_ENV, str(cert))
    monkeypatch.setenv(TLS_KEY_ENV, str(key))
    return ca.write_ca(tmp_path / "ca.pem")


def test_https_listener_sets_secure_cookies_and_the_socket_stays_private(
    data_dir: Path, authority: Path
) -> None:
    users = UserStore(data_dir)
    users.create("admin", PASSWORD, "admin")
    store = EmbeddedStore(data_dir)
    detection = Detection.open(data_dir)
    port = free_port()
    service = Service(data_dir, store, Catalog(data_dir))
    servers = _start_api(service, detection, users, ("127.0.0.1", _tcp_socket("127.0.0.1", port)))
    try:
        wait_until(lambda: all(s.started for s in servers), 10, "both listeners")
        context = ssl.create_default_context(cafile=str(authority))
        with httpx.Client(verify=context, base_url=f"https://localhost:{port}") as client:
            assert client.get("/api/v1/status").status_code == 401
            signed = client.post("/login", data={"name": "admin", "password": PASSWORD})
            assert signed.status_code == 303
            cookie = signed.headers["set-cookie"]
            assert "Secure" in cookie
            assert "HttpOnly" in cookie
        local = httpx.HTTPTransport(uds=str(data_dir / SOCKET_FILE))
        with httpx.Client(transport=local, base_url="http://hubsight") as owner:
            assert owner.get("/api/v1/status").json() == {"sources": [], "damaged_parts": []}
    finally:
        for server in servers:
            server.should_exit = True
        wait_until(lambda: _closed(port), 10, "the listener to stop")
        detection.close()
        store.close()


def test_half_a_tls_setting_or_a_bad_file_stops_the_start(
    data_dir: Path, authority: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TLS_KEY_ENV)
    with pytest.raises(ConfigError, match="only one of"):
        _tcp_config(FastAPI(), "127.0.0.1", free_port())
    monkeypatch.setenv(TLS_KEY_ENV, str(data_dir / "missing.key"))
    with pytest.raises(ConfigError, match="cannot be used"):
        _tcp_config(FastAPI(), "127.0.0.1", free_port())


def _closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return True
    return False
