"""TLS in front of the local broker: a throwaway CA, a ``localhost`` certificate and stunnel.

tansu's own TLS listener did not complete a handshake with librdkafka, so Debian's stunnel4
terminates TLS and forwards the plain bytes to tansu, much as a TLS load balancer sits in front
of a Kafka cluster. ``scripts/test-deps.sh`` (run by ``make test``) installs stunnel.
The client helpers at the end reach any secured test broker (TLS or SASL) as a source does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hubsight.devbroker import free_port, wait_for_port
from hubsight.sources.config import SourceConfig
from hubsight.sources.kafka import client_settings

_VALIDITY = dt.timedelta(days=2)


@dataclass(frozen=True)
class Authority:
    """A certificate authority that exists only for one test session."""

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @staticmethod
    def create(name: str) -> Authority:
        """A new self-signed CA called ``name``."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return Authority(name, key, certificate)

    def write_ca(self, path: Path) -> Path:
        """Write the CA certificate (what a client trusts) as PEM to ``path``."""
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def issue_localhost(self, cert_path: Path, key_path: Path) -> None:
        """Write a server certificate for ``localhost`` and 127.0.0.1, and its key (0600)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def stunnel_binary() -> str:
    """Path of stunnel; a clear failure when it is not installed."""
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        raise RuntimeError(
            "stunnel is not installed: run scripts/test-deps.sh as root "
            "(or `apt-get install stunnel4`); the TLS tests need it"
        )
    return found


@dataclass
class TlsTerminator:
    """stunnel accepting TLS on a loopback port and forwarding plain TCP to ``target_port``."""

    target_port: int
    workdir: Path
    authority: Authority
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port of the TLS listener, with the host name its certificate carries."""
        return f"localhost:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where stunnel writes its log (read it when a handshake fails)."""
        return self.workdir / "stunnel.log"

    def start(self, timeout: float = 10.0) -> TlsTerminator:
        """Issue the server certificate, start stunnel and wait until it accepts connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert, key = self.workdir / "server.pem", self.workdir / "server.key"
        self.authority.issue_localhost(cert, key)
        config = self.workdir / "stunnel.conf"
        # foreground keeps stunnel the process we started, so it is stopped by this PID; an
        # empty pid option stops it from writing a pid file of its own.
        config.write_text(
            "foreground = yes\n"
            "pid =\n"
            f"output = {self.log_path}\n"
            "debug = notice\n"
            "[kafka]\n"
            f"accept = 127.0.0.1:{self.port}\n"
            f"connect = 127.0.0.1:{self.target_port}\n"
            f"cert = {cert}\n"
            f"key = {key}\n"
            "sslVersionMin = TLSv1.2\n"
        )
        self._process = subprocess.Popen(
            [stunnel_binary(), str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_for_port(self.port, timeout):
            self.stop()
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"stunnel did not listen on port {self.port}:\n{log}")
        return self

    def stop(self) -> None:
        """Stop stunnel by its PID."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def client_security(config: SourceConfig) -> dict[str, Any]:
    """The connection settings of ``config`` (bootstrap, TLS, SASL) for a test's own clients."""
    settings = client_settings(config)
    return {
        key: value
        for key, value in settings.items()
        if key == "bootstrap.servers" or key.startswith(("security.", "ssl.", "sasl."))
    }


def create_topic_as(config: SourceConfig, topic: str, partitions: int) -> None:
    """Create ``topic`` through the same TLS/SASL connection the source uses."""
    admin = AdminClient(client_security(config))
    admin.create_topics([NewTopic(topic, partitions)])[topic].result(timeout=30)


def produce_as(config: SourceConfig, topic: str, bodies: list[bytes]) -> None:
    """Produce ``bodies`` round-robin over the partitions through the source's connection."""
    producer = Producer({**client_security(config), "linger.ms": 20})
    partitions = len(producer.list_topics(topic, timeout=30).topics[topic].partitions)
    for index, body in enumerate(bodies):
        producer.produce(topic, body, partition=index % partitions)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages were not delivered"
