"""Fixtures for the sources tests: a broker behind TLS with a throwaway CA, one behind SCRAM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hubsight.devbroker import LocalBroker, free_port

from tests.scramfront import ScramFront
from tests.support import PLANTED_PASSWORD
from tests.tlsbroker import Authority, TlsTerminator

# The SCRAM users of ``scram_broker``: one per mechanism, both with the planted password.
SCRAM_USERS = {
    ("SCRAM-SHA-256", "reader-256"): PLANTED_PASSWORD,
    ("SCRAM-SHA-512", "reader-512"): PLANTED_PASSWORD,
}


@pytest.fixture(scope="session")
def authority() -> Authority:
    """The CA that signs the TLS broker's certificate."""
    return Authority.create("hubsight test CA")


@pytest.fixture(scope="session")
def ca_file(authority: Authority, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CA certificate a client must trust to reach the TLS broker."""
    return authority.write_ca(tmp_path_factory.mktemp("ca") / "ca.pem")


@pytest.fixture(scope="session")
def wrong_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA certificate that did not sign the broker's certificate."""
    other = Authority.create("some other CA")
    return other.write_ca(tmp_path_factory.mktemp("wrong-ca") / "ca.pem")


@pytest.fixture(scope="session")
def tls_broker(
    authority: Authority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsTerminator]:
    """A tansu broker reachable only through stunnel's TLS port.

    The broker is its own (not the shared ``broker``): tansu puts its advertised address in
    metadata and clients reconnect there after bootstrap, so it must advertise the TLS port.
    """
    workdir = tmp_path_factory.mktemp("tls-broker")
    tls_port = free_port()
    with LocalBroker(advertised_port=tls_port, log_path=workdir / "tansu.log") as tansu:
        terminator = TlsTerminator(tansu.port, workdir, authority, port=tls_port).start()
        try:
            yield terminator
        finally:
            terminator.stop()


@pytest.fixture(scope="session")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScramFront]:
    """A tansu broker reachable only through a SCRAM login (see ``scramfront``).

    Like ``tls_broker`` it has its own tansu, advertising the port clients log in on.
    """
    workdir = tmp_path_factory.mktemp("scram-broker")
    front_port = free_port()
    with LocalBroker(advertised_port=front_port, log_path=workdir / "tansu.log") as tansu:
        front = ScramFront(tansu.port, SCRAM_USERS, port=front_port).start()
        try:
            yield front
        finally:
            front.stop()
